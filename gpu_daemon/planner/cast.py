"""A plan's cast and lines within what the daemon's schema accepts, whatever the planner made of
the text.

A Final Draft file read as prose makes every XML tag look like a name: a planner that emits a
shot with twelve characters gets its plan refused (PlannedShot allows MAX_SHOT_CHARACTERS, a
Plan MAX_CHARACTERS). The planners cap instead, keeping those the story mentions most. A shot
that holds a long exchange of short lines (a story squeezed into few shots) keeps every word:
past MAX_SHOT_LINES, the rest of its lines join the last one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from storyboard_contract.wire import (
    MAX_CHARACTERS,
    MAX_LINE_CHARS,
    MAX_SHOT_CHARACTERS,
    MAX_SHOT_LINES,
    Character,
    DialogueLine,
)


def most_mentioned(names: Sequence[str], weight: Mapping[str, float], limit: int) -> list[str]:
    """At most `limit` of `names`, those of highest weight (ties: the earlier), in their order."""
    if len(names) <= limit:
        return list(names)
    ranked = sorted(range(len(names)), key=lambda k: (-weight.get(names[k], 0), k))
    kept = set(ranked[:limit])
    return [n for k, n in enumerate(names) if k in kept]


def fit_cast(shots: Sequence[Sequence[str]], cast: Sequence[Character],
             weight: Mapping[str, float]) -> tuple[list[list[str]], list[Character]]:
    """Each shot's characters and the cast, capped at the schema's limits: the cast keeps its
    MAX_CHARACTERS most mentioned members (by `weight`), and each shot its MAX_SHOT_CHARACTERS
    most mentioned of those."""
    kept = set(most_mentioned([c.name for c in cast], weight, MAX_CHARACTERS))
    fitted = [most_mentioned([n for n in names if n in kept], weight, MAX_SHOT_CHARACTERS)
              for names in shots]
    return fitted, [c for c in cast if c.name in kept]


def fit_lines(lines: Sequence[DialogueLine]) -> list[DialogueLine]:
    """A shot's dialogue within MAX_SHOT_LINES: the lines past the last place join it, each
    after its speaker's name, within MAX_LINE_CHARS."""
    if len(lines) <= MAX_SHOT_LINES:
        return list(lines)
    kept, rest = list(lines[:MAX_SHOT_LINES - 1]), lines[MAX_SHOT_LINES - 1:]
    joined = " ".join(f"{line.speaker}: {line.line}" if line.speaker else line.line
                      for line in rest)
    return [*kept, DialogueLine(line=joined[:MAX_LINE_CHARS])]
