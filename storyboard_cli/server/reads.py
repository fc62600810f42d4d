"""The answers of `GET /api/tasks/{id}`, the read that boards and `--watch` poll, kept until
the store changes.

A poll is answered on the event loop, from the JSON of the last answer to the same reference,
when nothing was committed to the store since: `PRAGMA data_version`, read through a
connection of its own that never writes, changes with every commit made by any other
connection, of this process or another (a worker, the CLI). Otherwise a worker thread builds
the task object as every other route does, and its JSON is kept for the next poll.

Why: a worker thread per poll made 50 concurrent polls cost 0.6-0.8 ms of server CPU each on a
quiet machine and 2-10 ms on a busy one, most of it the ~40 threads of the pool handing the
GIL to one another; a poll answered from the loop costs what uvicorn and FastAPI cost, about
0.25 ms (bench/api.py).

A store removed or replaced on disk (a new file at its path) is a change too: the version's
connection would otherwise go on reading the old file, whose version never moves again, while
the routes' connections open the new one.

The version is read without waiting (busy timeout 0): in WAL mode a read takes no lock a
writer holds, and in the rare moment it cannot start (a connection holding the store
exclusively), the poll counts as a change and goes to a worker thread, which waits its turn.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from pathlib import Path

from starlette.concurrency import run_in_threadpool

from storyboard_cli.store.connection import file_identity

# Distinct references kept at most (a reference is an id or any unique prefix of it): past
# that, the answers kept are dropped and kept anew.
MAX_ANSWERS = 256

# The store's data version, with the file it was read from (its device and inode): a new
# file's version starts again from the old one's numbers.
Version = tuple[int, int, int]


class TaskAnswers:
    """The JSON last answered for each task reference, valid while the store's data version
    stays the one it was read under. Used from the event loop only."""

    def __init__(self, store_path: Path) -> None:
        self.store_path = store_path
        self.conn: sqlite3.Connection | None = None
        self.file: tuple[int, int] | None = None  # (device, inode) of the file conn reads
        self.version: Version | None = None
        self.answers: dict[str, bytes] = {}
        self.building: dict[tuple[Version, str], asyncio.Future[bytes]] = {}

    def _data_version(self) -> Version | None:
        """The store's data version now; None when it cannot be read without waiting."""
        file = file_identity(self.store_path)
        if file is None:
            self.close()  # removed; the first task created makes it (a worker thread's store)
            return None
        if self.file != file:
            self.close()
            self.conn = sqlite3.connect(self.store_path, timeout=0, check_same_thread=False)
            self.file = file
        assert self.conn is not None
        try:
            return (*self.file, self.conn.execute("PRAGMA data_version").fetchone()[0])
        except sqlite3.OperationalError:  # busy: the store is held exclusively
            return None

    def lookup(self, ref: str) -> tuple[Version | None, bytes | None]:
        """(the data version now, the answer kept for `ref` if still valid)."""
        version = self._data_version()
        if version is None or version != self.version:
            self.answers.clear()
            self.version = version
            return version, None
        return version, self.answers.get(ref)

    def keep(self, ref: str, version: Version | None, body: bytes) -> None:
        """Keep `body`, built after the data version `version` was read, unless a later
        lookup saw the store change meanwhile (it may be older than that change)."""
        if version is None or version != self.version:
            return
        if len(self.answers) >= MAX_ANSWERS:
            self.answers.clear()
        self.answers[ref] = body

    async def get(self, ref: str, build: Callable[[str], bytes]) -> bytes:
        """The JSON answer for task `ref`: the one kept, or build(ref) in a worker thread;
        the polls that find the same change at once wait for one build (fifty boards
        polling a task that changed cost one build, not fifty)."""
        version, body = self.lookup(ref)
        if body is not None:
            return body
        if version is None:
            return await run_in_threadpool(build, ref)
        key = (version, ref)
        if key not in self.building:
            self.building[key] = asyncio.ensure_future(run_in_threadpool(build, ref))
            self.building[key].add_done_callback(lambda _: self.building.pop(key, None))
        # Shielded: a client that leaves does not cancel the build the others wait for.
        body = await asyncio.shield(self.building[key])
        self.keep(ref, version, body)
        return body

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None
            self.file = None

