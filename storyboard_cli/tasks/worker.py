"""`storyboard worker`: an RQ worker for this system's queues that loses no job.

The worker runs jobs in its own process (RQ's SimpleWorker: job timeouts by SIGALRM, no fork
per job), so the store, the daemon client and the Redis connection are made once per process
and reused by every job.

A maintenance thread, ticking every TICK_S seconds, does what plain RQ leaves to timeouts
(each worker its liveness and registration; the rest one worker for all, the holder of a
lease, LEASE_KEY):

- **Liveness.** Each worker keeps a key ``storyboard:alive:<worker name>`` with a TTL of three
  heartbeats. RQ alone notices a worker killed mid-job only when the job's timeout (+60 s) has
  passed; here a live worker (the lease's holder) requeues a job whose worker's key has
  expired, within about three heartbeats. Only `storyboard worker` processes keep such keys,
  so run no plain `rq worker` on these queues.
- **Scheduled retries.** Failed attempts wait in RQ's ScheduledJobRegistry for their backoff;
  due ones are moved back to their queue (in a WATCH transaction, so two workers never both
  move one), with no separate scheduler process.
- **Lost jobs.** A task still pending or running none of whose jobs will run is settled after
  two sweeps in a row saw it so: never silently stuck. A job that failed in Redis without the
  store hearing of it (its worker or reaper died in between) is recorded with the failure
  Redis holds; a job gone from Redis (restarted without its data) fails its shot or task with
  a message saying to retry it.
- **Registration.** A worker that finds itself no longer registered with RQ (Redis lost its
  data) registers again, so `rq info`, `storyboard ps`, `up` and `doctor` see it.

Redis outages: every command of the worker waits for Redis however long it is gone
(tasks/outage.py), so a job that ends during an outage is recorded afterwards and the worker
carries on. For three heartbeats after an outage no job is requeued: the workers' liveness keys
expired while Redis was unreachable, not the workers.

In burst mode the worker leaves when no work remains on the queues it takes jobs from: none
queued, none scheduled for a retry and none running on another worker (which could still be
requeued, or fan out more).

Everything here goes through RQ's public job, queue and registry methods, but for what RQ
documents no way to do (which worker runs a started job, ending a dead worker's run, registering
a worker again): that is tasks/rq_adapter.py, with a test that pins it to the installed RQ.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from rq.worker import SimpleWorker

from storyboard_cli.tasks import jobs, rq_adapter
from storyboard_cli.tasks.jobs import ACTIVE
from storyboard_cli.tasks.outage import WaitForRedis

if TYPE_CHECKING:
    from redis import Redis
    from rq import Queue
    from rq.executions import Execution
    from rq.job import Job

    from storyboard_cli.store import Store
    from storyboard_contract.config import Config

log = logging.getLogger("storyboard.worker")

TICK_S = 0.5
BURST_POLL_S = 0.1
ALIVE_KEY = "storyboard:alive:{}"
# The duties done for all workers (requeueing dead workers' jobs, moving due retries, sweeping
# lost tasks) are done by one worker at a time, the holder of this lease, which it renews at
# each tick: they cost what one worker's do however many run. A holder that stops gives it
# up; one that dies loses it after LEASE_BEATS heartbeats, as its alive key expires, and the
# next worker to tick takes it. One lease per pair of queues: the workers of another system
# sharing the Redis (other queue names) have their own.
LEASE_KEY = "storyboard:maintainer:{}:{}"
LEASE_BEATS = 3
# Take the lease when free, renew it when ours (one round trip): 1 when this worker holds it.
TAKE_LEASE = """
local holder = redis.call('GET', KEYS[1])
if holder == false or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""
GIVE_UP_LEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
# A field of RQ's worker hash: the daemon this worker renders on (`ps` and `doctor` read it).
DAEMON_FIELD = "storyboard_daemon"


def alive_key(worker_name: str) -> str:
    return ALIVE_KEY.format(worker_name)


