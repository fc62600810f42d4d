"""Which storyboard `show` shows, and that it says so: the newest task with its progress, the
shots of the newest plan that was not cancelled, and where the latest frames are when those
shots have none. Links are printed whole, piped or not. The store is written directly; no
service is needed (links are presigned locally, with keys no server checks here)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from fixtures_queue import planned_rows, stored_storyboard

from storyboard_cli import views
from storyboard_cli.store import Store

LONG = "https://bucket.example/" + "x" * 300  # longer than any terminal line


@pytest.fixture()
def store(config_file: Path) -> Store:
    store = Store(config_file.parent / "storyboard.db")
    yield store
    store.close()


def shown(cli, *args: str) -> dict:
    result = cli("show", *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_a_plan_only_run_shows_its_plan_and_says_where_the_earlier_frames_are(cli, store):
    project = store.create_project("lighthouse", "Once.", "movie")["id"]
    framed = stored_storyboard(store, project, 3)
    plan_only = stored_storyboard(store, project, 1, no_images=True)

    view = shown(cli, "lighthouse")
    assert view["task"]["id"] == view["shots_task"]["id"] == plan_only
    assert view["task"]["no_images"] is True
    assert [s["image_key"] for s in view["shots"]] == [None]
    assert view["frames_task"]["id"] == framed
    text = cli("show", "lighthouse").stdout
    assert f"Latest storyboard task {plan_only}: succeeded (plan only, no images)" in text
    assert (f"These shots have no frames yet. The latest frames are task {framed}'s "
            f"(succeeded, 3/3 shots rendered): storyboard show {project} --task {framed[:8]}"
            ) in text
    # ... and there they are, by the prefix show printed.
    earlier = shown(cli, "lighthouse", "--task", framed[:8])
    assert earlier["task"]["id"] == earlier["shots_task"]["id"] == framed
    assert all(s["image_url"] for s in earlier["shots"]) and len(earlier["shots"]) == 3
    older = cli("show", "lighthouse", "--task", framed[:8]).stdout
    assert f"Storyboard task {framed}: succeeded, 3/3 shots rendered" in older
    # Its shots are not the ones regen-shot PROJECT/NUMBER names: no such name is offered.
    assert "regen-shot" not in older and f"({project}/1," not in older
    assert json.loads(cli("list", "--json").stdout)[0]["shots"] == 1


def test_while_a_new_task_runs_show_reports_it_with_its_progress(cli, store):
    project = store.create_project("lighthouse", "Once.", "movie")["id"]
    before = stored_storyboard(store, project, 3)
    running = store.create_task("storyboard", project)["id"]

    view = shown(cli, str(project))
    assert (view["task"]["id"], view["task"]["status"]) == (running, "pending")
    assert view["shots_task"]["id"] == before and len(view["shots"]) == 3
    text = cli("show", str(project)).stdout
    assert f"Latest storyboard task {running}: pending (queued)" in text
    assert (f"Showing the storyboard before it: task {before}, succeeded, 3/3 shots rendered"
            in text)

    store.start_task(running)
    store.save_plan(running, project, planned_rows(running, 2), with_renders=True)
    view = shown(cli, str(project))
    assert view["shots_task"]["id"] == running and view["frames_task"]["id"] == before
    first = store.task_renders(running)[0]["shot_id"]
    store.finish_render(running, first, "k.png", LONG, "2030-01-01", 1)
    view = shown(cli, str(project))
    assert view["task"]["progress"] == {"done": 1, "total": 2}
    assert view["frames_task"] is None  # its own frames are coming
    assert f"Latest storyboard task {running}: running, 1/2 shots rendered" in cli(
        "show", str(project)).stdout


def test_a_cancelled_storyboard_gives_way_to_the_one_before_it(cli, store):
    project = store.create_project("lighthouse", "Once.", "movie")["id"]
    before = stored_storyboard(store, project, 2)
    cancelled = stored_storyboard(store, project, 4, rendered=False)
    store.cancel_task(cancelled)

    view = shown(cli, str(project))
    assert view["task"]["id"] == cancelled and view["task"]["status"] == "cancelled"
    assert view["shots_task"]["id"] == before and len(view["shots"]) == 2
    assert f"Resume it: storyboard retry {cancelled}" in cli("show", str(project)).stdout
    assert json.loads(cli("list", "--json").stdout)[0]["shots"] == 2
    shot = views.task_shots(store, store.get_task(before))[0]["id"]
    regen = store.create_task("shot_generation", project, shot_id=shot)["id"]
    assert "is not a storyboard task of project 1" in cli("show", "1", "--task", regen).stderr


def test_every_command_that_shows_links_prints_them_whole_when_piped(cli, store, monkeypatch):
    project = store.create_project("lighthouse", "Once.", "movie")["id"]
    task = stored_storyboard(store, project, 2, url=LONG, script={
        "key": "projects/1/scripts/s.json", "url": LONG + "script",
        "expires_at": "2030-01-01T00:00:00+00:00"})
    urls = [s["image_url"] for s in views.task_view(store, task)["shots"]]
    # CliRunner is no terminal: rich lays tables out for 80 columns, as under `| cat`.
    for args in (["show", "1"], ["status", task]):
        lines = cli(*args).stdout.splitlines()
        for url in urls:
            assert any(line.endswith(url) for line in lines), (args, url)
        assert "…" not in "".join(ln for ln in lines if "bucket.example" in ln), args
    assert any(line.endswith(LONG + "script") for line in cli("show", "1").stdout.splitlines())

    monkeypatch.setenv("ACCESS_KEY", "sb-test-key")
    monkeypatch.setenv("SECRET_KEY", "s" * 40)
    monkeypatch.setenv("ENDPOINT", "http://127.0.0.1:9")
    links = cli("links", "1").stdout.splitlines()
    renewed = [s["image_url"] for s in shown(cli, "1")["shots"]]
    assert all(len(url) > 200 for url in renewed)
    assert f"Image links (renew: storyboard links {project}; re-render one: storyboard " \
           f"regen-shot {project}/NUMBER):" in links
    for number, url in enumerate(renewed, start=1):
        assert f"  shot {number}: {url}" in links
    assert re.search(r"^Shot list: http://127\.0\.0\.1:9/\S+Signature=\w+$",
                     "\n".join(links), re.MULTILINE)


GOLDEN_SHOW = Path(__file__).parent / "data" / "show_golden.json"
GOLDEN_TASK = "00000000-0000-4000-8000-00000000000a"


def golden_project(store: Store) -> None:
    """A screenplay project whose shots hold every kind of value a shot object has: scenes
    and labels, dialogue and characters, notes, approval, a stale and a revised panel,
    provenance, non-ASCII text and control characters, links; its times fixed."""
    project = store.create_project("ferry", "INT. FERRY - NIGHT\n\nIt sails.", "noir", "2.39:1",
                                   "fountain", json.dumps({"scenes": [
                                       {"heading": "INT. FERRY - NIGHT", "int_ext": "INT",
                                        "location": "FERRY", "time_of_day": "NIGHT"}]}))["id"]
    task = store.create_task("storyboard", project, task_id=GOLDEN_TASK)["id"]
    rows = planned_rows(task, 4)
    rows[0].update(scene="1", scene_heading="INT. FERRY - NIGHT", scene_shot=1,
                   characters=["MARA", "Élodie"], camera="close-up", move="push in",
                   dialogue=[{"speaker": "MARA", "line": "Wer ist da?\n“Niemand.”"},
                             {"speaker": "Élodie", "line": "Moi.", "parenthetical": "quiet"}])
    rows[1].update(description="Bidi \u202e and C1 \x85 and DEL \x7f in text.", duration=2.5)
    rows[2].update(action="灯塔的光扫过海面。", prompt='a "quoted" \\ prompt')
    store.save_plan(task, project, rows, with_renders=True,
                    characters=[{"name": "MARA", "description": "ferry captain"}])
    for render in store.task_renders(task)[:3]:
        store.finish_render(task, render["shot_id"], f"p/{render['shot_id']}.png",
                            f"https://bucket.example/{render['shot_id']}?X-Amz=1&b=ü",
                            "2999-01-01T00:00:00+00:00", 1)
    with store._write() as c:
        c.execute("update projects set created_at = '2026-01-02T03:04:05.000+00:00'")
        c.execute("""update tasks set created_at = '2026-01-02T03:04:06.000+00:00',
                     started_at = '2026-01-02T03:04:07.000+00:00'""")
        c.execute("""update shots set notes = 'keep\tthis', approved = 1, revised = 'changed',
                     provenance = '{"model": "sd15", "steps": 20}' where idx = 0""")
        c.execute("update shots set edited = drawn + 1, width = 640, height = 272 where idx = 1")


def test_show_json_prints_the_same_bytes_as_before(cli, store):
    """`show --json` made faster (shot objects from row values) prints what it printed
    before, byte for byte: tests/data/show_golden.json was written by the code before."""
    golden_project(store)
    result = cli("show", "ferry", "--json")
    assert result.exit_code == 0, result.output
    assert result.stdout_bytes == GOLDEN_SHOW.read_bytes()
