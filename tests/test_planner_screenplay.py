"""Planning a parsed screenplay: the rules planner's shots follow the scenes (an establishing
shot first, a shot per speech with its speaker and parenthetical, nothing made of a cue, a
heading, a transition, a note or a section), its cast is the cues, its moves come from camera
language; the LLM planner is sent the parsed scenes and held to them (a local
OpenAI-compatible server stands for the service)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fixtures_llm import LLMServer
from test_planner_openai import planner_for

from gpu_daemon.planner import PlannerError
from gpu_daemon.planner.moves import camera_move
from gpu_daemon.planner.rules import RulesPlanner
from gpu_daemon.planner.scenes import introduction, min_shots
from storyboard_cli.screenplay import parse_fdx, parse_fountain
from storyboard_contract.numbering import scene_numbers, shot_label, split_label
from storyboard_contract.screenplay import Screenplay
from storyboard_contract.wire import MAX_SHOTS, PlanRequest, move_name

DATA = Path(__file__).parent / "data"
FERRY = (DATA / "night_ferry.fountain").read_text(encoding="utf-8")
# What tests/data/night_ferry.* plan to: (label, shot size, move, characters, dialogue).
FERRY_SHOTS = [
    ("1.1", "wide", "static", [], []),
    ("1.2", "full", "static", ["IVY"], []),
    ("1.3", "medium", "static", ["OTTO"], []),
    ("1.4", "medium", "static", ["OTTO"], [("OTTO", "gruff", "Fare's doubled after midnight.")]),
    ("1.5", "over-the-shoulder", "static", ["IVY"], [("IVY", None, "Then I'll swim.")]),
    ("1.6", "medium", "static", ["OTTO", "IVY"],
     [("OTTO", None, "Suit yourself."), ("IVY", None, "Fine.")]),
    ("2.1", "extreme wide", "static", [], []),
    ("2.2", "full", "static", [], []),
    ("2.3", "medium", "push in", ["IVY"], []),
    ("2.4", "close-up", "static", ["IVY"], [("IVY", None, "There! A light on the water!")]),
    ("3.1", "extreme wide", "static", [], []),
    ("3.2", "full", "static", [], []),
    ("3.3", "medium", "static", ["OTTO"], []),
    ("3.4", "medium", "static", ["OTTO"], [("OTTO", None, "Told you we'd make it.")]),
]


def plan(text: str, max_shots: int = 24):
    return RulesPlanner().plan_screenplay(parse_fountain(text), "movie", max_shots)


def shots_of(planned) -> list[tuple]:
    return [(s.label, s.camera, s.move, s.characters,
             [(d.speaker, d.parenthetical, d.line) for d in s.dialogue]) for s in planned.shots]


@pytest.mark.parametrize("reader, name", [(parse_fountain, "night_ferry.fountain"),
                                          (parse_fdx, "night_ferry.fdx")])
def test_the_shots_follow_the_scenes_with_speakers_and_no_shot_of_a_cue_heading_or_transition(
        reader, name):
    screenplay = reader((DATA / name).read_text(encoding="utf-8"))
    planned = RulesPlanner().plan_screenplay(screenplay, "movie", 24)

    assert shots_of(planned) == FERRY_SHOTS
    # Each scene opens with an establishing shot of its heading, and only there.
    headings = {"1": "INT. FERRY CABIN - NIGHT", "2": "EXT. FERRY DECK - CONTINUOUS",
                "3": "EXT. HARBOUR - DAWN"}
    for shot in planned.shots:
        assert (shot.scene_heading, shot.index) == (headings[shot.scene], shot.number - 1)
        assert (shot.description == shot.scene_heading) == (shot.scene_shot == 1)
    # No shot is made of a cue, the transition, the note or a bare heading's words elsewhere.
    said = {s.description for s in planned.shots}
    assert not said & {"OTTO", "IVY", "IVY ^", "(gruff)", "CUT TO:", "Is Ivy older than Otto?"}
    assert all("CUT TO" not in s.description and "Is Ivy older" not in s.description
               for s in planned.shots)
    # The cast: every character with a cue, described by the action that introduces them.
    assert [(c.name, c.description) for c in planned.characters] == [
        ("OTTO", "sixty years old, grey beard"), ("IVY", "thirty years old, soaked raincoat")]


def test_place_and_time_of_day_are_in_every_prompt_and_continuous_keeps_the_time_before():
    planned = plan(FERRY)
    for shot in planned.shots:
        where = {"1": "ferry cabin, interior, night", "2": "ferry deck, exterior, night",
                 "3": "harbour, exterior, dawn"}[shot.scene]
        assert where in shot.prompt, shot.prompt
    assert planned.shots[0].prompt == "wide shot, ferry cabin, interior, night"
    assert planned.shots[3].prompt.endswith("OTTO speaking, gruff")


def test_a_voice_not_in_the_picture_speaks_over_the_shot_before_it():
    planned = plan("INT. ATTIC - NIGHT\n\nDust drifts through a beam of moonlight.\n\n"
                   "MARA (V.O.)\nI never came back here.\n\nMARA enters, holding a candle.\n")
    assert [(s.label, s.characters, [(d.speaker, d.line) for d in s.dialogue])
            for s in planned.shots] == [
        ("1.1", [], []),
        ("1.2", [], [("MARA", "I never came back here.")]),
        ("1.3", ["MARA"], []),
    ]


def test_a_speech_without_words_is_what_its_speaker_does():
    planned = plan("INT. ROOM - DAY\n\nMARA\n(nods)\n\nTOM\nGood.\n")
    nod = planned.shots[1]
    assert (nod.label, nod.action, nod.characters, nod.dialogue) == ("1.2", "MARA nods",
                                                                      ["MARA"], [])
    assert nod.prompt.endswith("MARA nods")


def test_the_writers_own_shots_and_title_cards_keep_their_framing():
    planned = RulesPlanner().plan_screenplay(parse_fdx(
        (DATA / "last_light.fdx").read_text(encoding="utf-8")), "movie", 40)
    crank = next(s for s in planned.shots if s.description == "CLOSE ON THE CRANK")
    assert crank.camera == "close-up"
    title = planned.shots[-1]
    assert (title.camera, title.action) == ("insert", "title card: THE END")
    assert "reef" not in title.prompt  # a title card has no place


def test_more_beats_than_shots_merge_within_scenes_each_keeping_its_establishing_shot():
    planned = plan(FERRY, max_shots=6)
    assert [s.label for s in planned.shots] == ["1.1", "1.2", "2.1", "2.2", "3.1", "3.2"]
    assert [s.description for s in planned.shots if s.scene_shot == 1] == [
        "INT. FERRY CABIN - NIGHT", "EXT. FERRY DECK - CONTINUOUS", "EXT. HARBOUR - DAWN"]
    # Nothing is dropped: every speech is still in the scene's one other shot.
    lines = [d.line for s in planned.shots for d in s.dialogue]
    assert lines == [line for *_, said in FERRY_SHOTS for _, _, line in said]
    # Three shots for three scenes: each scene is its establishing shot with its beats.
    three = plan(FERRY, max_shots=3)
    assert [s.label for s in three.shots] == ["1.1", "2.1", "3.1"]
    assert three.shots[2].description.startswith("EXT. HARBOUR - DAWN\nThe ferry glides")
    with pytest.raises(PlannerError, match=r"3 scenes to film .* at most 2 shots"):
        plan(FERRY, max_shots=2)
    assert min_shots(parse_fountain(FERRY)) == 3


def test_scenes_are_numbered_as_the_script_numbers_them_else_by_their_headings():
    assert scene_numbers([(None, None), (None, "INT. A"), ("12A", "EXT. B"), (None, "INT. C")]
                         ) == ["0", "1", "12A", "3"]
    planned = plan("Title: T\n\nA cold open before any heading.\n\nINT. HALL - DAY #7B#\n\n"
                   "Lights up.\n")
    assert [s.label for s in planned.shots] == ["0.1", "7B.1", "7B.2"]
    assert (shot_label(4, None, None), shot_label(4, "12A", 3)) == ("4", "12A.3")
    assert (split_label("12A.3"), split_label("7"), split_label("3.0")) == (("12A", 3), None,
                                                                            None)


def test_an_introduction_describes_by_the_words_after_the_name():
    actions = ["The door opens.", "JOHN (40s), a tired cop, shakes off the rain.",
               "Later John sits."]
    assert introduction("JOHN", actions) == "40s, a tired cop"
    assert introduction("MARA", ["MARA, twelve, waits."]) == "twelve years old"
    assert introduction("MARA", ["Mara waits."]) == ""


def test_camera_moves_come_from_camera_language_only():
    assert [camera_move(t) for t in (
        "PUSH IN on her face.", "The camera pulls back to reveal the bay.", "We pan left.",
        "TILT UP to the lamp.", "tilts down to the water", "镜头推近她的眼睛", "画面拉远",
        "Tom climbs the stairs and looks up.", "She pushes the door in anger.",
    )] == ["push in", "pull out", "pan left", "tilt up", "tilt down", "push in", "pull out",
           "static", "static"]
    assert [move_name(m) for m in ("Dolly In", "zoom_out", "PAN-RIGHT", "none", "drone")] == [
        "push in", "pull out", "pan right", "static", "drone"]


def test_a_plan_request_carries_prose_or_a_screenplay_never_both():
    screenplay = parse_fountain(FERRY)
    PlanRequest(project_id=1, task_id="t", screenplay=screenplay)
    for fields in ({}, {"story": "Once.", "screenplay": screenplay}):
        with pytest.raises(ValueError, match="one of them"):
            PlanRequest(project_id=1, task_id="t", **fields)
    assert MAX_SHOTS >= 200


# --- the LLM planner ----------------------------------------------------------------------------

LLM_ANSWER = {
    "characters": [{"name": "Ivy", "description": "woman in her thirties, soaked raincoat"}],
    "shots": [
        {"scene": 1, "description": "INT. FERRY CABIN - NIGHT", "camera": "wide",
         "prompt": "a ferry cabin at night, lamp light", "move": "static"},
        {"scene": "1", "description": "OTTO (gruff): Fare's doubled after midnight.",
         "camera": "medium", "prompt": "an old ferryman in a doorway, night",
         "characters": ["otto"], "move": "Dolly In",
         "dialogue": [{"speaker": "Otto", "line": "Fare's doubled after midnight.",
                       "parenthetical": "gruff"}]},
        {"scene": "3", "description": "EXT. HARBOUR - DAWN", "camera": "establishing",
         "prompt": "a harbour at dawn", "move": "pan right"},
    ],
}


def test_the_llm_planner_gets_the_parsed_scenes_and_its_shots_keep_their_scenes(
        llm_server: LLMServer):
    llm_server.answer(json.dumps(LLM_ANSWER))
    planned = planner_for(llm_server).plan_screenplay(parse_fountain(FERRY), "noir", 20)

    system, user = llm_server.requests[0].body["messages"]
    assert '"scene"' in system["content"] and "establishing shot" in system["content"]
    assert '"move"' in system["content"] and "push in" in system["content"]
    sent = json.loads(user["content"].split("Screenplay (its scenes in JSON):\n", 1)[1])
    first = sent["scenes"][0]
    assert (first["scene"], first["heading"], first["location"], first["time_of_day"]) == (
        "1", "INT. FERRY CABIN - NIGHT", "FERRY CABIN", "NIGHT")
    assert first["elements"][2] == {"speaker": "OTTO", "parenthetical": "gruff",
                                    "line": "Fare's doubled after midnight."}
    assert first["elements"][5] == {"speaker": "IVY", "line": "Fine.", "dual": True}
    # Not the file's text: no note, no Fountain syntax.
    assert "[[" not in user["content"] and "Is Ivy older" not in user["content"]
    assert "Title:" not in user["content"] and "^" not in user["content"]

    assert [(s.label, s.scene_heading, s.move) for s in planned.shots] == [
        ("1.1", "INT. FERRY CABIN - NIGHT", "static"),
        ("1.2", "INT. FERRY CABIN - NIGHT", "push in"),
        ("3.1", "EXT. HARBOUR - DAWN", "pan right")]
    # Names as the cues spell them; every cue is in the cast, described where the model did.
    assert planned.shots[1].characters == ["OTTO"]
    assert [(d.speaker, d.parenthetical) for d in planned.shots[1].dialogue] == [
        ("OTTO", "gruff")]
    assert [(c.name, c.description) for c in planned.characters] == [
        ("OTTO", ""), ("IVY", "woman in her thirties, soaked raincoat")]


def test_a_shot_in_no_scene_of_the_screenplay_is_sent_back_once(llm_server: LLMServer):
    wrong = {"shots": [{"scene": "9", "description": "x", "prompt": "a boat"}]}
    llm_server.answer(json.dumps(wrong), json.dumps(LLM_ANSWER))
    planned = planner_for(llm_server).plan_screenplay(parse_fountain(FERRY), "movie", 20)
    assert len(planned.shots) == 3
    retry = llm_server.requests[1].body["messages"][3]["content"]
    assert "shot 0: scene: '9' is not a scene of the screenplay (its scenes: 1, 2, 3)" in retry


def test_a_screenplay_round_trips_through_the_wire_as_the_worker_sends_it():
    screenplay = parse_fountain(FERRY)
    request = PlanRequest(project_id=1, task_id="t", screenplay=screenplay)
    again = PlanRequest.model_validate_json(request.model_dump_json(exclude_none=True))
    assert again.screenplay == screenplay and isinstance(again.screenplay, Screenplay)
