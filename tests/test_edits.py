"""Editing the storyboard `show` lists, through the CLI on a store written directly (no
service is needed to edit): each edit's effect and the numbering after it, which edits make
a panel stale, the history (`log`) and an exact `undo` of every kind of edit, and bad input
that is one line, exit 2 and changes nothing. The renders these edits call for run in
tests/test_edits_e2e.py."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from storyboard_cli.store import Store
from storyboard_cli.tasks.jobs import planned_row
from storyboard_contract.wire import DialogueLine, PlannedShot

SHOTS = [
    # (story text, action, dialogue, characters)
    ("Lin unlocked the shop at dawn. She lit the stove.",
     "Lin unlocked the shop at dawn. She lit the stove.", [], ["Lin"]),
    ("“You are early,” Tom said. Lin smiled.", "Lin smiled.",
     [("Tom", "You are early")], ["Tom", "Lin"]),
    ("The sea was grey.", "The sea was grey.", [], []),
    ("林打开了门。汤姆笑了。", "林打开了门。汤姆笑了。", [], []),
]


@pytest.fixture()
def store(config_file: Path) -> Store:
    store = Store(config_file.parent / "storyboard.db")
    yield store
    store.close()


def storyboard(store: Store, shots: list[tuple[Any, ...]] = SHOTS) -> tuple[int, str]:
    """A project with a rendered storyboard of `shots` and a cast of Lin and Tom."""
    project = store.create_project("shop", " ".join(s[0] for s in shots), "movie")["id"]
    task = store.create_task("storyboard", project)["id"]
    rows = [planned_row(task, PlannedShot(
        index=k, description=text, action=action, prompt=f"medium shot, {action}",
        camera="medium", duration=3.0, characters=cast,
        dialogue=[DialogueLine(speaker=s, line=line) for s, line in said]))
        for k, (text, action, said, cast) in enumerate(shots)]
    store.save_plan(task, project, rows, True,
                    characters=[{"name": "Lin", "description": "young woman"},
                                {"name": "Tom", "description": "old man"}])
    for render in store.task_renders(task):
        store.finish_render(task, render["shot_id"], f"projects/{project}/k{render['shot_id']}.png",
                            "https://bucket.example/x", "2030-01-01T00:00:00+00:00", 1)
    return project, task


def run(cli, *args: str) -> dict[str, Any]:
    result = cli(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def shots_of(cli, project: int) -> list[dict[str, Any]]:
    return run(cli, "show", str(project))["shots"]


def numbers_in_order(shots: list[dict[str, Any]]) -> bool:
    return [s["number"] for s in shots] == list(range(1, len(shots) + 1)) == \
        [s["index"] + 1 for s in shots]


def without_frames(store: Store) -> None:
    """Exports read frames from a bucket; these tests have none, so no shot has a frame."""
    store.conn.execute("update shots set image_key = null")
    store.conn.commit()


def dump(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of what edits touch, to compare before and after."""
    return {table: store.conn.execute(f"select * from {table} order by 1, 2").fetchall()
            for table in ("shots", "renders", "edits", "story_revisions", "tasks")}


# --- fields ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("option", "value", "field", "expected", "stale"), [
    ("--camera", "Close Up", "camera", "close-up", True),
    ("--action", "Lin pours the tea.", "action", "Lin pours the tea.", True),
    ("--characters", "tom,LIN", "characters", ["Tom", "Lin"], True),
    ("--prompt", "close-up, the kettle", "prompt", "close-up, the kettle", True),
    ("--dialogue", "Lin: Good morning", "dialogue", [{"speaker": "Lin", "line": "Good morning"}],
     False),
    ("--duration", "4.5s", "duration", 4.5, False),
    # A move plays in the animatic; the frame stays. Written as the planners read it.
    ("--move", "Dolly-In", "move", "push in", False),
    ("--move", "pan_left", "move", "pan left", False),
])
def test_a_field_edit_changes_the_shot_and_makes_its_panel_stale_when_it_changes_the_image(
        cli, store, option, value, field, expected, stale):
    project, _ = storyboard(store)
    before = shots_of(cli, project)
    answer = run(cli, "shot", f"{project}/3", option, value)
    (shot,) = answer["shots"]
    assert shot[field] == expected and shot["number"] == 3 and shot["stale"] is stale
    after = shots_of(cli, project)
    assert after[2] == shot
    assert [s for k, s in enumerate(after) if k != 2] == [s for k, s in enumerate(before)
                                                          if k != 2]
    assert answer["edit"]["changes"][0] == {"shot": 3, "field": field,
                                            "before": before[2][field], "after": expected}


