"""Ids as people type them, parsed in one place for every command and the service layer.

Project and shot ids are SQLite row ids: whole numbers from 1 up to 2**63 - 1, written in
ASCII digits. A task id is a uuid (letters, digits and dashes). A PROJECT argument is an id or
an exact title. A bad id is answered with one line, "invalid ... id" or "no ... with id",
never an OverflowError from SQLite or a ValueError from int("²").
"""

from __future__ import annotations

import re

from storyboard_cli.errors import NotFound, UsageError

MAX_ID = 2**63 - 1  # SQLite's largest integer
_DIGITS = re.compile(r"[0-9]+")
_TASK_ID = re.compile(r"[A-Za-z0-9-]{1,64}")
# What click takes for an unknown option but a person meant as an id: -1, -0.5.
NEGATIVE_NUMBER = re.compile(r"-[0-9][0-9.]*")


def invalid(what: str, text: str) -> UsageError:
    hint = ("whole numbers from 1" if what != "task"
            else "what generate and regen-shot printed")
    if what == "project":
        hint += "; a title that starts with '-' goes after --"
    return UsageError(f"invalid {what} id {text!r} ({hint})")


def row_id(text: str, what: str) -> int:
    """A project or shot id from text; UsageError if it is not one, NotFound if no row can
    have it (0, or beyond SQLite's range)."""
    text = text.strip()
    if not _DIGITS.fullmatch(text):
        raise invalid(what, text)
    number = int(text)
    if not 1 <= number <= MAX_ID:
        raise NotFound(f"no {what} with id {text}")
    return number


def as_row_id(ref: str) -> int | None:
    """The id a PROJECT reference spells, or None when it can only be a title."""
    ref = ref.strip()
    if _DIGITS.fullmatch(ref) and 1 <= int(ref) <= MAX_ID:
        return int(ref)
    return None


def in_range(number: int) -> bool:
    """Whether a row can have this id (a bigger one makes SQLite raise OverflowError)."""
    return 1 <= number <= MAX_ID


def task_id(text: str) -> str:
    text = text.strip()
    if not _TASK_ID.fullmatch(text):
        raise invalid("task", text)
    return text
