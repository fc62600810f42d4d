"""Errors the CLI turns into one line on stderr and a documented exit code.

Exit codes (README, "Exit codes"):
  0 success, 1 the task failed (or was cancelled), 2 bad input or usage, 3 a service is
  unreachable, 4 --timeout elapsed while waiting, 130 interrupted (Ctrl+C).
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_TASK_FAILED = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3
EXIT_TIMEOUT = 4
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it


class StoryboardError(Exception):
    """Base class: an expected failure with a message meant for the user."""

    exit_code = EXIT_USAGE


class UsageError(StoryboardError):
    """Bad input: unknown id, empty story, malformed configuration."""

    exit_code = EXIT_USAGE


class ConfigError(UsageError):
    """A configuration file or value is wrong."""


class NotFound(UsageError):
    """An id or title that names nothing in the store."""


class ServiceUnavailable(StoryboardError):
    """Redis, the GPU daemon, the tunnel or the bucket cannot be reached."""

    exit_code = EXIT_UNAVAILABLE


class TaskFailed(StoryboardError):
    exit_code = EXIT_TASK_FAILED


class WaitTimeout(StoryboardError):
    exit_code = EXIT_TIMEOUT


class Interrupted(StoryboardError):
    """Ctrl+C while waiting for a task (which keeps running)."""

    exit_code = EXIT_INTERRUPTED