def test_a_shots_characters_may_be_named_by_their_other_names(cli, store):
    project, _ = storyboard(store)
    run(cli, "cast", str(project), "--alias", "Lin=林", "--alias", "Tom=汤姆")
    # Shot 3 names neither (the aliases linked shot 4, which names them, at once).
    (shot,) = run(cli, "shot", f"{project}/3", "--characters", "林，汤姆")["shots"]
    assert shot["characters"] == ["Lin", "Tom"]


@pytest.mark.parametrize("value", [None, 7, [None], ["Lin", 1], {"Lin": True}])
def test_characters_that_are_not_names_are_refused_as_such(config_file, store, value):
    """The API's body is JSON: a null or a number is not a name to look up in the cast."""
    from storyboard_cli.service import LocalService
    from storyboard_contract.config import load_config
    from storyboard_contract.errors import UsageError

    project, _ = storyboard(store)
    before = dump(store)
    service = LocalService(load_config(config_file))
    try:
        with pytest.raises(UsageError, match=r'^--characters: names, as "A,B" or a list '
                                             r'of names$'):
            service.edit_shot(f"{project}/1", {"characters": value})
    finally:
        service.close()
    assert dump(store) == before


def test_a_new_action_or_shot_size_rewrites_the_prompt_unless_one_is_given(cli, store):
    project, _ = storyboard(store)
    assert run(cli, "shot", f"{project}/3", "--camera", "wide")["shots"][0]["prompt"] == \
        "wide shot, The sea was grey."
    assert run(cli, "shot", f"{project}/3", "--action", "Gulls over the rocks.")["shots"][0][
        "prompt"] == "wide shot, Gulls over the rocks."
    mine = run(cli, "shot", f"{project}/3", "--camera", "close-up", "--prompt", "a gull's eye")
    assert mine["shots"][0]["prompt"] == "a gull's eye"
    # A prompt of the writer's own does not open with a size: a new size leaves it alone.
    assert run(cli, "shot", f"{project}/3", "--camera", "medium")["shots"][0]["prompt"] == \
        "a gull's eye"


def test_dialogue_lines_take_a_speaker_before_a_colon_or_none_and_an_empty_one_clears_them(
        cli, store):
    project, _ = storyboard(store)
    shot = run(cli, "shot", f"{project}/2", "--dialogue", "Tom: You are early",
               "--dialogue", "(a gull cries)", "--dialogue", ": Note: nobody says this",
               "--dialogue", "林：早上好")["shots"][0]
    assert shot["dialogue"] == [
        {"speaker": "Tom", "line": "You are early"}, {"speaker": None, "line": "(a gull cries)"},
        {"speaker": None, "line": "Note: nobody says this"}, {"speaker": "林", "line": "早上好"}]
    assert run(cli, "shot", f"{project}/2", "--dialogue", "")["shots"][0]["dialogue"] == []


# --- split, merge, move, insert, delete ------------------------------------------------------


