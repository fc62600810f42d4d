"""Where the worker leans on RQ beyond its documented API, in one place.

RQ 2 records each run of a job as an *execution* (which worker runs it, until when) and lists
running jobs in a queue's started registry by execution; it re-registers a worker only at its
birth; and it calls a job's failure callback before it decides about a retry. Its documentation
describes none of this, and the worker needs all of it: to tell which worker runs a started job
(liveness), to take a dead worker's run off the registry in the same transaction that queues the
job again, to register a worker again after Redis lost its data, and to stop retrying a job
whose failure another try would not change.

Everything else goes through RQ's public job, queue and registry methods.
tests/test_rq_adapter.py pins each behaviour relied on here against the installed RQ
(pyproject: rq>=2.0,<3), so an upgrade that changes one fails there rather than in production.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rq import worker_registration
from rq.executions import Execution, ExecutionRegistry

if TYPE_CHECKING:
    from redis import Redis
    from redis.client import Pipeline
    from rq.job import Job
    from rq.registry import StartedJobRegistry
    from rq.worker import Worker


# --- executions: the runs of started jobs --------------------------------------------------------


def started_executions(registry: StartedJobRegistry) -> list[Execution]:
    """The runs a queue's started registry lists (expired ones too: no cleanup)."""
    return [Execution(execution_id, job_id, connection=registry.connection)
            for job_id, execution_id in registry.get_job_and_execution_ids(cleanup=False)]


def worker_of(execution: Execution) -> str | None:
    """The name of the worker running this execution; None once its record is gone (it
    expires with the worker's heartbeats)."""
    name = execution.connection.hget(execution.key, "worker_name")
    return name.decode() if name else None


def still_started(registry: StartedJobRegistry, execution: Execution, pipe: Pipeline) -> bool:
    """Whether the registry still lists this run (read through pipe, under its WATCH)."""
    return pipe.zscore(registry.key, execution.composite_key) is not None


def end_execution(registry: StartedJobRegistry, execution: Execution, pipe: Pipeline) -> None:
    """Queue on pipe what RQ does when a run ends (Execution.delete), without needing the job,
    which may be gone from Redis: the registry's entry, the execution's record and its place
    in the job's list of executions."""
    registry.remove_execution(execution, pipeline=pipe)
    pipe.delete(execution.key)
    ExecutionRegistry(execution.job_id, connection=registry.connection).remove(execution,
                                                                              pipeline=pipe)


# --- worker registration -------------------------------------------------------------------------


def register_again(worker: Worker, redis: Redis) -> bool:
    """Register the worker with RQ as its birth did, if Redis no longer lists it (it lost its
    data, or the key expired during a long job); returns whether it had to.

    Not Worker.register_birth: it refuses a worker whose hash exists without a death, which
    the worker's own heartbeat recreates (without a birth) after Redis lost its data, and it
    would reset the birth date.
    """
    with redis.pipeline() as pipe:
        pipe.hexists(worker.key, "birth")
        pipe.sismember(worker.redis_workers_keys, worker.key)
        if all(pipe.execute()):
            return False
        pipe.hset(worker.key, mapping={**worker.serialize(), "state": worker.get_state()})
        worker_registration.register(worker, pipe)
        pipe.expire(worker.key, worker.worker_ttl + 60)
        pipe.execute()
    return True


# --- retries, from the failure callback ----------------------------------------------------------


def failed_attempt(job: Job) -> int:
    """Which attempt of the job just failed, read in its failure callback: RQ calls it before
    it counts the retry down, and the allowance it started from is in meta["retries"]."""
    return job.meta.get("retries", 0) - (job.retries_left or 0) + 1


def stop_retrying(job: Job) -> None:
    """From the failure callback: RQ reads retries_left after it, so the job fails now."""
    job.retries_left = 0
