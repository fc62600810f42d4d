"""What a task or a render can be, spelled once: `str` enums (as RQ's JobStatus), equal to
the text stored in the `type` and `status` columns and printed in the JSON, and the groups of
them that the SQL and the callers test against.

A member is a str: `RenderStatus.DONE == "done"`, `json.dumps` writes its value, sqlite3 binds
it as text, and an f-string prints the value, so the stored and printed words never change.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import Enum


class _StrEnum(str, Enum):
    """A str enum that prints as its value, as enum.StrEnum does (Python 3.11 on; this
    project supports 3.10), and that writes itself into SQL."""

    def __str__(self) -> str:
        return self.value

    @property
    def sql(self) -> str:
        """The value as an SQL string literal, for a status inside a statement."""
        return f"'{self.value}'"


class TaskType(_StrEnum):
    STORYBOARD = "storyboard"  # plan a project's shots and cast, render a frame per shot
    SHOT_GENERATION = "shot_generation"  # re-render one shot (`storyboard regen-shot`)


class TaskStatus(_StrEnum):
    PENDING = "pending"  # queued
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # `storyboard retry` runs it again
    CANCELLED = "cancelled"  # `storyboard retry` resumes it


class RenderStatus(_StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    RETRYING = "retrying"  # between a failed attempt and the next one (error holds why)
    DONE = "done"
    FAILED = "failed"  # no attempt left, or refused by the daemon
    CANCELLED = "cancelled"


# A task not finished yet: `cancel` stops it, `rm` waits for it.
LIVE = (TaskStatus.PENDING, TaskStatus.RUNNING)
# A task that has ended, well or not: following it stops.
FINISHED = (TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.CANCELLED)
# No job outcome changes a task in these states; `retry` reopens a cancelled one.
SETTLED = (TaskStatus.SUCCEEDED, TaskStatus.CANCELLED)
# A render in these states is still to be rendered by the job that claimed it.
UNFINISHED = (RenderStatus.PENDING, RenderStatus.RUNNING, RenderStatus.RETRYING)
# A render in these states keeps its outcome whatever a late attempt reports.
CLOSED = (RenderStatus.DONE, RenderStatus.CANCELLED)


def sql_list(statuses: Iterable[_StrEnum]) -> str:
    """Statuses as an SQL list, for `status in (...)`: `('succeeded', 'cancelled')`."""
    return "(" + ", ".join(s.sql for s in statuses) + ")"