class StoryboardWorker(SimpleWorker):
    log_result_lifespan = False

    def __init__(
        self, queues: Sequence[Queue], config: Config, *, connection: Redis, **kwargs: Any
    ) -> None:
        super().__init__(queues, connection=connection, **kwargs)
        self.config = config
        self._burst = False
        self.policy: WaitForRedis = connection.get_retry()
        self.maintenance: Maintenance | None = None

    def serialize(self) -> dict[str, Any]:
        # What RQ writes into the worker's record at birth (and register_again after Redis
        # lost it): plus the daemon this worker renders on, for `ps` and `doctor`.
        return {**super().serialize(), DAEMON_FIELD: self.config.daemon.url}

    def work(self, burst: bool = False, **kwargs: Any) -> bool:  # type: ignore[override]
        self._burst = burst
        self.maintenance = Maintenance(self)
        self.maintenance.mark_alive()
        self.maintenance.start()
        try:
            return super().work(burst=burst, **kwargs)
        finally:
            self.maintenance.stop()

    def teardown(self) -> None:
        from redis.exceptions import ConnectionError, TimeoutError

        # Leaving: maintenance must not register this worker again, and no command may wait
        # for a Redis that is gone.
        if self.maintenance is not None:
            self.maintenance.stop()
        self.policy.give_up()
        try:
            super().teardown()
        except (ConnectionError, TimeoutError):
            self.log.warning("Redis is unreachable at shutdown; this worker's registration "
                             "expires by itself")

    def set_shutdown_requested_date(self) -> None:
        from redis.exceptions import ConnectionError, TimeoutError

        # Called from the SIGTERM handler, in the middle of the job: never wait on Redis there.
        with self.policy.briefly(), contextlib.suppress(ConnectionError, TimeoutError):
            super().set_shutdown_requested_date()

    def subscribe(self) -> None:
        # RQ's command channel (`rq` shutdown/stop-job commands) is for long-running workers;
        # a burst worker skips it, and with it a one-second wait on exit for its thread.
        if not self._burst:
            super().subscribe()

    def dequeue_job_and_maintain_ttl(
        self, timeout: int | None, max_idle_time: int | None = None
    ) -> Any:
        while True:
            result = super().dequeue_job_and_maintain_ttl(timeout, max_idle_time)
            if result is not None or not self._burst or self._stop_requested:
                return result
            if not work_remains(self.queues):
                return None
            time.sleep(BURST_POLL_S)


def work_remains(queues: Sequence[Queue]) -> bool:
    return any(
        q.count or q.scheduled_job_registry.get_job_count(cleanup=False)
        or q.started_job_registry.get_job_count(cleanup=False)
        for q in queues
    )


class Maintenance(threading.Thread):
    """The worker's background duties (module docstring), one tick every TICK_S seconds."""

    def __init__(self, worker: StoryboardWorker) -> None:
        super().__init__(name="storyboard-maintenance", daemon=True)
        self.worker = worker
        self.outage = worker.policy.outage
        # Its own client, without retries: during a Redis outage a tick fails at once and the
        # next one tries again, and stopping never waits on a dead Redis.
        self.redis = jobs.connect_redis(worker.config.redis.url)
        self.queues: list[Queue] = list(jobs.system_queues(self.redis, worker.config.queue))
        self.heartbeat_s = max(1, worker.config.queue.heartbeat_s)
        self.max_orphaned = worker.config.queue.retries + 1
        self._stopping = threading.Event()
        self._store: Store | None = None
        self._next_beat = 0.0
        self._next_sweep = 0.0
        self._suspects: set[str] = set()
        self._leading = False
        self.lease_key = LEASE_KEY.format(*(q.name for q in self.queues))
        self._take_lease = self.redis.register_script(TAKE_LEASE)
        self._give_up_lease = self.redis.register_script(GIVE_UP_LEASE)

    @property
    def store(self) -> Store:
        # This thread's own connection: an SQLite connection is not shared between threads.
        # Opened again when the store was removed or replaced on disk (as a job's is).
        if self._store is None or self._store.replaced():
            from storyboard_cli.store import Store

            if self._store is not None:
                self._store.close()
            self._store = Store(self.worker.config.store_path)
        return self._store

    def mark_alive(self) -> None:
        self.redis.set(alive_key(self.worker.name), os.getpid(), ex=3 * self.heartbeat_s)

    def stop(self) -> None:
        if self._stopping.is_set():
            return
        self._stopping.set()
        self.join(timeout=5)
        # Redis may be gone; the keys then expire by themselves.
        with contextlib.suppress(Exception):
            self.redis.delete(alive_key(self.worker.name))
            self._give_up_lease(keys=[self.lease_key], args=[self.worker.name])
        self.redis.close()
        if self._store is not None:
            self._store.close()

    def run(self) -> None:
        from redis.exceptions import ConnectionError, TimeoutError

        while not self._stopping.wait(TICK_S):
            try:
                self.tick()
            except (ConnectionError, TimeoutError) as exc:
                self.outage.failed(exc)
                continue
            except Exception:  # noqa: BLE001 - a failed tick is tried again at the next one
                log.warning("maintenance tick failed; trying again", exc_info=True)
                continue
            self.outage.reached()

    def leads(self) -> bool:
        """Whether this worker holds the lease of the shared duties (LEASE_KEY) now. One that
        has just taken it sweeps at once, and from its own sweeps only: a task is settled when
        two sweeps in a row of the same worker found it lost."""
        leading = bool(self._take_lease(
            keys=[self.lease_key],
            args=[self.worker.name, LEASE_BEATS * self.heartbeat_s * 1000]))
        if leading and not self._leading:
            self._suspects, self._next_sweep = set(), 0.0
        self._leading = leading
        return leading

    def tick(self) -> None:
        moment = time.monotonic()
        beat = moment >= self._next_beat
        if beat:
            self.mark_alive()
            born = self.worker.birth_date is not None
            if born and rq_adapter.register_again(self.worker, self.redis):
                log.warning("worker %s was no longer registered (Redis lost its data?); "
                            "registered it again", self.worker.name)
            self._next_beat = moment + self.heartbeat_s
        if not self.leads():
            return
        if beat and self.outage.quiet_for(3 * self.heartbeat_s):
            for job_id in reap_orphans(self.redis, self.queues, self.max_orphaned,
                                       lambda: self.store):
                log.warning("requeued job %s: its worker stopped while running it", job_id)
        for job_id in enqueue_due(self.redis, self.queues):
            log.info("job %s: retry due, queued again", job_id)
        if moment >= self._next_sweep:
            self._next_sweep = moment + 3 * self.heartbeat_s
            self._suspects = sweep_lost(self.store, self.redis, self.worker.config,
                                        self._suspects)