def test_split_at_words_shares_out_the_text_dialogue_cast_and_duration(cli, store):
    project, _ = storyboard(store)
    before = shots_of(cli, project)
    answer = run(cli, "shots", str(project), "split", "2", "--at", "Lin smiled")
    first, second = answer["shots"]
    assert (first["number"], second["number"]) == (2, 3)
    assert (first["description"], second["description"]) == (
        "“You are early,” Tom said.", "Lin smiled.")
    assert (first["action"], second["action"]) == ("", "Lin smiled.")
    assert first["dialogue"] == [{"speaker": "Tom", "line": "You are early"}]
    assert second["dialogue"] == []
    assert (first["characters"], second["characters"]) == (["Tom"], ["Lin"])
    assert first["duration"] + second["duration"] == 3.0
    assert (first["prompt"], second["prompt"]) == ("medium shot, Tom speaking",
                                                   "medium shot, Lin smiled.")
    # The first keeps its image (stale now); the second has none yet. Both render stale.
    assert first["image_key"] == before[1]["image_key"] and second["image_key"] is None
    assert first["stale"] and second["stale"]
    after = shots_of(cli, project)
    assert numbers_in_order(after) and len(after) == 5
    assert [s["id"] for s in after] == [before[0]["id"], first["id"], second["id"],
                                       before[2]["id"], before[3]["id"]]


@pytest.mark.parametrize(("number", "halves"), [
    (1, ("Lin unlocked the shop at dawn.", "She lit the stove.")),
    (4, ("林打开了门。", "汤姆笑了。")),
])
def test_split_without_at_cuts_at_the_sentence_nearest_the_middle(cli, store, number, halves):
    project, _ = storyboard(store)
    shots = run(cli, "shots", str(project), "split", str(number))["shots"]
    assert tuple(s["description"] for s in shots) == halves
    assert tuple(s["action"] for s in shots) == halves


def test_merge_joins_two_neighbours_in_the_first_ones_place(cli, store):
    project, _ = storyboard(store)
    before = shots_of(cli, project)
    (merged,) = run(cli, "shots", str(project), "merge", "3", "2")["shots"]
    assert merged["id"] == before[1]["id"] and merged["number"] == 2
    assert merged["description"] == "“You are early,” Tom said. Lin smiled. The sea was grey."
    assert merged["action"] == "Lin smiled. The sea was grey."
    assert merged["dialogue"] == before[1]["dialogue"]
    assert merged["characters"] == ["Tom", "Lin"] and merged["duration"] == 6.0
    assert merged["stale"]
    after = shots_of(cli, project)
    assert numbers_in_order(after) and [s["id"] for s in after] == [
        before[0]["id"], before[1]["id"], before[3]["id"]]


def test_move_insert_and_delete_keep_the_shots_numbered_in_order(cli, store):
    project, _ = storyboard(store)
    ids = [s["id"] for s in shots_of(cli, project)]
    run(cli, "shots", str(project), "move", "4", "--to", "1")
    moved = shots_of(cli, project)
    assert numbers_in_order(moved) and [s["id"] for s in moved] == [ids[3], *ids[:3]]
    assert not any(s["stale"] for s in moved)  # the order is not in any panel

    (new,) = run(cli, "shots", str(project), "insert", "--after", "0", "--action",
                 "Gulls over the harbour.", "--camera", "wide", "--characters", "Lin",
                 "--move", "tilt up")["shots"]
    assert (new["number"], new["camera"], new["duration"], new["characters"], new["move"]) == (
        1, "wide", 3.0, ["Lin"], "tilt up")
    assert (new["prompt"], new["image_key"], new["stale"]) == (
        "wide shot, Gulls over the harbour.", None, True)
    inserted = shots_of(cli, project)
    assert numbers_in_order(inserted) and [s["id"] for s in inserted] == [
        new["id"], ids[3], *ids[:3]]

    run(cli, "shots", str(project), "delete", "3")
    deleted = shots_of(cli, project)
    assert numbers_in_order(deleted) and [s["id"] for s in deleted] == [
        new["id"], ids[3], ids[1], ids[2]]
    run(cli, "shots", str(project), "insert", "--after", "4", "--action", "The end.")
    assert shots_of(cli, project)[-1]["action"] == "The end."
    # The exports follow: the zip's shot list numbers the shots as show does.
    without_frames(store)
    listed = run(cli, "export", str(project), "--format", "zip", "-o", "board.zip")
    import zipfile

    with zipfile.ZipFile(listed["path"]) as zf:
        shotlist = json.loads(zf.read("shotlist.json"))
    assert [(s["number"], s["id"]) for s in shotlist["shots"]] == [
        (s["number"], s["id"]) for s in shots_of(cli, project)]


