"""The web board as an editing surface, in Chromium (Debian's, through Playwright): every edit
the API has is a control of the page (a panel's fields, its note, moving it by buttons or by
dragging, insert, merge, delete, undo, the cast), bad input is one line and changes nothing,
every export format downloads, all of it works by keyboard at a phone's width, and a board
opened while its task is under way follows it."""

from __future__ import annotations

import secrets
import zipfile
from typing import Any

import httpx
import pytest
from fixtures_queue import write_stack
from fixtures_serve import start_serve
from playwright.sync_api import expect
from test_serve_journey import browser_page

from storyboard_cli.board import FORMATS

A = "The storm rose over the bay."
B = "Old Tom climbed the lighthouse stairs."
C = "Mara waited by the great lens."
D = "A small boat drifted toward the rocks."


@pytest.fixture(scope="module")
def board_server(served):
    """A server of its own (its login's wait stays its own) over the session's stack."""
    proc, url = start_serve(served.stack, served.token)
    yield url
    proc.stop()


def planned_project(served: Any, title: str) -> int:
    """A project planned (no frames: the edits need none), by the API."""
    with served.client() as api:
        project = api.post("/api/projects", json={"title": title,
                                                  "story_text": " ".join([A, B, C, D])}).json()
        task = api.post(f"/api/projects/{project['id']}/generate-storyboard",
                        json={"no_images": True}).json()
        assert served.wait_task(api, task["task_id"])["status"] == "succeeded"
    return project["id"]


def shots(served: Any, project: int) -> list[dict[str, Any]]:
    with served.client() as api:
        return api.get(f"/api/projects/{project}").json()["shots"]


def open_board(page: Any, url: str, token: str, project: int) -> None:
    page.goto(f"{url}/projects/{project}")
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#board article.panel")).to_have_count(4)


def open_edit(page: Any, number: int) -> None:
    """Open shot `number`'s edit forms, unless they are open (they stay open, shot by shot,
    while the board changes around them)."""
    if page.locator(f"#shot-{number} details.more").get_attribute("open") is None:
        page.get_by_label(f"Edit shot {number}").click()


def done(page: Any, what: str) -> None:
    expect(page.locator("#state")).to_have_text(f"{what}: done")