def reap_orphans(
    redis: Redis, queues: Sequence[Queue], max_orphaned: int, store: Callable[[], Store]
) -> list[str]:
    """Requeue started jobs whose worker is gone (its alive key expired).

    Each job is claimed and requeued (or failed) in one transaction: of several workers
    reaping at once only one succeeds, and a reaper that dies halfway leaves
    the job as it was, for the next one. A job that has outlived its worker more than
    max_orphaned times (it may be what kills them) fails instead; that failure is written to
    Redis (the job's result) and then to the store, and if the reaper dies in between the
    sweep copies it from Redis (sweep_lost).
    """
    from redis.exceptions import WatchError

    requeued = []
    for queue in queues:
        for execution in rq_adapter.started_executions(queue.started_job_registry):
            worker_name = rq_adapter.worker_of(execution)
            if worker_name and redis.exists(alive_key(worker_name)):
                continue
            try:
                job, failure = _claim(redis, queue, execution, max_orphaned)
            except WatchError:
                continue  # another worker claimed it, or the registry changed: next tick
            if worker_name:
                dead = SimpleWorker.find_by_key(
                    SimpleWorker.redis_worker_namespace_prefix + worker_name, connection=redis)
                if dead is not None:
                    dead.register_death()
            if job is not None and failure:
                jobs.record_failure(job, failure, store())
            elif job is not None:
                requeued.append(job.id)
    return requeued


def _claim(
    redis: Redis, queue: Queue, execution: Execution, max_orphaned: int
) -> tuple[Job | None, str]:
    """Take an orphaned run off the started registry and queue its job again at the front, or
    fail it, atomically: (the job, None when gone from Redis; why it failed, or "")."""
    from rq.job import Job, JobStatus
    from rq.results import Result

    registry = queue.started_job_registry
    with redis.pipeline() as pipe:
        # Whoever claims first changes the job (requeued or failed) and deletes its execution:
        # every other claim of it then aborts. The busy registry itself is not watched.
        pipe.watch(Job.key_for(execution.job_id), execution.key)
        if not rq_adapter.still_started(registry, execution, pipe):
            return None, ""
        job = Job.fetch_many([execution.job_id], connection=redis)[0]
        message = ""
        pipe.multi()
        rq_adapter.end_execution(registry, execution, pipe)
        if job is not None:
            job.meta["orphaned"] = job.meta.get("orphaned", 0) + 1
            if job.meta["orphaned"] > max_orphaned:
                message = (f"its worker died while running it {job.meta['orphaned']} times "
                           "(out of memory? see the worker logs)")
                job.set_status(JobStatus.FAILED, pipeline=pipe)
                job.save(pipeline=pipe)
                job.failed_job_registry.add(job, ttl=job.failure_ttl, exc_string=message,
                                            pipeline=pipe)
                Result.create_failure(job, job.failure_ttl, exc_string=message, pipeline=pipe)
            else:
                queue.enqueue_job(job, pipeline=pipe, at_front=True)
        pipe.execute()
    return job, message


