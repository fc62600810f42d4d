"""Tasks and their state: a task is queued pending, runs, and ends succeeded, failed or
cancelled; `retry` reopens it. Its outcome is derived from its renders (settle), never
counted, so a job that runs twice cannot push a task into a wrong state."""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterable
from typing import Any

from storyboard_cli import ids
from storyboard_cli.store.base import Rows
from storyboard_cli.store.schema import now
from storyboard_cli.store.status import (
    LIVE,
    SETTLED,
    UNFINISHED,
    RenderStatus,
    TaskStatus,
    TaskType,
    sql_list,
)
from storyboard_contract.errors import NotFound, UsageError


class Tasks(Rows):
    """Tasks: recording, finding and listing them, and moving them from state to state."""

    def create_task(
        self,
        type: str,
        project_id: int,
        shot_id: int | None = None,
        params: dict[str, Any] | None = None,
        task_id: str | None = None,
    ) -> dict[str, Any]:
        """Record a pending task (once: a second call with the same task_id keeps the row)."""
        task_id = task_id or str(uuid.uuid4())
        with self.db.conn:
            self.db["tasks"].insert(
                {
                    "id": task_id,
                    "type": TaskType(type).value,
                    "status": TaskStatus.PENDING.value,
                    "project_id": project_id,
                    "shot_id": shot_id,
                    "params": json.dumps(params or {}),
                    "attempts": 0,
                    "created_at": now(),
                },
                ignore=True,
            )
        return self.get_task(task_id)

    def get_task(self, task_id: str) -> dict[str, Any]:
        row = self._one("select * from tasks where id = ?", [task_id])
        if row is None:
            raise NotFound(f"no task with id {task_id!r}")
        row["params"] = json.loads(row["params"] or "{}")
        return row

    def add_warnings(self, task_id: str, warnings: Iterable[str]) -> None:
        """What the task's user should be told, each line once however often it comes."""
        with self._write() as c:
            row = c.execute("select warnings from tasks where id = ?", [task_id]).fetchone()
            known = json.loads(row[0] or "[]") if row else []
            new = [w for w in dict.fromkeys(warnings) if w not in known]
            if new:
                c.execute("update tasks set warnings = ? where id = ?",
                          [json.dumps(known + new, ensure_ascii=False), task_id])

    def find_task(self, ref: str) -> str:
        """The id of the task a reference names: a whole id, or a prefix of at least
        ids.MIN_TASK_PREFIX characters that only one task's id starts with."""
        ref = ref.strip()
        if self._one("select 1 as x from tasks where id = ?", [ref]):
            return ref
        prefix = ref.lower()
        # Ids are letters, digits and '-', all below '~': a range scan of the primary key.
        matches = [] if len(prefix) < ids.MIN_TASK_PREFIX else [
            r["id"] for r in self._query(
                "select id from tasks where id >= ? and id < ? order by id limit 6",
                [prefix, prefix + "~"])]
        if not matches:
            short = len(prefix) < ids.MIN_TASK_PREFIX and prefix and " (a shortened id " \
                f"needs at least {ids.MIN_TASK_PREFIX} characters)"
            raise NotFound(f"no task with id {ref!r}{short or ''}")
        if len(matches) > 1:
            listed = ", ".join(matches[:5]) + (", …" if len(matches) > 5 else "")
            raise UsageError(f"task id {ref!r} is ambiguous: it starts the ids of "
                             f"{'more than 5' if len(matches) > 5 else len(matches)} tasks "
                             f"({listed}); give more of it")
        return matches[0]

    def list_tasks(self, project_id: int | None = None, limit: int | None = None
                   ) -> list[dict[str, Any]]:
        """Task rows, newest first, each with its renders `done` and in all (`total`)."""
        return self._query(
            f"""select t.*,
                 (select count(*) from renders r where r.task_id = t.id) as total,
                 (select count(*) from renders r where r.task_id = t.id
                  and r.status = {RenderStatus.DONE.sql}) as done
               from tasks t {'where t.project_id = ?' if project_id is not None else ''}
               order by t.created_at desc, t.rowid desc limit ?""",
            [*([project_id] if project_id is not None else []), -1 if limit is None else limit],
        )

    def progress(self, task_id: str) -> dict[str, int]:
        """How many of the task's renders are done, of how many."""
        row = self._one(
            f"""select count(*) as total,
                 coalesce(sum(status = {RenderStatus.DONE.sql}), 0) as done
               from renders where task_id = ?""",
            [task_id],
        )
        assert row is not None
        return {"done": row["done"], "total": row["total"]}

    def storyboards(self, project_id: int) -> list[dict[str, Any]]:
        """A project's storyboard tasks, newest first, each with whether it has a plan
        (`planned`) and at least one rendered frame (`framed`)."""
        rows = self._query(
            f"""select t.*, exists (select 1 from shots s where s.task_id = t.id) as planned,
                 exists (select 1 from shots s where s.task_id = t.id
                         and s.image_key is not null) as framed
               from tasks t where t.project_id = ? and t.type = {TaskType.STORYBOARD.sql}
               order by t.created_at desc, t.rowid desc""",
            [project_id],
        )
        for row in rows:
            row["params"] = json.loads(row["params"] or "{}")
        return rows

    def unfinished_tasks(self) -> list[dict[str, Any]]:
        return self._query(
            f"""select id, type, status, params, created_at from tasks
                where status in {sql_list(LIVE)}"""
        )

    # --- task state: every write is keyed by ids, so a job that runs twice writes once ------

    def start_task(self, task_id: str) -> str:
        """A job of the task began: it is running (a succeeded or cancelled task stays so).
        Returns the task's status: a job of a cancelled task does nothing."""
        with self._write() as c:
            return start(c, task_id, now())

    def succeed_task(self, task_id: str) -> None:
        """A task with nothing to render (generate --no-images) is done when planned."""
        with self._write() as c:
            _end(c, task_id, TaskStatus.SUCCEEDED, None)

    def fail_task(self, task_id: str, error: str) -> None:
        with self._write() as c:
            _end(c, task_id, TaskStatus.FAILED, error)

    def plan_retrying(self, task_id: str, state: str) -> None:
        """Planning failed in a way worth retrying and will run again: what the running task
        says meanwhile (cleared when it is planned or ends)."""
        with self._write() as c:
            c.execute(f"update tasks set state = ? where id = ? and status not in "
                      f"{sql_list(SETTLED)}", [state, task_id])

    def settle_task(self, task_id: str) -> str:
        with self._write() as c:
            return settle(c, task_id)

    def cancel_task(self, task_id: str) -> bool:
        """Cancel a pending or running task and its renders not done yet (their workers stop
        them at the next step); False when the task had already finished."""
        with self._write() as c:
            cancelled = c.execute(
                f"""update tasks set status = {TaskStatus.CANCELLED.sql}, error = null,
                     state = null, finished_at = ? where id = ? and status in {sql_list(LIVE)}""",
                [now(), task_id],
            ).rowcount
            c.execute(
                f"""update renders set status = {RenderStatus.CANCELLED.sql}, updated_at = ?
                   where task_id = ? and status in {sql_list(UNFINISHED)}""",
                [now(), task_id],
            )
        return bool(cancelled)

    def reopen_task(self, task_id: str, shot_ids: Iterable[int] = ()) -> None:
        """Make a failed or cancelled task runnable again (storyboard retry): these renders go
        back to pending; done renders are left alone."""
        stamp = now()
        with self._write() as c:
            c.executemany(
                f"""update renders set status = {RenderStatus.PENDING.sql}, step = 0,
                     error = null, claim = null, updated_at = ?
                   where task_id = ? and shot_id = ? and status != {RenderStatus.DONE.sql}""",
                [(stamp, task_id, shot_id) for shot_id in shot_ids],
            )
            c.execute(
                f"""update tasks set status = {TaskStatus.PENDING.sql}, error = null,
                     finished_at = null
                   where id = ? and status != {TaskStatus.SUCCEEDED.sql}""",
                [task_id],
            )


