"""Ids as people type them, parsed in one place for every command and the service layer.

Project and shot ids are SQLite row ids: whole numbers from 1 up to 2**63 - 1, written in
ASCII digits, canonically: `02`, ` 2` or `2\\n` name no row (a title, perhaps), so no id
spelled two ways reaches the same project. A task id is a uuid (letters, digits and dashes);
where one is taken, so is a unique prefix of at least MIN_TASK_PREFIX characters (progress
lines print 8). A PROJECT argument is an id or an exact title. A shot is named by its id or
as PROJECT/NUMBER, the number `show` prints in the project's current storyboard: its running
number (7) or, in a screenplay, its scene and shot (3.2). A bad id is answered with one
line, "invalid ... id" or "no ... with id", never an OverflowError from SQLite or a
ValueError from int("²"). The store resolves what these name (Store.find_project, find_task,
find_shot).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from storyboard_contract.errors import NotFound, UsageError
from storyboard_contract.numbering import shot_label, split_label

MAX_ID = 2**63 - 1  # SQLite's largest integer
_CANONICAL = re.compile(r"0|[1-9][0-9]*")
_TASK_ID = re.compile(r"[A-Za-z0-9-]{1,64}")
# What click takes for an unknown option but a person meant as an id: -1, -0.5.
NEGATIVE_NUMBER = re.compile(r"-[0-9][0-9.]*")
# The shortest task id prefix taken: 8 hex digits of a uuid4 rarely repeat.
MIN_TASK_PREFIX = 8

_HINTS = {
    "project": "whole numbers from 1; a title that starts with '-' goes after --",
    "shot": "a shot id, or PROJECT/NUMBER with the shot number `storyboard show` prints: 7, "
            "or 3.2 in a screenplay",
    "task": "what generate and regen-shot printed, or its first 8 characters or more",
}


def invalid(what: str, text: str) -> UsageError:
    return UsageError(f"invalid {what} id {text!r} ({_HINTS.get(what, 'whole numbers from 1')})")


def row_id(text: str, what: str) -> int:
    """A project or shot id from text; UsageError if it is not one, NotFound if no row can
    have it (0, or beyond SQLite's range)."""
    if not _CANONICAL.fullmatch(text):
        raise invalid(what, text)
    number = int(text)
    if not 1 <= number <= MAX_ID:
        raise NotFound(f"no {what} with id {text}")
    return number


def as_row_id(ref: str) -> int | None:
    """The id a PROJECT reference spells, or None when it can only be a title."""
    if _CANONICAL.fullmatch(ref) and 1 <= int(ref) <= MAX_ID:
        return int(ref)
    return None


def in_range(number: int) -> bool:
    """Whether a row can have this id (a bigger one makes SQLite raise OverflowError)."""
    return 1 <= number <= MAX_ID


def task_id(text: str) -> str:
    if not _TASK_ID.fullmatch(text):
        raise invalid("task", text)
    return text


@dataclass(frozen=True)
class ShotRef:
    """A shot as a person names it: by id, or by project (id or title) and shot number, the
    running one or a screenplay's scene and shot (`scene_shot`: ("3", 2) for 3.2)."""

    shot_id: int | None = None
    project: str | None = None
    number: int | None = None
    scene_shot: tuple[str, int] | None = None

    def __str__(self) -> str:
        if self.shot_id is not None:
            return str(self.shot_id)
        if self.scene_shot is not None:
            return f"{self.project}/{shot_label(0, *self.scene_shot)}"
        return f"{self.project}/{self.number}"


def shot_ref(text: str) -> ShotRef:
    """`8` (a shot id), or `lighthouse/3`, `1/3` (project, shot number), or `lighthouse/3.2`
    (project, scene 3's second shot); the project part may hold slashes of its own (the
    number follows the last one)."""
    project, slash, number = text.rpartition("/")
    if not slash:
        return ShotRef(shot_id=row_id(text, "shot"))
    scene_shot = split_label(number)
    if project and scene_shot is not None:
        return ShotRef(project=project, scene_shot=scene_shot)
    if not project or not _CANONICAL.fullmatch(number):
        raise invalid("shot", text)
    value = int(number)
    if not 1 <= value <= MAX_ID:
        raise NotFound(f"no shot number {number} (shots are numbered from 1)")
    return ShotRef(project=project, number=value)


def shot_text(text: str) -> str:
    """A shot reference checked (UsageError if it cannot be one) and kept as text: the
    service resolves it."""
    return str(shot_ref(text))
