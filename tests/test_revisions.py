"""Story revisions without a running service: a new plan matched to the storyboard before it
by content (not position), what it keeps and what it renders, the marks `show` prints,
`diff` between revisions and `show --revision`. The same flow with workers rendering is in
tests/test_edits_e2e.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from storyboard_cli.matching import CHANGED, NEW, match
from storyboard_cli.store import Store
from storyboard_cli.tasks.jobs import planned_row
from storyboard_contract.wire import PlannedShot

A = "The storm rose over the bay."
B = "Old Tom climbed the lighthouse stairs."
B2 = "Old Tom climbed the stairs slowly, counting each step."
C = "Mara waited by the great lens."
D = "A small boat drifted toward the rocks."
E = "The lamp flared once and went dark."
F = "Gulls cried over the cliffs."
F2 = "Gulls cried over the black cliffs."


def test_shots_are_matched_by_their_text_not_their_position():
    found = match([A, B, C, D, F], [A, B2, D, E, F2])
    assert found.old == [0, 1, 3, None, 4]
    assert found.marks == [None, CHANGED, None, NEW, CHANGED]
    assert found.removed == [2]
    # A sentence added at the top moves every shot and changes none.
    shifted = match([A, B, C], [E, A, B, C])
    assert (shifted.old, shifted.marks, shifted.removed) == ([None, 0, 1, 2],
                                                             [NEW, None, None, None], [])
    # White space does not make a shot another one; a line said twice pairs up in order.
    assert match([f"  {A}\n", A], [A, A]).marks == [None, None]


@pytest.fixture()
def store(config_file: Path) -> Store:
    store = Store(config_file.parent / "storyboard.db")
    yield store
    store.close()


def plan(store: Store, project: int, texts: list[str], keep: bool, revision: int = 1,
         render: bool = True) -> str:
    """A storyboard task planning `texts` (as the plan job saves a plan), its renders done."""
    task = store.create_task("storyboard", project,
                             params={"revision": revision, "keep": keep})["id"]
    store.save_plan(task, project, [planned_row(task, PlannedShot(
        index=k, description=t, action=t, prompt=f"medium shot, {t}"))
        for k, t in enumerate(texts)], True, keep_unchanged=keep)
    for r in store.task_renders(task) if render else []:
        store.finish_render(task, r["shot_id"], f"k/{task}/{r['shot_id']}.png", "https://x/",
                            "2030-01-01T00:00:00+00:00", r["seed"])
    return task


def board(store: Store, task: str) -> list[dict[str, Any]]:
    return store._query("select * from shots where task_id = ? order by idx", [task])


def test_a_revision_keeps_unchanged_and_approved_panels_and_renders_only_new_and_changed(store):
    project = store.create_project("lighthouse", " ".join([A, B, C, D, F]), "movie")["id"]
    first = plan(store, project, [A, B, C, D, F], keep=False)
    old = board(store, first)
    store.conn.execute("update shots set notes = 'darker sky' where id = ?", [old[0]["id"]])
    store.conn.execute("update shots set approved = 1, notes = 'perfect' where id = ?",
                       [old[1]["id"]])
    store.conn.commit()
    old = board(store, first)

    revised = plan(store, project, [A, B2, D, E, F2], keep=True, revision=2, render=False)
    new = board(store, revised)
    rendered = {r["shot_id"] for r in store.task_renders(revised)}
    assert [s["revised"] for s in new] == [None, CHANGED, None, NEW, CHANGED]
    # Unchanged: the old shot whole, its image, seed and note; not rendered.
    for new_shot, old_shot in ((new[0], old[0]), (new[2], old[3])):
        for field in ("description", "image_key", "seed", "notes", "approved", "camera"):
            assert new_shot[field] == old_shot[field], field
        assert new_shot["id"] not in rendered
    # Changed but approved: the new text with the approved panel, stale; not rendered.
    assert (new[1]["description"], new[1]["image_key"], new[1]["seed"], new[1]["notes"]) == (
        B2, old[1]["image_key"], old[1]["seed"], "perfect")
    assert new[1]["approved"] and new[1]["edited"] > new[1]["drawn"]
    assert new[1]["id"] not in rendered
    # Changed: rendered again at its old seed (it looks like what it revises); new: rendered.
    assert (new[4]["description"], new[4]["seed"], new[4]["image_key"]) == (
        F2, old[4]["seed"], None)
    assert rendered == {new[3]["id"], new[4]["id"]}


def test_a_plain_generate_renders_everything_again_but_the_approved_panels(store):
    project = store.create_project("lighthouse", " ".join([A, B, C]), "movie")["id"]
    first = plan(store, project, [A, B, C], keep=False)
    old = board(store, first)
    store.conn.execute("update shots set approved = 1 where id = ?", [old[2]["id"]])
    store.conn.execute("update shots set notes = 'hold longer' where id = ?", [old[0]["id"]])
    store.conn.commit()
    again = plan(store, project, [A, B, C], keep=False, render=False)
    new = board(store, again)
    rendered = {r["shot_id"] for r in store.task_renders(again)}
    assert rendered == {new[0]["id"], new[1]["id"]}
    assert new[2]["image_key"] == old[2]["image_key"] and new[2]["approved"]
    # The same text: no mark; a fresh seed (a new take), the writer's note carried over.
    assert [s["revised"] for s in new] == [None, None, None]
    assert new[0]["seed"] != old[0]["seed"] and new[0]["notes"] == "hold longer"


def plan_scenes(store: Store, project: int, scenes: list[tuple[str, str, list[str]]],
                revision: int) -> str:
    """A screenplay's storyboard task: (scene number, heading, texts) in order, its shots
    numbered within their scenes, kept by content (`storyboard update`); rendered."""
    task = store.create_task("storyboard", project,
                             params={"revision": revision, "keep": True})["id"]
    shots = [(number, heading, k, t) for number, heading, texts in scenes
             for k, t in enumerate(texts, start=1)]
    store.save_plan(task, project, [planned_row(task, PlannedShot(
        index=n, description=t, action=t, prompt=f"medium shot, {t}", scene=number,
        scene_heading=heading, scene_shot=k)) for n, (number, heading, k, t) in enumerate(shots)],
        True, keep_unchanged=True)
    for r in store.task_renders(task):
        store.finish_render(task, r["shot_id"], f"k/{task}/{r['shot_id']}.png", "https://x/",
                            "2030-01-01T00:00:00+00:00", r["seed"])
    return task


def test_a_revised_screenplay_matches_shots_within_their_scene_heading(store):
    from storyboard_cli import views
    from storyboard_cli.matching import diff_boards

    project = store.create_project("ferry", "(the script)", "movie")["id"]
    first = plan_scenes(store, project, [("1", "EXT. DECK - NIGHT", [A, B]),
                                         ("2", "INT. CABIN - NIGHT", [C, D])], revision=1)
    old = board(store, first)
    store.conn.execute("update shots set move = 'push in' where id = ?", [old[1]["id"]])
    store.conn.commit()
    old = board(store, first)
    # A scene added before the others; the cabin scene now happens in the galley.
    revised = plan_scenes(store, project, [("1", "EXT. PIER - DAWN", [E]),
                                           ("2", "EXT. DECK - NIGHT", [A, B]),
                                           ("3", "INT. GALLEY - NIGHT", [C, D])], revision=2)
    new = board(store, revised)
    shown = [views.shot_view(r) for r in new]
    assert [(s["label"], s["revised"]) for s in shown] == [
        ("1.1", NEW), ("2.1", None), ("2.2", None), ("3.1", CHANGED), ("3.2", CHANGED)]
    # Renumbered, not changed: the same shots whole (image, seed, the writer's move), at their
    # new labels.
    for k in (1, 2):
        assert (new[k]["image_key"], new[k]["seed"], new[k]["move"]) == (
            old[k - 1]["image_key"], old[k - 1]["seed"], old[k - 1]["move"])
    assert new[2]["move"] == "push in"
    # The same words at another place are another picture: rendered again at the old seed.
    assert (new[3]["scene_heading"], new[3]["seed"]) == ("INT. GALLEY - NIGHT", old[2]["seed"])
    assert {r["shot_id"] for r in store.task_renders(revised)} == {
        new[0]["id"], new[3]["id"], new[4]["id"]}
    diff = diff_boards([views.shot_view(r) for r in old], shown)
    assert [s["label"] for s in diff["added"]] == ["1.1"] and diff["removed"] == []
    assert [(c["from"]["label"], c["to"]["label"], c["fields"]) for c in diff["changed"]] == [
        ("2.1", "3.1", ["scene_heading"]), ("2.2", "3.2", ["scene_heading"])]
    assert diff["unchanged"] == 2


def test_saving_a_plan_twice_keeps_the_first(store):
    project = store.create_project("lighthouse", A, "movie")["id"]
    task = plan(store, project, [A, B], keep=False, render=False)
    store.save_plan(task, project, [planned_row(task, PlannedShot(
        index=0, description=C, prompt="c"))], True)
    assert [s["description"] for s in board(store, task)] == [A, B]
    assert len(store.task_renders(task)) == 2


def run(cli, *args: str) -> Any:
    result = cli(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_diff_and_show_revision_read_the_storyboards_of_two_revisions(cli, store):
    project = store.create_project("lighthouse", " ".join([A, B, C, D, F]), "movie")["id"]
    first = plan(store, project, [A, B, C, D, F], keep=False)
    store.revise_story(project, " ".join([A, B2, D, E, F2]))
    second = plan(store, project, [A, B2, D, E, F2], keep=True, revision=2)

    diff = run(cli, "diff", str(project))
    assert (diff["from"], diff["to"]) == ({"revision": 1, "task_id": first},
                                          {"revision": 2, "task_id": second})
    assert [s["description"] for s in diff["added"]] == [E]
    assert [s["description"] for s in diff["removed"]] == [C]
    assert [(c["from"]["number"], c["to"]["number"], c["fields"]) for c in diff["changed"]] == [
        (2, 2, ["description", "action", "prompt"]), (5, 5, ["description", "action", "prompt"])]
    assert diff["unchanged"] == 2
    assert run(cli, "diff", str(project), "--from", "1", "--to", "2") == diff
    text = cli("diff", str(project)).stdout
    assert text.startswith(f"Revision 1 → 2 (tasks {first[:8]} → {second[:8]}): 1 added, "
                           "1 removed, 2 changed, 2 unchanged")
    assert f"+ shot 4: {E}" in text and f"- shot 3: {C}" in text

    older = run(cli, "show", str(project), "--revision", "1")
    assert (older["shots_task"]["id"], older["revision"], older["revisions"]) == (first, 1, 2)
    assert [s["description"] for s in older["shots"]] == [A, B, C, D, F]
    now = run(cli, "show", str(project))
    assert (now["shots_task"]["id"], now["revision"]) == (second, 2)
    assert [s["revised"] for s in now["shots"]] == [None, "changed", None, "new", "changed"]
    assert "[new]" in cli("show", str(project)).stdout
    listed = run(cli, "revisions", str(project))
    assert [(r["number"], r["task_id"], r["chars"]) for r in listed] == [
        (1, first, len(" ".join([A, B, C, D, F]))), (2, second, len(" ".join([A, B2, D, E, F2])))]