def test_notes_and_approval_are_on_the_shot_and_in_the_boards(cli, store, tmp_path):
    project, _ = storyboard(store)
    run(cli, "note", f"{project}/2", "warmer light\nthe stove glows")
    (shot,) = run(cli, "approve", f"{project}/2")["shots"]
    assert (shot["notes"], shot["approved"], shot["stale"]) == (
        "warmer light\nthe stove glows", True, False)
    assert "[approved]" in cli("show", str(project)).stdout
    assert "Notes:    warmer light" in cli("show", str(project)).stdout
    without_frames(store)
    html = Path(run(cli, "export", str(project), "--format", "html", "-o", "b.html")["path"])
    page = html.read_text(encoding="utf-8")
    assert f'data-shot-id="{shot["id"]}" data-approved="true"' in page
    assert '<p class="notes"><span class="label">Note</span>warmer light\nthe stove glows</p>' \
        in page and '<span class="mark mark-approved">approved</span>' in page
    folder = Path(run(cli, "export", str(project), "--format", "storyboarder", "-o", "sb")["path"])
    boards = json.loads((folder / "sb.storyboarder").read_text(encoding="utf-8"))["boards"]
    assert boards[1]["notes"].startswith("[approved]\n")
    assert "\nwarmer light\nthe stove glows\n" in boards[1]["notes"]
    import subprocess

    pdf = run(cli, "export", str(project), "--format", "pdf", "-o", "b.pdf")["path"]
    text = subprocess.run(["pdftotext", pdf, "-"], capture_output=True, text=True,
                          check=True).stdout
    assert "Note: warmer light" in text and "APPROVED" in text
    import zipfile

    archive = run(cli, "export", str(project), "--format", "zip", "-o", "b.zip")["path"]
    with zipfile.ZipFile(archive) as zf:
        listed = json.loads(zf.read("shotlist.json"))["shots"][1]
    assert (listed["notes"], listed["approved"]) == ("warmer light\nthe stove glows", True)
    run(cli, "unapprove", f"{project}/2")
    assert shots_of(cli, project)[1]["approved"] is False


# --- history and undo ------------------------------------------------------------------------

EDITS = {
    "shot": ("shot", "{p}/2", "--camera", "wide", "--dialogue", "Lin: Hi", "--duration", "5"),
    "split": ("shots", "{p}", "split", "1"),
    "merge": ("shots", "{p}", "merge", "2", "3"),
    "move": ("shots", "{p}", "move", "1", "--to", "4"),
    "insert": ("shots", "{p}", "insert", "--after", "2", "--action", "A gull."),
    "delete": ("shots", "{p}", "delete", "2"),
    "note": ("note", "{p}/3", "more fog"),
    "approve": ("approve", "{p}/3"),
}
# What an undo gives back exactly; the edit counts only ever go up (store/edits.py).
COUNTS = ("updated_at", "edited", "drawn")


def board_rows(store: Store, task: str) -> list[dict[str, Any]]:
    rows = store._query("select * from shots where task_id = ? order by idx", [task])
    return [{k: v for k, v in r.items() if k not in COUNTS} | {"stale": r["edited"] > r["drawn"]}
            for r in rows]


def render_rows(store: Store) -> list[tuple[Any, ...]]:
    return store.conn.execute("select * from renders order by task_id, shot_id").fetchall()


