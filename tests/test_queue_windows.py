"""Render windows: a render job claims its shot and the task's next waiting shots, up to the
daemon's max_batch, so that the daemon renders them in one pipeline call. Against a real
store, and end to end with real Redis, SeaweedFS, a daemon with the tiny diffusers pipeline
and `storyboard worker` processes.
"""

from __future__ import annotations

import signal
import time

from fixtures_daemon import start_daemon
from fixtures_queue import (
    assert_each_shot_once_and_done,
    planned_rows,
    renders,
    stored_storyboard,
)

from storyboard_cli.store import Store
from storyboard_cli.tasks.jobs import character_windows

# Twelve sentences long enough for a shot each.
STORY = "\n".join(f"The keeper climbed to landing number {n} and looked out at the dark sea."
                  for n in range(1, 13)) + "\n"


def test_two_jobs_never_claim_one_shot_and_a_rerun_takes_its_own_window_again(tmp_path):
    store = Store(tmp_path / "sb.db")
    project = store.create_project("p", "s", "movie")
    task = stored_storyboard(store, project["id"], 10, rendered=False)
    shot = [r["shot_id"] for r in store.task_renders(task)]

    assert store.start_window(task, shot[0], "job-0", 4) == ("running", shot[0:4])
    # Shot 1's own job finds it in job-0's window and renders nothing.
    assert store.start_window(task, shot[1], "job-1", 4) == ("running", [])
    # Shot 4's job takes the next four waiting shots.
    assert store.start_window(task, shot[4], "job-4", 4) == ("running", shot[4:8])
    store.finish_render(task, shot[0], "k", "u", "2030-01-01T00:00:00+00:00", 1)
    # job-0 runs again (a retry, or its worker died): what it claimed and did not finish.
    assert store.start_window(task, shot[0], "job-0", 4) == ("running", shot[1:4])
    assert store.job_renders(task, shot[0], "job-0") == shot[1:4]
    # job-4's attempt failed for shot 4: its retry keeps to its window, so that no shot joins
    # it with fewer retries left.
    store.finish_render(task, shot[5], "k", "u", "2030-01-01T00:00:00+00:00", 1)
    store.render_retrying(task, shot[4], "the bucket was down")
    assert store.start_window(task, shot[4], "job-4", 4) == ("running",
                                                             [shot[4], shot[6], shot[7]])
    # A shot that failed for good in job-4's window (refused, or out of retries) is not
    # rendered again by its own job.
    store.fail_render(task, shot[6], "the daemon refused it")
    assert store.start_window(task, shot[6], "job-6", 4) == ("running", [])
    # A window of one takes no other shot; the last ones go to whoever asks next.
    assert store.start_window(task, shot[8], "job-8", 1) == ("running", [shot[8]])
    assert store.start_window(task, shot[9], "job-9", 4) == ("running", [shot[9]])
    claims = {r["shot_id"]: r["claim"] for r in store.task_renders(task)}
    assert [claims[s] for s in shot] == ["job-0"] * 4 + ["job-4"] * 4 + ["job-8", "job-9"]
    # A cancelled task's jobs claim nothing.
    store.cancel_task(task)
    assert store.start_window(task, shot[9], "job-9", 4) == ("cancelled", [])
    store.close()


def test_windows_claimed_when_queued_are_what_their_jobs_render(tmp_path):
    store = Store(tmp_path / "sb.db")
    project = store.create_project("p", "s", "movie")
    task = stored_storyboard(store, project["id"], 10, rendered=False)
    shot = [r["shot_id"] for r in store.task_renders(task)]
    # The plan job claims windows of four for the jobs of their first shots.
    store.claim_windows(task, {"job-0": shot[0:4], "job-4": shot[4:8], "job-8": shot[8:10]})
    assert store.start_window(task, shot[4], "job-4", 4) == ("running", shot[4:8])
    assert store.start_window(task, shot[0], "job-0", 4) == ("running", shot[0:4])
    # A shot's own job (delivered twice, queued by a retry) finds it claimed.
    assert store.start_window(task, shot[9], "job-9", 4) == ("running", [])
    assert store.start_window(task, shot[8], "job-8", 4) == ("running", shot[8:10])
    # Claiming again changes nothing: those shots are no longer pending.
    store.claim_windows(task, {"job-x": shot})
    claims = {r["shot_id"]: r["claim"] for r in store.task_renders(task)}
    assert [claims[s] for s in shot] == ["job-0"] * 4 + ["job-4"] * 4 + ["job-8"] * 2
    store.close()


def test_a_window_claimed_when_queued_takes_no_more_than_its_size(tmp_path):
    store = Store(tmp_path / "sb.db")
    project = store.create_project("p", "s", "movie")
    task = stored_storyboard(store, project["id"], 6, rendered=False)
    shot = [r["shot_id"] for r in store.task_renders(task)]
    store.claim_windows(task, {"job-1": shot[1:3]})
    # Two claimed for it, so two more of the waiting ones: four in all.
    assert store.start_window(task, shot[1], "job-1", 4) == ("running",
                                                             [shot[0], *shot[1:3], shot[3]])
    store.close()


