"""Nothing is lost and nothing is done twice, against real Redis, SeaweedFS, GPU daemon and
`storyboard worker` processes: unreachable daemon or bucket, a worker SIGKILLed mid-job, a job
delivered twice, Redis restarted mid-task, Redis losing its data, and `storyboard retry`.

Settings (fixtures_queue.QUEUE_SETTINGS): heartbeat 1 s, 2 retries with 1 s backoffs.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures_daemon import start_daemon
from fixtures_queue import QueueStack, assert_each_shot_once_and_done, renders, wait_status

from storyboard_cli import views
from storyboard_cli.stack.processes import free_port
from storyboard_cli.tasks.jobs import connect_redis, retry_task, submit_regen
from storyboard_contract.errors import UsageError

STORY = "The storm rose. Tom climbed the stairs. Mara waited by the lens. A boat drifted.\n"
REPO = Path(__file__).resolve().parent.parent
# Six sentences long enough for a shot each.
LONG_STORY = "\n".join(f"The keeper climbed to landing number {n} and looked out at the sea."
                       for n in range(1, 7)) + "\n"


@contextlib.contextmanager
def frozen(proc) -> Iterator[None]:
    """The daemon stops answering (SIGSTOP) while in the block: calls to it hang mid-request."""
    os.kill(proc.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(proc.pid, signal.SIGCONT)


@contextlib.contextmanager
def render_in_flight(stack: QueueStack, daemon, task_id: str) -> Iterator:
    """A render worker stuck mid-job on the frozen daemon; the daemon thaws when the block ends."""
    with frozen(daemon.proc.popen):
        worker = stack.start_worker("--queues", "render")
        stack.wait_for(lambda: any(r["status"] == "running" for r in renders(stack, task_id)),
                       what="a render in flight")
        yield worker


def queued_task(stack: QueueStack, story: str = STORY, plan: bool = True) -> str:
    """A queued storyboard task; with plan=True its plan job has run (renders queued)."""
    task_id = stack.submit(story)
    if plan:
        done = stack.burst("--queues", "plan")
        assert done.returncode == 0, done.stderr
    return task_id


def rq_counts(redis_server) -> dict[str, tuple[int, int, int]]:
    """(queued, started, failed) jobs per queue."""
    from rq import Queue

    conn = redis_server.client()
    counts = {}
    for name in ("storyboard-plan", "storyboard-render"):
        q = Queue(name, connection=conn)
        counts[name] = (len(q), q.started_job_registry.get_job_count(cleanup=False),
                        q.failed_job_registry.get_job_count(cleanup=False))
    return counts


def test_a_worker_killed_mid_job_is_noticed_and_its_job_finishes_promptly_exactly_once(
    stack, sketch_daemon, redis_server
):
    task_id = queued_task(stack)
    planned = len(renders(stack, task_id))
    with render_in_flight(stack, sketch_daemon, task_id) as victim:
        victim.popen.send_signal(signal.SIGKILL)
        victim.popen.wait()
    started = time.monotonic()
    rescue = stack.burst()
    took = time.monotonic() - started
    assert rescue.returncode == 0, rescue.stderr
    assert "its worker stopped while running it" in rescue.stderr
    assert_each_shot_once_and_done(stack, task_id, planned)
    # RQ alone would leave the job "started" until job_timeout + 60 s (here 120 s).
    assert took < 15
    assert rq_counts(redis_server) == {"storyboard-plan": (0, 0, 0),
                                       "storyboard-render": (0, 0, 0)}
    info = subprocess.run([str(REPO / ".venv/bin/rq"), "info", "-u", stack.redis_url],
                          capture_output=True, text=True, timeout=30)
    assert info.returncode == 0, info.stderr
    assert "storyboard-plan" in info.stdout and "storyboard-render" in info.stdout
    assert "0 workers" in info.stdout  # the killed worker was unregistered too


def test_jobs_delivered_twice_run_twice_and_change_nothing_the_second_time(
    stack, sketch_daemon, redis_server
):
    task_id = queued_task(stack)
    rows = renders(stack, task_id)
    conn = redis_server.client()
    # One render job per window of the daemon's max_batch (4) shots.
    queued = conn.lrange("rq:queue:storyboard-render", 0, -1)
    assert len(queued) == -(-len(rows) // 4)
    # Deliver the plan job and every render job a second time (as after a lost acknowledgement).
    conn.rpush("rq:queue:storyboard-plan", task_id)
    conn.rpush("rq:queue:storyboard-render", *queued)
    before = sketch_daemon.status()["renders"]
    env = {**stack.env, "STORYBOARD_HOME": str(REPO)}
    workers = [subprocess.Popen([str(REPO / "queue/start-worker.sh"), "--burst"], env=env,
                                cwd=stack.root, stderr=subprocess.PIPE, text=True)
               for _ in range(2)]
    logs = [w.communicate(timeout=60)[1] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], logs
    view = assert_each_shot_once_and_done(stack, task_id, len(rows))
    assert len(view["shots"]) == len(rows)
    again = renders(stack, task_id)
    assert [r["status"] for r in again] == ["done"] * len(rows)
    # Every copy ran (no job was dropped) and the store counted each shot once.
    ran = sum(log.count("storyboard-render: Job OK") for log in logs)
    assert ran == 2 * len(queued)
    assert len(rows) <= sketch_daemon.status()["renders"] - before <= 2 * len(rows)


def test_redis_restarted_mid_task_loses_nothing_and_the_worker_carries_on(
    stack, sketch_daemon, redis_server
):
    task_id = queued_task(stack)
    planned = len(renders(stack, task_id))
    with render_in_flight(stack, sketch_daemon, task_id) as worker:
        redis_server.restart()  # SIGTERM: the AOF is flushed; queued jobs must survive
    wait_status(stack, task_id, ("succeeded", "failed"), timeout=30)
    view = assert_each_shot_once_and_done(stack, task_id, planned)
    assert rq_counts(redis_server)["storyboard-render"] == (0, 0, 0)

    redis_server.restart()  # again, while the worker waits idle for the next job
    config, store = stack.config(), stack.store()
    regen = submit_regen(store, connect_redis(config.redis.url), config,
                         view["shots"][0]["id"], None, None, 5)
    store.close()
    assert wait_status(stack, regen["id"], ("succeeded", "failed"))["status"] == "succeeded"
    assert worker.alive()


def test_an_unreachable_daemon_fails_after_backoff_and_retry_reruns_only_what_failed(
    stack, sketch_daemon
):
    dead_url = f"http://127.0.0.1:{free_port()}"
    dead = {"STORYBOARD_DAEMON_URL": dead_url}
    # More shots than one window (the daemon's max_batch, 4): the first render job cannot
    # take them all.
    task_id = queued_task(stack, LONG_STORY, plan=False)

    started = time.monotonic()
    assert stack.burst(env=dead).returncode == 0
    assert time.monotonic() - started >= 2  # two backoffs of 1 s
    failed = stack.view(task_id)
    assert failed["status"] == "failed"
    assert failed["error"] == (f"planning failed: cannot reach the GPU daemon at {dead_url}: "
                               "connection refused (after 3 attempts)")

    again = stack.json("retry", task_id, "--no-wait")
    assert again["retried"] == {"planning": True, "shots": []}
    # The planning and one render job: a window of the first shots.
    assert stack.burst("--max-jobs", "2").returncode == 0
    assert stack.burst(env=dead).returncode == 0
    partial = stack.view(task_id)
    total, done = partial["progress"]["total"], partial["progress"]["done"]
    assert partial["status"] == "failed" and done == 4 < total
    assert partial["error"].startswith(f"{total - done} of {total} shots failed: cannot reach "
                                       f"the GPU daemon at {dead_url}")
    done_before = [r for r in renders(stack, task_id) if r["status"] == "done"]

    rendered = sketch_daemon.status()["renders"]
    again = stack.json("retry", task_id, "--no-wait")
    failed_ids = [r["shot_id"] for r in renders(stack, task_id) if r["status"] != "done"]
    assert again["retried"] == {"planning": False, "shots": failed_ids}
    assert stack.burst().returncode == 0
    assert_each_shot_once_and_done(stack, task_id, total)
    assert sketch_daemon.status()["renders"] - rendered == total - done  # only the failed ones
    kept = [r for r in renders(stack, task_id) if r["shot_id"] == done_before[0]["shot_id"]]
    assert kept[0]["updated_at"] == done_before[0]["updated_at"]
    with pytest.raises(UsageError, match="already succeeded"):
        retry_task(stack.store(), connect_redis(stack.redis_url), stack.config(), task_id)


def test_an_unreachable_bucket_fails_the_shot_after_retries_and_names_the_bucket(
    make_stack, s3_server, tmp_path
):
    dead_s3 = f"http://127.0.0.1:{free_port()}"
    broken = start_daemon(tmp_path / "broken-daemon", s3_server, "sketch",
                          images={"width": 64, "height": 64}, env={"ENDPOINT": dead_s3})
    try:
        stack = make_stack(queue={"retries": 1, "backoff": [1]})
        task_id = queued_task(stack, story="A lone boat drifted toward the rocks.\n")
        done = stack.burst(env={"STORYBOARD_DAEMON_URL": broken.url,
                                "STORYBOARD_DAEMON_TOKEN": broken.token})
        assert done.returncode == 0, done.stderr
    finally:
        broken.stop()
    view = stack.view(task_id)
    assert view["status"] == "failed"
    assert f"answered 503: cannot reach bucket '{s3_server.bucket}' at {dead_s3}" in view["error"]
    assert view["error"].endswith("(after 2 attempts)")


def test_a_task_whose_jobs_vanished_from_redis_fails_visibly_and_can_be_retried(
    stack, redis_server
):
    task_id = queued_task(stack, plan=False)
    redis_server.client().flushdb()  # Redis lost its data (no AOF, a wiped volume, ...)
    stack.start_worker()
    view = wait_status(stack, task_id, ("failed",), timeout=20)
    assert "gone from Redis" in view["error"] and f"storyboard retry {task_id}" in view["error"]
    again = retry_task(stack.store(), connect_redis(stack.redis_url), stack.config(), task_id)
    assert again["planning"] is True
    assert wait_status(stack, task_id, ("succeeded", "failed"))["status"] == "succeeded"


def test_a_stored_style_the_daemon_would_refuse_fails_the_task_at_once(stack):
    """A style with a newline, stored before styles were checked: one attempt and a clear
    reason, not a render failure retried as if the daemon were down."""
    from storyboard_cli.tasks.jobs import submit_storyboard

    config, store = stack.config(), stack.store()
    project = store.create_project("old", STORY, "noir\nx")
    task = submit_storyboard(store, connect_redis(config.redis.url), config, project["id"],
                             None, False)
    started = time.monotonic()
    done = stack.burst()
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - started < 4  # no backoff waits
    view = views.task_view(store, task["id"])
    store.close()
    assert view["status"] == "failed"
    assert view["error"] == ("planning failed: invalid PlanRequest: style: style must be plain "
                             "text on one line; it contains a newline (U+000A) at character 5")


def test_a_refused_request_fails_at_once_without_pointless_retries(stack, sketch_daemon):
    task_id = queued_task(stack, plan=False)
    started = time.monotonic()
    done = stack.burst(env={"STORYBOARD_DAEMON_TOKEN": "wrong-token-s3cr3t"})
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - started < 4  # no backoff waits
    error = stack.view(task_id)["error"]
    assert error == (f"planning failed: the GPU daemon at {sketch_daemon.url} refused the token "
                     "(401): STORYBOARD_DAEMON_TOKEN must match on both sides")
    assert "s3cr3t" not in done.stderr
    watched = stack.run("status", task_id, "--watch", "--json")
    assert watched.returncode == 1  # the task failed
    assert json.loads(watched.stdout)["error"] == error
    assert f"Error: task {task_id} failed: planning failed" in watched.stderr
    assert f"storyboard retry {task_id}" in watched.stderr
