"""Workers outlast Redis: outages of any length, Redis losing its data, and a reaper that dies
halfway, against real redis-servers and `storyboard worker` processes.

Settings (fixtures_queue.QUEUE_SETTINGS): heartbeat 1 s, 2 retries with 1 s backoffs.
"""

from __future__ import annotations

import re
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import RedisServer
from fixtures_daemon import start_daemon
from fixtures_queue import QueueStack, assert_each_shot_once_and_done, renders, write_stack

from storyboard_cli.stack import processes
from storyboard_cli.tasks.jobs import connect_redis

REPO = Path(__file__).resolve().parent.parent
# Twenty sentences long enough for a shot each, rendered by a daemon with a known pace
# (windows of 4 shots, 0.6 s each: ~3 s in all), so the task is still rendering when Redis
# dies after its first window; the sketch backend can finish all twenty between two looks.
STORY = "\n".join(f"The keeper climbed to landing number {n} and looked out at the dark sea."
                  for n in range(1, 21)) + "\n"


@dataclass
class Outage:
    """One stack with its own Redis, killed for `seconds` while its worker renders."""

    seconds: int
    redis: RedisServer
    stack: QueueStack
    worker: processes.Process
    task_id: str
    done_at_kill: int = 0
    finished_after_s: float = 0.0  # from Redis's restart to the task's end

    def ride(self) -> None:
        store = self.stack.store()
        try:
            self.stack.wait_for(lambda: store.progress(self.task_id)["done"] >= 1, 60,
                                "the first shot")
            self.redis.kill()
            self.done_at_kill = store.progress(self.task_id)["done"]
            time.sleep(self.seconds)
            self.redis.start()  # on its AOF data
            back = time.monotonic()
            self.stack.wait_for(
                lambda: store.get_task(self.task_id)["status"] in ("succeeded", "failed"),
                60, f"the task after a {self.seconds} s outage")
            self.finished_after_s = time.monotonic() - back
        finally:
            store.close()


def start_outage(tmp_path: Path, seconds: int, s3_server, daemon) -> Outage:
    redis = RedisServer(tmp_path / f"redis-{seconds}").start()
    stack = write_stack(tmp_path / f"stack-{seconds}", redis.url, s3_server, daemon.url,
                        daemon.token)
    task_id = stack.submit(STORY)
    return Outage(seconds, redis, stack, stack.start_worker(), task_id)


@pytest.fixture(scope="module")
def paced_daemon(tmp_path_factory, s3_server):
    handle = start_daemon(tmp_path_factory.mktemp("paced-daemon"), s3_server, "simulated",
                          images={"simulated_call_ms": 200, "simulated_image_ms": 100,
                                  "max_batch": 4})
    yield handle
    handle.stop()


def test_a_worker_rides_out_redis_outages_of_5_30_and_120_s_mid_task_and_the_task_finishes(
    tmp_path, s3_server, paced_daemon
):
    # The three outages run at once, each against its own redis-server: ~2 min in all.
    outages = [start_outage(tmp_path, s, s3_server, paced_daemon) for s in (5, 30, 120)]
    try:
        with ThreadPoolExecutor(len(outages)) as pool:
            list(pool.map(Outage.ride, outages))
        for o in outages:
            log = o.worker.log_path.read_text()
            planned = len(renders(o.stack, o.task_id))
            assert 0 < o.done_at_kill < planned, f"{o.seconds} s: Redis died mid-task"
            assert_each_shot_once_and_done(o.stack, o.task_id, planned)
            assert o.worker.alive(), f"{o.seconds} s outage:\n{o.worker.log_tail(40)}"
            assert "unhandled exception" not in log
            # Said once per outage, however many connections and threads noticed it.
            assert log.count("is unreachable") == 1, log
            assert log.count("is back after") == 1, log
            # Reconnection attempts are at most 5 s apart; the rest of the task is quick.
            assert o.finished_after_s < 20, (o.seconds, o.finished_after_s)
    finally:
        for o in outages:
            o.stack.stop_workers()
            o.redis.stop()


def registered(redis_server, pid: int) -> bool:
    from rq import Worker

    return any(w.pid == pid for w in Worker.all(connection=redis_server.client()))


def test_a_worker_that_redis_forgot_registers_again_so_rq_and_doctor_see_it(
    stack, redis_server
):
    from storyboard_cli.stack.doctor import Doctor

    worker = stack.start_worker()
    stack.wait_for(lambda: registered(redis_server, worker.pid), what="the worker registered")
    redis_server.client().flushdb()  # Redis lost its data (a wiped volume, no AOF)
    stack.wait_for(lambda: registered(redis_server, worker.pid), timeout=5,
                   what="the worker registered again")
    doctor = Doctor(stack.config())
    doctor.check_redis()
    assert doctor.check_workers().startswith(f"1 worker(s): 1 → {stack.config().daemon.url}")
    info = subprocess.run([str(REPO / ".venv/bin/rq"), "info", "-u", stack.redis_url],
                          capture_output=True, text=True, timeout=30)
    # RQ's own view lists it on this stack's queues (the session's Redis may hold other
    # tests' workers, e.g. the serve fixture's).
    assert re.search(rf"\(\S+ \S+ {worker.pid}\): \w+ "
                     rf"{re.escape(stack.config().queue.plan_queue)}", info.stdout), info.stdout
    assert "no longer registered" in worker.log_tail(40)


def test_a_plan_job_that_kills_its_workers_fails_with_that_reason_even_if_its_reaper_dies_too(
    make_stack
):
    """Each worker running the plan is SIGKILLed; after the retry limit the reaper fails the
    job in Redis and dies (SIGKILL) while it waits to write the store; the next worker's sweep
    writes what Redis recorded."""
    import socket

    from rq.job import Job

    stack = make_stack(queue={"retries": 0})  # the second orphaning fails the job
    hanging = socket.create_server(("127.0.0.1", 0))  # a daemon that never answers
    stuck = {"STORYBOARD_DAEMON_URL": f"http://127.0.0.1:{hanging.getsockname()[1]}"}
    task_id = stack.submit(STORY)
    reaper = stack.start_worker("--queues", "render")
    redis = connect_redis(stack.redis_url)

    def planning() -> bool:
        job = Job.fetch(task_id, connection=redis)
        return job.get_status() == "started" and job.worker_name is not None

    for kill in (1, 2):
        victim = stack.start_worker("--queues", "plan", env=stuck)
        stack.wait_for(planning, what="the plan job running")
        victim.popen.kill()
        victim.popen.wait()
        if kill == 1:
            stack.wait_for(lambda: Job.fetch(task_id, connection=redis).get_status() == "queued",
                           timeout=15, what="the plan job requeued")
    store = stack.store()
    store.conn.execute("BEGIN IMMEDIATE")  # the reaper's write to the store now waits
    stack.wait_for(lambda: Job.fetch(task_id, connection=redis).get_status() == "failed",
                   timeout=15, what="the plan job failed in Redis")
    reaper.popen.kill()
    reaper.popen.wait()
    store.conn.rollback()
    assert store.get_task(task_id)["status"] in ("pending", "running")  # it never heard of it
    hanging.close()

    stack.start_worker()
    stack.wait_for(lambda: store.get_task(task_id)["status"] == "failed", timeout=20,
                   what="the sweep to settle the task")
    recorded = Job.fetch(task_id, connection=redis).latest_result().exc_string
    assert recorded == ("its worker died while running it 2 times (out of memory? see the "
                        "worker logs)")
    assert store.get_task(task_id)["error"] == f"planning failed: {recorded}"
    store.close()
