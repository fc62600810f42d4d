"""A plan's cast within what the daemon's schema accepts, whatever the planner made of the text.

A Final Draft file read as prose makes every XML tag look like a name: a planner that emits a
shot with twelve characters gets its plan refused (PlannedShot allows MAX_SHOT_CHARACTERS, a
Plan MAX_CHARACTERS). The planners cap instead, keeping those the story mentions most.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from storyboard_contract.wire import MAX_CHARACTERS, MAX_SHOT_CHARACTERS, Character


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
