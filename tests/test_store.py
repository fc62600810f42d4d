"""The SQLite store: migrations recorded once (and a store made before the store became a
package opens as it is), WAL, idempotent keyed writes, the documented object shapes."""

from __future__ import annotations

import json
import shutil
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils

from storyboard_cli import views
from storyboard_cli.store import Store
from storyboard_cli.store.projects import ProjectNotFound
from storyboard_cli.store.schema import MIGRATIONS, migrate
from storyboard_cli.store.status import (
    SETTLED,
    UNFINISHED,
    RenderStatus,
    TaskStatus,
    TaskType,
    sql_list,
)


def test_migrations_apply_once_in_order_and_are_recorded(tmp_path):
    store = Store(tmp_path / "sb.db")
    # In the order they were applied (rowid): the list's, which is not the names' order.
    names = [r["name"] for r in store.db.query("select name from _migrations order by rowid")]
    assert names == [fn.__name__ for fn in MIGRATIONS]
    assert migrate(store.db) == []
    store.close()
    assert Store(tmp_path / "sb.db").db["projects"].count == 0


def test_database_runs_in_wal_mode_with_a_busy_timeout(tmp_path):
    store = Store(tmp_path / "sb.db")
    assert store.db.execute("pragma journal_mode").fetchone()[0] == "wal"
    assert store.db.execute("pragma busy_timeout").fetchone()[0] >= 5000


def test_two_connections_write_concurrently_without_locking_errors(tmp_path):
    a, b = Store(tmp_path / "sb.db"), Store(tmp_path / "sb.db")
    for i in range(20):
        (a if i % 2 else b).create_project(f"p{i}", "story", "movie")
    assert len(a.list_projects()) == 20


def test_create_task_twice_with_the_same_id_keeps_one_row(tmp_path):
    store = Store(tmp_path / "sb.db")
    project = store.create_project("t", "Once.", "movie")
    first = store.create_task("storyboard", project["id"], task_id="task-1")
    again = store.create_task("storyboard", project["id"], task_id="task-1")
    assert first == again
    assert store.db["tasks"].count == 1


def test_task_view_has_the_documented_shape(tmp_path):
    store = Store(tmp_path / "sb.db")
    project = store.create_project("t", "Once.", "movie")
    task = store.create_task("storyboard", project["id"])
    view = views.task_view(store, task["id"])
    assert set(view) == {
        "id", "type", "status", "project_id", "shot_id", "progress", "error",
        "created_at", "started_at", "finished_at", "no_images", "stale", "revision",
        "warnings", "state", "shots",
    }
    assert view["status"] == "pending"
    assert view["progress"] == {"done": 0, "total": 0}


def test_find_project_by_id_or_exact_title(tmp_path):
    store = Store(tmp_path / "sb.db")
    p = store.create_project("The Lighthouse", "Once.", "movie")
    assert store.find_project(str(p["id"]))["id"] == p["id"]
    assert store.find_project("The Lighthouse")["id"] == p["id"]


def test_a_shot_index_is_unique_per_task(tmp_path):
    store = Store(tmp_path / "sb.db")
    project = store.create_project("t", "Once.", "movie")
    task = store.create_task("storyboard", project["id"])
    row = {"project_id": project["id"], "task_id": task["id"], "idx": 0,
           "description": "d", "prompt": "p"}
    store.db["shots"].insert(row)
    with pytest.raises(sqlite3.IntegrityError):
        store.db["shots"].insert(row)
    assert store.db["shots"].count == 1


def test_many_processes_opening_a_new_store_at_once_all_succeed(tmp_path):
    import subprocess
    import sys

    code = "import sys; from storyboard_cli.store import Store; Store(sys.argv[1])"
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "new.db")],
                         stderr=subprocess.PIPE)
        for _ in range(6)
    ]
    errors = [p.communicate(timeout=60)[1].decode() for p in procs]
    assert [p.returncode for p in procs] == [0] * 6, errors
    assert Store(tmp_path / "new.db").db["_migrations"].count == len(MIGRATIONS)


