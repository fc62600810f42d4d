"""Opening a store: one SQLite file that several worker processes write at once.

It runs in WAL mode with a busy timeout, so readers never wait for a writer and a writer
waits its turn instead of failing; the first process to open a new file migrates it while the
others wait on a lock file beside it.
"""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from storyboard_cli.store.schema import MIGRATIONS, migrate

if TYPE_CHECKING:
    import sqlite_utils

BUSY_TIMEOUT_S = 30


def file_identity(path: Path) -> tuple[int, int] | None:
    """(device, inode) of the file at `path`, None when there is none: a connection keeps
    reading the file it opened, so a store removed or replaced on disk (a new file at its
    path) shows as a change of identity."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return stat.st_dev, stat.st_ino


def connect(path: str | Path, create: bool = True) -> sqlite3.Connection:
    """A connection to a store in WAL mode with every migration applied.

    create=False and no file yet: an empty store in memory, and no file is written.
    """
    path = Path(path)
    if not create and not path.exists():
        conn = sqlite3.connect(":memory:", check_same_thread=False)
        migrate(database(conn))
        return conn
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_S, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_S * 1000}")
    conn.execute("PRAGMA recursive_triggers = on")  # as sqlite_utils.Database sets it
    if not _ready(conn):
        # Switching to WAL and migrating are not safe against a second process doing the
        # same on a new file (SQLite reports "database is locked" without waiting): one at
        # a time.
        with _exclusive(path.with_name(path.name + ".lock")):
            conn.execute("PRAGMA journal_mode = WAL")
            migrate(database(conn))
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def _ready(conn: sqlite3.Connection) -> bool:
    """Already in WAL mode with every migration recorded: nothing to do, no lock needed."""
    if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
        return False
    try:
        done = {row[0] for row in conn.execute("select name from _migrations")}
    except sqlite3.OperationalError:  # no such table: a new store
        return False
    return all(fn.__name__ in done for fn in MIGRATIONS)


@contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """An advisory lock between processes on this host (a no-op where fcntl is missing)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows hosts
        yield
        return
    with open(lock_path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def database(conn: sqlite3.Connection) -> sqlite_utils.Database:
    """sqlite_utils over a connection, for migrating and the writes that use its helpers."""
    # Plugins (sqlite-utils' own entry points) are never used here; finding them costs
    # ~20 ms of scanning installed packages.
    return _import_sqlite_utils().Database(conn, execute_plugins=False)


def _import_sqlite_utils() -> ModuleType:
    """sqlite_utils (~40 ms to import) is needed only to migrate and for `Store.db`: reads and
    most writes go through the sqlite3 connection, so `storyboard show` never imports it.

    It imports numpy (30-100 ms) only to store numpy values, which we never do: while it
    loads, `import numpy` fails fast; a process that already has numpy keeps it.
    """
    if "numpy" in sys.modules:
        import sqlite_utils
    else:
        sys.modules["numpy"] = None  # type: ignore[assignment]
        try:
            import sqlite_utils
        finally:
            del sys.modules["numpy"]
    return sqlite_utils
