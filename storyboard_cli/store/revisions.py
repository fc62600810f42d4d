"""Story revisions: every story a project has had, numbered from 1 (the project's `story` is the
newest), and the storyboard planned from each."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from storyboard_cli.store.base import Rows
from storyboard_cli.store.schema import now
from storyboard_cli.store.status import TaskStatus
from storyboard_cli.store.tasks import renders_only


class Revisions(Rows):
    """A project's story revisions."""

    def revise_story(self, project_id: int, story: str, by: str | None = None,
                     story_format: str = "prose", screenplay: str | None = None) -> int:
        """Record `story` (its format, and a screenplay's parsed form as JSON) as the project's
        newest revision, and so its story; its number."""
        with self._write() as c:
            return add_revision(c, project_id, story, by, now(), story_format, screenplay)

    def revisions(self, project_id: int) -> list[dict[str, Any]]:
        """The project's revisions, oldest first: number, when, by whom, the story's length in
        characters and its format (prose, fountain, fdx)."""
        return self._query(
            """select number, created_at, by, length(story) as chars, format
               from story_revisions
               where project_id = ? order by number""", [project_id])

    def revision_story(self, project_id: int, number: int) -> str | None:
        row = self._one("select story from story_revisions where project_id = ? and number = ?",
                        [project_id, number])
        return None if row is None else row["story"]

    def current_revision(self, project_id: int) -> int:
        (number,) = self.conn.execute(
            "select coalesce(max(number), 1) from story_revisions where project_id = ?",
            [project_id]).fetchone()
        return number


def add_revision(c: sqlite3.Connection, project_id: int, story: str, by: str | None,
                 stamp: str, story_format: str = "prose", screenplay: str | None = None) -> int:
    """In a write transaction: the next revision of a project's story, which becomes its
    story (with its format and parsed screenplay: what the next plan reads); returns its
    number."""
    (number,) = c.execute(
        "select coalesce(max(number), 0) + 1 from story_revisions where project_id = ?",
        [project_id]).fetchone()
    c.execute("""insert into story_revisions (project_id, number, story, format, screenplay,
                   created_at, by)
                 values (?, ?, ?, ?, ?, ?, ?)""",
              [project_id, number, story, story_format, screenplay, stamp, by])
    c.execute("update projects set story = ?, format = ?, screenplay = ? where id = ?",
              [story, story_format, screenplay, project_id])
    return number


def task_revision(task: dict[str, Any]) -> int | None:
    """The story revision a storyboard task planned (tasks made before revisions: 1); None
    for one that plans nothing (`generate --stale`)."""
    params = task["params"] if isinstance(task["params"], dict) else \
        json.loads(task["params"] or "{}")
    return None if renders_only(task) else int(params.get("revision", 1))


def revision_board(boards: list[dict[str, Any]], number: int) -> dict[str, Any] | None:
    """Of a project's storyboard tasks (newest first), the storyboard of revision `number`:
    the newest planned from it with a plan that was not cancelled."""
    return next((b for b in boards if b["planned"] and b["status"] != TaskStatus.CANCELLED
                 and task_revision(b) == number), None)
