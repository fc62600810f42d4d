"""The user has the last word on the cast, as a user runs it: `storyboard` subprocesses against
a real Redis, SeaweedFS, the sketch GPU daemon and a `storyboard worker`. A character the user
describes is linked at once to the shots that name it, and regen-shot draws it; another name
(`cast --alias`) is the same person; a removed name is never cast again, whatever the next
plan finds; every re-plan keeps the user's words. The planner side: any planner's answer is
held to the user's word (gpu_daemon.planner.cast.keep_user_cast)."""

from __future__ import annotations

import json
from typing import Any

from fixtures_queue import QueueStack

from gpu_daemon.planner.cast import keep_user_cast
from gpu_daemon.planner.openai import parse_plan
from gpu_daemon.planner.people import CastEdits
from gpu_daemon.planner.rules import RulesPlanner
from storyboard_contract.wire import Character, UserCast

# The rules planner finds nobody here: 阿梅 is named once, with no speech tag or title.
FERRY = "清晨，小船划过河面。岸边的画家抬起头。阿梅撑着篙，把船靠了岸。画家笑了。"
# Two names of one woman, cast apart unless the user says otherwise.
MEI = "Mei rowed across the river. Mei waved. 阿梅笑道：“你好！”阿梅把船靠了岸。"
LIGHTHOUSE = ("The storm rose over the bay. Old Tom climbed the lighthouse stairs. "
              "Mara waited by the great lens. Tom smiled at Mara.")


def generated(stack: QueueStack, story: str, *args: str) -> str:
    (stack.root / "story.txt").write_text(story + "\n", encoding="utf-8")
    project = str(stack.json("new", "story.txt", "--title", "ferry")["id"])
    assert stack.json("generate", project, *args, "--timeout", "90")["status"] == "succeeded"
    return project


def cast(stack: QueueStack, project: str) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in stack.json("cast", project)}


def characters(stack: QueueStack, project: str) -> list[list[str]]:
    return [s["characters"] for s in stack.json("show", project)["shots"]]


def test_a_described_character_is_linked_at_once_and_drawn_by_regen_shot(stack):
    stack.start_worker()
    project = generated(stack, FERRY)
    assert cast(stack, project) == {}
    before = stack.json("show", project)["shots"]
    named = [s["number"] for s in before if "阿梅" in s["description"]]
    assert named and all(s["characters"] == [] for s in before)

    (mei,) = stack.json("cast", project, "--set", "阿梅=young boatwoman, red scarf")
    assert mei["shots"] == named
    shots = stack.json("show", project)["shots"]
    assert [s["number"] for s in shots if s["characters"] == ["阿梅"]] == named
    assert [s["number"] for s in shots if s["stale"]] == named  # drawn before she was known
    # One edit: the history says so, and undo takes the links back.
    assert stack.json("log", project)[0]["op"] == "cast"

    # regen-shot draws her from her description, even with a prompt of the user's own.
    regen = stack.json("regen-shot", f"{project}/{named[0]}", "--prompt",
                       "阿梅 rowing the ferry", "--timeout", "60")
    assert regen["status"] == "succeeded"
    redone = stack.json("show", project)["shots"][named[0] - 1]
    assert "young boatwoman, red scarf" in redone["image_prompt"]

    # A re-plan keeps her, her words and her shots.
    assert stack.json("generate", project, "--no-images", "--timeout", "60")[
        "status"] == "succeeded"
    assert cast(stack, project)["阿梅"]["description"] == "young boatwoman, red scarf"
    assert [k + 1 for k, names in enumerate(characters(stack, project))
            if "阿梅" in names] == named


def test_another_name_joins_two_cast_members_into_one_person_across_plans(stack):
    stack.start_worker()
    project = generated(stack, MEI, "--no-images")
    assert list(cast(stack, project)) == ["Mei", "阿梅"]
    assert characters(stack, project) == [["Mei"], ["阿梅"], ["阿梅"]]

    joined = stack.json("cast", project, "--alias", "Mei=阿梅")
    assert [(c["name"], c["aliases"], c["shots"]) for c in joined] == [
        ("Mei", ["阿梅"], [1, 2, 3])]
    assert characters(stack, project) == [["Mei"], ["Mei"], ["Mei"]]
    table = stack.run("cast", project).stdout
    assert "Mei" in table and "阿梅" in table  # the "also" column
    # The next plan reads the story with it: 阿梅's line is Mei's.
    stack.json("generate", project, "--no-images", "--timeout", "60")
    assert list(cast(stack, project)) == ["Mei"]
    said = [d for s in stack.json("show", project)["shots"] for d in s["dialogue"]]
    assert said == [{"speaker": "Mei", "line": "你好！"}]


