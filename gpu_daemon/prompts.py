"""Fitting prompts into CLIP's 77-token window without a tokenizer at hand.

Stable Diffusion's text encoder reads at most 77 tokens, two of which are the BOS and EOS
markers; anything past that is silently dropped, so a style suffix or the end of a long
description would simply vanish. We cut prompts ourselves, at word boundaries, so the
part that is lost is the part we chose.

When the image backend has a real tokenizer it passes its counter (tokens without the
special markers); otherwise ``storyboard_contract.tokens.estimate_tokens`` stands in.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from storyboard_contract.cjk import CJK
from storyboard_contract.tokens import (
    CLIP_BUDGET,
    DESCRIPTION_TOKENS,
    TokenCounter,
    estimate_tokens,
)

# Ideographs, kana and hangul have no spaces between words, so each character is a
# possible cut point there; elsewhere a cut falls on whitespace.
_UNIT = re.compile(rf"\s*(?:[{CJK}]|[^\s{CJK}]+)")

# What a cut may leave dangling at the end: separators and opening brackets or quotes.
_DANGLING = " \t\n,;:-–—(（[【“「『\"'，、；："


def _cut_points(text: str) -> list[int]:
    """End offsets of each word (or CJK character) in `text`."""
    return [m.end() for m in _UNIT.finditer(text)]


def _tidy(text: str) -> str:
    return text.rstrip(_DANGLING)


def _largest(n: int, ok: Callable[[int], bool]) -> int:
    """The largest k in 0..n with ok(k), for ok true up to some k and false after it."""
    lo, hi = 0, n
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if ok(mid):
            lo = mid
        else:
            hi = mid - 1
    return lo


def longest_fitting(text: str, fits: Callable[[str], bool]) -> str:
    """The longest word-boundary prefix of `text` that `fits` accepts ('' if none does).

    Token counts grow with the prefix, so a binary search over cut points finds it with
    a logarithmic number of tokenizer calls.
    """
    text = text.strip()
    if fits(text):
        return text
    points = _cut_points(text)
    words = _largest(len(points), lambda k: k == 0 or fits(_tidy(text[: points[k - 1]])))
    kept = text[: points[words - 1]] if words else ""
    if words < len(points):
        # A word that could never fit whole (a run of letters longer than the budget) is
        # cut inside, rather than lost with everything after it.
        word = text[len(kept) : points[words]]
        if not fits(word.strip()):
            chars = _largest(len(word), lambda n: n == 0 or fits(_tidy(kept + word[:n])))
            kept += word[:chars]
    return _tidy(kept)


def fit(text: str, budget: int = CLIP_BUDGET, count: TokenCounter | None = None) -> str:
    """`text` cut at a word boundary so it has at most `budget` tokens."""
    count = count or estimate_tokens
    return longest_fitting(text, lambda t: count(t) <= budget)


def join(*parts: str) -> str:
    return ", ".join(p for p in parts if p)


# A long style prefix may not crowd out the subject: the content keeps at least this many
# tokens of its beginning (or all of it, when shorter).
SUBJECT_TOKENS = 40
# The most of the budget a shot's cast descriptions may take, so the subject keeps room,
# and of that one character's description (two or three characters fit beside each other).
CAST_TOKENS = 45


def fit_description(description: str) -> str:
    """A planner's character description, cut at a word boundary to DESCRIPTION_TOKENS."""
    return fit(" ".join(description.split()), DESCRIPTION_TOKENS)


def cast_phrase(
    characters: Iterable[tuple[str, str]], count: TokenCounter | None = None
) -> str:
    """``name (description)`` for each (name, description), in order, within CAST_TOKENS.

    A description is never cut: it is the same words in every shot, or (for a character
    that no longer fits beside those before it) not there. Empty descriptions add nothing.
    """
    count = count or estimate_tokens
    phrase = ""
    for name, description in characters:
        description = " ".join(description.split())
        if description:
            longer = join(phrase, f"{name} ({description})")
            if count(longer) <= CAST_TOKENS:
                phrase = longer
    return phrase


def fit_parts(
    prefix: str,
    content: str,
    suffix: str,
    budget: int = CLIP_BUDGET,
    count: TokenCounter | None = None,
    keep: str = "",
) -> str:
    """`prefix, content, keep, suffix` within `budget` tokens, the subject kept first.

    `keep` (the cast, at most CAST_TOKENS) is never cut. The rest is cut in this order:
    words from the end of the suffix; then words from the end of the content; the prefix
    loses words only when it would leave the content fewer than SUBJECT_TOKENS tokens.
    """
    count = count or estimate_tokens
    prefix, content, suffix = prefix.strip(), content.strip(), suffix.strip()

    def fits(*parts: str) -> bool:
        return count(join(*parts)) <= budget

    if fits(prefix, content, keep):
        return join(prefix, content, keep,
                    longest_fitting(suffix, lambda s: fits(prefix, content, keep, s)))
    subject = fit(content, min(SUBJECT_TOKENS, budget), count)
    subject = longest_fitting(subject, lambda c: fits(c, keep))
    prefix = longest_fitting(prefix, lambda p: fits(p, subject, keep))
    return join(prefix, longest_fitting(content, lambda c: fits(prefix, c, keep)), keep)
