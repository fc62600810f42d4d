"""Logins to the web board: a session row per login, keyed by a digest of the session's id
(what the browser's cookie holds never sits in the store), with its expiry."""

from __future__ import annotations

from storyboard_cli.store.base import Rows
from storyboard_cli.store.schema import now


class Sessions(Rows):
    """Web board sessions (storyboard_cli/server/sessions.py makes and checks them)."""

    def add_session(self, digest: str, expires_at: str) -> None:
        """A new session until `expires_at` (a stamp as schema.now writes them); the expired
        ones go at the same time, so the table holds only live logins."""
        with self._write() as conn:
            stamp = now()
            conn.execute("delete from web_sessions where expires_at <= ?", [stamp])
            conn.execute("insert into web_sessions (digest, created_at, expires_at) "
                         "values (?, ?, ?)", [digest, stamp, expires_at])

    def session_live(self, digest: str) -> bool:
        """Whether a session with this digest exists and has not expired."""
        return self._one("select 1 from web_sessions where digest = ? and expires_at > ?",
                         [digest, now()]) is not None

    def remove_session(self, digest: str) -> bool:
        """End a session (logout); whether there was one."""
        with self._write() as conn:
            return conn.execute("delete from web_sessions where digest = ?",
                                [digest]).rowcount > 0
