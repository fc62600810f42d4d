"""The store's tables, as migrations: small named functions applied once each, in order.

`@migration` registers a function in MIGRATIONS, as llm does (`migration =
MIGRATIONS.append`), so each is written once. A store records the name of every migration it
has applied (table `_migrations`); those names are how an existing store knows what it has,
so a migration is never renamed or removed, only added after the last
(tests/test_store.py pins them against a store made before the store became a package).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import sqlite_utils

Migration = Callable[["sqlite_utils.Database"], None]
MIGRATIONS: list[Migration] = []


def migration(fn: Migration) -> Migration:
    """Register a migration after the ones before it (its name is what the store records)."""
    MIGRATIONS.append(fn)
    return fn


def now() -> str:
    """The time as every `*_at` column holds it: UTC, ISO 8601, milliseconds."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


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


@migration
def m001_projects(db: sqlite_utils.Database) -> None:
    db["projects"].create(
        {"id": int, "title": str, "story": str, "style": str, "created_at": str},
        pk="id",
        not_null={"title", "story", "created_at"},
    )
    db["projects"].create_index(["title"])


@migration
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


@migration
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


@migration
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


@migration
def m005_project_aspect(db: sqlite_utils.Database) -> None:
    # Projects made before aspects existed were rendered square.
    db["projects"].add_column("aspect", str, not_null_default="1:1")


@migration
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


@migration
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


@migration
def m008_task_script(db: sqlite_utils.Database) -> None:
    for column in ("script_key", "script_url", "script_url_expires_at"):
        db["tasks"].add_column(column, str)


@migration
def m009_removed_projects(db: sqlite_utils.Database) -> None:
    db["removed_projects"].create(
        {"id": int, "title": str, "removed_at": str, "objects": str},  # deleted | kept
        pk="id", not_null={"title", "removed_at", "objects"},
    )


@migration
def m010_render_claims(db: sqlite_utils.Database) -> None:
    db["renders"].add_column("claim", str)


@migration
def m400_project_screenplays(db: sqlite_utils.Database) -> None:
    """A project's story is prose, or a Fountain or Final Draft screenplay (`story` keeps the
    file's text) whose parsed form (storyboard_contract/screenplay.py, JSON) the planner
    gets."""
    db["projects"].add_column("format", str, not_null_default="prose")
    db["projects"].add_column("screenplay", str)


@migration
def m401_shot_scenes_and_moves(db: sqlite_utils.Database) -> None:
    """A shot's camera move, and for a screenplay its scene (number, heading) and its place in
    it: shot 3.2 (wire.shot_label)."""
    shots = db["shots"]
    shots.add_column("move", str, not_null_default="static")
    shots.add_column("scene", str)
    shots.add_column("scene_heading", str)
    shots.add_column("scene_shot", int)
    shots.create_index(["task_id", "scene", "scene_shot"])


@migration
def m500_shot_review(db: sqlite_utils.Database) -> None:
    """A writer's notes on a panel and its approval (an approved panel is never rendered
    again but by an explicit regen-shot)."""
    db["shots"].add_column("notes", str, not_null_default="")
    db["shots"].add_column("approved", int, not_null_default=0)


@migration
def m501_shot_versions(db: sqlite_utils.Database) -> None:
    """Whether a panel shows its shot: `edited` counts the edits that change what the panel
    shows, `drawn` is the count its image was rendered at (stale while edited > drawn); a
    render records the count it was claimed at. `revised`: new or changed, against the
    storyboard a revision's plan was matched to."""
    db["shots"].add_column("edited", int, not_null_default=0)
    db["shots"].add_column("drawn", int, not_null_default=0)
    db["shots"].add_column("revised", str)
    db["renders"].add_column("edited", int)