def enqueue_due(redis: Redis, queues: Sequence[Queue]) -> list[str]:
    """Move retries whose backoff has passed from the scheduled registry to their queue.

    RQ stores a retry's time in whole seconds, cut down: taken at the current second, a
    backoff of N s could end after N - 1 s. Taken up to the second before, it lasts N to
    N + 1 s, so [queue].backoff is the least a retry waits.
    """
    from redis.exceptions import WatchError
    from rq.job import Job
    from rq.utils import current_timestamp

    moved: list[str] = []
    for queue in queues:
        registry = queue.scheduled_job_registry
        with redis.pipeline() as pipe:
            try:
                # Read after the WATCH: a change to the registry until EXEC aborts the move.
                pipe.watch(registry.key)
                due = registry.get_jobs_to_schedule(current_timestamp() - 1)
                if not due:
                    continue
                found = [j for j in Job.fetch_many(due, connection=redis) if j is not None]
                pipe.multi()
                for job in found:
                    queue.enqueue_job(job, pipeline=pipe, at_front=job.should_enqueue_at_front())
                for job_id in due:
                    registry.remove(job_id, pipeline=pipe)
                pipe.execute()
                moved += [j.id for j in found]
            except WatchError:
                continue  # another worker moved them (or a retry was scheduled): next tick
    return moved


def sweep_lost(store: Store, redis: Redis, config: Config, suspects: set[str]) -> set[str]:
    """Settle unfinished tasks none of whose jobs will run; returns this sweep's suspects.

    A task is settled only when it was a suspect in the previous sweep too, so a task caught
    between two steps (a retry reopening it before queueing) is never failed by mistake. Each
    of its unfinished shots (or its planning) fails with what Redis says became of its job.
    """
    from rq.job import Job

    seen: set[str] = set()
    for task in store.unfinished_tasks():
        ids, shots = jobs.task_job_ids(store, task)
        found = dict(zip(ids, Job.fetch_many(ids, connection=redis), strict=True))
        if any(job is not None and job.get_status(refresh=False) in ACTIVE
               for job in found.values()):
            continue
        if task["id"] not in suspects:
            seen.add(task["id"])
            continue
        # No shot left to answer for: the planning (a task rendering stale panels has no
        # plan job, so nothing of it is in Redis).
        lost = [(found[job_id], s) for s, job_id in shots.items()] or \
            [(found.get(task["id"]), None)]
        retry = f"; run `storyboard retry {task['id']}`"
        for job, shot_id in lost:
            if job is not None and job.get_status(refresh=False) == "failed":
                reason = jobs.failure_reason(job)
                log.warning("task %s: job %s failed without the store hearing of it: %s",
                            task["id"], job.id, reason)
                jobs.record_failure(job, reason, store)
                continue
            if job is None:
                message = ("its queued job is gone from Redis (was Redis restarted without its "
                           "data?)" + retry)
            else:
                message = (f"its job ended {job.get_status(refresh=False)} in Redis without "
                           "recording an outcome" + retry)
            log.warning("task %s: %s", task["id"], message)
            if shot_id is None:
                store.fail_task(task["id"], message)
            else:
                store.fail_render(task["id"], shot_id, message)
    return seen


def worker_name() -> str:
    return f"{socket.gethostname()}.{os.getpid()}.{uuid.uuid4().hex[:6]}"


def resolve_queues(config: Config, names: Sequence[str]) -> list[str]:
    """Queue names from --queues; `plan` and `render` stand for the configured names."""
    aliases = {"plan": config.queue.plan_queue, "render": config.queue.render_queue}
    chosen = [aliases.get(n.strip(), n.strip()) for item in names for n in item.split(",")]
    chosen = [n for n in chosen if n]
    return chosen or [config.queue.plan_queue, config.queue.render_queue]


def run_worker(
    config: Config,
    queues: Sequence[str] = (),
    burst: bool = False,
    max_jobs: int | None = None,
    name: str | None = None,
) -> bool:
    """Set up this process's clients and work; returns whether any job ran."""
    from rq import Queue

    # Fail fast when Redis is down at start; once running, ride out any outage.
    jobs.check_redis(jobs.connect_redis(config.redis.url), config.redis.url)
    redis = jobs.worker_redis(config.redis.url)
    clients = jobs.WorkerClients.create(config, redis)
    jobs.install(clients)
    worker = StoryboardWorker(
        [Queue(n, connection=redis) for n in resolve_queues(config, queues)],
        config,
        connection=redis,
        name=name or worker_name(),
        default_result_ttl=config.queue.result_ttl,
        maintenance_interval=60,
    )
    try:
        return worker.work(burst=burst, max_jobs=max_jobs, logging_level="INFO")
    finally:
        clients.close()
