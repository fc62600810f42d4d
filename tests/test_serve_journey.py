"""A writer's journey through the web board in a real browser (Debian's headless Chromium
through Playwright; no browser download), from a laptop's point of view: open the URL `serve`
printed, log in with the token, create a project, generate it (watching the progress), edit a
shot, split one, approve one, render the stale panels, update the story so that only what
changed is rendered (the approved and unchanged panels keep their images), download the PDF,
log out. Once straight to `serve`, once with `serve --root-path /storyboard` behind a reverse
proxy that strips the prefix, reached through one forwarded port (as `ssh -L` gives it)."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from fixtures_serve import PortForward, PrefixProxy, start_serve
from test_board_export import CHROMIUM_ARGS

A = "The storm rose over the bay."
A2 = "The storm rose over the dark bay."
B = "Old Tom climbed the lighthouse stairs."
C = "Mara waited by the great lens."
D = "A small boat drifted toward the rocks."
E = "The lamp flared once and went dark."

# Every text the progress line shows, as it changes.
RECORD_STATES = """() => {
  window.states = [];
  const state = document.querySelector('#state');
  new MutationObserver(() => window.states.push(state.textContent))
    .observe(state, {childList: true, characterData: true, subtree: true});
}"""
FRAMES = """() => Array.from(document.querySelectorAll('#board .panel img')).map(
  (i) => ({src: i.src, loaded: i.complete && i.naturalWidth > 0}))"""


def chromium() -> str:
    found = shutil.which("chromium")
    assert found, "no Debian chromium: sh scripts/system-deps.sh --test"
    return found


@contextmanager
def browser_page(viewport: dict[str, int]) -> Iterator[Any]:
    """A fresh browser (no cookies) and a page; fails the test on any script error."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport=viewport, accept_downloads=True)
            page = context.new_page()
            failed: list[str] = []
            page.on("pageerror", lambda exc: failed.append(str(exc)))
            yield page
            assert failed == []
        finally:
            browser.close()


def printed_url(log: str) -> str:
    (url,) = re.findall(r"^Open the board: (\S+)$", log, re.MULTILINE)
    return url


def keys(api: Any, project: int) -> dict[str, str]:
    """Each shot's story text -> its image key."""
    shots = api.get(f"/api/projects/{project}").json()["shots"]
    return {s["description"]: s["image_key"] for s in shots}


def wait_done(page: Any, what: str) -> None:
    from playwright.sync_api import expect

    expect(page.locator("#state")).to_have_text(f"{what}: task succeeded", timeout=90_000)