@pytest.mark.parametrize("op", EDITS)
def test_undo_puts_the_storyboard_back_exactly_after_each_kind_of_edit(cli, store, op):
    project, task = storyboard(store)
    run(cli, "note", f"{project}/1", "kept: an edit before the one undone")
    before, renders = board_rows(store, task), render_rows(store)
    edit = run(cli, *(a.format(p=project) for a in EDITS[op]))["edit"]
    assert board_rows(store, task) != before
    undo = run(cli, "undo", str(project))["edit"]
    assert board_rows(store, task) == before and render_rows(store) == renders
    assert (undo["op"], undo["undoes"]) == ("undo", edit["id"])
    log = run(cli, "log", str(project))
    assert [(e["op"], e["undone_by"]) for e in log[:2]] == [("undo", None), (op, undo["id"])]


def test_undo_walks_back_edit_by_edit_and_the_log_says_who_when_and_what(cli, store):
    project, task = storyboard(store)
    original = board_rows(store, task)
    run(cli, "shot", f"{project}/1", "--camera", "wide")
    middle = board_rows(store, task)
    run(cli, "shots", str(project), "delete", "4")
    log = run(cli, "log", str(project))
    assert [e["op"] for e in log] == ["delete", "shot"]
    first = log[1]
    from datetime import datetime, timezone

    from storyboard_cli.service import local_user

    age = datetime.now(timezone.utc) - datetime.fromisoformat(first["at"])
    assert first["by"] == local_user() and age.total_seconds() < 60
    assert first["task_id"] == task
    assert first["summary"] == "edited shot 1: camera, prompt"
    assert first["changes"][0] == {"shot": 1, "field": "camera", "before": "medium",
                                   "after": "wide"}
    text = cli("log", str(project)).stdout
    assert "shot 1 camera: medium → wide" in text and "delete: deleted shot 4" in text
    run(cli, "undo", str(project))
    assert board_rows(store, task) == middle
    run(cli, "undo", str(project))
    assert board_rows(store, task) == original
    nothing = cli("undo", str(project))
    assert nothing.exit_code == 2 and nothing.stderr.startswith("Error: nothing to undo: ")
    assert [e["op"] for e in run(cli, "log", str(project))] == [
        "undo", "undo", "delete", "shot"]


def test_an_undo_after_the_panel_was_rendered_from_the_edit_leaves_it_stale(cli, store):
    project, task = storyboard(store)
    (shot,) = run(cli, "shot", f"{project}/3", "--camera", "wide")["shots"]
    # A render of the edited shot finishes (claimed at its new edit count).
    regen = store.create_task("shot_generation", project, shot_id=shot["id"])["id"]
    store.add_render(regen, shot["id"], 5)
    store.start_window(regen, shot["id"], regen, 1)
    store.finish_render(regen, shot["id"], "k/wide.png", "https://x/wide", "2030-01-01", 5)
    assert shots_of(cli, project)[2]["stale"] is False
    (undone,) = run(cli, "undo", str(project))["shots"]
    # Its image shows the wide shot the undo took back: stale again.
    assert (undone["camera"], undone["image_key"], undone["stale"]) == (
        "medium", "k/wide.png", True)


# --- bad input -------------------------------------------------------------------------------