def test_a_window_takes_the_waiting_shots_that_show_its_shots_characters_first(tmp_path):
    store = Store(tmp_path / "sb.db")
    project = store.create_project("p", "s", "movie")
    task = store.create_task("storyboard", project["id"])["id"]
    rows = planned_rows(task, 9)
    cast = [["Mei"], ["Lin"], ["Mei", "Lin"], ["Lin"], [], ["Mei"], ["Lin"], ["Mei"], ["Lin"]]
    for row, names in zip(rows, cast, strict=True):
        row["characters"] = names
    store.save_plan(task, project["id"], rows, with_renders=True,
                    characters=[{"name": "Mei", "description": ""},
                                {"name": "Lin", "description": ""}])
    shot = [r["shot_id"] for r in store.task_renders(task)]
    # Mei's shots first, in story order; then Lin's; the shot without anyone last.
    assert store.start_window(task, shot[0], "job-0", 4) == (
        "running", [shot[0], shot[2], shot[5], shot[7]])
    assert store.start_window(task, shot[1], "job-1", 4) == (
        "running", [shot[1], shot[3], shot[6], shot[8]])
    assert store.start_window(task, shot[4], "job-4", 4) == ("running", [shot[4]])
    store.close()


def test_the_plan_job_queues_windows_grouped_by_character():
    cast = [{"Mei"}, {"Lin"}, {"Mei", "Lin"}, {"Lin"}, set(), {"Mei"}, {"Lin"}, {"Mei"},
            {"Lin"}]
    shots = list(zip(range(10, 19), cast, strict=True))
    # Mei's shots with the first, Lin's with the next; story order within and after them.
    assert character_windows(shots, 4) == [[10, 12, 15, 17], [11, 13, 16, 18], [14]]
    # Without characters, windows are the story's order cut in fours.
    assert character_windows([(n, set()) for n in range(10)], 4) == [
        [0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def calls_and_renders(daemon) -> tuple[int, int]:
    status = daemon.status()
    return status["pipeline_calls"], status["renders"]


def test_two_workers_render_a_12_shot_task_max_batch_at_a_time_each_shot_once(
    make_stack, diffusers_daemon
):
    assert diffusers_daemon.status()["max_batch"] == 4
    stack = make_stack(diffusers_daemon, images={"width": 64, "height": 64})
    stack.start_worker()
    stack.start_worker()  # `storyboard up`'s default: two workers per daemon
    calls0, renders0 = calls_and_renders(diffusers_daemon)
    task_id = stack.submit(STORY)
    stack.wait_for(lambda: stack.view(task_id)["status"] in ("succeeded", "failed"), 60,
                   "the task to finish")
    view = assert_each_shot_once_and_done(stack, task_id, 12)
    calls, rendered = calls_and_renders(diffusers_daemon)
    assert rendered - renders0 == 12  # each shot rendered once
    # Three windows of four; a window split by timing costs one call more at most.
    assert calls - calls0 <= 4, f"{calls - calls0} pipeline calls for 12 shots"
    assert len({s["image_key"] for s in view["shots"]}) == 12


def test_a_worker_killed_mid_window_leaves_its_shots_to_be_rendered_promptly_once(
    make_stack, slow_daemon
):
    # The tiny pipeline at 150 steps: a window takes a few seconds to render.
    daemon = slow_daemon(steps=150, max_batch=4)
    stack = make_stack(daemon, name="slower", images={"width": 64, "height": 64})
    task_id = stack.submit(STORY)
    assert stack.burst("--queues", "plan").returncode == 0
    victim = stack.start_worker("--queues", "render")
    first = renders(stack, task_id)[0]["shot_id"]
    window = f"{task_id}-shot-{first}"

    def window_rendering() -> bool:
        rows = renders(stack, task_id)
        return sum(r["claim"] == window and r["status"] == "running" and r["step"] >= 1
                   for r in rows) == 4

    stack.wait_for(window_rendering, 60, "a window of four past its first step")
    victim.popen.send_signal(signal.SIGKILL)
    victim.popen.wait()
    started = time.monotonic()
    rescue = stack.burst(timeout=120)
    took = time.monotonic() - started
    assert rescue.returncode == 0, rescue.stderr
    assert f"requeued job {window}: its worker stopped while running it" in rescue.stderr
    assert_each_shot_once_and_done(stack, task_id, 12)
    # The window's own shots were rendered by its requeued job, not by anyone else.
    assert [r["claim"] for r in renders(stack, task_id)][:4] == [window] * 4
    # Noticed within about three heartbeats (1 s here), then three windows of a few seconds.
    assert took < 60


def test_a_shot_the_daemon_refuses_fails_alone_and_at_once_the_rest_of_its_window_is_done(
    make_stack, tmp_path, s3_server, tiny_model_dir
):
    # Prompts of at most 110 characters: the last shot's (126) is refused with a 422.
    strict = start_daemon(tmp_path / "strict-daemon", s3_server, "diffusers", tiny_model_dir,
                          images={"width": 64, "height": 64, "steps": 4, "max_batch": 4},
                          sections={"limits": {"max_prompt_chars": 110}})
    try:
        stack = make_stack(strict, name="strict", images={"width": 64, "height": 64})
        task_id = stack.submit(
            STORY.splitlines()[0] + "\n" + "The keeper climbed to the very top of the old tower "
            "and looked out at the dark and stormy sea where the ships were.\n")
        assert stack.burst("--queues", "plan").returncode == 0
        calls0, renders0 = calls_and_renders(strict)
        started = time.monotonic()
        assert stack.burst().returncode == 0
        took = time.monotonic() - started
        calls, rendered = calls_and_renders(strict)
    finally:
        strict.stop()
    assert (calls - calls0, rendered - renders0) == (1, 1)  # one window, one image
    view = stack.view(task_id)
    assert [r["status"] for r in renders(stack, task_id)] == ["done", "failed"]
    assert view["status"] == "failed"
    assert view["error"] == (f"1 of 2 shots failed: the GPU daemon at {strict.url} answered "
                             "422: prompt is 126 characters; the limit is 110 "
                             "(limits.max_prompt_chars)")
    assert took < 4  # refused, so not retried