def journey(page: Any, url: str, token: str, api: Any, downloads: Path) -> None:
    from playwright.sync_api import expect

    # 1. The printed URL, a login form first, the token once.
    page.goto(url)
    expect(page).to_have_title("Log in · storyboard")
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("table.projects")).to_be_visible()

    # 2. A project, generated with live progress; frames shown through the same port.
    page.get_by_label("Title").fill("lighthouse")
    page.get_by_label("Story").fill(" ".join([A, B, C, D]))
    page.get_by_role("button", name="Create project").click()
    page.wait_for_url("**/projects/*")
    project = int(page.url.rsplit("/", 1)[1])
    expect(page.locator("#board h1")).to_have_text("lighthouse")
    page.evaluate(RECORD_STATES)
    page.get_by_role("button", name="Generate storyboard").click()
    wait_done(page, "Generate")
    states = page.evaluate("window.states")
    assert "Generate: queued" in states
    assert any(s.startswith("Generate: shots ") for s in states), states
    page.wait_for_function(f"({FRAMES})().filter((f) => f.loaded).length === 4")
    frames = page.evaluate(FRAMES)
    assert all(urlsplit(f["src"]).netloc == urlsplit(url).netloc for f in frames)
    generated = keys(api, project)
    assert list(generated) == [A, B, C, D] and all(generated.values())

    # 3. Edit a shot: shot 2 becomes a close-up, its panel stale.
    page.get_by_label("Edit shot 2").click()
    panel = page.locator("#shot-2")
    panel.get_by_label("Shot size").select_option("close-up")
    panel.get_by_role("button", name="Save shot 2").click()
    expect(page.locator("#state")).to_have_text("Edit shot 2: done")
    expect(page.locator("#shot-2 .camera")).to_have_text("close-up")
    expect(page.locator("#shot-2 .mark-stale")).to_be_visible()

    # 4. Split shot 3 where its second half starts.
    page.get_by_label("Edit shot 3").click()
    page.get_by_label("Words shot 3's second half starts with").fill("by the great lens")
    page.get_by_role("button", name="Split shot 3", exact=True).click()
    expect(page.locator("#board article.panel")).to_have_count(5)
    expect(page.locator("#shot-4 .action")).to_contain_text("great lens")

    # 5. Approve shot 1.
    page.get_by_role("button", name="Approve shot 1").click()
    expect(page.get_by_role("button", name="Unapprove shot 1")).to_have_attribute(
        "aria-pressed", "true")
    expect(page.locator("#shot-1 .mark-approved")).to_be_visible()

    # 6. Render the stale panels: the edited one and the split halves, nothing else.
    stale = page.get_by_role("button", name="Render stale panels (3)")
    stale.click()
    wait_done(page, "Render stale panels")
    expect(page.get_by_role("button", name="Render stale panels (0)")).to_be_disabled()
    after_stale = api.get(f"/api/projects/{project}").json()["shots"]
    assert [s["image_key"] == generated.get(s["description"]) for s in after_stale] == [
        True, False, False, False, True]
    assert not any(s["stale"] for s in after_stale)
    before_update = keys(api, project)

    # 7. Update the story: shot 1's sentence reworded (approved: kept as it is), the split
    # sentence whole again (changed), a new last sentence; only those two are rendered.
    page.evaluate(RECORD_STATES)
    page.get_by_text("Story (revision 1)").click()
    story = page.get_by_label("Story", exact=True)
    expect(story).to_have_value(" ".join([A, B, C, D]))
    story.fill(" ".join([A2, B, C, D, E]))
    posted: list[str] = []
    page.on("request", lambda r: posted.append(r.post_data or "") if r.method == "POST" else None)
    page.get_by_role("button", name="Update story").click()
    wait_done(page, "Update the story")
    updated = api.get(f"/api/projects/{project}").json()
    shots = updated["shots"]
    assert [s["description"] for s in shots] == [A2, B, C, D, E], (
        [(s["description"], s["revised"], s["image_key"]) for s in shots],
        updated["task"], updated["shots_task"], page.evaluate("window.states"), posted)
    task = updated["shots_task"]
    assert task["progress"] == {"done": 2, "total": 2}
    kept = {A2: before_update[A], B: before_update[B], D: before_update[D]}
    for shot in shots:
        if shot["description"] in kept:
            assert shot["image_key"] == kept[shot["description"]], shot["description"]
        else:
            assert task["id"] in shot["image_key"], shot["description"]
    assert shots[0]["approved"]
    expect(page.locator("#shot-1 .mark-approved")).to_be_visible()
    page.wait_for_function(f"({FRAMES})().filter((f) => f.loaded).length === 5")

    # 8. The PDF, downloaded through the page's link.
    page.get_by_label("Export format").select_option("pdf")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download the board as pdf").click()
    saved = downloads / download.value.suggested_filename
    download.value.save_as(saved)
    assert saved.name == f"lighthouse-{project}.pdf"
    assert saved.read_bytes()[:5] == b"%PDF-" and saved.stat().st_size > 10_000

    # 9. Log out: back to the login form, and the API refuses the old session.
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_title("Log in · storyboard")
    assert page.request.get(url + f"api/projects/{project}").status == 401


def test_a_writers_journey_from_the_printed_url(served, tmp_path):
    proc, _ = start_serve(served.stack, served.token)
    try:
        url = printed_url(proc.log_path.read_text())
        with served.client() as api, browser_page({"width": 1280, "height": 900}) as page:
            journey(page, url, served.token, api, tmp_path)
        log = proc.log_path.read_text()
    finally:
        proc.stop()
    assert served.token not in log and "storyboard_session" not in log


@pytest.mark.slow
def test_the_same_journey_behind_a_root_path_through_one_forwarded_port(served, tmp_path):
    proc, direct = start_serve(served.stack, served.token, "--root-path", "/storyboard")
    proxy = PrefixProxy("/storyboard", direct)
    laptop = PortForward(proxy.port)
    try:
        printed = printed_url(proc.log_path.read_text())
        assert printed == f"{direct}/storyboard/"
        # On the laptop: the same path, at the forwarded port.
        url = f"http://localhost:{laptop.port}{urlsplit(printed).path}"
        with served.client() as api, browser_page({"width": 1280, "height": 900}) as page:
            journey(page, url, served.token, api, tmp_path)
    finally:
        laptop.close()
        proxy.close()
        proc.stop()
