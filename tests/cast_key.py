"""The cast answer key: how well a planner finds a story's characters and who speaks each line.

Each story in tests/data/cast/ has a key, `<story>.json`, written by hand:

- ``story``: the text, a path from the repository root (the examples are scored too);
- ``language``: ``en``, ``zh`` or ``mixed`` (the figures are given per language);
- ``characters``: who a storyboard artist would cast: ``name``, ``aliases`` (other names for
  the same person: Lin and 林, "the old man"), and what the text says of them: ``age``
  (``elderly``, ``young`` or null) and ``gender`` (``male``, ``female`` or null);
- ``not_characters``: words a planner may take for names that are not people (places, a boat)
  — for the reader; the scorer counts any uncast name as a false character anyway;
- ``lines``: every spoken line, ``[text, speaker]``, the speaker a character's name;
- ``held_out`` (optional): a story written and keyed after the rules were last changed, and
  not looked at while changing them: its row says how the rules do on text they were not
  fitted to.

Figures, summed over the stories of a language:

- characters: precision = planned characters that are a key character (by name or alias, once
  each: Lin and 林 both cast is one right and one wrong) / planned characters; recall = key
  characters found / key characters;
- speakers: key lines whose planned line (same text, punctuation aside) has the right speaker
  / key lines (a line not found counts as wrong);
- facts: the age and gender facts of the key that the found character's description states
  / key facts (a character not found states none).

Run `python tests/cast_key.py` for the table of today's rules planner.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KEYS = ROOT / "tests" / "data" / "cast"
LANGUAGES = ("en", "zh", "mixed")

_AGE_WORDS = {"elderly": {"elderly", "old", "aged"}, "young": {"young", "girl", "boy", "child"}}
_GENDER_WORDS = {"male": {"man", "boy", "male", "gentleman"},
                 "female": {"woman", "girl", "female", "lady"}}


@dataclass(frozen=True)
class KeyCharacter:
    name: str
    aliases: tuple[str, ...]
    age: str | None
    gender: str | None

    def is_called(self, name: str | None) -> bool:
        return name is not None and _folded(name) in {_folded(n) for n in (self.name,
                                                                            *self.aliases)}


@dataclass(frozen=True)
class StoryKey:
    name: str
    language: str
    story: str
    characters: tuple[KeyCharacter, ...]
    lines: tuple[tuple[str, str], ...]
    held_out: bool = False

    def who(self, name: str | None) -> KeyCharacter | None:
        """The key character a planned name means, if any."""
        return next((c for c in self.characters if c.is_called(name)), None)


@dataclass
class Score:
    """Counts that add up across stories; the figures are their ratios."""

    planned: int = 0  # characters the planner cast
    right: int = 0  # of those, key characters (each once)
    expected: int = 0  # key characters
    lines: int = 0
    speakers_right: int = 0
    facts: int = 0
    facts_right: int = 0
    misses: list[str] = field(default_factory=list)  # what went wrong, for the reader

    def add(self, other: Score) -> None:
        for name in ("planned", "right", "expected", "lines", "speakers_right", "facts",
                     "facts_right"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.misses += other.misses

    @property
    def precision(self) -> float:
        return self.right / self.planned if self.planned else 1.0

    @property
    def recall(self) -> float:
        return self.right / self.expected if self.expected else 1.0

    @property
    def speakers(self) -> float:
        return self.speakers_right / self.lines if self.lines else 1.0

    @property
    def facts_ratio(self) -> float:
        return self.facts_right / self.facts if self.facts else 1.0


def _folded(text: str) -> str:
    return " ".join(text.split()).casefold()


def _bare(line: str) -> str:
    """A line without punctuation or spaces: planners differ on a trailing comma."""
    return re.sub(r"[\W_]+", "", line).casefold()


def load_keys(folder: Path = KEYS) -> list[StoryKey]:
    keys = []
    for path in sorted(folder.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        characters = tuple(KeyCharacter(c["name"], tuple(c["aliases"]), c["age"], c["gender"])
                           for c in data["characters"])
        key = StoryKey(path.stem, data["language"],
                       (ROOT / data["story"]).read_text(encoding="utf-8"), characters,
                       tuple((text, who) for text, who in data["lines"]),
                       data.get("held_out", False))
        unknown = [who for _, who in key.lines if key.who(who) is None]
        if key.language not in LANGUAGES or unknown:
            raise ValueError(f"{path.name}: language {key.language!r}, speakers {unknown}")
        keys.append(key)
    return keys


def score_story(key: StoryKey, plan: object) -> Score:
    """`plan`: a storyboard_contract.wire.Plan of the key's story."""
    score = Score(expected=len(key.characters), lines=len(key.lines))
    found: dict[str, str] = {}  # key name -> the description of the planned character
    for character in plan.characters:  # type: ignore[attr-defined]
        score.planned += 1
        match = key.who(character.name)
        if match is None or match.name in found:
            score.misses.append(f"{key.name}: cast {character.name!r} "
                                f"({'twice' if match else 'not a character'})")
            continue
        score.right += 1
        found[match.name] = character.description
    score.misses += [f"{key.name}: {c.name!r} not cast" for c in key.characters
                     if c.name not in found]

    planned = [d for shot in plan.shots for d in shot.dialogue]  # type: ignore[attr-defined]
    for text, speaker in key.lines:
        line = next((d for d in planned if _bare(d.line) == _bare(text)), None)
        if line is not None:
            planned.remove(line)
        said = line.speaker if line else None
        if key.who(said) is key.who(speaker):
            score.speakers_right += 1
        else:
            score.misses.append(f"{key.name}: {text!r} said by {said!r}, not {speaker!r}"
                                + ("" if line else " (line not found)"))

    for character in key.characters:
        words = set(re.findall(r"[a-z]+", found.get(character.name, "").lower()))
        for fact, vocabulary in ((character.age, _AGE_WORDS), (character.gender, _GENDER_WORDS)):
            if fact is None:
                continue
            score.facts += 1
            if words & vocabulary[fact]:
                score.facts_right += 1
            else:
                score.misses.append(f"{key.name}: {character.name!r} is {fact}, described "
                                    f"{found.get(character.name)!r}")
    return score


def score_keys(plan: Callable[[str], object], keys: list[StoryKey]) -> dict[str, Score]:
    """Scores per language, of ``all`` stories, and of the ``held out`` ones alone; `plan`
    maps a story to its Plan."""
    totals = {name: Score() for name in (*LANGUAGES, "all", "held out")}
    for key in keys:
        story = score_story(key, plan(key.story))
        totals[key.language].add(story)
        totals["all"].add(story)
        if key.held_out:
            totals["held out"].add(story)
    return totals


def rules_plan(story: str) -> object:
    from gpu_daemon.planner.rules import RulesPlanner
    from storyboard_contract.wire import MAX_SHOTS

    return RulesPlanner().plan(story, "movie", MAX_SHOTS)


def table(totals: dict[str, Score]) -> str:
    rows = ["| stories | characters P | characters R | speakers right | facts right |",
            "| --- | --- | --- | --- | --- |"]
    for name, s in totals.items():
        rows.append(f"| {name} | {s.precision:.2f} ({s.right}/{s.planned}) | {s.recall:.2f} "
                    f"({s.right}/{s.expected}) | {s.speakers:.2f} ({s.speakers_right}/{s.lines})"
                    f" | {s.facts_ratio:.2f} ({s.facts_right}/{s.facts}) |")
    return "\n".join(rows)


if __name__ == "__main__":
    totals = score_keys(rules_plan, load_keys())
    print(table(totals))
    if "-v" in sys.argv:
        print("\n".join(totals["all"].misses))
