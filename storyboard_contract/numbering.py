"""How shots and scenes are numbered, for every side: the planners number them, the store finds a
shot by its number, the CLI and every export print it. Plain functions, no pydantic: `show`
imports this at start-up.

A screenplay's shots are numbered within their scenes, SCENE.SHOT: 3.2 is scene 3's second shot
(README, "Screenplays", says why not 3B). Scenes keep the numbers the script gives them (12,
12A, A12); a script without numbers has its headings counted (1, 2, ...), and material before
the first heading is scene 0. Prose has no scenes: its shots keep their running numbers.
"""

from __future__ import annotations

from collections.abc import Iterable


def shot_label(number: int, scene: str | None, scene_shot: int | None) -> str:
    """The number printed on a panel: "3.2" for a screenplay's shot, the running number ("7")
    otherwise."""
    return f"{scene}.{scene_shot}" if scene is not None and scene_shot else str(number)


def split_label(label: str) -> tuple[str, int] | None:
    """(scene, shot in the scene) of a label such as "3.2" or "12A.4"; None for a running
    number or anything else."""
    scene, dot, shot = label.strip().rpartition(".")
    if not dot or not scene or not shot.isdecimal() or not shot.isascii() or int(shot) < 1:
        return None
    return scene, int(shot)


def scene_numbers(scenes: Iterable[tuple[str | None, str | None]]) -> list[str]:
    """The number of each (number given by the script, heading) in order."""
    numbers = []
    headings = 0
    for given, heading in scenes:
        headings += bool(heading)
        numbers.append(given or str(headings if heading else 0))
    return numbers