def test_a_removed_name_stays_removed_by_every_later_plan(stack):
    stack.start_worker()
    project = generated(stack, LIGHTHOUSE, "--no-images")
    assert list(cast(stack, project)) == ["Tom", "Mara"]

    left = stack.json("cast", project, "--remove", "Tom")
    assert [c["name"] for c in left] == ["Mara"]
    assert all("Tom" not in names for names in characters(stack, project))
    stack.json("generate", project, "--no-images", "--timeout", "60")
    assert list(cast(stack, project)) == ["Mara"]
    assert all("Tom" not in names for names in characters(stack, project))
    # Described again, he is back: the user's newest word holds.
    stack.json("cast", project, "--set", "Tom=old lighthouse keeper")
    stack.json("generate", project, "--no-images", "--timeout", "60")
    assert cast(stack, project)["Tom"]["description"] == "old lighthouse keeper"


def test_the_users_word_is_checked_before_anything_changes(stack):
    (stack.root / "story.txt").write_text(LIGHTHOUSE + "\n", encoding="utf-8")
    project = str(stack.json("new", "story.txt")["id"])
    stack.json("cast", project, "--set", "Tom=old man")
    for args, message in [
        (("--alias", "Tom"), 'write it as "NAME=OTHER,OTHER"'),
        (("--alias", "Nobody=X"), "project 1 has no character 'Nobody'"),
        (("--alias", "Tom=Tom"), "not Tom itself"),
        (("--alias", "Tom=A,a"), "each once"),
        (("--alias", "Tom=" + ",".join(f"N{k}" for k in range(9))), "at most 8 other names"),
        (("--set", "Ann=girl", "--alias", "Tom=Ann"), "Ann is a name of its own"),
        # One character, one description a change (names compare in any case).
        (("--set", "Ann=girl", "--set", "ann=woman"), "ann is described twice in this change"),
        (("--set", "Tom=old man", "--set", "Tom=young man"), "Tom is given twice in this change"),
    ]:
        refused = stack.run("cast", project, *args)
        assert refused.returncode == 2, args
        assert message in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    assert [(c["name"], c["aliases"]) for c in stack.json("cast", project)] == [("Tom", [])]


def test_another_name_described_describes_its_character(stack):
    (stack.root / "story.txt").write_text(MEI + "\n", encoding="utf-8")
    project = str(stack.json("new", "story.txt")["id"])
    stack.json("cast", project, "--set", "Mei=young boatwoman", "--alias", "Mei=阿梅")
    described = stack.json("cast", project, "--set", "阿梅=boatwoman, red scarf")
    assert [(c["name"], c["description"], c["aliases"]) for c in described] == [
        ("Mei", "boatwoman, red scarf", ["阿梅"])]


# --- the planner side --------------------------------------------------------------------------


def test_an_llm_answer_is_held_to_the_users_word():
    answer = {"characters": [{"name": "Glasgow", "description": "city"},
                             {"name": "林", "description": "woman"},
                             {"name": "Walter", "description": "young man"}],
              "shots": [{"description": "Lin in Glasgow.", "prompt": "wide shot, a station",
                         "characters": ["Glasgow", "林", "Walter"],
                         "dialogue": [{"speaker": "林", "line": "Late again."},
                                      {"speaker": "Glasgow", "line": "Hm."}]}]}
    user = UserCast(characters=[Character(name="Walter", description="old man, grey coat")],
                    aliases={"Lin": ["林"]}, not_characters=["glasgow"])
    plan = keep_user_cast(parse_plan(json.dumps(answer), 10), user)
    assert [(c.name, c.description) for c in plan.characters] == [
        ("Lin", "woman"), ("Walter", "old man, grey coat")]
    (shot,) = plan.shots
    assert shot.characters == ["Lin", "Walter"]
    assert [(d.speaker, d.line) for d in shot.dialogue] == [("Lin", "Late again."), (None, "Hm.")]


def test_the_rules_planners_plans_are_what_it_made_with_the_users_word():
    user = UserCast(characters=[Character(name="阿梅", description="young boatwoman")],
                    aliases={"Mei": ["阿梅x"]}, not_characters=["Tom"])
    plan = RulesPlanner().plan(MEI + LIGHTHOUSE, "movie", 20, CastEdits.of(user))
    assert keep_user_cast(plan, user) == plan