@migration
def m502_story_revisions(db: sqlite_utils.Database) -> None:
    """Every story a project has had, numbered from 1; the project's `story` is the newest.
    A storyboard task's params name the revision it planned (tasks made before: 1)."""
    db["story_revisions"].create(
        {"project_id": int, "number": int, "story": str, "created_at": str, "by": str},
        pk=("project_id", "number"),
        not_null={"story", "created_at"},
        foreign_keys=[("project_id", "projects", "id")],
    )
    db.execute("""insert into story_revisions (project_id, number, story, created_at)
                  select id, 1, story, created_at from projects""")


@migration
def m503_edit_history(db: sqlite_utils.Database) -> None:
    """Every edit of a storyboard (store/edits.py): who, when, what (the fields before and
    after, for people) and the rows it changed (their values before and after, for undo)."""
    db["edits"].create(
        {
            "id": int,
            "project_id": int,
            "task_id": str,  # the storyboard edited
            "at": str,
            "by": str,
            "op": str,
            "summary": str,
            "changes": str,  # JSON: [{"shot", "field", "before", "after"}]
            "rows": str,  # JSON: {"shots": [...], "renders": [...]} before/after
            "undoes": int,
            "undone_by": int,
        },
        pk="id",
        not_null={"project_id", "task_id", "at", "by", "op", "summary", "changes", "rows"},
        foreign_keys=[("project_id", "projects", "id"), ("task_id", "tasks", "id")],
    )
    db["edits"].create_index(["project_id", "id"])


@migration
def m402_revision_screenplays(db: sqlite_utils.Database) -> None:
    """A story revision is prose or a screenplay too, with its parsed form, as a project's
    story is (m400). Revisions recorded before were prose, but for a project's newest one,
    which is what the project holds (a screenplay project made before revisions were)."""
    revisions = db["story_revisions"]
    revisions.add_column("format", str, not_null_default="prose")
    revisions.add_column("screenplay", str)
    db.execute("""update story_revisions
                  set (format, screenplay) = (select format, screenplay from projects
                                              where projects.id = story_revisions.project_id)
                  where number = (select max(number) from story_revisions newest
                                  where newest.project_id = story_revisions.project_id)""")


@migration
def m550_web_sessions(db: sqlite_utils.Database) -> None:
    """Logins to the web board of `storyboard serve`: a row per session, keyed by a digest of
    its id (storyboard_cli/server/sessions.py), never the id itself."""
    db["web_sessions"].create(
        {"digest": str, "created_at": str, "expires_at": str},
        pk="digest", not_null={"created_at", "expires_at"},
    )
    db["web_sessions"].create_index(["expires_at"])


@migration
def m551_image_key_index(db: sqlite_utils.Database) -> None:
    """`storyboard serve` streams a frame only if the store recorded its key."""
    db["shots"].create_index(["image_key"])
    db["renders"].create_index(["image_key"])


@migration
def m200_project_render_settings(db: sqlite_utils.Database) -> None:
    """How a project's images are made (`storyboard new --model --lora --scheduler --steps
    --cfg --negative`); null: the model's default, from the daemon's configuration."""
    projects = db["projects"]
    projects.add_column("model", str)
    projects.add_column("loras", str, not_null_default="[]")  # [{"name", "scale"}]
    projects.add_column("scheduler", str)
    projects.add_column("steps", int)
    projects.add_column("cfg", float)
    projects.add_column("negative_prompt", str)


@migration
def m201_provenance(db: sqlite_utils.Database) -> None:
    """What made each image (the daemon's answer): on the render, and on the shot for the
    image it shows."""
    db["renders"].add_column("provenance", str)
    db["shots"].add_column("provenance", str)


@migration
def m202_task_warnings(db: sqlite_utils.Database) -> None:
    """What a task's user should be told, each once (a language the model cannot read)."""
    db["tasks"].add_column("warnings", str, not_null_default="[]")


@migration
def m203_render_state(db: sqlite_utils.Database) -> None:
    """What a render does before its steps start ("loading model sdxl")."""
    db["renders"].add_column("state", str)


@migration
def m650_task_state(db: sqlite_utils.Database) -> None:
    """What a task does before its plan is saved ("planning: retrying (planner unreachable,
    attempt 3/8): ...")."""
    db["tasks"].add_column("state", str)
