"""What every part of the store stands on: one connection, reads as dicts, and the write
transaction every write goes through."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from storyboard_cli.store.connection import connect, database, file_identity

if TYPE_CHECKING:
    import sqlite_utils


class Rows:
    """A store's connection (one per process; not shared across forks) and how the parts of
    the store use it."""

    def __init__(self, path: str | Path, create: bool = True) -> None:
        self.path = Path(path)
        self.conn = connect(self.path, create)
        self.file = file_identity(self.path)  # None: a store in memory (no file yet)
        self._db: sqlite_utils.Database | None = None

    @property
    def db(self) -> sqlite_utils.Database:
        """sqlite_utils on the same connection, for the writes that use its helpers."""
        if self._db is None:
            self._db = database(self.conn)
        return self._db

    def replaced(self) -> bool:
        """The file at the store's path is not the one this connection reads: removed, or
        another moved into its place (a long-lived process then opens the store again)."""
        return file_identity(self.path) != self.file

    def close(self) -> None:
        self.conn.close()

    def _query(self, sql: str, params: Iterable[Any] = ()) -> list[dict[str, Any]]:
        """Rows as dicts (as sqlite_utils' Database.query gives them)."""
        cursor = self.conn.execute(sql, list(params))
        keys = [d[0] for d in cursor.description]
        return [dict(zip(keys, row, strict=True)) for row in cursor]

    def _one(self, sql: str, params: Iterable[Any]) -> dict[str, Any] | None:
        rows = self._query(sql, params)
        return rows[0] if rows else None

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction holding the write lock from its start: a read-then-write in it
        cannot fail halfway with "database is locked" while other workers write.

        Every write a job may repeat is keyed by ids (task id, shot index, shot id), so a job
        that runs twice has the effect of running once."""
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.rollback()
            raise
        conn.commit()