def test_a_store_from_before_the_board_fields_migrates_its_rows(tmp_path):
    """Existing projects keep the square frames they were rendered at; dialogue text becomes
    one line with no known speaker."""
    from storyboard_cli.store.connection import database

    conn = sqlite3.connect(str(tmp_path / "old.db"))
    db = database(conn)
    db["_migrations"].create({"name": str, "applied_at": str}, pk="name")
    for fn in MIGRATIONS[:4]:
        fn(db)
        db["_migrations"].insert({"name": fn.__name__, "applied_at": "then"})
    db["projects"].insert({"id": 1, "title": "old", "story": "Once.", "style": "movie",
                           "created_at": "then"})
    db["tasks"].insert({"id": "t", "type": "storyboard", "status": "succeeded",
                        "project_id": 1, "created_at": "then"})
    for idx, dialogue in enumerate(["Stay.", None]):
        db["shots"].insert({"project_id": 1, "task_id": "t", "idx": idx, "description": "d",
                            "prompt": "p", "dialogue": dialogue})
    conn.commit()
    conn.close()

    view = views.project_view(Store(tmp_path / "old.db"), 1)
    assert (view["aspect"], view["width"], view["height"], view["cast"]) == ("1:1", 512, 512, [])
    assert [s["dialogue"] for s in view["shots"]] == [[{"speaker": None, "line": "Stay."}], []]
    assert [(s["action"], s["characters"], s["number"]) for s in view["shots"]] == [
        ("", [], 1), ("", [], 2)]


def plan_rows(*characters: list[str]) -> list[dict]:
    return [{"idx": k, "description": f"Shot {k}.", "action": f"Action {k}.", "prompt": "p",
             "negative_prompt": "", "camera": "wide", "duration": 2.0, "seed": k,
             "dialogue": [{"speaker": "Lin", "line": "你好"}], "characters": names}
            for k, names in enumerate(characters)]


def test_the_cast_grows_with_each_plan_and_keeps_the_users_words(tmp_path):
    store = Store(tmp_path / "sb.db")
    project = store.create_project("t", "Once.", "movie", "2.39:1")
    first = store.create_task("storyboard", project["id"])
    store.save_plan(first["id"], project["id"], plan_rows(["Lin"], ["Lin", "Tom"]), False,
                    characters=[{"name": "Lin", "description": "woman"},
                                {"name": "Tom", "description": "man"}],
                    script={"key": "k.json", "url": "https://x/k", "expires_at": "2030-01-01"})
    store.set_cast(project["id"], {"Lin": "young woman, red wool scarf", "Ann": "girl"})
    again = store.create_task("storyboard", project["id"])
    store.save_plan(again["id"], project["id"], plan_rows(["Tom"]), False,
                    characters=[{"name": "Tom", "description": "tall man"},
                                {"name": "Lin", "description": "woman"},
                                {"name": "Mei", "description": "child"}])
    assert [(c["name"], c["description"], c["source"]) for c in store.cast(project["id"])] == [
        ("Lin", "young woman, red wool scarf", "user"), ("Tom", "man", "planner"),
        ("Ann", "girl", "user"), ("Mei", "child", "planner")]
    shot = views.task_shots(store, first)[1]
    assert [c["name"] for c in store.shot_cast(store.get_shot(shot["id"]))] == ["Lin", "Tom"]
    store.set_cast(project["id"], {}, remove=["Tom"])
    assert [c["name"] for c in store.shot_cast(store.get_shot(shot["id"]))] == ["Lin"]

    view = views.project_view(store, project["id"])  # the newest storyboard: the second plan
    assert (view["aspect"], view["width"], view["height"]) == ("2.39:1", 792, 328)
    assert view["script_key"] is None  # the second plan uploaded no script
    assert [(c["name"], c["shots"]) for c in view["cast"]] == [
        ("Lin", []), ("Ann", []), ("Mei", [])]
    assert view["shots"][0]["dialogue"] == [{"speaker": "Lin", "line": "你好"}]
    assert store.get_task(first["id"])["script_key"] == "k.json"


