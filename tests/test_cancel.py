"""Stopping work, against real Redis, SeaweedFS, GPU daemons and `storyboard worker` processes:
`cancel` takes queued jobs off the queue and stops a render in progress at the daemon, `retry`
resumes a cancelled task, `tasks` lists them, and Ctrl+C while waiting leaves the task running
and says how to follow or stop it."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest
from fixtures_queue import renders, storyboard_argv
from redis import Redis
from rq import Queue
from rq.job import Job

from storyboard_cli.store import Store

STORY = "The storm rose. Tom climbed the stairs. Mara waited by the lens. A boat drifted.\n"


def new_project(stack) -> int:
    (stack.root / "story.txt").write_text(STORY, encoding="utf-8")
    return stack.json("new", "story.txt", "--title", "lighthouse")["id"]


def test_a_queued_task_is_cancelled_off_the_queue_and_retry_finishes_it(stack):
    project = new_project(stack)
    task = stack.json("generate", str(project), "--no-wait")["task_id"]

    cancelled = stack.json("cancel", task[:8])
    assert (cancelled["id"], cancelled["status"]) == (task, "cancelled")
    assert cancelled["jobs"] == {"removed": 1, "stopping": 0}
    connection = Redis.from_url(stack.redis_url)
    assert Queue(stack.config().queue.plan_queue, connection=connection).job_ids == []
    assert Job.fetch(task, connection=connection).get_status() == "canceled"
    watched = stack.run("status", task, "--watch")
    assert watched.returncode == 1
    assert f"task {task} was cancelled" in watched.stderr
    assert f"Resume it: storyboard retry {task}" in watched.stderr
    again = stack.run("cancel", task)
    assert again.returncode == 2
    assert f"task {task} was cancelled already; nothing to cancel; resume it" in again.stderr
    listed = stack.json("tasks", "lighthouse")
    assert [(t["id"], t["status"]) for t in listed] == [(task, "cancelled")]
    assert "shots" not in listed[0]

    assert stack.json("retry", task[:8], "--no-wait")["task_id"] == task
    done = stack.burst()
    assert done.returncode == 0, done.stderr
    view = stack.json("status", task)
    assert view["status"] == "succeeded" and view["progress"]["done"] == len(view["shots"]) > 0
    assert stack.json("show", "lighthouse")["shots_task"]["id"] == task
    finished = stack.run("cancel", task)
    assert finished.returncode == 2 and "has succeeded already" in finished.stderr
    table = stack.run("tasks").stdout.splitlines()
    assert table[0].split() == ["TASK", "TYPE", "PROJECT", "STATUS", "DONE", "CREATED"]
    assert table[1].split()[:5] == [task, "storyboard", str(project), "succeeded",
                                    f"{len(view['shots'])}/{len(view['shots'])}"]


@pytest.mark.parametrize("max_batch", [1, 4], ids=["one shot", "a window of shots"])
def test_cancel_stops_a_render_in_progress_at_the_daemon_and_empties_the_queue(
    make_stack, slow_daemon, max_batch
):
    # The tiny diffusers pipeline at 400 steps: a render takes most of a minute here. With
    # max_batch 4 the render job renders a window of the task's shots in one call.
    slow = slow_daemon(steps=400, max_batch=max_batch)
    stack = make_stack(slow, name="slow", images={"width": 64, "height": 64})
    task = stack.submit(STORY)
    planned = stack.burst("--queues", "plan")
    assert planned.returncode == 0, planned.stderr
    worker = stack.start_worker("--queues", "render")
    stack.wait_for(lambda: any(r["status"] == "running" and r["step"] >= 1
                               for r in renders(stack, task)), timeout=60,
                   what="a render past its first step")
    before = slow.status()
    shots = len(renders(stack, task))
    rendering = [r["shot_id"] for r in renders(stack, task) if r["status"] == "running"]
    assert len(rendering) == min(shots, max_batch)  # one shot, or a window of them

    asked = time.monotonic()
    cancelled = stack.json("cancel", task)
    assert cancelled["status"] == "cancelled"
    # One job per window: the one rendering stops, the others are taken off the queue.
    assert cancelled["jobs"] == {"removed": -(-shots // max_batch) - 1, "stopping": 1}
    # The worker notices at its next progress event, closes its request, and the daemon
    # stops the pipeline call at its next step: long before the render could have finished.
    stack.wait_for(lambda: not slow.status()["busy"], timeout=15,
                   what="the daemon to stop rendering")
    stopped_s = time.monotonic() - asked
    after = slow.status()
    assert after["renders"] == before["renders"] and after["waiting"] == 0
    connection = Redis.from_url(stack.redis_url)
    queue = Queue(stack.config().queue.render_queue, connection=connection)
    stack.wait_for(lambda: queue.started_job_registry.get_job_count(cleanup=False) == 0,
                   timeout=10, what="the render job to end")
    assert queue.job_ids == []
    store = Store(stack.root / "storyboard.db")
    assert {r["status"] for r in store.task_renders(task)} == {"cancelled"}
    assert store.get_task(task)["status"] == "cancelled"
    store.close()
    assert worker.alive(), worker.log_tail()
    assert "Traceback" not in worker.log_tail(200)
    assert "cancelled after" in (slow.proc.log_path.read_text())
    print(f"cancel -> daemon idle in {stopped_s:.2f} s")


def test_ctrl_c_while_waiting_says_the_task_keeps_running_and_exits_130(config_file: Path):
    store = Store(config_file.parent / "storyboard.db")
    project = store.create_project("p", "Once.", "movie")
    task = store.create_task("storyboard", project["id"])["id"]
    store.close()
    waiting = subprocess.Popen([*storyboard_argv(), "status", task[:8], "--watch"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               cwd=config_file.parent)
    assert waiting.stderr is not None
    assert waiting.stderr.readline().strip() == f"task {task[:8]}: pending"  # it is waiting
    waiting.send_signal(signal.SIGINT)
    out, err = waiting.communicate(timeout=30)
    assert waiting.returncode == 130
    assert err.strip() == (
        f"Error: stopped waiting; task {task} (pending, 0/0 shots) keeps running in the "
        f"background. Follow it: storyboard status {task} --watch; stop it: storyboard cancel "
        f"{task}")
    assert out == ""
    assert json.loads(subprocess.run(
        [*storyboard_argv(), "status", task, "--json"], capture_output=True, text=True,
        cwd=config_file.parent, timeout=30).stdout)["status"] == "pending"
