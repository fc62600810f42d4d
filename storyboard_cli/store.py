"""The SQLite store: projects, shots, tasks and per-shot renders.

Several worker processes write at once, so the database runs in WAL mode with a busy
timeout. Every write a job may repeat is keyed by ids (task id, shot index, shot id), so a
job that runs twice has the effect of running once.

Tables:
  projects    a story, its style and its frame aspect
  characters  a project's cast: name + visual description (from the planner, or the user's)
  tasks       one `storyboard` or `shot_generation` run (id = the RQ job id, a uuid4); a
              storyboard task keeps the key of the shot-list script the daemon uploaded
  shots       the shot list a storyboard task planned, with what a storyboard artist works
              with (camera, action, dialogue, characters, duration, prompt, seed);
              image_key/url are the latest render
  renders     one row per (task, shot) render: status, diffusion step, result; a task's
              progress is derived from these rows, so it can never double-count. `claim`
              is the RQ job that renders it (a render job takes a window of its task's
              waiting shots, tasks/jobs.py): no two jobs ever render one shot at once
  removed_projects  the ids (and titles) of removed projects: an id is never given twice, so
              a script's `show 5` never meets another project, nor its bucket prefix

Shot dialogue ([{"speaker", "line"}]) and characters ([name]) are JSON text columns.
"""

from __future__ import annotations

import json
import sqlite3
import sys
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from storyboard_cli import ids
from storyboard_contract.config import ImagesConfig
from storyboard_contract.errors import NotFound, UsageError
from storyboard_contract.frames import DEFAULT_ASPECT

if TYPE_CHECKING:
    import sqlite_utils

# (width, height) of a frame at an aspect: the project view reports its frame size.
FrameSize = Callable[[str], tuple[int, int]]


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


def _database(conn: sqlite3.Connection) -> sqlite_utils.Database:
    # Plugins (sqlite-utils' own entry points) are never used here; finding them costs
    # ~20 ms of scanning installed packages.
    return _import_sqlite_utils().Database(conn, execute_plugins=False)

TASK_TYPES = ("storyboard", "shot_generation")
TASK_STATUSES = ("pending", "running", "succeeded", "failed", "cancelled")
# A render is `retrying` between a failed attempt and the next one (error holds why).
RENDER_STATUSES = ("pending", "running", "retrying", "done", "failed", "cancelled")
# No job outcome changes a task in these states; `retry` reopens a cancelled one.
SETTLED = "('succeeded', 'cancelled')"
# A render in these states is still to be rendered by the job that claimed it.
UNFINISHED = ("pending", "running", "retrying")


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


def m005_project_aspect(db: sqlite_utils.Database) -> None:
    # Projects made before aspects existed were rendered square.
    db["projects"].add_column("aspect", str, not_null_default="1:1")


def m006_shot_board_fields(db: sqlite_utils.Database) -> None:
    """What a storyboard artist works with; dialogue text becomes [{"speaker", "line"}]."""
    shots = db["shots"]
    shots.add_column("action", str, not_null_default="")
    shots.add_column("characters", str, not_null_default="[]")
    shots.add_column("image_prompt", str)
    shots.add_column("width", int)
    shots.add_column("height", int)
    db.execute(
        """update shots set dialogue = case when coalesce(dialogue, '') = '' then '[]'
             else json_array(json_object('speaker', null, 'line', dialogue)) end"""
    )


def m007_characters(db: sqlite_utils.Database) -> None:
    db["characters"].create(
        {
            "project_id": int,
            "name": str,
            "description": str,
            "source": str,  # planner | user: a user's description is never replaced
            "position": int,
            "updated_at": str,
        },
        pk=("project_id", "name"),
        not_null={"description", "source", "position"},
        foreign_keys=[("project_id", "projects", "id")],
    )


def m008_task_script(db: sqlite_utils.Database) -> None:
    for column in ("script_key", "script_url", "script_url_expires_at"):
        db["tasks"].add_column(column, str)


def m009_removed_projects(db: sqlite_utils.Database) -> None:
    db["removed_projects"].create(
        {"id": int, "title": str, "removed_at": str, "objects": str},  # deleted | kept
        pk="id", not_null={"title", "removed_at", "objects"},
    )


def m010_render_claims(db: sqlite_utils.Database) -> None:
    db["renders"].add_column("claim", str)


MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [
    m001_projects,
    m002_tasks,
    m003_shots,
    m004_renders,
    m005_project_aspect,
    m006_shot_board_fields,
    m007_characters,
    m008_task_script,
    m009_removed_projects,
    m010_render_claims,
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


def connect(path: str | Path, create: bool = True) -> sqlite3.Connection:
    """A connection to a store in WAL mode with every migration applied.

    create=False and no file yet: an empty store in memory, and no file is written.
    """
    path = Path(path)
    if not create and not path.exists():
        conn = sqlite3.connect(":memory:", check_same_thread=False)
        migrate(_database(conn))
        return conn
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), timeout=30, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout = 30000")
    conn.execute("PRAGMA recursive_triggers = on")  # as sqlite_utils.Database sets it
    if not _ready(conn):
        # Switching to WAL and migrating are not safe against a second process doing the
        # same on a new file (SQLite reports "database is locked" without waiting): one at
        # a time.
        with _exclusive(path.with_name(path.name + ".lock")):
            conn.execute("PRAGMA journal_mode = WAL")
            migrate(_database(conn))
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


def open_db(path: str | Path) -> sqlite_utils.Database:
    return _database(connect(path))


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


class Store:
    """Typed access to the store. One instance per process; not shared across forks.

    frame_size gives the frame size the project view reports for an aspect (the configured
    ``[images]`` budget; the defaults' without one).
    """

    def __init__(
        self, path: str | Path, create: bool = True, frame_size: FrameSize | None = None
    ) -> None:
        self.path = Path(path)
        self.conn = connect(self.path, create)
        self.frame_size = frame_size or ImagesConfig().frame_size
        self._db: sqlite_utils.Database | None = None

    @property
    def db(self) -> sqlite_utils.Database:
        """sqlite_utils on the same connection, for the writes that use its helpers."""
        if self._db is None:
            self._db = _database(self.conn)
        return self._db

    def close(self) -> None:
        self.conn.close()

    # --- projects --------------------------------------------------------------------------

    def create_project(
        self, title: str, story: str, style: str, aspect: str = DEFAULT_ASPECT
    ) -> dict[str, Any]:
        with self._write() as c:
            # The next id after every one given so far, removed projects' included.
            (project_id,) = c.execute(
                """select max(coalesce((select max(id) from projects), 0),
                              coalesce((select max(id) from removed_projects), 0)) + 1"""
            ).fetchone()
            c.execute(
                """insert into projects (id, title, story, style, aspect, created_at)
                   values (?, ?, ?, ?, ?, ?)""",
                [project_id, title, story, style, aspect, now()],
            )
        return self.get_project(project_id)

    def get_project(self, project_id: int) -> dict[str, Any]:
        row = self._one("select * from projects where id = ?", [project_id]) \
            if ids.in_range(project_id) else None
        if row is None:
            raise NotFound(f"no project with id {project_id}{self._removed(project_id)}")
        return row

    def _removed(self, project_id: int | None) -> str:
        """ ", removed on DATE" for the id of a removed project, else "". """
        row = None if project_id is None or not ids.in_range(project_id) else self._one(
            "select removed_at from removed_projects where id = ?", [project_id])
        return f" (it was removed on {row['removed_at'][:10]})" if row else ""

    def find_project(self, ref: str) -> dict[str, Any]:
        """A project by integer id or exact title; a title several projects have is an error
        naming their ids."""
        ref = ref.strip()
        project_id = ids.as_row_id(ref)
        if project_id is not None:
            row = self._one("select * from projects where id = ?", [project_id])
            if row:
                return row
        rows = self._query("select * from projects where title = ? order by id", [ref])
        if not rows:
            removed = self._removed(project_id)
            raise NotFound(f"no project with id or title {ref!r}"
                           + (removed or " (see `storyboard list`)"))
        if len(rows) > 1:
            raise UsageError(
                f"{len(rows)} projects are titled {ref!r}: ids "
                f"{', '.join(str(r['id']) for r in rows)}; name one by its id "
                "(or tell them apart: storyboard rename ID TITLE)"
            )
        return rows[0]

    def rename_project(self, project_id: int, title: str) -> None:
        with self._write() as c:
            c.execute("update projects set title = ? where id = ?", [title, project_id])

    def set_story(self, project_id: int, story: str) -> None:
        with self._write() as c:
            c.execute("update projects set story = ? where id = ?", [story, project_id])

    def project_object_keys(self, project_id: int) -> list[str]:
        """Every bucket object the store knows the project made: each render's image and each
        storyboard task's shot-list script."""
        rows = self.conn.execute(
            """select r.image_key from renders r join tasks t on t.id = r.task_id
                 where t.project_id = ?1 and r.image_key is not null
               union select image_key from shots where project_id = ?1 and image_key is not null
               union select script_key from tasks where project_id = ?1 and script_key is not null
               order by 1""",
            [project_id],
        )
        return [key for (key,) in rows]

    def remove_project(self, project_id: int, objects: str) -> dict[str, int]:
        """Delete a project's rows (renders, shots, tasks, cast, project) and remember its id
        and title; objects ("deleted" or "kept") records what became of its bucket objects.
        Returns how many tasks and shots went."""
        project = self.get_project(project_id)
        with self._write() as c:
            counts = {
                "tasks": c.execute("select count(*) from tasks where project_id = ?",
                                   [project_id]).fetchone()[0],
                "shots": c.execute("select count(*) from shots where project_id = ?",
                                   [project_id]).fetchone()[0],
            }
            c.execute("""delete from renders where task_id in
                           (select id from tasks where project_id = ?)""", [project_id])
            for table in ("shots", "tasks", "characters"):
                c.execute(f"delete from {table} where project_id = ?", [project_id])
            c.execute("delete from projects where id = ?", [project_id])
            c.execute("insert into removed_projects (id, title, removed_at, objects) "
                      "values (?, ?, ?, ?)", [project_id, project["title"], now(), objects])
        return counts

    def list_projects(self) -> list[dict[str, Any]]:
        return self._query(
            """
            select p.id, p.title, p.style, p.aspect, p.created_at,
              length(p.story) as story_chars,
              (select count(*) from shots s where s.task_id = (
                 select t.id from tasks t where t.project_id = p.id and t.type = 'storyboard'
                   and t.status != 'cancelled'
                   and exists (select 1 from shots s2 where s2.task_id = t.id)
                 order by t.created_at desc, t.rowid desc limit 1)) as shots,
              (select t.status from tasks t where t.project_id = p.id
                 order by t.created_at desc, t.rowid desc limit 1) as last_task_status
            from projects p order by p.id
            """
        )

    # --- the cast ----------------------------------------------------------------------------

    def cast(self, project_id: int) -> list[dict[str, Any]]:
        """A project's characters in the order they were first met."""
        return self._query(
            """select name, description, source from characters where project_id = ?
               order by position, name""",
            [project_id],
        )

    def set_cast(
        self, project_id: int, descriptions: dict[str, str], remove: Iterable[str] = ()
    ) -> None:
        """The user's descriptions (new names are added at the end) and removals, at once."""
        stamp = now()
        with self._write() as c:
            c.executemany("delete from characters where project_id = ? and name = ?",
                          [(project_id, name) for name in remove])
            _add_characters(c, project_id, descriptions.items(), "user", stamp)

    def shot_cast(self, shot: dict[str, Any]) -> list[dict[str, Any]]:
        """The characters a shot shows, in the shot's order, with their current descriptions
        (a name no longer in the cast is left out)."""
        cast = {c["name"]: c for c in self.cast(shot["project_id"])}
        return [cast[name] for name in json.loads(shot["characters"]) if name in cast]

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

    def _query(self, sql: str, params: Iterable[Any] = ()) -> list[dict[str, Any]]:
        """Rows as dicts (as sqlite_utils' Database.query gives them)."""
        cursor = self.conn.execute(sql, list(params))
        keys = [d[0] for d in cursor.description]
        return [dict(zip(keys, row, strict=True)) for row in cursor]

    def _one(self, sql: str, params: Iterable[Any]) -> dict[str, Any] | None:
        rows = self._query(sql, params)
        return rows[0] if rows else None

    # --- task state: every write is keyed by ids, so a job that runs twice writes once ------

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction holding the write lock from its start: a read-then-write in it
        cannot fail halfway with "database is locked" while other workers write."""
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.rollback()
            raise
        conn.commit()

    def start_task(self, task_id: str) -> str:
        """A job of the task began: it is running (a succeeded or cancelled task stays so).
        Returns the task's status: a job of a cancelled task does nothing."""
        with self._write() as c:
            return _start(c, task_id, now())

    def start_window(self, task_id: str, shot_id: int, job_id: str, size: int
                     ) -> tuple[str, list[int]]:
        """A render job (job_id, of shot_id) began: claim what it renders now, in one
        transaction, so that no two jobs claim one shot. That is its own shot unless done,
        cancelled or claimed by another job (which answers for it), and the shots it claimed
        before and did not finish (it is a retry, or a rerun after its worker died). A job
        that starts afresh also claims the task's next waiting unclaimed shots, up to `size`
        in all; a retry keeps to its window, so no shot joins it with fewer retries left.
        Returns the task's status (a job of a cancelled task does nothing) and the claimed
        shots in order."""
        stamp = now()
        with self._write() as c:
            status = _start(c, task_id, stamp)
            if status == "cancelled":
                return status, []
            own = c.execute("select status, claim from renders where task_id = ? and shot_id = ?",
                            [task_id, shot_id]).fetchone()
            # A render another job claimed is that job's to answer for, failed or not: a
            # shot refused or out of retries in a window is not rendered again by its own job
            # (`storyboard retry` clears the claims of what it queues again).
            mine = own is not None and own[0] not in ("done", "cancelled") and (
                own[1] in (None, job_id))
            if mine:
                c.execute("update renders set claim = ? where task_id = ? and shot_id = ?",
                          [job_id, task_id, shot_id])
            if mine and own[0] in ("pending", "failed"):
                c.execute(
                    """update renders set claim = ?1 where rowid in (
                         select r.rowid from renders r join shots s on s.id = r.shot_id
                         where r.task_id = ?2 and r.status = 'pending' and r.claim is null
                         order by s.idx limit ?3)""",
                    [job_id, task_id, size - 1],
                )
            c.execute(
                f"""update renders set status = 'running', step = 0, updated_at = ?
                   where task_id = ? and claim = ? and (status in {UNFINISHED}
                     or (status = 'failed' and shot_id = ?))""",
                [stamp, task_id, job_id, shot_id],
            )
            claimed = [r[0] for r in c.execute(
                """select r.shot_id from renders r join shots s on s.id = r.shot_id
                   where r.task_id = ? and r.claim = ? and r.status = 'running'
                   order by s.idx""", [task_id, job_id])]
        return status, claimed

    def job_renders(self, task_id: str, shot_id: int, job_id: str) -> list[int]:
        """The unfinished renders a render job answers for: those it claimed, and its own
        shot while nobody has claimed it (the job failed before it could)."""
        return [r["shot_id"] for r in self._query(
            f"""select shot_id from renders where task_id = ? and status in {UNFINISHED}
               and (claim = ? or (shot_id = ? and claim is null))""",
            [task_id, job_id, shot_id])]

    def save_plan(
        self,
        task_id: str,
        project_id: int,
        shots: list[dict[str, Any]],
        with_renders: bool,
        characters: Iterable[dict[str, Any]] = (),
        script: dict[str, Any] | None = None,
    ) -> None:
        """Store a planned shot list (and a pending render per shot) in one transaction, with
        the characters it met (added to the project's cast; known names keep their
        description) and the uploaded script's key and link ({"key", "url", "expires_at"}).

        Rows are keyed by (task, index): saving the same plan again adds nothing.
        """
        stamp = now()
        with self._write() as c:
            c.executemany(
                """insert into shots (project_id, task_id, idx, description, action, prompt,
                     negative_prompt, camera, dialogue, characters, duration, seed, updated_at)
                   values (:project_id, :task_id, :idx, :description, :action, :prompt,
                     :negative_prompt, :camera, :dialogue, :characters, :duration, :seed,
                     :updated_at)
                   on conflict (task_id, idx) do nothing""",
                [{"action": "", **s, "project_id": project_id, "task_id": task_id,
                  "dialogue": json.dumps(s.get("dialogue") or [], ensure_ascii=False),
                  "characters": json.dumps(s.get("characters") or [], ensure_ascii=False),
                  "updated_at": stamp}
                 for s in shots],
            )
            _add_characters(c, project_id,
                            [(ch["name"], ch["description"]) for ch in characters], "planner",
                            stamp)
            if script is not None:
                c.execute(
                    """update tasks set script_key = ?, script_url = ?,
                         script_url_expires_at = ? where id = ?""",
                    [script["key"], script["url"], script["expires_at"], task_id],
                )
            if with_renders:
                # A task cancelled while it was being planned keeps its plan, not to run.
                c.execute(
                    """insert into renders (task_id, shot_id, status, step, steps, seed, updated_at)
                       select task_id, id,
                         iif((select status from tasks where id = ?2) = 'cancelled',
                             'cancelled', 'pending'), 0, 0, seed, ?1
                       from shots where task_id = ?2
                       on conflict do nothing""",
                    [stamp, task_id],
                )

    def plan_stored(self, task_id: str) -> bool:
        row = self._one("select 1 as x from shots where task_id = ? limit 1", [task_id])
        return row is not None

    def add_render(self, task_id: str, shot_id: int, seed: int) -> None:
        """The one render of a shot_generation task (kept if it exists)."""
        with self._write() as c:
            c.execute(
                """insert into renders (task_id, shot_id, status, step, steps, seed, updated_at)
                   values (?, ?, 'pending', 0, 0, ?, ?) on conflict do nothing""",
                [task_id, shot_id, seed, now()],
            )

    def get_shot(self, shot_id: int) -> dict[str, Any]:
        row = self._one("select * from shots where id = ?", [shot_id]) \
            if ids.in_range(shot_id) else None
        if row is None:
            raise NotFound(f"no shot with id {shot_id} (see `storyboard show PROJECT`)")
        return row

    def get_render(self, task_id: str, shot_id: int) -> dict[str, Any] | None:
        return self._one(
            "select * from renders where task_id = ? and shot_id = ?", [task_id, shot_id]
        )

    def task_renders(self, task_id: str) -> list[dict[str, Any]]:
        """A task's renders in shot order, with the shot's index."""
        return self._query(
            """select r.*, s.idx from renders r join shots s on s.id = r.shot_id
               where r.task_id = ? order by s.idx""",
            [task_id],
        )

    def render_step(self, task_id: str, shot_id: int, step: int, steps: int) -> bool:
        """Record a running render's step; False when the render was cancelled meanwhile
        (the worker then stops it)."""
        with self._write() as c:
            updated = c.execute(
                """update renders set step = ?, steps = ?, updated_at = ?
                   where task_id = ? and shot_id = ? and status = 'running'""",
                [step, steps, now(), task_id, shot_id],
            ).rowcount
            if updated:
                return True
            row = c.execute("select status from renders where task_id = ? and shot_id = ?",
                            [task_id, shot_id]).fetchone()
        return row is None or row[0] != "cancelled"

    def render_retrying(self, task_id: str, shot_id: int, error: str) -> None:
        with self._write() as c:
            c.execute(
                """update renders set status = 'retrying', error = ?, updated_at = ?
                   where task_id = ? and shot_id = ? and status not in ('done', 'cancelled')""",
                [error, now(), task_id, shot_id],
            )

    def finish_render(
        self,
        task_id: str,
        shot_id: int,
        image_key: str,
        image_url: str,
        url_expires_at: str,
        seed: int,
        prompt: str | None = None,
        image_prompt: str | None = None,
        size: tuple[int, int] | None = None,
    ) -> str:
        """Record a rendered image (of `size`, rendered from `image_prompt`; `prompt`: a
        regen-shot's new content prompt); returns the task's status after it.

        The shot shows the newest task's image: a late duplicate of an older render never
        replaces the image of a newer regen-shot.
        """
        width, height = size or (None, None)
        stamp = now()
        with self._write() as c:
            c.execute(
                """update renders set status = 'done', step = max(step, steps), seed = ?,
                     image_key = ?, error = null, updated_at = ?
                   where task_id = ? and shot_id = ?""",
                [seed, image_key, stamp, task_id, shot_id],
            )
            c.execute(
                """update shots set image_key = ?, image_url = ?, url_expires_at = ?, seed = ?,
                     prompt = coalesce(?, prompt), image_prompt = ?, width = ?, height = ?,
                     updated_at = ?
                   where id = ? and not exists (
                     select 1 from renders r join tasks t on t.id = r.task_id
                     where r.shot_id = ? and r.status = 'done' and r.task_id != ?
                       and (t.created_at, t.rowid)
                           > (select created_at, rowid from tasks where id = ?))""",
                [image_key, image_url, url_expires_at, seed, prompt, image_prompt, width, height,
                 stamp, shot_id, shot_id, task_id, task_id],
            )
            return self._settle(c, task_id)

    def fail_render(self, task_id: str, shot_id: int, error: str) -> str:
        """A render that will not be tried again; returns the task's status after it."""
        with self._write() as c:
            c.execute(
                """update renders set status = 'failed', error = ?, updated_at = ?
                   where task_id = ? and shot_id = ? and status not in ('done', 'cancelled')""",
                [error, now(), task_id, shot_id],
            )
            return self._settle(c, task_id)

    def settle_task(self, task_id: str) -> str:
        with self._write() as c:
            return self._settle(c, task_id)

    def _settle(self, c: sqlite3.Connection, task_id: str) -> str:
        """Derive a task's outcome from its renders once none is left to run.

        Succeeded when every render is done; failed when the rest failed; otherwise unchanged
        (a cancelled task stays cancelled). Derived, never counted, so a repeated job cannot
        push a task into a wrong state.
        """
        total, done, failed, first_error = c.execute(
            """select count(*), coalesce(sum(status = 'done'), 0),
                 coalesce(sum(status = 'failed'), 0),
                 (select error from renders r2 join shots s on s.id = r2.shot_id
                  where r2.task_id = ?1 and r2.status = 'failed' order by s.idx limit 1)
               from renders where task_id = ?1""",
            [task_id],
        ).fetchone()
        if total and done == total:
            c.execute(
                f"""update tasks set status = 'succeeded', error = null, finished_at = ?
                   where id = ? and status not in {SETTLED}""",
                [now(), task_id],
            )
        elif total and done + failed == total:
            shots = "the shot" if total == 1 else f"{failed} of {total} shots"
            c.execute(
                f"""update tasks set status = 'failed', error = ?, finished_at = ?
                   where id = ? and status not in {SETTLED}""",
                [f"{shots} failed: {first_error}", now(), task_id],
            )
        row = c.execute("select status from tasks where id = ?", [task_id]).fetchone()
        return row[0] if row else "missing"

    def succeed_task(self, task_id: str) -> None:
        """A task with nothing to render (generate --no-images) is done when planned."""
        with self._write() as c:
            c.execute(
                f"""update tasks set status = 'succeeded', error = null, finished_at = ?
                   where id = ? and status not in {SETTLED}""",
                [now(), task_id],
            )

    def fail_task(self, task_id: str, error: str) -> None:
        with self._write() as c:
            c.execute(
                f"""update tasks set status = 'failed', error = ?, finished_at = ?
                   where id = ? and status not in {SETTLED}""",
                [error, now(), task_id],
            )

    def cancel_task(self, task_id: str) -> bool:
        """Cancel a pending or running task and its renders not done yet (their workers stop
        them at the next step); False when the task had already finished."""
        with self._write() as c:
            cancelled = c.execute(
                """update tasks set status = 'cancelled', error = null, finished_at = ?
                   where id = ? and status in ('pending', 'running')""",
                [now(), task_id],
            ).rowcount
            c.execute(
                """update renders set status = 'cancelled', updated_at = ?
                   where task_id = ? and status in ('pending', 'running', 'retrying')""",
                [now(), task_id],
            )
        return bool(cancelled)

    def reopen_task(self, task_id: str, shot_ids: Iterable[int] = ()) -> None:
        """Make a failed or cancelled task runnable again (storyboard retry): these renders go
        back to pending; done renders are left alone."""
        stamp = now()
        with self._write() as c:
            c.executemany(
                """update renders set status = 'pending', step = 0, error = null, claim = null,
                     updated_at = ? where task_id = ? and shot_id = ? and status != 'done'""",
                [(stamp, task_id, shot_id) for shot_id in shot_ids],
            )
            c.execute(
                """update tasks set status = 'pending', error = null, finished_at = null
                   where id = ? and status != 'succeeded'""",
                [task_id],
            )

    def set_shot_link(self, shot_id: int, image_url: str, url_expires_at: str) -> None:
        with self._write() as c:
            c.execute(
                "update shots set image_url = ?, url_expires_at = ? where id = ?",
                [image_url, url_expires_at, shot_id],
            )

    def set_script_link(self, task_id: str, url: str, url_expires_at: str) -> None:
        with self._write() as c:
            c.execute(
                "update tasks set script_url = ?, script_url_expires_at = ? where id = ?",
                [url, url_expires_at, task_id],
            )

    def unfinished_tasks(self) -> list[dict[str, Any]]:
        return self._query(
            """select id, type, status, created_at from tasks
               where status in ('pending', 'running')"""
        )

    # --- views: the shapes the CLI prints (DESIGN.md "Task object") ------------------------

    def task_shots(self, task: dict[str, Any]) -> list[dict[str, Any]]:
        """Shots a task is about: the ones it planned, or the one it re-renders."""
        if task["type"] == "shot_generation":
            rows = self._query("select * from shots where id = ?", [task["shot_id"]])
        else:
            rows = self._query("select * from shots where task_id = ? order by idx", [task["id"]])
        return [shot_view(r) for r in rows]

    def storyboards(self, project_id: int) -> list[dict[str, Any]]:
        """A project's storyboard tasks, newest first, each with whether it has a plan
        (`planned`) and at least one rendered frame (`framed`)."""
        rows = self._query(
            """select t.*, exists (select 1 from shots s where s.task_id = t.id) as planned,
                 exists (select 1 from shots s where s.task_id = t.id
                         and s.image_key is not null) as framed
               from tasks t where t.project_id = ? and t.type = 'storyboard'
               order by t.created_at desc, t.rowid desc""",
            [project_id],
        )
        for row in rows:
            row["params"] = json.loads(row["params"] or "{}")
        return rows

    def find_shot(self, ref: ids.ShotRef) -> dict[str, Any]:
        """The shot a reference names: by id, or by number in the storyboard `show` lists.
        A shot of any other storyboard of its project (an older one, superseded, or a
        cancelled one) is refused: re-rendering it would change nothing `show` shows."""
        if ref.shot_id is not None:
            shot = self.get_shot(ref.shot_id)
            project_id = shot["project_id"]
        else:
            project_id = self.find_project(ref.project or "")["id"]
        boards = self.storyboards(project_id)
        current = shown_storyboard(boards)
        if ref.shot_id is None:
            if current is None:
                raise NotFound(f"project {project_id} has no storyboard yet: "
                               f"storyboard generate {project_id}")
            shot = self._one("select * from shots where task_id = ? and idx = ?",
                             [current["id"], (ref.number or 0) - 1])
            if shot is None:
                (count,) = self.conn.execute("select count(*) from shots where task_id = ?",
                                             [current["id"]]).fetchone()
                raise NotFound(f"project {project_id}'s storyboard has {count} shots; no shot "
                               f"{ref.number} (see `storyboard show {project_id}`)")
            return shot
        if current is None or shot["task_id"] != current["id"]:
            board = next(b for b in boards if b["id"] == shot["task_id"])
            kind = "a cancelled" if board["status"] == "cancelled" else "an older"
            now_shown = (f"the one `storyboard show {project_id}` lists is task "
                         f"{current['id'][:8]}'s" if current else "it has no other")
            raise UsageError(
                f"shot {shot['id']} is shot {shot['idx'] + 1} of {kind} storyboard of project "
                f"{project_id} (task {board['id'][:8]}); {now_shown}: name its shots as "
                f"{project_id}/NUMBER"
            )
        return shot

    def list_tasks(self, project_id: int | None = None, limit: int | None = None
                   ) -> list[dict[str, Any]]:
        """Task summaries (the task object without its shots), newest first."""
        rows = self._query(
            f"""select t.*,
                 (select count(*) from renders r where r.task_id = t.id) as total,
                 (select count(*) from renders r where r.task_id = t.id
                  and r.status = 'done') as done
               from tasks t {'where t.project_id = ?' if project_id is not None else ''}
               order by t.created_at desc, t.rowid desc limit ?""",
            [*([project_id] if project_id is not None else []), -1 if limit is None else limit],
        )
        return [task_summary(r, {"done": r["done"], "total": r["total"]}) for r in rows]

    def progress(self, task_id: str) -> dict[str, int]:
        row = self._one(
            """select count(*) as total, coalesce(sum(status = 'done'), 0) as done
               from renders where task_id = ?""",
            [task_id],
        )
        assert row is not None
        return {"done": row["done"], "total": row["total"]}

    def task_view(self, task_id: str) -> dict[str, Any]:
        """The task object (DESIGN.md "Task object", plus `no_images`)."""
        task = self.get_task(task_id)
        return {**task_summary(task, self.progress(task_id)), "shots": self.task_shots(task)}

    def project_view(self, project_id: int, task_id: str | None = None) -> dict[str, Any]:
        """The project object: the project, its frame and cast; its newest storyboard task
        (`task`: what is happening now); the storyboard it shows (`shots_task`, its shots and
        shot-list script): the newest one with a plan that was not cancelled; and, when those
        shots have no frames yet, the newest other storyboard that has some (`frames_task`).

        With task_id, that storyboard task is both `task` and `shots_task`.
        """
        project = self.get_project(project_id)
        boards = self.storyboards(project_id)
        if task_id is not None:
            chosen = [b for b in boards if b["id"] == task_id]
            if not chosen:
                raise UsageError(f"task {task_id} is not a storyboard task of project "
                                 f"{project_id} (see `storyboard tasks {project_id}`)")
            newest = shown = chosen[0]
            frames = None
        else:
            newest = boards[0] if boards else None
            shown = shown_storyboard(boards)
            frames = None if shown is not None and shown["framed"] else next(
                (b for b in boards if b["framed"] and b is not shown), None)
        width, height = self.frame_size(project["aspect"])
        shots = [] if shown is None else self.task_shots(shown)
        progress: dict[str, dict[str, int]] = {}

        def summary(task: dict[str, Any] | None) -> dict[str, Any] | None:
            if task is None:
                return None
            if task["id"] not in progress:
                progress[task["id"]] = self.progress(task["id"])
            return task_summary(task, progress[task["id"]])

        return {
            "id": project["id"],
            "title": project["title"],
            "story_text": project["story"],
            "style": project["style"],
            "aspect": project["aspect"],
            "width": width,
            "height": height,
            "created_at": project["created_at"],
            "cast": cast_view(self.cast(project_id), shots),
            "script_key": shown and shown["script_key"],
            "script_url": shown and shown["script_url"],
            "script_url_expires_at": shown and shown["script_url_expires_at"],
            "task": summary(newest),
            "shots_task": summary(shown),
            "frames_task": summary(frames),
            "shots": shots,
        }


