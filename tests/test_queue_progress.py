"""Following a task: bars on a terminal (overall + one per shot moving with its diffusion
steps), plain lines when piped, and a timeout that leaves the task running."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from storyboard_cli import views
from storyboard_cli.store import Store
from storyboard_cli.tasks.progress import (
    PlainDisplay,
    RichDisplay,
    ShotState,
    Snapshot,
    follow,
    poll,
)
from storyboard_contract.errors import WaitTimeout


def snap(status: str, *shots: tuple[str, int, int, str | None], error: str | None = None
         ) -> Snapshot:
    return Snapshot("0123456789ab", status, error, tuple(
        ShotState(shot_id=10 + i, index=i, status=s, step=step, steps=steps, error=err)
        for i, (s, step, steps, err) in enumerate(shots)
    ))


def test_piped_progress_is_one_line_per_change_never_one_per_step():
    out = io.StringIO()
    display = PlainDisplay(out)
    display.update(snap("running"))
    display.update(snap("running", ("running", 1, 20, None), ("pending", 0, 0, None)))
    display.update(snap("running", ("running", 9, 20, None), ("pending", 0, 0, None)))
    display.update(snap("running", ("done", 20, 20, None),
                        ("retrying", 0, 0, "cannot reach the GPU daemon at http://x")))
    display.update(snap("failed", ("done", 20, 20, None), ("failed", 0, 0, "daemon down"),
                        error="1 of 2 shots failed: daemon down"))
    assert out.getvalue().splitlines() == [
        "task 01234567: running",
        "task 01234567: 2 shot(s) to render",
        "task 01234567: shot 1 rendering",
        "task 01234567: shot 1 done (1/2)",
        "task 01234567: shot 2 retrying: cannot reach the GPU daemon at http://x",
        "task 01234567: shot 2 failed: daemon down",
        "task 01234567: failed: 1 of 2 shots failed: daemon down",
    ]


def test_terminal_progress_has_an_overall_bar_and_a_bar_per_shot_in_progress():
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=100, color_system=None)
    display = RichDisplay(console)
    display.update(snap("running", ("done", 4, 4, None), ("running", 3, 4, None),
                        ("retrying", 0, 0, "bucket [down]")))
    display.progress.refresh()
    screen = out.getvalue()
    assert "shots (running)" in screen and "1/3" in screen
    assert "shot 2" in screen and "3/4" in screen
    assert "shot 3 [retrying: bucket [down]]" in screen  # text, not rich markup
    assert "shot 1 " not in screen  # finished shots lose their bar
    display.update(snap("succeeded", ("done", 4, 4, None), ("done", 4, 4, None),
                        ("done", 4, 4, None)))
    display.close()
    assert len(display.bars) == 0
    assert "3/3" in out.getvalue()


def test_following_stops_at_the_timeout_and_says_how_to_keep_following(tmp_path):
    store = Store(tmp_path / "sb.db")
    project = store.create_project("p", "s", "movie")
    task = store.create_task("storyboard", project["id"])
    with pytest.raises(WaitTimeout) as info:
        follow(poll(store, task["id"]), timeout=0.2, display=PlainDisplay(io.StringIO()))
    assert info.value.exit_code == 4
    assert f"storyboard status {task['id']} --watch" in str(info.value)
    store.fail_task(task["id"], "planning failed: no daemon")
    follow(poll(store, task["id"]), timeout=5, display=PlainDisplay(io.StringIO()))
    view = views.task_view(store, task["id"])
    assert (view["status"], view["error"]) == ("failed", "planning failed: no daemon")