def test_the_project_and_shot_objects_have_the_documented_shape(tmp_path):
    store = Store(tmp_path / "sb.db")
    project = store.create_project("t", "Once.", "movie")
    task = store.create_task("storyboard", project["id"])
    store.save_plan(task["id"], project["id"], plan_rows(["Lin"]), True,
                    characters=[{"name": "Lin", "description": "woman"}])
    (render,) = store.task_renders(task["id"])
    store.finish_render(task["id"], render["shot_id"], "a.png", "https://x/a", "2030-01-01", 5,
                        image_prompt="cinematic film still, wide shot, Lin (woman)",
                        size=(640, 360))
    view = views.project_view(store, project["id"], frame_size=lambda aspect, model: (640, 360))
    assert list(view) == [
        "id", "title", "story_text", "format", "scenes", "style", "aspect", "width", "height",
        "created_at", "settings", "cast",
        "script_key", "script_url", "script_url_expires_at", "task", "shots_task", "frames_task",
        "revision", "revisions", "shots"]
    assert view["task"] == view["shots_task"] == {
        "id": task["id"], "type": "storyboard", "status": "succeeded",
        "project_id": project["id"], "shot_id": None, "progress": {"done": 1, "total": 1},
        "error": None, "created_at": task["created_at"], "started_at": None,
        "finished_at": view["task"]["finished_at"], "no_images": False, "stale": False,
        "revision": 1, "warnings": [], "state": None}
    assert view["frames_task"] is None
    assert (view["width"], view["height"]) == (640, 360)
    assert view["cast"] == [{"name": "Lin", "description": "woman", "source": "planner",
                             "shots": [1]}]
    (shot,) = view["shots"]
    assert list(shot) == [
        "id", "index", "number", "label", "scene", "scene_heading", "scene_shot", "camera",
        "move", "action", "dialogue", "characters", "duration",
        "description", "prompt", "image_prompt", "seed", "width", "height", "image_key",
        "image_url", "url_expires_at", "notes", "approved", "stale", "revised", "provenance"]
    assert (shot["image_prompt"], shot["width"], shot["seed"]) == (
        "cinematic film still, wide shot, Lin (woman)", 640, 5)


# --- a store made before the store became a package -------------------------------------------

# tests/data/store-5f2e420.db was written by the store of commit 5f2e420 (one module, its own
# migration list): a removed project 1; project 2 with Lin in its cast and a storyboard task of
# 3 shots, shot 1 rendered, shot 2 failed ("daemon refused"), shot 3 pending.
OLD_STORE = Path(__file__).parent / "data" / "store-5f2e420.db"
OLD_TASK = "6be56089-0000-4000-8000-000000000001"
OLD_STORE_MIGRATIONS = [
    "m001_projects", "m002_tasks", "m003_shots", "m004_renders", "m005_project_aspect",
    "m006_shot_board_fields", "m007_characters", "m008_task_script", "m009_removed_projects",
    "m010_render_claims"]
# Added since, in the order a new store applies them: screenplays (format, parsed
# screenplay), shots' scenes and camera moves; notes and approval, stale panels, story
# revisions, the edit history; revisions of a screenplay.
SCREENPLAY_MIGRATIONS = ["m400_project_screenplays", "m401_shot_scenes_and_moves"]
EDIT_MIGRATIONS = ["m500_shot_review", "m501_shot_versions", "m502_story_revisions",
                   "m503_edit_history"]
# The web board's logins, and the index of the frames `serve` streams.
WEB_MIGRATIONS = ["m550_web_sessions", "m551_image_key_index"]
# A project's render settings, provenance, task warnings, render states (issue 19).
MODEL_MIGRATIONS = ["m200_project_render_settings", "m201_provenance", "m202_task_warnings",
                    "m203_render_state"]
MIGRATION_NAMES = [*OLD_STORE_MIGRATIONS, *SCREENPLAY_MIGRATIONS, *EDIT_MIGRATIONS,
                   "m402_revision_screenplays", *WEB_MIGRATIONS, *MODEL_MIGRATIONS,
                   "m650_task_state"]


def schema_of(conn: sqlite3.Connection) -> list[tuple[str, str, str]]:
    return conn.execute(
        "select type, name, sql from sqlite_master where tbl_name != '_migrations' order by name"
    ).fetchall()


def test_the_migrations_keep_the_names_existing_stores_recorded():
    names = [fn.__name__ for fn in MIGRATIONS]
    assert names[:len(MIGRATION_NAMES)] == MIGRATION_NAMES
    assert len(set(names)) == len(names)


