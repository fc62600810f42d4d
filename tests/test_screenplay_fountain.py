"""Fountain screenplays read into the screenplay model: the sample script in tests/data, then
one test per rule of the spec (https://fountain.io/syntax), telling Fountain from prose, bad
input, and the time a feature-length script takes."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from screenplay_samples import long_script

from storyboard_cli.screenplay import ScreenplayError, detect_format, parse_fountain
from storyboard_cli.screenplay.build import parse_heading
from storyboard_contract.errors import EXIT_USAGE, UsageError
from storyboard_contract.screenplay import (
    Action,
    Dialogue,
    Lyrics,
    Note,
    Scene,
    Screenplay,
    Section,
    Synopsis,
    Transition,
)

DATA = Path(__file__).parent / "data"
EXAMPLES = Path(__file__).parent.parent / "examples"
SAMPLE = (DATA / "last_light.fountain").read_text(encoding="utf-8")


def scene_of(text: str) -> Scene:
    """The one scene a snippet under a heading makes."""
    screenplay = parse_fountain("INT. HOUSE - DAY\n\n" + text)
    assert len(screenplay.scenes) == 1
    return screenplay.scenes[0]


def kinds(scene: Scene) -> list[str]:
    return [element.kind for element in scene.elements]


# The sample script --------------------------------------------------------------------------

def test_sample_has_three_scenes_with_their_headings_taken_apart():
    screenplay = parse_fountain(SAMPLE)
    assert [(s.heading, s.int_ext, s.location, s.time_of_day, s.number)
            for s in screenplay.scenes] == [
        ("EXT. HARBOUR WALL - DUSK", "EXT", "HARBOUR WALL", "DUSK", "1"),
        ("INT. LIGHTHOUSE LAMP ROOM - NIGHT", "INT", "LIGHTHOUSE LAMP ROOM", "NIGHT", "2"),
        ("EXT. REEF - NIGHT", "EXT", "REEF", "NIGHT", "3"),
    ]


def test_sample_cast_is_every_cued_name_without_its_extension():
    assert parse_fountain(SAMPLE).characters == ["TOM", "MARA"]


def test_sample_title_page():
    screenplay = parse_fountain(SAMPLE)
    assert screenplay.title == "The Last Light"
    assert screenplay.title_page == {
        "title": "The Last Light",
        "credit": "Written by",
        "author": "Ada Quill",
        "draft date": "1 May 2024",
        "contact": "Harbour Films\nada@example.com",
    }


def test_sample_elements_in_reading_order_and_no_shot_from_cue_heading_or_transition():
    first, second, third = parse_fountain(SAMPLE).scenes
    assert first.elements == [
        Action(text="Waves break over the harbour wall. Fishing boats strain at their ropes."),
        Action(text="TOM, seventy, weathered, climbs toward the lighthouse with a brass lantern."),
        Dialogue(character="TOM", extensions=["V.O."], line="Forty years I kept that light."),
        Transition(text="CUT TO:"),
    ]
    assert second.elements == [
        Action(text="MARA, twelve, waits by the great lens."),
        Dialogue(character="MARA", parentheticals=["breathless"], line="The light won't turn!"),
        Dialogue(character="TOM", line="The gears are jammed again."),
        Dialogue(character="MARA", line="Grandpa, a boat!", dual="left"),
        Dialogue(character="TOM", line="I see it.", dual="right"),
        Action(text="Tom throws his weight on the crank. The gears give way."),
    ]
    assert third.elements == [
        Action(text="The beam sweeps the black water. The small boat turns away from the rocks "
                    "just in time."),
        Dialogue(character="MARA", extensions=["O.S."], line="It turned!"),
        Action(text="THE END", centered=True),
    ]


def test_sample_notes_sections_and_synopses_are_metadata_and_the_boneyard_is_gone():
    first, second, third = parse_fountain(SAMPLE).scenes
    assert first.metadata == [Section(text="ACT ONE", depth=1, position=0),
                              Synopsis(text="The storm rises and the old light fails.",
                                       position=0)]
    assert second.metadata == [Note(text="Should Mara be older?", position=1)]
    assert third.metadata == []
    everything = parse_fountain(SAMPLE).model_dump_json()
    assert "This line was cut" not in everything
    assert "CELLAR" not in everything


def test_the_model_crosses_the_wire_as_json_and_back():
    screenplay = parse_fountain(SAMPLE)
    again = Screenplay.model_validate_json(screenplay.model_dump_json())
    assert again == screenplay
    assert again.characters == ["TOM", "MARA"]


# Title page ---------------------------------------------------------------------------------

def test_title_page_keys_values_on_indented_lines_and_emphasis():
    screenplay = parse_fountain(
        "Title:\n    _**BRICK & STEEL**_\n    _**FULL RETIRED**_\nDraft date: 1/20/2012\n"
        "Contact:\n\tNext Level Productions\n\t1588 Mission Dr.\n\nINT. HOUSE - DAY\n\nA.\n")
    assert screenplay.title_page == {"title": "BRICK & STEEL\nFULL RETIRED",
                                     "draft date": "1/20/2012",
                                     "contact": "Next Level Productions\n1588 Mission Dr."}
    assert screenplay.title == "BRICK & STEEL FULL RETIRED"


def test_no_title_page_unless_a_known_key_opens_the_file():
    screenplay = parse_fountain("FADE IN:\n\nINT. HOUSE - DAY\n\nA.\n")
    assert screenplay.title is None and screenplay.title_page == {}
    assert screenplay.scenes[0].elements == [Transition(text="FADE IN:")]


# Scene headings -----------------------------------------------------------------------------

@pytest.mark.parametrize("heading", [
    "INT. HOUSE - DAY", "EXT. HOUSE - DAY", "EST. HOUSE - DAY", "INT./EXT. HOUSE - DAY",
    "INT/EXT HOUSE - DAY", "I/E HOUSE - DAY", "int. house - day", "EXT./INT. CAR - DAY",
])
def test_scene_heading_prefixes(heading):
    screenplay = parse_fountain(f"{heading}\n\nShe waits.\n")
    assert [scene.heading for scene in screenplay.scenes] == [heading]


def test_a_word_that_merely_starts_like_a_prefix_is_no_heading():
    scene = parse_fountain("INTERIOR DESIGN MATTERS\n\nShe waits.\n").scenes[0]
    assert scene.heading is None
    assert scene.elements[0] == Action(text="INTERIOR DESIGN MATTERS")


def test_forced_scene_heading_with_one_dot_but_not_an_ellipsis():
    screenplay = parse_fountain(".SNIPER SCOPE POV\n\n...and then silence.\n")
    assert screenplay.scenes[0].heading == "SNIPER SCOPE POV"
    assert screenplay.scenes[0].int_ext is None
    assert screenplay.scenes[0].elements == [Action(text="...and then silence.")]


def test_scene_number_is_taken_off_the_heading():
    scene = parse_fountain("INT. HOUSE - DAY #1A#\n\nA.\n").scenes[0]
    assert (scene.heading, scene.number) == ("INT. HOUSE - DAY", "1A")
    assert parse_fountain(".FLASHBACK #I-1-A#\n\nA.\n").scenes[0].number == "I-1-A"


def test_a_heading_needs_a_blank_line_before_it():
    assert kinds(scene_of("He walks.\nINT. NOT A HEADING - DAY\n")) == ["action"]


def test_a_heading_on_top_of_a_paragraph_is_read_even_without_the_blank_line_after():
    screenplay = parse_fountain("INT. HOUSE - DAY\nJohn enters.\n")
    assert screenplay.scenes[0].heading == "INT. HOUSE - DAY"
    assert screenplay.scenes[0].elements == [Action(text="John enters.")]


@pytest.mark.parametrize(("heading", "parts"), [
    ("INT. HOUSE - DAY", ("INT", "HOUSE", "DAY")),
    ("EXT. BRICK'S PATIO - NIGHT", ("EXT", "BRICK'S PATIO", "NIGHT")),
    ("INT. HOUSE - KITCHEN - MORNING", ("INT", "HOUSE - KITCHEN", "MORNING")),
    ("INT. HOUSE - KITCHEN", ("INT", "HOUSE - KITCHEN", None)),
    ("INT./EXT. CAR (MOVING) - CONTINUOUS", ("INT/EXT", "CAR (MOVING)", "CONTINUOUS")),
    ("I/E TRAIN -- MOMENTS LATER", ("INT/EXT", "TRAIN", "MOMENTS LATER")),
    ("EST. CITY \u2014 DAWN", ("EST", "CITY", "DAWN")),
    ("INT. DINER - 3 AM", ("INT", "DINER", "3 AM")),
    ("INT. HALF-WAY HOUSE - DAY (1985)", ("INT", "HALF-WAY HOUSE", "DAY (1985)")),
    ("INT. GARAGE", ("INT", "GARAGE", None)),
    ("DREAM SEQUENCE", (None, "DREAM SEQUENCE", None)),
])
def test_heading_parts(heading, parts):
    assert parse_heading(heading) == parts


def test_material_before_the_first_heading_is_a_scene_without_one():
    screenplay = parse_fountain("The sea at night.\n\nINT. HOUSE - DAY\n\nA.\n")
    assert [scene.heading for scene in screenplay.scenes] == [None, "INT. HOUSE - DAY"]
    assert screenplay.scenes[0].elements == [Action(text="The sea at night.")]


# Action -------------------------------------------------------------------------------------

def test_action_keeps_its_line_breaks_and_indentation():
    scene = scene_of("He looks around.\n\tThe room is empty.\n    Nobody.\n")
    assert scene.elements == [Action(text="He looks around.\n\tThe room is empty.\n    Nobody.")]


def test_forced_action_with_an_exclamation_mark():
    scene = scene_of("!SCANNING THE AISLES...\nWhere is that pit boss?\n")
    assert scene.elements == [Action(text="SCANNING THE AISLES...\nWhere is that pit boss?")]


def test_forced_action_is_not_a_heading_either():
    screenplay = parse_fountain("!INT. NOT A HEADING\n\nA.\n")
    assert screenplay.scenes[0].heading is None
    assert screenplay.scenes[0].elements[0] == Action(text="INT. NOT A HEADING")


# Characters and dialogue --------------------------------------------------------------------

def test_a_line_in_capitals_with_text_under_it_is_a_cue():
    assert scene_of("STEEL\nThe man's a myth!\n").elements == [
        Dialogue(character="STEEL", line="The man's a myth!")]


@pytest.mark.parametrize("name", ["ÉLODIE", "JOSÉ", "R2D2", "DR. QUILL", "MAN #2", "BRICK & STEEL"])
def test_cue_names_beyond_ascii_letters(name):
    assert scene_of(f"{name}\nHello.\n").elements == [Dialogue(character=name, line="Hello.")]


def test_a_name_needs_a_letter_and_a_blank_line_before_it():
    assert kinds(scene_of("23\nskidoo\n")) == ["action"]
    assert scene_of("He runs.\nBRICK\nWaits.\n").elements == [
        Action(text="He runs.\nBRICK\nWaits.")]


def test_a_line_in_capitals_alone_is_action():
    assert scene_of("BOOM.\n\nHe falls.\n").elements == [Action(text="BOOM."),
                                                         Action(text="He falls.")]


def test_a_line_ending_in_a_colon_is_no_speaker():
    screenplay = parse_fountain("INT. A - DAY\n\nA.\n\nCUT TO:\nINT. B - NIGHT\n")
    assert screenplay.characters == []
    assert screenplay.scenes[0].elements[-1] == Action(text="CUT TO:\nINT. B - NIGHT")


def test_forced_cue_with_an_at_sign():
    assert scene_of("@McCLANE\nYippee ki-yay!\n").elements == [
        Dialogue(character="McCLANE", line="Yippee ki-yay!")]


def test_extensions_are_kept_apart_from_the_name():
    scene = scene_of("MOM (O.S.)\nLuke!\n\nHANS (on the radio)\nWhat was it?\n\n"
                     "BRICK (V.O.) (CONT'D)\nStill here.\n")
    assert [(d.character, d.extensions) for d in scene.elements] == [
        ("MOM", ["O.S."]), ("HANS", ["on the radio"]), ("BRICK", ["V.O.", "CONT'D"])]


def test_dual_dialogue_pairs_the_caret_cue_with_the_speech_before_it():
    scene = scene_of("BRICK\nScrew retirement.\n\nSTEEL (V.O.) ^\nScrew retirement.\n")
    assert scene.elements == [
        Dialogue(character="BRICK", line="Screw retirement.", dual="left"),
        Dialogue(character="STEEL", extensions=["V.O."], line="Screw retirement.", dual="right"),
    ]


def test_a_caret_with_no_speech_before_it_is_ordinary_dialogue():
    scene = scene_of("He waits.\n\nSTEEL ^\nNow.\n")
    assert scene.elements[1] == Dialogue(character="STEEL", line="Now.")


def test_parentheticals_before_and_between_dialogue_lines():
    scene = scene_of("STEEL\n(starting the engine)\nSo much for retirement!\n(beat)\nAgain.\n")
    assert scene.elements == [Dialogue(character="STEEL",
                                       parentheticals=["starting the engine", "beat"],
                                       line="So much for retirement!\nAgain.")]


def test_dialogue_keeps_its_line_breaks_and_a_two_space_line_keeps_it_going():
    scene = scene_of("DEALER\nTen.\nFour.\n  \nHit or stand sir?\n\nMONKEY\nDude.\n")
    assert [d.line for d in scene.elements] == ["Ten.\nFour.\n\nHit or stand sir?", "Dude."]


# Transitions, centered text, lyrics, page breaks --------------------------------------------

def test_transition_in_capitals_ending_in_to_between_blank_lines():
    scene = scene_of("A.\n\nCUT TO:\n\nB.\n\nSMASH CUT TO:\n\nFADE OUT.\n")
    assert scene.elements[1::2] == [Transition(text="CUT TO:"), Transition(text="SMASH CUT TO:")]
    assert scene.elements[-1] == Transition(text="FADE OUT.")


def test_a_transition_needs_its_blank_lines():
    assert kinds(scene_of("He walks.\nCUT TO:\nStill walking.\n")) == ["action"]


def test_forced_transition():
    assert scene_of(">Burn to White.\n").elements == [Transition(text="Burn to White.")]


def test_centered_text():
    assert scene_of("> THE END <\n").elements == [Action(text="THE END", centered=True)]


def test_lyrics():
    assert scene_of("~Willy Wonka! Willy Wonka!\n~The amazing chocolatier!\n").elements == [
        Lyrics(text="Willy Wonka! Willy Wonka!\nThe amazing chocolatier!")]


def test_sung_lines_inside_dialogue_stay_dialogue():
    assert scene_of("CHARLIE\n~Pure imagination\n").elements == [
        Dialogue(character="CHARLIE", line="Pure imagination")]


def test_a_page_break_is_neither_a_synopsis_nor_action():
    scene = scene_of("A.\n\n===\n\nB.\n")
    assert scene.elements == [Action(text="A."), Action(text="B.")]
    assert scene.metadata == []


# Notes, boneyard, sections, synopses --------------------------------------------------------

def test_a_note_inside_action_leaves_the_text_and_stays_after_its_element():
    scene = scene_of("He opens the door. [[Is it locked?]]\n\nHe leaves.\n")
    assert scene.elements == [Action(text="He opens the door."), Action(text="He leaves.")]
    assert scene.metadata == [Note(text="Is it locked?", position=1)]


def test_a_note_on_its_own_goes_with_what_follows_it():
    screenplay = parse_fountain("INT. A - DAY\n\nA.\n\n[[Rewrite the next scene]]\n\n"
                                "INT. B - DAY\n\nB.\n")
    assert screenplay.scenes[0].metadata == []
    assert screenplay.scenes[1].metadata == [Note(text="Rewrite the next scene", position=0)]


def test_a_note_between_cue_and_dialogue_does_not_end_the_dialogue():
    scene = scene_of("BRICK\n[[louder?]]\nGet down!\n")
    assert scene.elements == [Dialogue(character="BRICK", line="Get down!")]
    assert scene.metadata == [Note(text="louder?", position=1)]


def test_a_note_spans_lines_and_two_space_lines_but_not_an_empty_line():
    scene = scene_of("[[First line\n  \nsecond line]]\n\nHe goes.\n")
    assert scene.metadata == [Note(text="First line\n\nsecond line", position=0)]
    assert scene_of("[[not\n\na note]]\n").elements == [Action(text="[[not"),
                                                      Action(text="a note]]")]


def test_a_note_on_a_heading_stays_in_its_scene():
    screenplay = parse_fountain("INT. A - DAY [[day or night?]]\n\nINT. B - DAY\n\nB.\n")
    assert screenplay.scenes[0].heading == "INT. A - DAY"
    assert screenplay.scenes[0].metadata == [Note(text="day or night?", position=0)]


def test_boneyard_across_blank_lines_and_inside_a_line():
    scene = scene_of("Kept /* not this */ here.\n\n/*\nINT. DELETED - DAY\n\nGone.\n*/\n\n"
                     "Also kept.\n")
    assert scene.elements == [Action(text="Kept  here."), Action(text="Also kept.")]


def test_an_unclosed_boneyard_stays_text():
    assert scene_of("He /* hesitates.\n").elements == [Action(text="He /* hesitates.")]


def test_sections_have_a_depth_and_open_the_scene_that_follows():
    screenplay = parse_fountain("INT. A - DAY\n\nA.\n\n# ACT II\n\n## The chase\n\n"
                                "INT. B - DAY\n\nB.\n")
    assert screenplay.scenes[0].metadata == []
    assert screenplay.scenes[1].metadata == [Section(text="ACT II", depth=1, position=0),
                                             Section(text="The chase", depth=2, position=0)]


def test_a_synopsis_is_metadata_not_a_shot():
    scene = scene_of("= Brick learns the truth.\n\nA.\n")
    assert scene.elements == [Action(text="A.")]
    assert scene.metadata == [Synopsis(text="Brick learns the truth.", position=0)]


# Emphasis and line ends ---------------------------------------------------------------------

def test_emphasis_markup_goes_and_escapes_stay_literal():
    scene = scene_of("She is *very* **loud** ***now*** and _here_ \\*not\\* in file_name_x.\n")
    assert scene.elements == [Action(text="She is very loud now and here *not* in file_name_x.")]


def test_windows_line_ends_and_a_byte_order_mark():
    screenplay = parse_fountain("\ufeffINT. HOUSE - DAY\r\n\r\nBRICK\r\nHi.\r\n")
    assert screenplay.scenes[0].heading == "INT. HOUSE - DAY"
    assert screenplay.scenes[0].elements == [Dialogue(character="BRICK", line="Hi.")]


# Bad input ----------------------------------------------------------------------------------

@pytest.mark.parametrize("text", [
    "", "   \n\n \t\n", "/* everything was cut */\n", "[[only a note]]\n",
    "Title: Nothing Yet\nAuthor: Me\n", "# ACT ONE\n\n= a plan, no scenes\n",
])
def test_no_content_is_one_clear_error_of_bad_input(text):
    with pytest.raises(ScreenplayError) as caught:
        parse_fountain(text)
    assert str(caught.value) == (
        "no screenplay in this Fountain text: no scene heading, action or dialogue")
    assert isinstance(caught.value, UsageError) and caught.value.exit_code == EXIT_USAGE


def test_a_scene_with_nothing_but_its_heading_is_content():
    assert parse_fountain("INT. EMPTY ROOM - NIGHT\n").scenes[0].location == "EMPTY ROOM"


# Fountain or prose --------------------------------------------------------------------------

PROSE_WITH_CAPITALS = {
    "chapter titles over paragraphs": (
        "CHAPTER ONE\nThe storm had been building over the bay since noon.\n\n"
        "\"STOP!\" Mara shouted. \"THE LIGHT!\"\n\nCHAPTER TWO\nBy dawn the sea was calm.\n"),
    "a play written as prose, with a title page": (
        "Title: The Lighthouse\nAuthor: A. Writer\n\nMARA: The light won't turn!\n"
        "TOM: Hold on, I have the crank.\nMARA: HURRY!\n"),
    "letters, one salutation repeated, with a title page": (
        "Title: Letters from the Light\n\nDEAR TOM\nThe harbour is quiet tonight.\n\n"
        "DEAR TOM\nAnother week of storms.\n"),
    "shouting in capitals": (
        "The boy ran along the wall.\n\nHELP! HELP!\nNobody answered but the wind.\n\n"
        "WAIT FOR ME\nhe called, and the lantern swung.\n"),
    "a sign in capitals under a chapter title": (
        "CHAPTER ONE\nThe shop had a sign over its door.\n\nEST. 1890\n\n"
        "Inside, it smelled of paper.\n"),
}


@pytest.mark.parametrize("path", sorted(p for p in EXAMPLES.iterdir() if p.is_file()),
                         ids=lambda p: p.name)
def test_every_example_story_is_prose(path):
    text = path.read_text(encoding="utf-8")
    assert detect_format(path.name, text) == "prose"
    assert detect_format("story.txt", text) == "prose"


@pytest.mark.parametrize("text", PROSE_WITH_CAPITALS.values(), ids=PROSE_WITH_CAPITALS.keys())
def test_prose_with_capitals_is_never_fountain(text):
    assert detect_format("story.txt", text) == "prose"


def test_fountain_by_extension_whatever_it_holds():
    assert detect_format("script.fountain", "Once upon a time.") == "fountain"
    assert detect_format("Script.FOUNTAIN", "") == "fountain"
    assert detect_format("draft.spmd", "Once upon a time.") == "fountain"


def test_fountain_by_content_headings_or_title_page_and_conversation():
    assert detect_format("script.txt", SAMPLE) == "fountain"
    assert detect_format("-", "INT. HOUSE - DAY\n\nBRICK\nHi.\n") == "fountain"
    assert detect_format("x.md", "EXT. A - DAY\n\nA.\n\nEXT. B - NIGHT\n\nB.\n") == "fountain"
    conversation = ("Title: Two Voices\n\nMARA\nWho's there?\n\nTOM\nOnly me.\n\n"
                    "MARA\nThen come in.\n")
    assert detect_format("dialogue.txt", conversation) == "fountain"


# Speed --------------------------------------------------------------------------------------

def test_a_feature_length_script_parses_in_well_under_a_second():
    script = long_script(min_pages=120)
    started = time.perf_counter()
    screenplay = parse_fountain(script.fountain)
    elapsed = time.perf_counter() - started
    assert len(screenplay.scenes) == script.scenes
    assert sum(isinstance(e, Dialogue) for s in screenplay.scenes for e in s.elements) == \
        script.speeches
    assert screenplay.characters == ["TOM", "ÉLODIE", "DR. QUILL", "MARA"]
    assert elapsed < 1.0, f"{script.pages} pages took {elapsed:.3f} s"