def shown_storyboard(boards: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Of a project's storyboard tasks (newest first, Tasks.storyboards), the one whose shots
    `show` lists and edits change: the newest with a plan that was not cancelled. While a new
    task is still being planned, the one before it; a plan-only task (--no-images) is shown,
    its frames to come. A task that renders the stale panels of a storyboard (`generate
    --stale`) plans nothing, so it is never the one shown."""
    return next((b for b in boards if b["planned"] and b["status"] != TaskStatus.CANCELLED),
                None)


def replanning(boards: list[dict[str, Any]]) -> dict[str, Any] | None:
    """A storyboard task newer than the one shown that is queued or planning a new shot list
    (generate, update): once planned, its plan is shown instead, so the shown one is not to be
    edited meanwhile."""
    shown = shown_storyboard(boards)
    for board in boards:
        if board is shown:
            return None
        if board["status"] in LIVE and not board["planned"] and not renders_only(board):
            return board
    return None


def renders_only(task: dict[str, Any]) -> bool:
    """A storyboard task that renders shots of a storyboard planned before (`generate
    --stale`), with no plan of its own."""
    params = task["params"] if isinstance(task["params"], dict) else \
        json.loads(task["params"] or "{}")
    return bool(params.get("board"))


def start(c: sqlite3.Connection, task_id: str, stamp: str) -> str:
    """In a write transaction: a job of the task began (see Tasks.start_task)."""
    c.execute(
        f"""update tasks set status = {TaskStatus.RUNNING.sql},
             started_at = coalesce(started_at, ?), attempts = attempts + 1, error = null,
             finished_at = null
           where id = ? and status not in {sql_list(SETTLED)}""",
        [stamp, task_id],
    )
    return _status(c, task_id)


def settle(c: sqlite3.Connection, task_id: str) -> str:
    """In a write transaction: derive a task's outcome from its renders once none is left to
    run; returns its status after it.

    Succeeded when every render is done; failed when the rest failed; otherwise unchanged
    (a cancelled task stays cancelled). Derived, never counted, so a repeated job cannot
    push a task into a wrong state.
    """
    total, done, failed, first_error = c.execute(
        f"""select count(*), coalesce(sum(status = {RenderStatus.DONE.sql}), 0),
             coalesce(sum(status = {RenderStatus.FAILED.sql}), 0),
             (select error from renders r2 join shots s on s.id = r2.shot_id
              where r2.task_id = ?1 and r2.status = {RenderStatus.FAILED.sql}
              order by s.idx limit 1)
           from renders where task_id = ?1""",
        [task_id],
    ).fetchone()
    if total and done == total:
        _end(c, task_id, TaskStatus.SUCCEEDED, None)
    elif total and done + failed == total:
        shots = "the shot" if total == 1 else f"{failed} of {total} shots"
        _end(c, task_id, TaskStatus.FAILED, f"{shots} failed: {first_error}")
    return _status(c, task_id)


def _end(c: sqlite3.Connection, task_id: str, status: TaskStatus, error: str | None) -> None:
    """The task ends (succeeded or failed) unless it is settled already."""
    c.execute(
        f"""update tasks set status = ?, error = ?, finished_at = ?, state = null
           where id = ? and status not in {sql_list(SETTLED)}""",
        [status.value, error, now(), task_id],
    )


def _status(c: sqlite3.Connection, task_id: str) -> str:
    row = c.execute("select status from tasks where id = ?", [task_id]).fetchone()
    return row[0] if row else "missing"
