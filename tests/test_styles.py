"""Style presets and CLIP-token fitting: every composed prompt fits 77 tokens, subject first."""

from __future__ import annotations

import pytest

from gpu_daemon.prompts import CAST_TOKENS, SUBJECT_TOKENS, cast_phrase, fit, fit_parts
from gpu_daemon.styles import ALIASES, DEFAULT_NEGATIVE, STYLES, compose, lookup
from storyboard_contract.tokens import CLIP_BUDGET, estimate_tokens

SHORT = "medium shot, an old keeper climbs the lighthouse stairs"
LONG_EN = "close-up, Mara " + " ".join(
    ["watches the black water churn against the jagged rocks below the tower"] * 12
)
LONG_ZH = "wide shot, 远处的黑暗中，一条小船正漂向礁石。" + "光柱扫过海面，小船调转了方向。" * 10
LONG_WORD = "close-up, " + "supercalifragilistic" * 40

# Token counts of CLIP's BPE vocabulary (openai/clip-vit-large-patch14, the SD 1.x text
# encoder's), measured once with its real tokenizer, without BOS/EOS.
MEASURED_CLIP_TOKENS = {
    "a photo of a cat": 5,
    "lighthouse keeper": 2,
    "cinematic film still, 35mm": 7,
    "\u201cStay,\u201d she said.": 9,
    "Héllo wörld": 6,
    "灯塔": 6,
    "入夜以后，海边的小镇下起了大雨。": 38,
}


@pytest.mark.parametrize("text", list(MEASURED_CLIP_TOKENS))
def test_the_estimate_never_counts_fewer_tokens_than_clip(text: str) -> None:
    assert estimate_tokens(text) >= MEASURED_CLIP_TOKENS[text]


def test_the_estimate_counts_cjk_and_punctuation_by_bytes() -> None:
    # CLIP's BPE is byte level: a Chinese character can take its 3 UTF-8 bytes.
    assert estimate_tokens("灯塔") == 6
    assert estimate_tokens("，。") == 6
    assert estimate_tokens("a, b.") == 4
    assert estimate_tokens("35mm") == 3  # digits one by one, as CLIP splits them
    assert estimate_tokens("lighthouse") == 3  # long words count one per four letters


@pytest.mark.parametrize("style", sorted(STYLES))
@pytest.mark.parametrize("content", [SHORT, LONG_EN, LONG_ZH, LONG_WORD],
                         ids=["short", "long-en", "long-zh", "one-huge-word"])
def test_every_preset_fits_clip_with_the_subject_first(style: str, content: str) -> None:
    positive, negative = compose(content, style)
    preset = STYLES[style]
    assert estimate_tokens(positive) <= CLIP_BUDGET
    assert estimate_tokens(negative) <= CLIP_BUDGET
    assert negative == preset.negative
    assert positive.startswith(f"{preset.prefix}, ")
    body = positive.removeprefix(f"{preset.prefix}, ")
    subject = content.split(",")[1].split()[0][:8]
    assert body.startswith(content.split(",")[0] + ", " + subject)
    assert not positive.endswith((",", " ", "，"))


@pytest.mark.parametrize("style", sorted(STYLES))
def test_a_short_prompt_gets_the_whole_style(style: str) -> None:
    preset = STYLES[style]
    assert compose(SHORT, style)[0] == f"{preset.prefix}, {SHORT}, {preset.suffix}"


def test_style_suffix_words_go_before_content_words() -> None:
    preset = STYLES["movie"]
    content = "wide shot, " + " ".join(["boat"] * 60)
    positive, _ = compose(content, "movie")
    assert positive.startswith(f"{preset.prefix}, {content}, 35mm")
    assert not positive.endswith(preset.suffix)
    assert estimate_tokens(positive) <= CLIP_BUDGET


def test_long_chinese_content_is_cut_between_characters() -> None:
    positive, _ = compose(LONG_ZH, "anime")
    body = positive.removeprefix(STYLES["anime"].prefix + ", ")
    assert LONG_ZH.startswith(body)
    assert len(body) > len("wide shot, 远处的黑暗中")
    assert estimate_tokens(positive) <= CLIP_BUDGET


def test_the_backend_tokenizer_count_is_used_when_given() -> None:
    calls = []

    def chars(text: str) -> int:  # a stand-in counter: one token per character
        calls.append(text)
        return len(text)

    positive, negative = compose(SHORT, "noir", chars)
    assert calls
    assert len(positive) <= CLIP_BUDGET and len(negative) <= CLIP_BUDGET
    assert positive.startswith("film noir still, black and white, medium shot, an old keeper")