def test_a_store_made_before_the_split_opens_and_works_on_with_the_migrations_since(tmp_path):
    path = tmp_path / "old.db"
    shutil.copy(OLD_STORE, path)
    with closing(sqlite3.connect(path)) as before:
        recorded = before.execute("select * from _migrations order by name").fetchall()
        old_schema = schema_of(before)

    assert [name for name, _ in recorded] == OLD_STORE_MIGRATIONS
    # The migrations still build exactly the tables and indexes the old store had.
    with closing(sqlite3.connect(tmp_path / "then.db")) as then:
        db = sqlite_utils.Database(then)
        for fn in MIGRATIONS[: len(OLD_STORE_MIGRATIONS)]:
            fn(db)
        assert schema_of(then) == old_schema

    store = Store(path)
    # Only the migrations added since ran, once; the rest were never run again (their
    # records are untouched).
    now = store.conn.execute("select * from _migrations order by name").fetchall()
    assert set(recorded) <= set(now)
    assert sorted(name for name, _ in now) == sorted(MIGRATION_NAMES)
    # And the migrated store is what a new one is.
    assert schema_of(Store(tmp_path / "new.db").conn) == schema_of(store.conn)
    # Its project's story is its revision 1, prose, and its storyboard that revision's.
    assert [(r["number"], r["format"]) for r in store.revisions(2)] == [(1, "prose")]
    assert store.current_revision(2) == 1
    assert store.revision_story(2, 1) == store.get_project(2)["story"]

    view = views.project_view(store, 2)
    assert (view["title"], view["aspect"], view["width"], view["height"]) == (
        "The Lighthouse", "16:9", 680, 384)
    assert (view["revision"], view["revisions"]) == (1, 1)
    assert [(s["notes"], s["approved"], s["stale"]) for s in view["shots"]] == [
        ("", False, False)] * 3
    assert [(c["name"], c["shots"]) for c in view["cast"]] == [("Lin", [2, 3])]
    assert view["task"]["status"] == TaskStatus.RUNNING
    assert view["task"]["progress"] == {"done": 1, "total": 3}
    assert [s["image_key"] for s in view["shots"]] == ["projects/2/shots/1/t.png", None, None]
    assert view["shots"][1]["dialogue"] == [{"speaker": "Lin", "line": "Hello"}]
    # A story of then is prose, its shots static and numbered as they were.
    assert (view["format"], view["scenes"]) == ("prose", [])
    assert [(s["label"], s["move"], s["scene"]) for s in view["shots"]] == [
        ("1", "static", None), ("2", "static", None), ("3", "static", None)]
    with pytest.raises(ProjectNotFound, match=r"no project with id 1 \(it was removed on "):
        store.get_project(1)
    # The last render ends: the task settles from its rows, the old ones included.
    last = store.task_renders(OLD_TASK)[2]["shot_id"]
    assert store.fail_render(OLD_TASK, last, "out of retries") == TaskStatus.FAILED
    assert store.get_task(OLD_TASK)["error"] == "2 of 3 shots failed: daemon refused"


def structure_of(conn: sqlite3.Connection) -> dict[str, Any]:
    """Each table's columns (name, type, not null, default, primary key) and indexed columns,
    whatever order they were added in."""
    tables = [name for (name,) in conn.execute(
        "select name from sqlite_master where type = 'table' and name != '_migrations'")]
    return {table: (
        sorted(tuple(column[1:]) for column in conn.execute(f"pragma table_info('{table}')")),
        sorted(tuple(col for (_, _, col) in conn.execute(f"pragma index_info('{index}')"))
               for (_, index, *_) in conn.execute(f"pragma index_list('{table}')")))
        for table in tables}


def store_of_a_branch(path: Path, names: list[str]) -> sqlite3.Connection:
    """A store as the code of a branch that had only these migrations (in this order) left
    it: their tables, and their names recorded."""
    by_name = {fn.__name__: fn for fn in MIGRATIONS}
    db = sqlite_utils.Database(path)
    db["_migrations"].create({"name": str, "applied_at": str}, pk="name")
    for name in names:
        by_name[name](db)
        db["_migrations"].insert({"name": name, "applied_at": "2026-11-01T00:00:00.000+00:00"})
    return db.conn


