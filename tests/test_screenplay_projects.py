"""Screenplays become projects, through the real stack (Redis, SeaweedFS, the sketch GPU daemon,
a `storyboard worker`): `storyboard new` takes a Fountain or a Final Draft file (by extension,
by content, or as --format says), titles it from its title page, stores its parsed form, and
`generate` plans shots that follow its scenes, with the speakers, the cast and the moves right;
`show` numbers them by scene and `regen-shot PROJECT/3.2` names one. Bad screenplays are one
line and exit 2, and change nothing; the limits of screenplays hold."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from fixtures_queue import QueueStack, storyboard_argv
from test_planner_screenplay import FERRY_SHOTS

from storyboard_contract.config import DaemonConfig
from storyboard_contract.screenplay import (
    MAX_SCENES,
    MAX_SCREENPLAY_PARTS,
    MAX_SCREENPLAY_TEXT_BYTES,
    Dialogue,
    Scene,
    Screenplay,
)
from storyboard_contract.wire import PlanRequest

DATA = Path(__file__).parent / "data"
SCENES = [("1", "INT. FERRY CABIN - NIGHT"), ("2", "EXT. FERRY DECK - CONTINUOUS"),
          ("3", "EXT. HARBOUR - DAWN")]
# Cut off after its first paragraph's opening, 64 lines down (the error names the line).
BROKEN_FDX = ('<?xml version="1.0"?>\n' + "<!-- draft -->\n" * 62
              + '<FinalDraft><Content><Paragraph Type="Action">\n')
XML_BOMB = ('<?xml version="1.0"?>\n<!DOCTYPE FinalDraft [<!ENTITY a "aaaaaaaaaa">'
            '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>\n'
            '<FinalDraft><Content><Paragraph Type="Action"><Text>&b;</Text></Paragraph>'
            '</Content></FinalDraft>\n')


def write_revised_ferry(folder: Path) -> None:
    """night_ferry_v2.fountain: a scene added before the others, the harbour now a pier."""
    first = (DATA / "night_ferry.fountain").read_text(encoding="utf-8")
    revised = first.replace("INT. FERRY CABIN - NIGHT", "EXT. QUAYSIDE - NIGHT\n\nIvy sprints "
                            "along the quay.\n\nINT. FERRY CABIN - NIGHT", 1).replace(
        "EXT. HARBOUR - DAWN", "EXT. PIER - DAWN")
    (folder / "night_ferry_v2.fountain").write_text(revised, encoding="utf-8")


def copy_scripts(stack: QueueStack) -> None:
    for name in ("night_ferry.fountain", "night_ferry.fdx"):
        shutil.copy(DATA / name, stack.root / name)


def test_a_fountain_and_a_final_draft_screenplay_become_storyboards_that_follow_their_scenes(
        stack: QueueStack):
    copy_scripts(stack)
    stack.start_worker()
    for name, kind in (("night_ferry.fountain", "fountain"), ("night_ferry.fdx", "fdx")):
        # 1. new: the title page's title, the format by the extension, the scenes listed.
        project = stack.json("new", name)
        assert (project["title"], project["format"]) == ("The Night Ferry", kind)
        assert [(s["number"], s["heading"]) for s in project["scenes"]] == SCENES
        assert project["scenes"][1]["time_of_day"].upper() == "CONTINUOUS"
        pid = str(project["id"])
        # 2. generate: the shots follow the scenes, with speakers, parentheticals and moves.
        done = stack.run("generate", pid, "--json", "--timeout", "90", timeout=120)
        assert done.returncode == 0, done.stderr
        shots = json.loads(done.stdout)["shots"]
        assert [(s["label"], s["camera"], s["move"], s["characters"],
                 [(d["speaker"], d.get("parenthetical"), d["line"]) for d in s["dialogue"]])
                for s in shots] == [(label, size, move, people, list(said))
                                    for label, size, move, people, said in FERRY_SHOTS]
        assert all(s["image_key"] for s in shots)
        assert [s["number"] for s in shots] == list(range(1, len(shots) + 1))
        assert {(s["scene"], s["scene_heading"]) for s in shots} == set(SCENES)
        # No shot of a cue, a transition or the note.
        words = {s["description"] for s in shots} | {s["action"] for s in shots}
        assert not words & {"OTTO", "IVY", "CUT TO:", "Is Ivy older than Otto?"}
        # 3. the cast is the cues, described by their introductions.
        cast = stack.json("cast", pid)
        assert [(c["name"], c["description"], c["shots"]) for c in cast] == [
            ("OTTO", "sixty years old, grey beard", [3, 4, 6, 13, 14]),
            ("IVY", "thirty years old, soaked raincoat", [2, 5, 6, 9, 10])]

    # 4. show numbers the shots by scene, headings over the scenes, moves beside the sizes.
    shown = stack.run("show", pid)
    assert shown.returncode == 0, shown.stderr
    text = shown.stdout
    assert "A Final Draft screenplay of 3 scene(s):" in text
    assert "Scene 2 · EXT. FERRY DECK - CONTINUOUS" in text
    assert "Shot 2.3 · medium · push in · " in text and f"({pid}/2.3, id " in text
    assert "OTTO (gruff): Fare's doubled after midnight." in text
    # 5. regen-shot names a shot by scene and shot.
    redo = stack.json("regen-shot", f"{pid}/2.3", "--seed", "3", "--no-wait")
    task = stack.json("status", redo["task_id"])
    assert task["shot_id"] == shots[8]["id"]
    missing = stack.run("regen-shot", f"{pid}/4.1")
    assert missing.returncode == 2
    assert f"project {pid}'s storyboard has 14 shots; no shot 4.1" in missing.stderr


def test_a_revised_screenplay_is_read_again_and_renders_only_its_new_and_changed_shots(
        stack: QueueStack):
    copy_scripts(stack)
    write_revised_ferry(stack.root)
    stack.start_worker()
    pid = str(stack.json("new", "night_ferry.fountain")["id"])
    before = stack.json("generate", pid, "--timeout", "90")["shots"]
    # 1. A writer's move: the deck's push in becomes a pull out; the frame stays.
    (moved,) = stack.json("shot", f"{pid}/2.3", "--move", "pull out")["shots"]
    assert (moved["move"], moved["stale"]) == ("pull out", False)

    # 2. update: the screenplay is parsed again, scene by scene.
    done = stack.run("update", pid, "night_ferry_v2.fountain", "--json", "--timeout", "90",
                     timeout=120)
    assert done.returncode == 0, done.stderr
    after = json.loads(done.stdout)["shots"]
    project = stack.json("show", pid)
    assert [s["heading"] for s in project["scenes"]] == [
        "EXT. QUAYSIDE - NIGHT", "INT. FERRY CABIN - NIGHT", "EXT. FERRY DECK - CONTINUOUS",
        "EXT. PIER - DAWN"]
    assert [(r["number"], r["format"]) for r in stack.json("revisions", pid)] == [
        (1, "fountain"), (2, "fountain")]
    # The cabin and the deck: the same shots, renumbered a scene on, their images and the
    # writer's move kept; the quayside new; the pier's shots changed, so drawn again.
    by_label = {s["label"]: s for s in before}
    kept = [s for s in after if s["scene"] in ("2", "3")]
    assert [s["revised"] for s in kept] == [None] * 10
    for shot in kept:
        old = by_label[f"{int(shot['scene']) - 1}.{shot['scene_shot']}"]
        assert (shot["description"], shot["image_key"]) == (old["description"],
                                                            old["image_key"])
    (deck_push,) = [s for s in after if s["label"] == "3.3"]
    assert (by_label["2.3"]["move"], deck_push["move"]) == ("push in", "pull out")
    assert [(s["label"], s["revised"]) for s in after if s["scene"] in ("1", "4")] == [
        ("1.1", "new"), ("1.2", "new"), ("4.1", "changed"), ("4.2", "changed"),
        ("4.3", "changed"), ("4.4", "changed")]
    assert all(s["image_key"] and s["image_key"] not in {o["image_key"] for o in before}
               for s in after if s["scene"] in ("1", "4"))
    assert [s["scene_heading"] for s in after if s["scene"] == "4"] == ["EXT. PIER - DAWN"] * 4


def test_the_format_is_read_from_the_content_or_forced_and_the_title_can_be_given(
        stack: QueueStack):
    fountain = (DATA / "night_ferry.fountain").read_text(encoding="utf-8")

    def new(*args: str, text: str = fountain) -> dict:
        done = subprocess.run([*storyboard_argv(), "new", *args, "--json"], input=text,
                              env=stack.env, cwd=stack.root, capture_output=True, text=True,
                              timeout=60)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    from_stdin = new("-")  # no extension: the content says Fountain
    assert (from_stdin["format"], from_stdin["title"]) == ("fountain", "The Night Ferry")
    named = new("-", "--title", "Ferry, cut 2")
    assert named["title"] == "Ferry, cut 2"
    as_prose = new("-", "--format", "prose", "--title", "as prose")
    assert (as_prose["format"], as_prose["scenes"]) == ("prose", [])
    # A story in prose stays prose, titled by the file's name.
    (stack.root / "lighthouse.txt").write_text("The keeper climbed the stairs. The lamp was "
                                               "dark.\n", encoding="utf-8")
    prose = stack.json("new", "lighthouse.txt")
    assert (prose["format"], prose["title"]) == ("prose", "lighthouse")
    forced = new("-", "--format", "FDX", text=(DATA / "night_ferry.fdx").read_text())
    assert forced["format"] == "fdx" and len(forced["scenes"]) == 3


def test_a_bad_screenplay_is_one_line_exit_2_and_changes_nothing(stack: QueueStack):
    (stack.root / "broken.fdx").write_text(BROKEN_FDX, encoding="utf-8")
    (stack.root / "bomb.fdx").write_text(XML_BOMB, encoding="utf-8")
    (stack.root / "empty.fountain").write_text("[[only a note]]\n/* and a boneyard */\n",
                                               encoding="utf-8")
    copy_scripts(stack)
    refusals = [
        (("new", "broken.fdx"), "not a Final Draft file: broken XML"),
        (("new", "bomb.fdx"), "declares a DTD"),
        (("new", "empty.fountain"), "no screenplay in this Fountain text"),
        (("new", "night_ferry.fountain", "--format", "rtf"), "'rtf' is not one of"),
    ]
    for args, words in refusals:
        done = stack.run(*args)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and words in lines[0], done.stderr
        assert "Traceback" not in done.stderr
    # The limits: [limits] max_screenplay_bytes for the file, the wire's bound for its text.
    small = stack.run("new", "night_ferry.fdx",
                      env={"STORYBOARD_LIMITS_MAX_SCREENPLAY_BYTES": "1000"})
    size = (DATA / "night_ferry.fdx").stat().st_size
    assert small.returncode == 2
    assert small.stderr == (f"Error: the screenplay is {size:,} bytes; the limit is 1,000 "
                            "(limits.max_screenplay_bytes)\n")
    paragraph = "A long, slow pan across the hall. " * 300
    huge = "INT. HALL - DAY\n\n" + "\n\n".join([paragraph] * 120)
    (stack.root / "huge.fountain").write_text(huge, encoding="utf-8")
    too_much = stack.run("new", "huge.fountain",
                         env={"STORYBOARD_LIMITS_MAX_SCREENPLAY_BYTES": "3000000"})
    text = len("INT. HALL - DAY") + 120 * len(paragraph.rstrip())
    assert too_much.returncode == 2
    assert too_much.stderr == (f"Error: this fountain screenplay is too large: the screenplay "
                               f"holds {text:,} bytes of text; the limit is 1,000,000\n")
    assert stack.json("list") == []


def test_a_screenplay_at_the_wires_bounds_fits_the_daemons_body_limit():
    """The worst a plan request can carry: every bound reached, every text escaped in JSON
    (quotes and line breaks), the most elements; it still fits [daemon] max_body_bytes."""
    per_part = MAX_SCREENPLAY_TEXT_BYTES // MAX_SCREENPLAY_PARTS  # the name "A" and a line
    line = ('"\n' * per_part)[:per_part - 1]
    parts_a_scene = 10
    scenes = [Scene(heading=None, elements=[Dialogue(character="A", line=line)
                                            for _ in range(parts_a_scene)])
              for _ in range(MAX_SCREENPLAY_PARTS // parts_a_scene)]
    assert len(scenes) <= MAX_SCENES
    screenplay = Screenplay(scenes=scenes)
    assert screenplay.text_bytes() > 0.98 * MAX_SCREENPLAY_TEXT_BYTES
    body = PlanRequest(project_id=1, task_id="t", screenplay=screenplay).model_dump_json(
        exclude_none=True).encode()
    assert len(body) <= DaemonConfig().max_body_bytes