def test_unknown_style_is_used_verbatim_as_prefix() -> None:
    positive, negative = compose("a cat on a roof", "oil painting,  impressionist")
    assert positive == "oil painting, impressionist, a cat on a roof"
    assert negative == DEFAULT_NEGATIVE
    assert compose("a cat", "")[0] == "a cat"


def test_a_long_verbatim_style_does_not_crowd_out_the_subject() -> None:
    style = "ornate baroque oil painting with gilded frame " * 20
    content = "close-up, the keeper's weathered face lit by lantern light, " * 6
    positive, _ = compose(content, style)
    assert estimate_tokens(positive) <= CLIP_BUDGET
    assert positive.startswith("ornate baroque")
    kept = positive[positive.index("close-up") :]
    assert estimate_tokens(kept) >= SUBJECT_TOKENS - 2


@pytest.mark.parametrize(("name", "preset"), [
    ("Anime", "anime"), (" 3D ", "pixar"), ("pixar/3d", "pixar"), ("film_noir", "noir"),
    ("水彩", "watercolor"), ("水墨", "ink"), ("Black and White", "noir"),
    # The README's own example and its kin: the presets' common Chinese and English names,
    # with or without "style" / "风格" / "画" after them.
    ("水彩画风格", "watercolor"), ("水彩画", "watercolor"), ("watercolor", "watercolor"),
    ("Watercolour style", "watercolor"), ("水墨画", "ink"), ("国画风格", "ink"),
    ("电影风格", "movie"), ("动漫风", "anime"), ("日漫画风", "anime"), ("漫画风格", "comic"),
    ("赛博朋克风", "cyberpunk"), ("铅笔画", "sketch"), ("黑白电影", "noir"),
    ("皮克斯风格", "pixar"), ("写实风格", "realistic"), ("anime style", "anime"),
    ("cinematic style", "cinematic"),
    # Not a preset by any name: used verbatim.
    ("油画风格", None), ("oil painting", None), ("ukiyo-e", None),
])
def test_style_names_are_case_and_alias_tolerant(name: str, preset: str | None) -> None:
    if preset is None:
        assert lookup(name).prefix == name
    else:
        assert lookup(name) == STYLES[preset]


def test_aliases_point_at_presets() -> None:
    assert set(ALIASES.values()) <= set(STYLES)
    assert {"movie", "cinematic", "animation", "anime", "noir", "watercolor", "sketch",
            "comic", "pixar", "realistic"} <= set(STYLES)


def test_fit_cuts_at_word_boundaries_and_drops_dangling_separators() -> None:
    text = "the keeper, the lantern, the stairs, the storm, the boat"
    cut = fit(text, 7)
    assert cut == "the keeper, the lantern"
    assert fit("x" * 100, 5) == "x" * 20  # one word longer than the budget is cut inside
    assert fit_parts("", "", "") == ""


LIN = ("Lin", "young woman, red wool scarf, black bob")
TOM = ("Tom", "elderly man, grey beard, oilskin coat")


@pytest.mark.parametrize("content", [SHORT, LONG_EN, LONG_ZH, LONG_WORD])
@pytest.mark.parametrize("style", ["movie", "noir", "a very long verbatim style " * 8])
def test_the_cast_goes_into_the_prompt_whole_in_the_same_words(style: str, content: str) -> None:
    positive, _ = compose(content, style, characters=[LIN, TOM])
    assert "Lin (young woman, red wool scarf, black bob), Tom (elderly man, grey beard, " \
           "oilskin coat)" in positive
    assert estimate_tokens(positive) <= CLIP_BUDGET
    # The subject still leads: the content's start comes before the cast.
    assert positive.index(content[:12]) < positive.index("Lin (")


def test_characters_that_do_not_fit_beside_the_others_are_left_out_whole() -> None:
    crowd = [(f"Sailor{n}", "weathered face, knitted cap, yellow oilskin") for n in range(5)]
    phrase = cast_phrase(crowd)
    assert estimate_tokens(phrase) <= CAST_TOKENS
    kept = phrase.split("), ")
    assert 1 <= len(kept) < 5
    assert all(part.rstrip(")").endswith("yellow oilskin") for part in kept)
    assert cast_phrase([("Lin", ""), ("Tom", "  elderly   man ")]) == "Tom (elderly man)"


def test_without_a_cast_the_prompt_is_what_it_was() -> None:
    assert compose(LONG_EN, "movie", characters=[]) == compose(LONG_EN, "movie")
    assert fit_parts("a", LONG_EN, "b", keep="") == fit_parts("a", LONG_EN, "b")
