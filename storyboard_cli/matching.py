"""Matching the shots of two storyboards by what they say, not where they stand.

A new plan of a revised story is matched to the storyboard it replaces (store/plans.py), and
`storyboard diff` matches the storyboards of two revisions, with the same rule: two shots are
the same shot when they cover the same story text (their `description`, white space folded)
in the same place (a screenplay's scene heading: the same words at another location are
another picture). A scene's number and a shot's place in it are not compared: a scene added
before renumbers them and changes no shot.
The sequences of texts are aligned as difflib aligns lines, so a sentence added at the top
shifts every position but changes no shot. Where the alignment replaces a run of old shots
with a run of new ones (a sentence reworded), each new shot is the *changed* version of the
most alike old one in that run, in order, when they are at least MIN_SIMILARITY alike; the
new ones left over are *new*, the old ones *removed*.

Only the standard library: the store imports this module.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

NEW = "new"
CHANGED = "changed"
# Where a run of old shots gives way to new ones, a new shot is the changed version of the
# most alike old one (in order) when they are at least this alike; else it is new.
MIN_SIMILARITY = 0.5


def content_key(description: str) -> str:
    """What a shot is matched by: its story text with white space folded."""
    return " ".join(description.split())


def matched_text(shot: dict[str, Any]) -> str:
    """The text a shot (a row or a shot object) is matched by: a screenplay shot's scene
    heading, then its story text."""
    heading = shot.get("scene_heading")
    return f"{heading}\n{shot['description']}" if heading else shot["description"]


@dataclass(frozen=True)
class Match:
    """Where each new shot comes from: `old[k]` is the index of its old shot (None for a new
    one) and `marks[k]` None (the same text), CHANGED or NEW; `removed`: the indexes of the old
    shots no new one took."""

    old: list[int | None]
    marks: list[str | None]
    removed: list[int]


def match(old_texts: Sequence[str], new_texts: Sequence[str]) -> Match:
    """The new shots matched to the old by their texts (module docstring)."""
    old_keys = [content_key(t) for t in old_texts]
    new_keys = [content_key(t) for t in new_texts]
    # No autojunk: in a long board a line said often is still a line to match.
    aligned = difflib.SequenceMatcher(None, old_keys, new_keys, autojunk=False)
    olds: list[int | None] = [None] * len(new_keys)
    marks: list[str | None] = [NEW] * len(new_keys)
    removed: list[int] = []
    for tag, i1, i2, j1, j2 in aligned.get_opcodes():
        if tag == "equal":
            for k in range(i2 - i1):
                olds[j1 + k], marks[j1 + k] = i1 + k, None
            continue
        taken = set()
        last = i1 - 1
        for j in range(j1, j2):
            # The most alike old shot after the last one taken (the order is kept).
            scored = [(similarity(old_keys[i], new_keys[j]), -i) for i in range(last + 1, i2)]
            best = max(scored, default=(0.0, 0))
            if best[0] >= MIN_SIMILARITY:
                last = -best[1]
                olds[j], marks[j] = last, CHANGED
                taken.add(last)
        removed += [i for i in range(i1, i2) if i not in taken]
    return Match(olds, marks, removed)


def similarity(a: str, b: str) -> float:
    """How alike two texts are, 0 to 1 (difflib's ratio of their characters)."""
    compared = difflib.SequenceMatcher(None, a, b, autojunk=False)
    return compared.ratio() if compared.quick_ratio() >= MIN_SIMILARITY else 0.0


# What `diff` compares of two matched shots (besides their story text).
COMPARED = ("description", "scene_heading", "camera", "move", "action", "dialogue",
            "characters", "duration", "prompt")


def diff_boards(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> dict[str, Any]:
    """Two storyboards' shot objects compared: the shots `added` and `removed`, the matched
    ones whose text or fields differ (`changed`: {"from", "to", "fields"}), and how many are
    `unchanged`."""
    found = match([matched_text(s) for s in old], [matched_text(s) for s in new])
    added, changed, unchanged = [], [], 0
    for shot, k in zip(new, found.old, strict=True):
        if k is None:
            added.append(shot)
            continue
        fields = [f for f in COMPARED if old[k][f] != shot[f]]
        if fields:
            changed.append({"from": old[k], "to": shot, "fields": fields})
        else:
            unchanged += 1
    return {"added": added, "removed": [old[k] for k in found.removed], "changed": changed,
            "unchanged": unchanged}
