"""The offline rules planner: every sentence lands in a shot, cut as a storyboard artist would."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gpu_daemon.planner import PlannerError
from gpu_daemon.planner.rules import RulesPlanner, paragraphs, sentences
from storyboard_contract.tokens import CLIP_BUDGET, estimate_tokens
from storyboard_contract.wire import PlannedShot

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def plan(story: str, max_shots: int = 50) -> list[PlannedShot]:
    return RulesPlanner().plan(story, "movie", max_shots).shots


def no_space(text: str) -> str:
    return re.sub(r"\s+", "", text)


def words(text: str) -> str:
    return " ".join(text.split())


def test_chinese_sentences_end_at_full_stops_and_keep_quotes_and_speech_tags() -> None:
    par = (
        "塔顶上，孙女小雨早就等在透镜旁边。“爷爷，灯不转了！”她喊道。"
        "老陈放下油灯……窗外的风呼啸着！“快走。我们没有时间了。”「好。」『走吧？』"
        "你听见了吗？"
    )
    assert sentences(par) == [
        "塔顶上，孙女小雨早就等在透镜旁边。",
        "“爷爷，灯不转了！”她喊道。",
        "老陈放下油灯……",
        "窗外的风呼啸着！",
        "“快走。我们没有时间了。”",
        "「好。」",
        "『走吧？』",
        "你听见了吗？",
    ]


def test_english_sentences_respect_abbreviations_decimals_ellipses_and_quotes() -> None:
    par = (
        "Mr. Smith met Dr. Watson on Baker St. at 3.5 miles from the sea. "
        "They talked about tools, e.g. hammers, i.e. the heavy ones. "
        "J. R. Hartley waited... and waited... Then the bell rang! "
        "\u201cWait!\u201d she cried. \u201cAre you sure? I am not.\u201d He nodded. "
        '"Go now," he said. Was it over? '
        "\u201cComing?\u201d Mara asked. \u201cYes!\u201d Tom was late."
    )
    assert [s.strip() for s in sentences(par)] == [
        "Mr. Smith met Dr. Watson on Baker St. at 3.5 miles from the sea.",
        "They talked about tools, e.g. hammers, i.e. the heavy ones.",
        "J. R. Hartley waited... and waited...",
        "Then the bell rang!",
        "\u201cWait!\u201d she cried.",
        "\u201cAre you sure? I am not.\u201d",
        "He nodded.",
        '"Go now," he said.',
        "Was it over?",
        "\u201cComing?\u201d Mara asked.",
        "\u201cYes!\u201d",
        "Tom was late.",
    ]


def test_an_unclosed_quote_does_not_swallow_the_rest_of_the_paragraph() -> None:
    par = "“他走了。门开着。风很大。"
    assert sentences(par) == ["“他走了。", "门开着。", "风很大。"]


def test_paragraphs_from_blank_lines_or_from_lines_that_end_a_sentence() -> None:
    assert paragraphs("One line\nwrapped here.\n\n  Second.  \n\n\n") == [
        "One line wrapped here.", "Second."
    ]
    # Chinese text often has one paragraph per line and no blank lines; a wrapped line
    # (no sentence end) joins the next without a space.
    assert paragraphs("　　第一段。\n　　第二段的开头\n接着写完。\r\n第三段！") == [
        "第一段。", "第二段的开头接着写完。", "第三段！"
    ]


def test_chinese_story_covers_every_sentence_in_order() -> None:
    story = (EXAMPLES / "lantern_zh.txt").read_text(encoding="utf-8")
    shots = plan(story)
    expected = [s for p in paragraphs(story) for s in sentences(p)]
    assert len(expected) >= 12
    assert "".join(s.description for s in shots) == "".join(expected) == no_space(story)
    assert [s.index for s in shots] == list(range(len(shots)))
    # Descriptions stay Chinese; the prompt is the shot size then the description.
    for shot in shots:
        assert re.search(r"[\u4e00-\u9fff]", shot.description)
        assert shot.prompt.startswith(("extreme wide", "wide", "full", "medium", "close-up",
                                       "over-the-shoulder"))
        assert estimate_tokens(shot.prompt) <= CLIP_BUDGET


def test_english_story_covers_every_sentence_in_order() -> None:
    story = (EXAMPLES / "lighthouse.txt").read_text(encoding="utf-8")
    shots = plan(story)
    assert words(" ".join(s.description for s in shots)) == words(story)
    assert len(shots) >= 10
    assert shots[0].description == "The storm had been building over the bay since noon."


def test_bilingual_story_covers_both_parts() -> None:
    story = (EXAMPLES / "bilingual.txt").read_text(encoding="utf-8")
    shots = plan(story)
    assert no_space("".join(s.description for s in shots)) == no_space(story)
    assert any(s.description.startswith("陌生人") and s.camera == "wide" for s in shots)


def test_very_short_sentences_join_a_neighbour_in_their_scene() -> None:
    story = (
        "Night. The rain fell hard on the empty street below the tower. He ran. "
        "A door slammed somewhere far down the hill. Silence.\n\n"
        "Chapter Two\n\n"
        "Morning came slowly over the harbour and the grey sea."
    )
    assert [s.description for s in plan(story)] == [
        "Night. The rain fell hard on the empty street below the tower. He ran.",
        "A door slammed somewhere far down the hill. Silence.",
        # A one-line scene (a heading) opens the next scene's first shot.
        "Chapter Two Morning came slowly over the harbour and the grey sea.",
    ]


def test_max_shots_merges_evenly_and_never_loses_text() -> None:
    lines = [f"The keeper climbed step number {n} of the long stair slowly." for n in range(30)]
    story = " ".join(lines[:12]) + "\n\n" + " ".join(lines[12:])
    shots = plan(story, max_shots=7)
    assert len(shots) == 7
    assert [s.index for s in shots] == list(range(7))
    assert words(" ".join(s.description for s in shots)) == words(story)
    per_shot = [s.description.count("The keeper") for s in shots]
    assert max(per_shot) - min(per_shot) <= 1, per_shot


def test_a_story_too_long_for_the_shot_cap_is_a_clear_error() -> None:
    story = "The waves rolled in under a heavy sky, one after another. " * 200
    with pytest.raises(PlannerError, match=r"too long for 2 shots.*allow more shots"):
        plan(story, max_shots=2)


def test_empty_story_and_bad_cap_are_errors() -> None:
    with pytest.raises(PlannerError, match="no text"):
        plan(" \n\u3000\n ")
    with pytest.raises(PlannerError, match="at least 1"):
        plan("A story.", max_shots=0)


def test_shot_sizes_follow_scene_dialogue_and_emotion() -> None:
    story = (
        "The harbour lay quiet under a thin winter fog at dawn. "
        "Two fishermen mended their nets on the wooden pier.\n\n"
        "Inside the lighthouse, Mara sat alone at the kitchen table. "
        "\u201cWhere is the keeper tonight?\u201d asked the old fisherman. "
        "\u201cHe went down to the boats an hour ago,\u201d Mara answered. "
        "\u201cThen we wait for him here,\u201d the fisherman said. "
        "Mara burst into tears and hid her face in her hands."
    )
    shots = plan(story)
    cameras = [s.camera for s in shots]
    assert cameras == [
        "extreme wide",       # the story opens: establishing
        "full",               # moving in after the establishing shot
        "wide",               # a new scene
        "medium",             # dialogue...
        "over-the-shoulder",  # ...and its reverse angle
        "medium",
        "close-up",           # tears: an emotional beat
    ]
    assert [(d.speaker, d.line) for d in shots[3].dialogue] == [
        ("the old fisherman", "Where is the keeper tonight?")]
    assert [(d.speaker, d.line) for d in shots[4].dialogue] == [
        ("Mara", "He went down to the boats an hour ago")]
    assert shots[0].dialogue == [] and shots[6].dialogue == []
    assert shots[2].duration > shots[3].duration  # establishing shots hold longer


def test_chinese_emotion_and_exclamations_get_close_ups() -> None:
    story = (
        "夜里，海上起了风浪，渔船都回到了港口。小雨站在窗前，吓得浑身发抖。灯塔的光终于亮了起来！"
    )
    assert [s.camera for s in plan(story)] == ["extreme wide", "close-up", "close-up"]


def test_never_the_same_shot_size_three_times_in_a_row() -> None:
    story = " ".join(
        f"The keeper walked along corridor number {n} and checked each lamp." for n in range(12)
    )
    cameras = [s.camera for s in plan(story)]
    assert len(cameras) == 12
    for a, b, c in zip(cameras, cameras[1:], cameras[2:], strict=False):
        assert not a == b == c, cameras
    assert {"medium", "medium close-up"} <= set(cameras)


def test_prompts_lead_with_the_shot_size_and_fit_clip() -> None:
    long_sentence = "The keeper " + " ".join(["climbed the endless spiral staircase"] * 20) + "."
    shot = plan(long_sentence)[0]
    assert shot.description == long_sentence
    assert shot.prompt.startswith("extreme wide establishing shot, The keeper climbed")
    assert estimate_tokens(shot.prompt) <= CLIP_BUDGET
    assert long_sentence.startswith(shot.prompt.removeprefix("extreme wide establishing shot, "))


def test_same_story_same_plan() -> None:
    story = (EXAMPLES / "lighthouse.txt").read_text(encoding="utf-8")
    first = RulesPlanner().plan(story, "movie", 5).model_dump()
    assert first == RulesPlanner().plan(story, "movie", 5).model_dump()


# --- the cast, who speaks, who is seen (gpu_daemon.planner.people) ---------------------------


def cast(story: str) -> list[tuple[str, str]]:
    return [(c.name, c.description) for c in RulesPlanner().plan(story, "movie", 50).characters]


def test_recurring_english_names_become_the_cast_described_from_the_text() -> None:
    story = (EXAMPLES / "lighthouse.txt").read_text(encoding="utf-8")
    assert cast(story) == [("Tom", "elderly man"), ("Mara", "young woman")]
    shots = plan(story)
    # "He worked the crank" follows a shot of Tom alone: the pronoun carries him.
    worked = next(s for s in shots if s.description.startswith("He worked the crank"))
    assert worked.characters == ["Tom"]
    turn = next(s for s in shots if "won't turn" in s.description)
    assert [(d.speaker, d.line) for d in turn.dialogue] == [("Mara", "The light won't turn")]
    assert turn.characters == ["Mara"] and turn.action == ""
    # A name spoken inside a quote is not a person seen.
    assert all("Grandpa" not in s.characters for s in shots)


def test_sentence_starts_titles_places_and_one_off_words_are_not_names() -> None:
    story = (
        "Far out at sea the storm grew. Captain Ahab paced the deck. In Boston the bells "
        "rang. Ahab shouted at the crew. Far away, they sailed to Boston. Nobody slept. "
        "Every sailor prayed. Every gull was silent."
    )
    assert [name for name, _ in cast(story)] == ["Ahab"]


def test_chinese_names_before_speech_verbs_after_kin_words_and_old_surnames() -> None:
    story = (
        "老陈提着油灯爬上灯塔。孙女小雨早就等在透镜旁边。小雨说：“爷爷，快点！”"
        "老陈笑道：“别急。”阿明问道：“灯呢？”阿明站在门口，看着他们。她笑了。"
    )
    assert cast(story) == [("老陈", "elderly person"), ("小雨", "girl"), ("阿明", "person")]
    shots = plan(story)
    said = [(d.speaker, d.line) for s in shots for d in s.dialogue]
    assert said == [("小雨", "爷爷，快点！"), ("老陈", "别急。"), ("阿明", "灯呢？")]
    # 她 after a shot of 阿明 alone (gender not known) carries 阿明 along.
    assert shots[-1].characters == ["阿明"]


def test_pronouns_carry_only_where_the_gender_fits() -> None:
    story = (
        "Lin opened the door. Tom waited outside in the rain with a parcel under his arm. "
        "\u201cYou are early,\u201d Lin said. Tom smiled and handed her the parcel. "
        "She tore the paper open at once. He walked away into the rain."
    )
    assert cast(story) == [("Lin", "person"), ("Tom", "man")]
    texts = {s.description: s.characters for s in plan(story)}
    assert texts["She tore the paper open at once."] == []  # not Tom
    assert texts["He walked away into the rain."] == []  # the shot before shows nobody


def test_action_is_the_shot_without_its_spoken_lines() -> None:
    (shot,) = plan("\u201cI saw your light,\u201d he said, shaking the snow from his coat.")
    # What the tag went on to say is no sentence alone: it keeps its tag.
    assert shot.action == "He said, shaking the snow from his coat."
    assert [(d.speaker, d.line) for d in shot.dialogue] == [(None, "I saw your light")]
    assert shot.prompt == "extreme wide establishing shot, He said, shaking the snow from his coat."
    (both,) = plan('"Hi," Tom said, "come in." Tom waited.', max_shots=1)
    assert [(d.speaker, d.line) for d in both.dialogue] == [("Tom", "Hi"), ("Tom", "come in.")]
    assert both.action == "Tom waited."


def test_a_pronoun_resolved_once_tells_the_characters_gender_from_then_on() -> None:
    story = (
        "Lin unlocked the shop. Tom waited with a parcel under his arm. Lin looked up at "
        "Tom. \u201cWhere did you find it?\u201d she asked. He only shook his head."
    )
    plan_ = RulesPlanner().plan(story, "movie", 50)
    # "she" can only be Lin once Tom is a man; then Lin is a woman, and "he" is not Lin.
    assert [(c.name, c.description) for c in plan_.characters] == [("Lin", "woman"),
                                                                   ("Tom", "man")]
    asked = next(s for s in plan_.shots if s.dialogue)
    assert [(d.speaker, d.line) for d in asked.dialogue] == [("Lin", "Where did you find it?")]
    assert asked.prompt == "medium shot, Lin speaking"
    assert plan_.shots[-1].characters == []