@pytest.mark.parametrize(("had", "story_format"), [
    # Screenplays without edits: a screenplay project, with no revisions yet.
    ([*OLD_STORE_MIGRATIONS, *SCREENPLAY_MIGRATIONS], "fountain"),
    # Edits without screenplays: a prose project with its revision 1.
    ([*OLD_STORE_MIGRATIONS, *EDIT_MIGRATIONS], "prose"),
])
def test_a_store_of_either_branch_opens_with_its_project_as_revision_1(tmp_path, had,
                                                                     story_format):
    conn = store_of_a_branch(tmp_path / "then.db", had)
    with conn:
        conn.execute("""insert into projects (id, title, story, style, created_at)
                        values (1, 'ferry', 'INT. CABIN - NIGHT', 'movie', '2026-11-01')""")
        if "m400_project_screenplays" in had:
            conn.execute("""update projects set format = 'fountain',
                            screenplay = '{"scenes": []}'""")
        else:
            conn.execute("""insert into story_revisions (project_id, number, story, created_at)
                            values (1, 1, 'INT. CABIN - NIGHT', '2026-11-01')""")
    conn.close()

    store = Store(tmp_path / "then.db")
    # The same tables, columns and indexes as a new store's (the columns in another order:
    # each branch added its own first).
    assert structure_of(store.conn) == structure_of(Store(tmp_path / "new.db").conn)
    revision = store.conn.execute(
        "select number, story, format, screenplay from story_revisions").fetchall()
    screenplay = '{"scenes": []}' if story_format == "fountain" else None
    assert revision == [(1, "INT. CABIN - NIGHT", story_format, screenplay)]
    # A revision after it is the project's story, format and screenplay at once.
    assert store.revise_story(1, "Prose now.", "ann") == 2
    project = store.get_project(1)
    assert (project["story"], project["format"], project["screenplay"]) == (
        "Prose now.", "prose", None)
    assert [(r["number"], r["format"], r["by"]) for r in store.revisions(1)] == [
        (1, story_format, None), (2, "prose", "ann")]


# --- statuses ------------------------------------------------------------------------------------


def test_a_status_is_the_word_stored_and_printed():
    assert TaskStatus.SUCCEEDED == "succeeded" and RenderStatus.DONE == "done"
    assert f"task {TaskStatus.CANCELLED}" == "task cancelled"
    assert json.dumps({"status": TaskStatus.PENDING}) == '{"status": "pending"}'
    assert sql_list(SETTLED) == "('succeeded', 'cancelled')"
    assert sql_list(UNFINISHED) == "('pending', 'running', 'retrying')"


def test_every_status_the_store_writes_is_one_of_the_enums(tmp_path):
    store = Store(tmp_path / "sb.db")
    project = store.create_project("t", "Once.", "movie")
    task = store.create_task(TaskType.STORYBOARD, project["id"])
    store.save_plan(task["id"], project["id"], plan_rows([], [], [], []), True)
    first, second, third, fourth = (r["shot_id"] for r in store.task_renders(task["id"]))
    assert store.start_window(task["id"], first, "job-1", 2) == (TaskStatus.RUNNING,
                                                                 [first, second])
    store.render_retrying(task["id"], first, "daemon unreachable")
    store.finish_render(task["id"], second, "b.png", "https://x/b", "2030-01-01", 1)
    store.fail_render(task["id"], third, "refused")
    regen = store.create_task(TaskType.SHOT_GENERATION, project["id"], shot_id=first)
    store.add_render(regen["id"], first, 7)
    store.cancel_task(regen["id"])

    tasks = store.conn.execute("select distinct type, status from tasks").fetchall()
    renders = {s for (s,) in store.conn.execute("select distinct status from renders")}
    assert sorted(tasks) == [("shot_generation", "cancelled"), ("storyboard", "running")]
    assert renders == set(RenderStatus) - {RenderStatus.RUNNING}
    with pytest.raises(ValueError):  # a type outside the enum is never recorded
        store.create_task("storyboards", project["id"])
    assert store.get_render(task["id"], fourth)["status"] == RenderStatus.PENDING


def test_the_statuses_load_without_the_rest_of_the_store():
    """The CLI's text and progress lines compare statuses; they need not open SQLite."""
    import subprocess
    import sys

    code = ("import sys, storyboard_cli.store.status; print(sorted(m for m in sys.modules "
            "if m.startswith(('sqlite', 'storyboard_cli.store'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['storyboard_cli.store', 'storyboard_cli.store.status']"