def test_every_edit_of_the_api_is_a_control_of_the_board(served, board_server):
    project = planned_project(served, "edits")
    with browser_page({"width": 1280, "height": 900}) as page:
        open_board(page, board_server, served.token, project)

        # A shot's fields, each as the API takes it.
        open_edit(page, 1)
        panel = page.locator("#shot-1")
        panel.get_by_label("Action", exact=True).fill("Lightning over the bay")
        panel.get_by_label("Dialogue").fill("Tom: Storm's coming\nIt always does")
        panel.get_by_label("Seconds").fill("4.5")
        panel.get_by_label("Prompt").fill("wide shot, lightning over a dark bay")
        panel.get_by_role("button", name="Save shot 1").click()
        done(page, "Edit shot 1")
        first = shots(served, project)[0]
        assert (first["action"], first["duration"], first["prompt"]) == (
            "Lightning over the bay", 4.5, "wide shot, lightning over a dark bay")
        assert first["dialogue"] == [{"speaker": "Tom", "line": "Storm's coming"},
                                     {"speaker": None, "line": "It always does"}]
        expect(page.locator("#shot-1 .action")).to_have_text("Lightning over the bay")
        # Focus comes back to where the writer was.
        expect(page.get_by_label("Edit shot 1")).to_be_focused()

        # Bad input: the server's one line, nothing changed.
        page.locator("#shot-1").get_by_label("Seconds").fill("0")
        page.get_by_role("button", name="Save shot 1").click()
        expect(page.locator("#state")).to_contain_text("Edit shot 1: --duration '0'")
        expect(page.locator("#state")).to_have_class("error")
        assert shots(served, project)[0]["duration"] == 4.5

        # A note, shown on the panel.
        open_edit(page, 2)
        page.get_by_label("Note on shot 2", exact=True).fill("keep the stairs dark")
        page.get_by_role("button", name="Save the note on shot 2").click()
        done(page, "Note on shot 2")
        expect(page.locator("#shot-2 .notes")).to_contain_text("keep the stairs dark")
        assert shots(served, project)[1]["notes"] == "keep the stairs dark"

        # Reordering: a button, then dragging a panel's handle onto another panel.
        page.get_by_role("button", name="Move shot 1 later").click()
        done(page, "Move shot 1")
        assert [s["description"] for s in shots(served, project)] == [B, A, C, D]
        page.locator("#shot-3 .grip").drag_to(page.locator("#shot-1 .frame"))
        done(page, "Move shot 3")
        assert [s["description"] for s in shots(served, project)] == [C, B, A, D]

        # Insert, merge, delete (asked twice), undo.
        open_edit(page, 2)
        page.get_by_label("Action of a new shot after shot 2").fill("The lamp room, empty")
        page.get_by_role("button", name="Insert a shot after shot 2").click()
        expect(page.locator("#board article.panel")).to_have_count(5)
        assert shots(served, project)[2]["action"] == "The lamp room, empty"
        open_edit(page, 4)
        page.get_by_role("button", name="Merge shot 4 with shot 5").click()
        expect(page.locator("#board article.panel")).to_have_count(4)
        open_edit(page, 1)
        page.get_by_role("button", name="Delete shot 1").click()
        page.get_by_role("button", name="Yes, delete shot 1").click()
        expect(page.locator("#board article.panel")).to_have_count(3)
        assert C not in [s["description"] for s in shots(served, project)]
        page.get_by_role("button", name="Undo").click()
        expect(page.locator("#board article.panel")).to_have_count(4)
        assert shots(served, project)[0]["description"] == C
        with served.client() as api:
            history = api.get(f"/api/projects/{project}/log").json()
        assert [e["op"] for e in history[:3]] == ["undo", "delete", "merge"]
        assert {e["by"] for e in history} == {"web"}  # the board's edits, as the log says

        # The cast: a new character, described again, shown in a shot, then removed.
        page.get_by_text("Cast (").click()
        page.get_by_label("New character's name").fill("Mara")
        page.get_by_label("New character's description").fill("old keeper, grey coat")
        page.get_by_role("button", name="Add character").click()
        done(page, "Add Mara")
        page.get_by_label("Description of Mara").fill("old keeper, red scarf")
        page.get_by_label("Other names of Mara").fill("Old Mara, 玛拉")
        page.get_by_role("button", name="Save Mara").click()
        done(page, "Describe Mara")
        with served.client() as api:
            cast = {c["name"]: c for c in api.get(f"/api/projects/{project}/cast").json()}
        assert (cast["Mara"]["description"], cast["Mara"]["source"], cast["Mara"]["aliases"]) == (
            "old keeper, red scarf", "user", ["Old Mara", "玛拉"])
        # A portrait from the description: the board's cast strip shows it.
        page.get_by_role("button", name="Portrait of Mara").click()
        done(page, "Portrait of Mara")
        expect(page.locator('.cast-strip figure[data-character="Mara"] img')).to_have_count(1)
        # Loaded through serve's image route (a reference is a key the store recorded).
        page.wait_for_function("() => document.querySelector('.cast-strip img').naturalWidth > 0")
        open_edit(page, 4)
        page.locator("#shot-4").get_by_label("Mara").check()
        page.get_by_role("button", name="Save shot 4").click()
        done(page, "Edit shot 4")
        assert "Mara" in shots(served, project)[3]["characters"]
        page.get_by_role("button", name="Remove Mara").click()
        expect(page.locator("#state")).to_contain_text("Remove Mara:")


def test_every_export_format_downloads_from_the_board(served, board_server, tmp_path):
    project = planned_project(served, "exports")
    stem = f"exports-{project}"
    # What each download is: a file of the format, or a zip of what the export wrote
    # (a Storyboarder folder, an animatic and its subtitles, a timeline and its frames).
    expected = {"html": (f"{stem}.html", b"<!doctype html>"), "pdf": (f"{stem}.pdf", b"%PDF-"),
                "mp4": (f"{stem}.mp4.zip", b"PK"), "storyboarder": (f"{stem}.zip", b"PK"),
                "zip": (f"{stem}.zip", b"PK"), "csv": (f"{stem}.csv", b"")}
    with browser_page({"width": 1280, "height": 900}) as page:
        open_board(page, board_server, served.token, project)
        options = page.locator("#export-format option").all_inner_texts()
        assert options == list(FORMATS)
        for fmt in FORMATS:
            page.get_by_label("Export format").select_option(fmt)
            with page.expect_download(timeout=120_000) as download:
                page.get_by_role("link", name=f"Download the board as {fmt}").click()
            saved = tmp_path / fmt / download.value.suggested_filename
            download.value.save_as(saved)
            name, magic = expected.get(fmt, (f"{stem}-{fmt}.zip", b"PK"))  # the timelines
            assert (saved.name, saved.read_bytes()[:len(magic)]) == (name, magic), fmt
            expect(page.locator("#state")).to_have_text(f"Export {fmt}: done")

        # An export that cannot be made says why in the status line (and downloads nothing).
        with served.client() as api:
            empty = api.post("/api/projects", json={"title": "empty",
                                                    "story_text": "Nothing yet."}).json()
        page.goto(f"{board_server}/projects/{empty['id']}")
        page.get_by_label("Export format").select_option("pdf")
        page.get_by_role("link", name="Download the board as pdf").click()
        expect(page.locator("#state")).to_have_text(
            f"Export pdf: project {empty['id']} has no shots to export yet: "
            f"storyboard generate {empty['id']}")
    names = zipfile.ZipFile(tmp_path / "mp4" / f"{stem}.mp4.zip").namelist()
    assert sorted(names) == [f"{stem}.mp4", f"{stem}.srt"]
    table = (tmp_path / "csv" / f"{stem}.csv").read_text(encoding="utf-8-sig").splitlines()
    assert table[0].startswith("number,") and len(table) == 1 + 4  # a row per shot