def _start(c: sqlite3.Connection, task_id: str, stamp: str) -> str:
    c.execute(
        """update tasks set status = 'running', started_at = coalesce(started_at, ?),
           attempts = attempts + 1, error = null, finished_at = null
           where id = ? and status not in ('succeeded', 'cancelled')""",
        [stamp, task_id],
    )
    row = c.execute("select status from tasks where id = ?", [task_id]).fetchone()
    return row[0] if row else "missing"


def shown_storyboard(boards: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Of a project's storyboard tasks (newest first), the one whose shots `show` lists: the
    newest with a plan that was not cancelled. While a new task is still being planned, the
    one before it; a plan-only task (--no-images) is shown, its frames to come."""
    return next((b for b in boards if b["planned"] and b["status"] != "cancelled"), None)


def task_summary(task: dict[str, Any], progress: dict[str, int]) -> dict[str, Any]:
    """The task object without its shots, plus whether it renders no images (a storyboard
    task of `generate --no-images`): `storyboard tasks` and the project object's tasks."""
    params = task["params"] if isinstance(task["params"], dict) else \
        json.loads(task["params"] or "{}")
    return {
        "id": task["id"],
        "type": task["type"],
        "status": task["status"],
        "project_id": task["project_id"],
        "shot_id": task["shot_id"],
        "progress": progress,
        "error": task["error"],
        "created_at": task["created_at"],
        "started_at": task["started_at"],
        "finished_at": task["finished_at"],
        "no_images": bool(params.get("no_images")),
    }


def _add_characters(
    c: sqlite3.Connection, project_id: int, described: Iterable[tuple[str, str]], source: str,
    stamp: str,
) -> None:
    """(name, description) pairs join the project's cast after the characters it has. A name
    already there keeps its description, unless the user gives one (source "user")."""
    (last,) = c.execute(
        "select coalesce(max(position), -1) from characters where project_id = ?", [project_id]
    ).fetchone()
    conflict = ("do update set description = excluded.description, source = 'user', "
                "updated_at = excluded.updated_at" if source == "user" else "do nothing")
    c.executemany(
        f"""insert into characters (project_id, name, description, source, position, updated_at)
            values (?, ?, ?, ?, ?, ?) on conflict (project_id, name) {conflict}""",
        [(project_id, name, text, source, last + 1 + k, stamp)
         for k, (name, text) in enumerate(described)],
    )


def cast_view(cast: list[dict[str, Any]], shots: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The character objects: name, description, source (planner | user) and the numbers of
    the shots (of the storyboard shown) where the character appears."""
    appears: dict[str, list[int]] = {c["name"]: [] for c in cast}
    for shot in shots:
        for name in shot["characters"]:
            appears.get(name, []).append(shot["number"])
    return [{**c, "shots": appears[c["name"]]} for c in cast]


def _json_list(text: str | None) -> list[Any]:
    # Most shots have no dialogue: `show` of 10,000 shots skips the decoder for them.
    return [] if not text or text == "[]" else json.loads(text)


@lru_cache(maxsize=1024)
def _names(text: str | None) -> tuple[str, ...]:
    """A shot's characters; the same few lists repeat from shot to shot."""
    return tuple(_json_list(text))


def shot_view(row: dict[str, Any]) -> dict[str, Any]:
    """The shot object: what a storyboard artist works with, and its latest image."""
    return {
        "id": row["id"],
        "index": row["idx"],
        "number": row["idx"] + 1,
        "camera": row["camera"],
        "action": row["action"],
        "dialogue": _json_list(row["dialogue"]),
        "characters": list(_names(row["characters"])),
        "duration": row["duration"],
        "description": row["description"],
        "prompt": row["prompt"],
        "image_prompt": row["image_prompt"],
        "seed": row["seed"],
        "width": row["width"],
        "height": row["height"],
        "image_key": row["image_key"],
        "image_url": row["image_url"],
        "url_expires_at": row["url_expires_at"],
    }
