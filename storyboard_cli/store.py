"""The SQLite store: projects, shots, tasks and per-shot renders.

Several worker processes write at once, so the database runs in WAL mode with a busy
timeout. Every write a job may repeat is keyed by ids (task id, shot index, shot id), so a
job that runs twice has the effect of running once.

Tables:
  projects  a story and its style
  tasks     one `storyboard` or `shot_generation` run (id = the RQ job id, a uuid4)
  shots     the shot list a storyboard task planned; image_key/url are the latest render
  renders   one row per (task, shot) render: status, diffusion step, result; a task's
            progress is derived from these rows, so it can never double-count
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import sqlite_utils

from storyboard_cli.errors import NotFound

TASK_TYPES = ("storyboard", "shot_generation")
TASK_STATUSES = ("pending", "running", "succeeded", "failed")


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


# --- migrations: an ordered list of small named functions, each applied once ---------------


def m001_projects(db: sqlite_utils.Database) -> None:
    db["projects"].create(
        {"id": int, "title": str, "story": str, "style": str, "created_at": str},
        pk="id",
        not_null={"title", "story", "created_at"},
    )
    db["projects"].create_index(["title"])


def m002_tasks(db: sqlite_utils.Database) -> None:
    db["tasks"].create(
        {
            "id": str,
            "type": str,
            "status": str,
            "project_id": int,
            "shot_id": int,
            "params": str,
            "error": str,
            "attempts": int,
            "created_at": str,
            "started_at": str,
            "finished_at": str,
        },
        pk="id",
        not_null={"type", "status", "project_id", "created_at"},
        foreign_keys=[("project_id", "projects", "id")],
    )
    db["tasks"].create_index(["project_id", "created_at"])
    db["tasks"].create_index(["status"])


def m003_shots(db: sqlite_utils.Database) -> None:
    db["shots"].create(
        {
            "id": int,
            "project_id": int,
            "task_id": str,
            "idx": int,
            "description": str,
            "prompt": str,
            "negative_prompt": str,
            "camera": str,
            "dialogue": str,
            "duration": float,
            "seed": int,
            "image_key": str,
            "image_url": str,
            "url_expires_at": str,
            "updated_at": str,
        },
        pk="id",
        not_null={"project_id", "task_id", "idx", "description", "prompt"},
        foreign_keys=[("project_id", "projects", "id"), ("task_id", "tasks", "id")],
    )
    # A planning job that runs twice inserts the same (task, index) rows: never duplicates.
    db["shots"].create_index(["task_id", "idx"], unique=True)
    db["shots"].create_index(["project_id"])


def m004_renders(db: sqlite_utils.Database) -> None:
    db["renders"].create(
        {
            "task_id": str,
            "shot_id": int,
            "status": str,
            "step": int,
            "steps": int,
            "seed": int,
            "image_key": str,
            "error": str,
            "updated_at": str,
        },
        pk=("task_id", "shot_id"),
        not_null={"status"},
        foreign_keys=[("task_id", "tasks", "id"), ("shot_id", "shots", "id")],
    )


MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [
    m001_projects,
    m002_tasks,
    m003_shots,
    m004_renders,
]


def migrate(db: sqlite_utils.Database) -> list[str]:
    """Apply pending migrations in order; returns the names applied now."""
    if "_migrations" not in db.table_names():
        db["_migrations"].create({"name": str, "applied_at": str}, pk="name", if_not_exists=True)
    done = {row["name"] for row in db["_migrations"].rows}
    applied = []
    for fn in MIGRATIONS:
        if fn.__name__ in done:
            continue
        with db.conn:
            fn(db)
            db["_migrations"].insert({"name": fn.__name__, "applied_at": now()}, ignore=True)
        applied.append(fn.__name__)
    return applied


def open_db(path: str | Path) -> sqlite_utils.Database:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), timeout=30, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout = 30000")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    db = sqlite_utils.Database(conn)
    migrate(db)
    return db


class Store:
    """Typed access to the store. One instance per process; not shared across forks."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.db = open_db(self.path)

    def close(self) -> None:
        self.db.conn.close()

    # --- projects --------------------------------------------------------------------------

    def create_project(self, title: str, story: str, style: str) -> dict[str, Any]:
        with self.db.conn:
            table = self.db["projects"].insert(
                {"title": title, "story": story, "style": style, "created_at": now()}
            )
        return self.get_project(table.last_pk)

    def get_project(self, project_id: int) -> dict[str, Any]:
        try:
            return self.db["projects"].get(project_id)
        except sqlite_utils.db.NotFoundError:
            raise NotFound(f"no project with id {project_id}") from None

    def find_project(self, ref: str) -> dict[str, Any]:
        """A project by integer id or exact title (the newest, if titles repeat)."""
        ref = ref.strip()
        if ref.isdigit():
            row = self._one("select * from projects where id = ?", [int(ref)])
            if row:
                return row
        row = self._one("select * from projects where title = ? order by id desc limit 1", [ref])
        if row is None:
            raise NotFound(f"no project with id or title {ref!r} (see `storyboard list`)")
        return row

    def list_projects(self) -> list[dict[str, Any]]:
        return list(
            self.db.query(
                """
                select p.id, p.title, p.style, p.created_at, length(p.story) as story_chars,
                  (select count(*) from shots s where s.task_id = (
                     select t.id from tasks t where t.project_id = p.id and t.type = 'storyboard'
                     order by t.created_at desc limit 1)) as shots,
                  (select t.status from tasks t where t.project_id = p.id
                     order by t.created_at desc limit 1) as last_task_status
                from projects p order by p.id
                """
            )
        )

    # --- tasks -----------------------------------------------------------------------------

    def create_task(
        self,
        type: str,
        project_id: int,
        shot_id: int | None = None,
        params: dict[str, Any] | None = None,
        task_id: str | None = None,
    ) -> dict[str, Any]:
        assert type in TASK_TYPES
        task_id = task_id or str(uuid.uuid4())
        with self.db.conn:
            self.db["tasks"].insert(
                {
                    "id": task_id,
                    "type": type,
                    "status": "pending",
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

    def _one(self, sql: str, params: Iterable[Any]) -> dict[str, Any] | None:
        rows = list(self.db.query(sql, list(params)))
        return rows[0] if rows else None

    # --- views: the shapes the CLI prints (DESIGN.md "Task object") ------------------------

    def task_shots(self, task: dict[str, Any]) -> list[dict[str, Any]]:
        """Shots a task is about: the ones it planned, or the one it re-renders."""
        if task["type"] == "shot_generation":
            rows = self.db.query("select * from shots where id = ?", [task["shot_id"]])
        else:
            rows = self.db.query("select * from shots where task_id = ? order by idx", [task["id"]])
        return [shot_view(r) for r in rows]

    def latest_storyboard_task(self, project_id: int) -> dict[str, Any] | None:
        """The newest storyboard task that succeeded, else the newest of any status."""
        row = self._one(
            """select * from tasks where project_id = ? and type = 'storyboard'
               order by status = 'succeeded' desc, created_at desc limit 1""",
            [project_id],
        )
        if row:
            row["params"] = json.loads(row["params"] or "{}")
        return row

    def progress(self, task_id: str) -> dict[str, int]:
        row = self._one(
            """select count(*) as total, coalesce(sum(status = 'done'), 0) as done
               from renders where task_id = ?""",
            [task_id],
        )
        assert row is not None
        return {"done": row["done"], "total": row["total"]}

    def task_view(self, task_id: str) -> dict[str, Any]:
        task = self.get_task(task_id)
        return {
            "id": task["id"],
            "type": task["type"],
            "status": task["status"],
            "project_id": task["project_id"],
            "shot_id": task["shot_id"],
            "progress": self.progress(task_id),
            "error": task["error"],
            "created_at": task["created_at"],
            "started_at": task["started_at"],
            "finished_at": task["finished_at"],
            "shots": self.task_shots(task),
        }

    def project_view(self, project_id: int) -> dict[str, Any]:
        project = self.get_project(project_id)
        task = self.latest_storyboard_task(project_id)
        return {
            "id": project["id"],
            "title": project["title"],
            "style": project["style"],
            "story": project["story"],
            "created_at": project["created_at"],
            "task": None if task is None else {
                "id": task["id"], "status": task["status"], "error": task["error"],
                "progress": self.progress(task["id"]),
                "created_at": task["created_at"], "finished_at": task["finished_at"],
            },
            "shots": [] if task is None else self.task_shots(task),
        }


def shot_view(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "index": row["idx"],
        "description": row["description"],
        "prompt": row["prompt"],
        "camera": row["camera"],
        "dialogue": row["dialogue"],
        "duration": row["duration"],
        "seed": row["seed"],
        "image_key": row["image_key"],
        "image_url": row["image_url"],
        "url_expires_at": row["url_expires_at"],
    }
