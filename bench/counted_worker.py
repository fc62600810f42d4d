"""`storyboard worker` with counters and CPU clocks, for bench/fleet.py: how often a worker does
each costly thing, and how much of its CPU time each part of it takes.

The worker is the real one (the `storyboard` console script's main, same arguments); this
only wraps some calls before running it:

- counts: store write transactions (Store._write) and queries (Store._query), progress events
  received (StepWriter) and step writes (Store.render_steps), requests to the daemon
  (DaemonClient._call), Redis round trips (one send of a command or a pipeline:
  AbstractConnection.send_packed_command), by the thread that made them;
- CPU time (the thread's own clock, time.thread_time) spent in each part, exclusive of the
  parts nested in it: the store's methods, the daemon client's, the job functions' own code,
  and each duty of the maintenance thread. What a thread spends outside every part (RQ's
  loop around the jobs, in the main thread) is its CPU time (/proc) less theirs.

Every 0.5 s a thread writes them, when they changed, with each thread's OS id and name, as JSON
to $FLEET_COUNTS (the benchmark reads them at both ends of a phase of many seconds).

Run: python bench/counted_worker.py worker [--queues ...]   (FLEET_COUNTS=/path/counts.json)
"""

from __future__ import annotations

import functools
import inspect
import json
import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

COUNTS: Counter[str] = Counter()
CPU: Counter[str] = Counter()  # seconds, by "part (thread)"
THREADS: dict[int, str] = {}
DUMP_S = 0.5
_nesting = threading.local()


def _thread() -> str:
    """Which of the worker's threads runs this: the jobs' (main), the maintenance, another."""
    current = threading.current_thread()
    THREADS[threading.get_native_id()] = current.name
    if current is threading.main_thread():
        return "main"
    return "maintenance" if current.name == "storyboard-maintenance" else "other"


def counted(owner: Any, name: str, what: str, by_thread: bool = False) -> None:
    original: Callable[..., Any] = getattr(owner, name)

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        COUNTS[f"{what} ({_thread()})" if by_thread else what] += 1
        return original(*args, **kwargs)

    setattr(owner, name, wrapper)


def timed(owner: Any, name: str, part: str) -> None:
    """The thread's CPU time in owner.name, less that of timed calls nested in it, to part."""
    original: Callable[..., Any] = getattr(owner, name)

    # Named as the original: RQ records a job's function by its module and name (the plan
    # job enqueues render_job).
    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        stack = _nesting.__dict__.setdefault("stack", [])
        stack.append(0.0)
        start = time.thread_time()
        try:
            return original(*args, **kwargs)
        finally:
            spent = time.thread_time() - start
            CPU[f"{part} ({_thread()})"] += spent - stack.pop()
            if stack:
                stack[-1] += spent

    setattr(owner, name, wrapper)


def timed_methods(cls: type, part: str) -> None:
    """Every method of cls, those of its bases included (a class made of mixins)."""
    names = {name for klass in cls.__mro__ if klass is not object
             for name, value in vars(klass).items()
             if inspect.isfunction(value) and not name.startswith("__")}
    for name in sorted(names):
        timed(cls, name, part)


def dump(path: Path) -> None:
    written = None
    while True:
        state = {"counts": dict(COUNTS), "cpu": dict(CPU), "threads": dict(THREADS)}
        if state != written:
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(state))
            os.replace(tmp, path)
            written = state
        time.sleep(DUMP_S)


def main() -> None:
    from redis.connection import AbstractConnection

    from storyboard_cli.cli import main as storyboard
    from storyboard_cli.store import Store
    from storyboard_cli.tasks import jobs, rq_adapter, worker
    from storyboard_cli.tasks.daemon_client import DaemonClient
    from storyboard_cli.tasks.jobs import StepWriter

    counted(Store, "_write", "store writes", by_thread=True)
    counted(Store, "_query", "store queries", by_thread=True)
    counted(Store, "render_steps", "step writes")
    counted(StepWriter, "__call__", "progress events")
    counted(DaemonClient, "_call", "daemon requests")
    counted(AbstractConnection, "send_packed_command", "Redis round trips", by_thread=True)
    timed_methods(Store, "store")
    timed_methods(DaemonClient, "daemon client")
    # RQ finds a job's function by its name in the module when the job runs.
    for name in ("render_job", "plan_job"):
        timed(jobs, name, "job's own code")
    for name in ("sweep_lost", "reap_orphans", "enqueue_due"):
        timed(worker, name, name)
    timed(rq_adapter, "register_again", "register_again")
    timed(worker.Maintenance, "tick", "maintenance tick")
    threading.Thread(target=dump, args=(Path(os.environ["FLEET_COUNTS"]),), daemon=True,
                     name="fleet-counts").start()
    sys.argv = ["storyboard", *sys.argv[1:]]
    storyboard()


if __name__ == "__main__":
    main()
