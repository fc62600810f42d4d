"""Final Draft (.fdx) files read into the screenplay model: the sample script in tests/data
(the same story as last_light.fountain), each paragraph type and structure, hostile and broken
XML, telling FDX from other text, and the time a feature-length script takes."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from screenplay_samples import long_script

from storyboard_cli.screenplay import ScreenplayError, detect_format, parse_fdx, parse_fountain
from storyboard_contract.errors import EXIT_USAGE, UsageError
from storyboard_contract.screenplay import (
    Action,
    Dialogue,
    Note,
    Scene,
    Shot,
    Synopsis,
    Transition,
)

DATA = Path(__file__).parent / "data"
SAMPLE = (DATA / "last_light.fdx").read_bytes()


def fdx(content: str, extra: str = "") -> str:
    """An FDX document whose Content holds `content` (and `extra` after it)."""
    return ('<?xml version="1.0" encoding="UTF-8" standalone="no" ?>\n'
            '<FinalDraft DocumentType="Script" Template="No" Version="5">'
            f"<Content>{content}</Content>{extra}</FinalDraft>")


def paragraph(kind: str, *runs: str, **attributes: str) -> str:
    attrs = "".join(f' {key}="{value}"' for key, value in attributes.items())
    return f'<Paragraph Type="{kind}"{attrs}>' + "".join(
        f"<Text>{run}</Text>" for run in runs) + "</Paragraph>"


def scene_of(content: str, extra: str = "") -> Scene:
    screenplay = parse_fdx(fdx(paragraph("Scene Heading", "INT. HOUSE - DAY") + content, extra))
    assert len(screenplay.scenes) == 1
    return screenplay.scenes[0]


# The sample script --------------------------------------------------------------------------

def test_sample_has_the_same_scenes_as_its_fountain_twin():
    from_fdx = parse_fdx(SAMPLE)
    from_fountain = parse_fountain((DATA / "last_light.fountain").read_text(encoding="utf-8"))
    assert [(s.heading, s.int_ext, s.location, s.time_of_day, s.number)
            for s in from_fdx.scenes] == [
        ("EXT. HARBOUR WALL - DUSK", "EXT", "HARBOUR WALL", "DUSK", "1"),
        ("INT. LIGHTHOUSE LAMP ROOM - NIGHT", "INT", "LIGHTHOUSE LAMP ROOM", "NIGHT", "2"),
        ("EXT. REEF - NIGHT", "EXT", "REEF", "NIGHT", "3"),
    ]
    assert from_fdx.characters == from_fountain.characters == ["TOM", "MARA"]
    # The FDX has one paragraph more, a Shot; everything else reads the same.
    for fdx_scene, fountain_scene in zip(from_fdx.scenes, from_fountain.scenes, strict=True):
        assert [e for e in fdx_scene.elements if e.kind != "shot"] == fountain_scene.elements


def test_sample_elements_speakers_and_dual_dialogue():
    second = parse_fdx(SAMPLE).scenes[1]
    assert second.elements == [
        Action(text="MARA, twelve, waits by the great lens."),
        Dialogue(character="MARA", parentheticals=["breathless"], line="The light won't turn!"),
        Dialogue(character="TOM", line="The gears are jammed again."),
        Dialogue(character="MARA", line="Grandpa, a boat!", dual="left"),
        Dialogue(character="TOM", line="I see it.", dual="right"),
        Shot(text="CLOSE ON THE CRANK"),
        Action(text="Tom throws his weight on the crank. The gears give way."),
    ]


def test_sample_summary_is_a_synopsis_and_a_script_note_a_note():
    first, second, _ = parse_fdx(SAMPLE).scenes
    assert first.metadata == [Synopsis(text="The storm rises and the old light fails.",
                                       position=0)]
    assert second.metadata == [Note(text="Should Mara be older?", position=1)]


def test_sample_title_page():
    screenplay = parse_fdx(SAMPLE)
    assert screenplay.title == "The Last Light"
    assert screenplay.title_page == {"title": "The Last Light", "credit": "Written by",
                                     "author": "Ada Quill",
                                     "contact": "Harbour Films\nada@example.com",
                                     "notes": "1 May 2024"}


# Paragraphs, runs and styles ----------------------------------------------------------------

def test_text_runs_are_joined_whatever_their_style():
    scene = scene_of(paragraph("Action", "He drops his ", '</Text><Text Style="Bold+Underline">'
                               "keys", "."))
    assert scene.elements == [Action(text="He drops his keys.")]


def test_capitals_come_from_the_style_not_the_letters_typed():
    settings = ('<ElementSettings Type="Character"><FontSpec Style="AllCaps"/></ElementSettings>'
                '<ElementSettings Type="Transition"><FontSpec Style=""/></ElementSettings>')
    screenplay = parse_fdx(fdx(
        paragraph("Scene Heading", "int. barn - night")
        + paragraph("Character", "Mara") + paragraph("Dialogue", "Quiet.")
        + paragraph("Transition", "Dissolve to:")
        + '<Paragraph Type="Action"><Text Style="AllCaps">bang</Text><Text>, it goes.</Text>'
          "</Paragraph>",
        settings))
    scene = screenplay.scenes[0]
    # no setting for headings: Final Draft's default, capitals
    assert scene.heading == "INT. BARN - NIGHT"
    assert scene.elements == [Dialogue(character="MARA", line="Quiet."),
                              Transition(text="Dissolve to:"),
                              Action(text="BANG, it goes.")]


def test_paragraph_types():
    scene = scene_of(paragraph("General", "A general paragraph.")
                     + paragraph("Shot", "ANGLE ON THE DOOR")
                     + paragraph("Transition", "CUT TO:")
                     + paragraph("Action", "THE END", Alignment="Center")
                     + paragraph("New Act", "ACT TWO"))
    assert scene.elements == [Action(text="A general paragraph."),
                              Shot(text="ANGLE ON THE DOOR"),
                              Transition(text="CUT TO:"),
                              Action(text="THE END", centered=True),
                              Action(text="ACT TWO")]


def test_a_speech_takes_its_parentheticals_and_dialogue_paragraphs():
    scene = scene_of(paragraph("Character", "STEEL (V.O.) (CONT'D)")
                     + paragraph("Parenthetical", "(starting the engine)")
                     + paragraph("Dialogue", "So much for retirement!")
                     + paragraph("Parenthetical", "(beat)")
                     + paragraph("Dialogue", "Again.")
                     + paragraph("Action", "He drives."))
    assert scene.elements == [
        Dialogue(character="STEEL", extensions=["V.O.", "CONT'D"],
                 parentheticals=["starting the engine", "beat"],
                 line="So much for retirement!\nAgain."),
        Action(text="He drives."),
    ]


def test_dialogue_without_a_cue_is_kept_as_action():
    assert scene_of(paragraph("Dialogue", "Who said that?")).elements == [
        Action(text="Who said that?")]


def test_dual_dialogue_directly_in_content_too():
    scene = scene_of("<DualDialogue>" + paragraph("Character", "BRICK")
                     + paragraph("Dialogue", "Now.") + paragraph("Character", "STEEL")
                     + paragraph("Parenthetical", "(shouting)") + paragraph("Dialogue", "Now!")
                     + "</DualDialogue>" + paragraph("Character", "BRICK")
                     + paragraph("Dialogue", "Thanks."))
    assert scene.elements == [
        Dialogue(character="BRICK", line="Now.", dual="left"),
        Dialogue(character="STEEL", parentheticals=["shouting"], line="Now!", dual="right"),
        Dialogue(character="BRICK", line="Thanks."),
    ]


def test_an_omitted_scene_is_skipped():
    screenplay = parse_fdx(fdx(
        paragraph("Scene Heading", "INT. A - DAY", Number="1") + paragraph("Action", "A.")
        + '<Paragraph Type="Scene Heading" Number="2"><Text>OMITTED</Text><OmittedScene>'
        + paragraph("Scene Heading", "INT. CUT - DAY") + "</OmittedScene></Paragraph>"
        + paragraph("Scene Heading", "INT. C - DAY", Number="3") + paragraph("Action", "C.")))
    assert [(s.heading, s.number) for s in screenplay.scenes] == [("INT. A - DAY", "1"),
                                                                  ("INT. C - DAY", "3")]


def test_empty_paragraphs_are_skipped():
    scene = scene_of(paragraph("Action", "") + paragraph("Action", "   ")
                     + paragraph("Action", "Real."))
    assert scene.elements == [Action(text="Real.")]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16"])
def test_bytes_in_the_encoding_the_declaration_names(encoding):
    text = fdx(paragraph("Scene Heading", "INT. CAFÉ - DAY") + paragraph("Action", "Élodie."))
    data = text.replace('encoding="UTF-8"', f'encoding="{encoding.upper()}"').encode(encoding)
    scene = parse_fdx(data).scenes[0]
    assert (scene.location, scene.elements) == ("CAFÉ", [Action(text="Élodie.")])


def test_no_title_page_no_title():
    screenplay = parse_fdx(fdx(paragraph("Action", "A.")))
    assert (screenplay.title, screenplay.title_page) == (None, {})


# Hostile and broken input -------------------------------------------------------------------

BILLION_LAUGHS = (
    '<?xml version="1.0"?>\n<!DOCTYPE FinalDraft [\n<!ENTITY lol "lol">\n'
    + "".join(f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">\n'
              for i in range(1, 10))
    + ']>\n<FinalDraft><Content><Paragraph Type="Action"><Text>&lol9;</Text></Paragraph>'
      "</Content></FinalDraft>")
EXTERNAL_ENTITY = (
    '<?xml version="1.0"?>\n<!DOCTYPE FinalDraft [<!ENTITY secret SYSTEM "file:///etc/passwd">]>'
    '<FinalDraft><Content><Paragraph Type="Action"><Text>&secret;</Text></Paragraph>'
    "</Content></FinalDraft>")
REFUSED = ("refused: this FDX file declares a DTD, the way XML bombs and external entities get "
           "in (Final Draft never writes one)")


@pytest.mark.parametrize("hostile", [BILLION_LAUGHS, EXTERNAL_ENTITY],
                         ids=["billion laughs", "external entity"])
def test_xml_bombs_are_refused_before_anything_expands(hostile):
    started = time.perf_counter()
    with pytest.raises(ScreenplayError) as caught:
        parse_fdx(hostile)
    assert str(caught.value) == REFUSED
    assert time.perf_counter() - started < 1.0


@pytest.mark.parametrize(("data", "message"), [
    (fdx(paragraph("Action", "A.")).replace("</Content>", ""),
     "not a Final Draft file: broken XML (mismatched tag: line 2, column 123)"),
    ("", "not a Final Draft file: broken XML (no element found: line 1, column 0)"),
    ("<html><body>Hi</body></html>",
     "not a Final Draft file: its XML root is <html>, not <FinalDraft>"),
    ("<FinalDraft/>", "this Final Draft file has no paragraphs"),
    (fdx(""), "this Final Draft file has no paragraphs"),
    (fdx(paragraph("Action", "") + paragraph("Dialogue", " ")),
     "no screenplay in this Final Draft file: no scene heading, action or dialogue"),
])
def test_malformed_files_are_one_clear_line_of_bad_input(data, message):
    with pytest.raises(ScreenplayError) as caught:
        parse_fdx(data)
    assert str(caught.value) == message
    assert "\n" not in str(caught.value)
    assert isinstance(caught.value, UsageError) and caught.value.exit_code == EXIT_USAGE


# FDX or not ---------------------------------------------------------------------------------

def test_fdx_by_extension_whatever_it_holds():
    assert detect_format("script.fdx", "Once upon a time.") == "fdx"
    assert detect_format("SCRIPT.FDX", "") == "fdx"


@pytest.mark.parametrize("text", [
    SAMPLE.decode("utf-8"),
    "\ufeff" + SAMPLE.decode("utf-8"),
    "<!-- exported -->\n<FinalDraft DocumentType=\"Script\"><Content/></FinalDraft>",
    "<FinalDraft>",
])
def test_fdx_by_its_root_element(text):
    assert detect_format("script.xml", text) == "fdx"
    assert detect_format("stdin", text) == "fdx"


@pytest.mark.parametrize("text", [
    "<html><body>FinalDraft</body></html>",
    "We talked about <FinalDraft> files all evening.",
    "<FinalDrafts/>",
])
def test_other_text_mentioning_final_draft_is_not_fdx(text):
    assert detect_format("notes.txt", text) == "prose"


# Speed --------------------------------------------------------------------------------------

def test_a_feature_length_script_parses_in_well_under_a_second():
    script = long_script(min_pages=120)
    started = time.perf_counter()
    screenplay = parse_fdx(script.fdx)
    elapsed = time.perf_counter() - started
    assert len(screenplay.scenes) == script.scenes
    assert screenplay == parse_fountain(script.fountain).model_copy(
        update={"title": None, "title_page": {}})
    assert elapsed < 1.0, f"{script.pages} pages took {elapsed:.3f} s"
