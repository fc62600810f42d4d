"""Which shots show a character, as the user's word on the cast says (`storyboard cast`): a
character described or given other names is shown in every shot whose narration names it or
one of those names, or whose dialogue it speaks; a removed name leaves every shot; a cast
member that became another's other name is that character in every shot.

Names are found in the shot's story text without its quoted speech (a name called out is
not someone seen). A name in Latin letters counts as a whole word, in any case; a Chinese
name of two characters or more anywhere; a one-character one (林) only where it opens a
clause, so that 树林 is not Lin.

The links are one edit of the storyboard shown (op "cast"), so `undo` takes them back and the
panels they change are stale.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from storyboard_cli.store.edits import Board, Outcome
from storyboard_contract.cjk import HAN_CHAR
from storyboard_contract.wire import MAX_SHOT_CHARACTERS

_QUOTED = re.compile(r"“[^”]*”|\"[^\"]*\"|「[^」]*」|『[^』]*』")
_OPENS = r"(?:^|(?<=[\s，。！？；：、,.!?;:…—（(]))"


@dataclass(frozen=True)
class CastWord:
    """The user's change of the cast, as it bears on the shots: the characters to link, with
    every name they go by; names that left the cast; names that became another's."""

    linked: Mapping[str, Iterable[str]] = field(default_factory=dict)
    removed: Iterable[str] = ()
    renamed: Mapping[str, str] = field(default_factory=dict)  # an old cast name -> the name


def _pattern(form: str) -> re.Pattern[str]:
    if HAN_CHAR.search(form):
        return re.compile((_OPENS if len(form) == 1 else "") + re.escape(form))
    return re.compile(rf"(?<!\w){re.escape(form)}(?!\w)", re.IGNORECASE)


def names_any(text: str, forms: Iterable[str]) -> bool:
    """Whether the narration of `text` (its quoted speech left out) names one of `forms`."""
    narration = _QUOTED.sub(" ", text)
    return any(_pattern(form).search(narration) for form in forms if form.strip())


def shown(row: dict[str, Any], word: CastWord) -> list[str]:
    """The characters a shot row shows after the user's word."""
    removed = set(word.removed)
    before = [word.renamed.get(n, n) for n in json.loads(row["characters"] or "[]")]
    speakers = {line.get("speaker") for line in json.loads(row["dialogue"] or "[]")}
    joining = [name for name, forms in word.linked.items()
               if name in speakers or names_any(row["description"], [name, *forms])]
    names = [n for n in dict.fromkeys([*before, *joining]) if n not in removed]
    return names[:MAX_SHOT_CHARACTERS]


def changed(rows: list[dict[str, Any]], word: CastWord) -> list[tuple[dict[str, Any], list[str]]]:
    """The shot rows whose characters the user's word changes, each with its characters after
    it."""
    after = [(row, shown(row, word)) for row in rows]
    return [(row, names) for row, names in after
            if names != json.loads(row["characters"] or "[]")]


def link(board: Board, word: CastWord) -> Outcome:
    """Give the storyboard's shots the characters the user's word says (an edit)."""
    changes = []
    touched = []
    for row, names in changed(board.rows(), word):
        board.update(row["id"], {"characters": json.dumps(names, ensure_ascii=False)},
                     redraw=True)
        touched.append(row["id"])
        changes.append({"shot": row["idx"] + 1, "field": "characters",
                        "before": json.loads(row["characters"] or "[]"), "after": names})
    people = ", ".join([*word.linked, *word.removed, *word.renamed])
    return Outcome(f"cast: {people} in {len(changes)} shot(s)", changes, touched)
