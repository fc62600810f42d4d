"""Polling a task (`GET /api/tasks/{id}`, what boards and `--watch` do): answered from the JSON
kept since the store last changed (storyboard_cli/server/reads.py), and never staler than the
store, whoever wrote to it: another process, or the server itself."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time

from storyboard_cli.server.reads import TaskAnswers
from storyboard_cli.store import Store


def test_a_polled_task_shows_every_change_at_once_whoever_made_it(served):
    store = served.stack.store()
    project = store.create_project("polled", "One.", "movie")
    task_id = store.create_task("storyboard", project["id"])["id"]
    path = f"/api/tasks/{task_id}"
    try:
        with served.client() as api:
            # A change through the API: a connection of the server's own.
            assert api.post(f"{path}/cancel").status_code == 200
            first = api.get(path)
            assert first.status_code == 200 and first.json()["status"] == "cancelled"
            again = api.get(path)
            assert again.content == first.content
            assert again.headers["content-type"] == "application/json"
            # Changes committed by another process (this test's store), each polled at once.
            for n in range(1, 21):
                store.add_warnings(task_id, [f"warning {n}"])
                assert api.get(path).json()["warnings"] == [f"warning {i}" for i in
                                                            range(1, n + 1)]
                assert len(api.get(path[:-20]).json()["warnings"]) == n  # by a prefix too
            assert api.get("/api/tasks/ffffffff").status_code == 404
    finally:
        store.close()


def test_the_loop_never_waits_for_the_stores_lock_to_read_its_version(tmp_path):
    # The version is read on the event loop: while another connection holds the store
    # exclusively, it is unknown at once (the poll then goes to a worker thread, which waits
    # its turn), and nothing kept is answered.
    path = tmp_path / "storyboard.db"
    Store(path).close()
    holder = sqlite3.connect(path)
    holder.execute("PRAGMA locking_mode = EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")
    holder.execute("create table held (x)")
    holder.commit()  # the exclusive locking mode keeps the lock after the commit
    answers = TaskAnswers(path)
    started = time.monotonic()
    assert answers.lookup("a-task") == (None, None)
    answers.keep("a-task", None, b"{}")
    assert answers.lookup("a-task") == (None, None)
    assert time.monotonic() - started < 1
    holder.close()

    version, kept = answers.lookup("a-task")
    assert version is not None and kept is None
    answers.keep("a-task", version, b"{}")
    assert answers.lookup("a-task") == (version, b"{}")
    answers.close()


def test_polls_that_find_the_same_change_wait_for_one_build(tmp_path):
    path = tmp_path / "storyboard.db"
    store = Store(path)
    answers = TaskAnswers(path)
    builds = []

    def build(ref: str) -> bytes:
        builds.append(ref)
        time.sleep(0.05)  # long enough for every poll to arrive meanwhile
        return f'{{"n": {len(builds)}}}'.encode()

    async def polls(count: int) -> list[bytes]:
        return await asyncio.gather(*(answers.get("a-task", build) for _ in range(count)))

    assert asyncio.run(polls(20)) == [b'{"n": 1}'] * 20
    assert asyncio.run(polls(5)) == [b'{"n": 1}'] * 5  # kept: nothing changed
    store.create_project("a change", "One.", "movie")
    assert asyncio.run(polls(20)) == [b'{"n": 2}'] * 20
    assert builds == ["a-task", "a-task"]
    answers.close()
    store.close()


def test_a_store_removed_or_replaced_on_disk_is_never_answered_from(tmp_path):
    # The version's connection keeps the file it opened; a new file at the store's path (the
    # store removed, then made again by the next command) starts its versions afresh.
    path = tmp_path / "storyboard.db"
    Store(path).close()
    answers = TaskAnswers(path)
    version, _ = answers.lookup("a-task")
    answers.keep("a-task", version, b'{"status": "running"}')
    assert answers.lookup("a-task") == (version, b'{"status": "running"}')

    for name in ("storyboard.db", "storyboard.db-wal", "storyboard.db-shm"):
        (tmp_path / name).unlink(missing_ok=True)
    assert answers.lookup("a-task") == (None, None)  # no store: nothing kept is answered

    Store(path).close()
    version, kept = answers.lookup("a-task")
    assert version is not None and kept is None
    answers.keep("a-task", version, b'{"status": "pending"}')
    assert answers.lookup("a-task") == (version, b'{"status": "pending"}')

    replacement = tmp_path / "restored.db"
    Store(replacement).close()
    replacement.replace(path)  # a store moved into its place, as a restore does
    assert answers.lookup("a-task")[1] is None
    answers.close()


def test_serve_follows_a_store_removed_and_made_again_while_it_runs(config_file, tmp_path):
    # As after `rm storyboard.db` and the next `storyboard new`: every route answers from the
    # new file, and what the server writes lands there, not in the removed one.
    from test_edges import NO_REDIS, Server

    config_file.write_text(f'[store]\npath = "storyboard.db"\n[redis]\nurl = "{NO_REDIS}"\n')
    path = tmp_path / "storyboard.db"
    old = Store(path)
    old_task = old.create_task("storyboard", old.create_project("old", "One.", "movie")["id"])
    old.close()
    running = Server(tmp_path)
    try:
        with running.client() as api:
            assert api.get(f"/api/tasks/{old_task['id']}").json()["status"] == "pending"
            assert [p["title"] for p in api.get("/api/projects").json()] == ["old"]
            assert first_event(api, old_task["id"])[0] == "progress"
            for name in ("storyboard.db", "storyboard.db-wal", "storyboard.db-shm"):
                (tmp_path / name).unlink(missing_ok=True)
            new = Store(path)
            task = new.create_task("storyboard", new.create_project("new", "Two.", "movie")["id"])
            new.close()
            assert api.get(f"/api/tasks/{old_task['id']}").status_code == 404
            assert api.get(f"/api/tasks/{task['id'][:8]}").json()["id"] == task["id"]
            assert [p["title"] for p in api.get("/api/projects").json()] == ["new"]
            # The event streams' own connection follows too.
            assert first_event(api, task["id"]) == ("progress", task["id"])
            assert api.patch("/api/projects/1", json={"title": "renamed"}).status_code == 200
    finally:
        running.stop()
    store = Store(path)
    assert [p["title"] for p in store.list_projects()] == ["renamed"]
    store.close()


def first_event(api, task_id: str) -> tuple[str, str | None]:
    """The first event of a task's stream: (its name, the task id its data names)."""
    with api.stream("GET", f"/api/tasks/{task_id}/events") as stream:
        lines = stream.iter_lines()
        name = next(lines).removeprefix("event: ")
        data = json.loads(next(lines).removeprefix("data: "))
    return name, data.get("task_id") or data.get("id")
