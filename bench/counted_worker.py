"""`storyboard worker` with counters, for bench/fleet.py: how often a worker does each costly
thing, by the thread that does it.

The worker is the real one (the `storyboard` console script's main, same arguments); this
wraps a few calls with a counter increment before running it: store write transactions
(Store._write) and reads (Store._query), progress events received (StepWriter) and step
writes (Store.render_step), requests to the daemon (DaemonClient._call) and Redis round trips
(one send of a command or a pipeline: AbstractConnection.send_packed_command). Every 0.5 s a
thread writes the counts, when they changed, and each thread's OS id and name, as JSON to
$FLEET_COUNTS (the benchmark reads them at both ends of a phase of many seconds).

Run: python bench/counted_worker.py worker [--queues ...]   (FLEET_COUNTS=/path/counts.json)
"""

from __future__ import annotations

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
THREADS: dict[int, str] = {}
DUMP_S = 0.5


def _thread() -> str:
    """Which of the worker's threads runs this: the job's, the maintenance, another."""
    current = threading.current_thread()
    THREADS[threading.get_native_id()] = current.name
    if current is threading.main_thread():
        return "main"
    return "maintenance" if current.name == "storyboard-maintenance" else "other"


def counted(owner: Any, name: str, what: str, by_thread: bool = False) -> None:
    original: Callable[..., Any] = getattr(owner, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        COUNTS[f"{what} ({_thread()})" if by_thread else what] += 1
        return original(*args, **kwargs)

    setattr(owner, name, wrapper)


def dump(path: Path) -> None:
    written = None
    while True:
        state = {"counts": dict(COUNTS), "threads": dict(THREADS)}
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
    from storyboard_cli.tasks.daemon_client import DaemonClient
    from storyboard_cli.tasks.jobs import StepWriter

    counted(Store, "_write", "store writes", by_thread=True)
    counted(Store, "_query", "store reads", by_thread=True)
    counted(Store, "render_step", "step writes")
    counted(StepWriter, "__call__", "progress events")
    counted(DaemonClient, "_call", "daemon requests")
    counted(AbstractConnection, "send_packed_command", "Redis round trips", by_thread=True)
    threading.Thread(target=dump, args=(Path(os.environ["FLEET_COUNTS"]),), daemon=True,
                     name="fleet-counts").start()
    sys.argv = ["storyboard", *sys.argv[1:]]
    storyboard()


if __name__ == "__main__":
    main()
