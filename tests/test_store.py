"""The SQLite store: migrations recorded once, WAL, idempotent keyed writes, DESIGN shapes."""

from __future__ import annotations

import sqlite3

import pytest

from storyboard_cli.store import MIGRATIONS, Store, migrate


def test_migrations_apply_once_in_order_and_are_recorded(tmp_path):
    store = Store(tmp_path / "sb.db")
    names = [r["name"] for r in store.db.query("select name from _migrations order by name")]
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
    view = store.task_view(task["id"])
    assert set(view) == {
        "id", "type", "status", "project_id", "shot_id", "progress", "error",
        "created_at", "started_at", "finished_at", "shots",
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