def tab_to(page: Any, name: str, limit: int = 80) -> None:
    """Press Tab until the focused element is called `name` (its label or text)."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        focused = page.evaluate("""() => { const el = document.activeElement;
            const label = el.labels && el.labels.length ? el.labels[0] : el;
            return el.getAttribute('aria-label') || label.textContent.trim(); }""")
        if focused == name:
            return
    raise AssertionError(f"{name!r} is not reachable with Tab")


OVERFLOW = "() => document.documentElement.scrollWidth - window.innerWidth"


def test_the_board_works_by_keyboard_at_a_phone_width(served, board_server):
    project = planned_project(served, "phone")
    with browser_page({"width": 390, "height": 844}) as page:
        open_board(page, board_server, served.token, project)
        assert page.evaluate(OVERFLOW) <= 0  # nothing wider than the phone
        boxes = page.locator("#shot-2 button, #shot-2 summary").evaluate_all(
            "(els) => els.map((e) => e.getBoundingClientRect().right)")
        assert boxes and max(boxes) <= 390

        page.locator("nav.bar a").first.focus()
        tab_to(page, "Approve shot 2")
        page.keyboard.press("Space")
        expect(page.get_by_role("button", name="Unapprove shot 2")).to_be_focused()
        assert shots(served, project)[1]["approved"]

        tab_to(page, "Edit shot 2")
        page.keyboard.press("Enter")
        tab_to(page, "Action")
        page.keyboard.press("Control+A")
        page.keyboard.type("Tom stops halfway up")
        page.keyboard.press("Enter")  # submits the panel's form
        expect(page.locator("#state")).to_have_text("Edit shot 2: done")
        assert shots(served, project)[1]["action"] == "Tom stops halfway up"

        tab_to(page, "Move shot 2 earlier")
        page.keyboard.press("Enter")
        expect(page.locator("#state")).to_have_text("Move shot 2: done")
        assert shots(served, project)[0]["action"] == "Tom stops halfway up"
        assert page.evaluate(OVERFLOW) <= 0


def test_a_board_opened_while_its_task_waits_follows_it_to_the_end(
    tmp_path, redis_server, s3_server, sketch_daemon, served,
):
    # A stack of its own, with no worker yet: the task waits in its queue.
    tag = secrets.token_hex(4)
    stack = write_stack(tmp_path / "waiting", redis_server.url, s3_server, sketch_daemon.url,
                        sketch_daemon.token,
                        queue={"plan_queue": f"plan-{tag}", "render_queue": f"render-{tag}"})
    proc, url = start_serve(stack, served.token)
    try:
        with httpx.Client(base_url=url, timeout=30, headers=served.headers) as api:
            project = api.post("/api/projects", json={"title": "waiting",
                                                      "story_text": f"{A} {B}"}).json()
            task = api.post(f"/api/projects/{project['id']}/generate-storyboard").json()
        follow = f"Task {task['task_id'][:8]}"
        with browser_page({"width": 1280, "height": 900}) as page:
            page.goto(f"{url}/projects/{project['id']}")
            page.get_by_label("API token").fill(served.token)
            page.get_by_role("button", name="Log in").click()
            expect(page.locator("#state")).to_have_text(f"{follow}: planning (pending)")
            stack.start_worker()
            expect(page.locator("#state")).to_have_text(f"{follow}: task succeeded",
                                                        timeout=90_000)
            expect(page.locator("#board .panel img")).to_have_count(2)
    finally:
        stack.stop_workers()
        proc.stop()