BAD = {
    "unknown shot": (("shot", "{p}/99", "--camera", "wide"),
                     "project {p}'s storyboard has 4 shots; no shot 99"),
    "merge one shot": (("shots", "{p}", "merge", "3", "3"), "merge takes two shots"),
    "merge far apart": (("shots", "{p}", "merge", "1", "3"), "not next to each other"),
    "move out of range": (("shots", "{p}", "move", "1", "--to", "99"),
                          "has 4 shots; move a shot to 1 to 4"),
    "move nowhere": (("shots", "{p}", "move", "2", "--to", "2"), "at 2 already"),
    "empty action": (("shot", "{p}/1", "--action", " "), "--action must not be empty"),
    "unknown size": (("shot", "{p}/1", "--camera", "fisheye"), "--camera 'fisheye': use one of"),
    "unknown move": (("shot", "{p}/1", "--move", "barrel roll"),
                     "--move 'barrel roll': use one of static, push in, pull out, pan left"),
    "move already": (("shot", "{p}/1", "--move", "none"), "shot 1 has these values already"),
    "not in the cast": (("shot", "{p}/1", "--characters", "Lin,Bob"), "'Bob' is not in"),
    "no duration": (("shot", "{p}/1", "--duration", "0"), "--duration '0'"),
    "no field": (("shot", "{p}/1", "--dialogue", "Tom:  "), "a line must not be empty"),
    "split where it is not": (("shots", "{p}", "split", "1", "--at", "zebra"),
                              "'zebra' is not in shot 1's"),
    "split at its start": (("shots", "{p}", "split", "3", "--at", "The sea"),
                           "one of the two shots would be empty"),
    "insert nowhere": (("shots", "{p}", "insert", "--after", "9", "--action", "x"),
                       "insert after 0 (first) to 4"),
    "insert without action": (("shots", "{p}", "insert", "--after", "1"), "insert needs --action"),
    "delete no shot": (("shots", "{p}", "delete", "0"), "no shot 0"),
    "note with ESC": (("note", "{p}/1", "bad \x1b[31m"), "contains ESC"),
    "approve twice": (("approve", "{p}/4"), "shot 4 is approved already"),
    "unknown project": (("shots", "nowhere", "delete", "1"), "no project with id or title"),
    "revision of nothing": (("show", "{p}", "--revision", "2"), "has revisions 1 to 1"),
    "diff of one revision": (("diff", "{p}"), "no revision before 1"),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_input_is_one_line_exit_2_and_changes_nothing(cli, store, case):
    project, _ = storyboard(store)
    run(cli, "approve", f"{project}/4")
    args, says = BAD[case]
    args = tuple(a.format(p=project) for a in args)
    before = dump(store)
    plain = cli(*args)
    assert plain.exit_code == 2, plain.output
    assert plain.stdout == "" and len(plain.stderr.splitlines()) == 1
    assert says.format(p=project) in plain.stderr
    as_json = cli(*args, "--json")
    assert as_json.exit_code == 2 and set(json.loads(as_json.stdout)) == {"error"}
    assert dump(store) == before


def test_a_shot_being_rendered_is_neither_deleted_merged_away_nor_approved(cli, store):
    project, task = storyboard(store)
    third = shots_of(cli, project)[2]["id"]
    regen = store.create_task("shot_generation", project, shot_id=third)["id"]
    store.add_render(regen, third, 5)
    before = dump(store)
    for args in (("shots", str(project), "delete", "3"), ("shots", str(project), "merge", "2", "3"),
                 ("approve", f"{project}/3")):
        done = cli(*args)
        assert done.exit_code == 2 and f"shot 3 is being rendered by task {regen[:8]}" in \
            done.stderr
    assert dump(store) == before
    assert run(cli, "shot", f"{project}/3", "--duration", "2")["shots"][0]["duration"] == 2.0


def test_no_edit_while_a_new_plan_is_being_made(cli, store):
    project, _ = storyboard(store)
    planning = store.create_task("storyboard", project)["id"]
    done = cli("shot", f"{project}/1", "--camera", "wide")
    assert done.exit_code == 2
    assert f"project {project} is being planned again (task {planning[:8]})" in done.stderr
    store.fail_task(planning, "the planner is down")
    assert run(cli, "shot", f"{project}/1", "--camera", "wide")["shots"][0]["camera"] == "wide"


# --- a screenplay's labels ---------------------------------------------------------------------

SCENES = [
    ("1", "EXT. HARBOUR - DAWN", ["Gulls wheel over the harbour.", "Mara runs down the pier."]),
    ("2", "INT. FERRY CABIN - NIGHT", ["Otto counts the fares.", "Mara sits down. She shivers.",
                                       "The lamp swings."]),
]


def screenplay_storyboard(store: Store) -> tuple[int, str]:
    """A project whose rendered storyboard follows two scenes: shots 1.1, 1.2, 2.1, 2.2, 2.3."""
    project = store.create_project("ferry", "(the script)", "movie")["id"]
    task = store.create_task("storyboard", project)["id"]
    planned = [(scene, heading, k, text) for scene, heading, texts in SCENES
               for k, text in enumerate(texts, start=1)]
    rows = [planned_row(task, PlannedShot(
        index=n, description=text, action=text, prompt=f"medium shot, {text}", scene=scene,
        scene_heading=heading, scene_shot=k)) for n, (scene, heading, k, text) in
        enumerate(planned)]
    store.save_plan(task, project, rows, True)
    return project, task


def labels(cli, project: int) -> list[tuple[str, str]]:
    return [(s["label"], s["action"]) for s in shots_of(cli, project)]


def test_a_screenplays_shots_stay_numbered_within_their_scenes_after_every_edit(cli, store):
    project, task = screenplay_storyboard(store)
    p = str(project)
    original = board_rows(store, task)
    # A split's second shot joins its scene, and the scene's shots after it move up one.
    run(cli, "shots", p, "split", "4", "--at", "She shivers")
    assert labels(cli, project)[2:] == [
        ("2.1", "Otto counts the fares."), ("2.2", "Mara sits down."), ("2.3", "She shivers."),
        ("2.4", "The lamp swings.")]
    assert shots_of(cli, project)[4]["scene_heading"] == "INT. FERRY CABIN - NIGHT"
    # An inserted shot joins the scene of the shot before it (the first shot's, first).
    run(cli, "shots", p, "insert", "--after", "2", "--action", "The ferry horn sounds.")
    run(cli, "shots", p, "insert", "--after", "0", "--action", "Dawn.")
    assert [label for label, _ in labels(cli, project)] == [
        "1.1", "1.2", "1.3", "1.4", "2.1", "2.2", "2.3", "2.4"]
    assert labels(cli, project)[3] == ("1.4", "The ferry horn sounds.")
    # A moved shot keeps its scene: scene 2's lamp, first on the board, is scene 2's first.
    run(cli, "shots", p, "move", "8", "--to", "1")
    assert labels(cli, project) == [
        ("2.1", "The lamp swings."), ("1.1", "Dawn."), ("1.2", "Gulls wheel over the harbour."),
        ("1.3", "Mara runs down the pier."), ("1.4", "The ferry horn sounds."),
        ("2.2", "Otto counts the fares."), ("2.3", "Mara sits down."), ("2.4", "She shivers.")]
    # Merge and delete close the gaps.
    run(cli, "shots", p, "merge", "7", "8")
    run(cli, "shots", p, "delete", "2")
    assert labels(cli, project) == [
        ("2.1", "The lamp swings."), ("1.1", "Gulls wheel over the harbour."),
        ("1.2", "Mara runs down the pier."), ("1.3", "The ferry horn sounds."),
        ("2.2", "Otto counts the fares."), ("2.3", "Mara sits down. She shivers.")]
    # A label names the shot that holds it now, for every command that takes a shot.
    assert run(cli, "shot", f"{p}/2.3", "--move", "push in")["shots"][0]["action"] == \
        "Mara sits down. She shivers."
    assert run(cli, "shot", f"{p}/1.3")["number"] == 4
    # Undo walks back every edit, the places in the scenes with the positions.
    for _ in range(7):
        run(cli, "undo", p)
    assert board_rows(store, task) == original


def test_the_schema_keeps_one_position_per_shot(store):
    """A storyboard's positions are unique: no edit can leave two shots at one number."""
    project, task = storyboard(store)
    with pytest.raises(sqlite3.IntegrityError):
        store.conn.execute("update shots set idx = 0 where task_id = ? and idx = 1", [task])
