"""What storyboard_cli/tasks/rq_adapter.py relies on in RQ, pinned against the installed RQ:
a real Redis, and a real RQ worker running the jobs below in this process.

Should an RQ upgrade change one of these behaviours, this file fails and names it, instead of
the worker's liveness checks, its reaping of dead workers' jobs, its registration or its
retries going wrong in production.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from typing import Any

import pytest
from redis import Redis
from rq import Callback, Queue, Retry, Worker, get_current_job
from rq.worker import SimpleWorker

from storyboard_cli.tasks import rq_adapter
from storyboard_cli.tasks.worker import DAEMON_FIELD, StoryboardWorker
from storyboard_contract.config import load_config

WORKER = "pinned-worker"
ATTEMPTS = "pinned:attempts"


@pytest.fixture()
def redis(redis_url: str) -> Iterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    client.close()


class BurstWorker(SimpleWorker):
    def subscribe(self) -> None:
        """No command channel: these runs take no commands, and its listening thread can take
        up to a minute to stop."""


def run_burst(queue: Queue) -> None:
    """Run the queue's jobs to the end with a real RQ worker in this process; RQ installs its
    own signal handlers for the run, and pytest gets its own back afterwards."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        BurstWorker([queue], connection=queue.connection, name=WORKER).work(
            burst=True, logging_level="WARNING")
    finally:
        for s, handler in saved.items():
            signal.signal(s, handler)


# --- jobs the worker runs (RQ imports them by name: module level) --------------------------------


def report_own_run() -> list[tuple[str, str | None]]:
    """The runs the job's queue lists as started while it runs, and whose worker each is."""
    job = get_current_job()
    registry = Queue(job.origin, connection=job.connection).started_job_registry
    return [(e.job_id, rq_adapter.worker_of(e)) for e in rq_adapter.started_executions(registry)]


def end_own_run() -> dict[str, Any]:
    """End the job's own run as the reaper ends a dead worker's, and report what Redis holds
    of the run before and after."""
    job = get_current_job()
    redis = job.connection
    registry = Queue(job.origin, connection=redis).started_job_registry
    [execution] = rq_adapter.started_executions(registry)
    before = {"record": redis.exists(execution.key), "worker": rq_adapter.worker_of(execution)}
    with redis.pipeline() as pipe:
        pipe.watch(execution.key)
        before["listed"] = rq_adapter.still_started(registry, execution, pipe)
        pipe.multi()
        rq_adapter.end_execution(registry, execution, pipe)
        pipe.execute()
    after = {"record": redis.exists(execution.key), "worker": rq_adapter.worker_of(execution),
             "listed": registry.get_job_and_execution_ids(cleanup=False),
             "executions": job.execution_registry.get_execution_ids()}
    return {"before": before, "after": after}


def always_fails() -> None:
    raise RuntimeError("fails every time")


def count_attempt(job: Any, connection: Redis, *exc_info: Any) -> None:
    connection.rpush(ATTEMPTS, rq_adapter.failed_attempt(job))


def count_attempt_and_give_up(job: Any, connection: Redis, *exc_info: Any) -> None:
    count_attempt(job, connection, *exc_info)
    rq_adapter.stop_retrying(job)


# --- executions ----------------------------------------------------------------------------------


def test_a_started_job_is_listed_with_the_worker_that_runs_it(redis):
    queue = Queue("pinned", connection=redis)
    job = queue.enqueue(report_own_run)
    run_burst(queue)
    assert job.return_value(refresh=True) == [(job.id, WORKER)]


def test_ending_a_run_leaves_nothing_of_it_and_the_job_still_finishes(redis):
    """What the reaper's claim does to a dead worker's run, and what it watches meanwhile:
    the execution's record, which RQ keeps (and a live worker's heartbeat rewrites)."""
    queue = Queue("pinned", connection=redis)
    job = queue.enqueue(end_own_run)
    run_burst(queue)
    assert job.return_value(refresh=True) == {
        "before": {"record": 1, "worker": WORKER, "listed": True},
        "after": {"record": 0, "worker": None, "listed": [], "executions": []},
    }
    assert job.get_status() == "finished"


# --- registration --------------------------------------------------------------------------------


def test_a_worker_registered_again_is_what_its_birth_registered(redis, redis_url, tmp_path):
    """After Redis lost its data the worker's heartbeat recreates its hash without a birth,
    which Worker.register_birth refuses; register_again writes what the birth wrote, the
    daemon field `ps` and `doctor` read included, and lists the worker on its queue again."""
    path = tmp_path / "storyboard.toml"
    path.write_text(f'[redis]\nurl = "{redis_url}"\n[daemon]\nurl = "http://gpu.example:7860"\n',
                    encoding="utf-8")
    config = load_config(path, environ={})
    queue = Queue("pinned", connection=redis)
    worker = StoryboardWorker([queue], config, connection=redis, name=WORKER)
    worker.register_birth()
    born = redis.hgetall(worker.key)
    assert born[DAEMON_FIELD.encode()] == b"http://gpu.example:7860"
    assert not rq_adapter.register_again(worker, redis)  # still registered: nothing to do

    redis.flushdb()
    worker.heartbeat()
    with pytest.raises(ValueError, match="active worker"):
        worker.register_birth()
    assert rq_adapter.register_again(worker, redis)

    again = redis.hgetall(worker.key)
    assert {k: again[k] for k in born if k != b"last_heartbeat"} == \
        {k: v for k, v in born.items() if k != b"last_heartbeat"}
    assert [w.name for w in Worker.all(queue=queue)] == [WORKER]
    assert 0 < redis.ttl(worker.key) <= worker.worker_ttl + 60
    assert not rq_adapter.register_again(worker, redis)


# --- retries -------------------------------------------------------------------------------------


def test_the_failure_callback_sees_each_attempt_before_rq_counts_the_retry_down(redis):
    queue = Queue("pinned", connection=redis)
    job = queue.enqueue(always_fails, retry=Retry(max=2), on_failure=Callback(count_attempt),
                        meta={"retries": 2})
    run_burst(queue)
    assert redis.lrange(ATTEMPTS, 0, -1) == [b"1", b"2", b"3"]
    assert job.get_status() == "failed"


def test_stop_retrying_in_the_failure_callback_fails_the_job_at_once(redis):
    queue = Queue("pinned", connection=redis)
    job = queue.enqueue(always_fails, retry=Retry(max=2),
                        on_failure=Callback(count_attempt_and_give_up), meta={"retries": 2})
    run_burst(queue)
    assert redis.lrange(ATTEMPTS, 0, -1) == [b"1"]
    assert job.get_status() == "failed" and job in queue.failed_job_registry
    assert (queue.count, queue.scheduled_job_registry.count) == (0, 0)
