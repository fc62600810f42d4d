"""The exception tree: each expected failure declares, once, the exit code the CLI ends with
and the HTTP status `storyboard serve` answers with; the remote client reads the status back
into the same class, so a command exits alike on this machine and through ``--server``.

    StoryboardError            exit 2    HTTP 500   an expected failure, worded for the user
    ├── UsageError             exit 2    HTTP 422   bad input (also read from 400 and 413)
    │   ├── ConfigError        exit 2    HTTP 422   a configuration file or value is wrong
    │   └── NotFound           exit 2    HTTP 404   an id or title that names nothing
    ├── ServiceUnavailable     exit 3    HTTP 503   Redis, the daemon, the bucket or the server
    │                                               cannot be reached (also read from 502, 504)
    ├── ServerFailed           exit 1    HTTP 500   an unexpected error on the server
    ├── WaitTimeout            exit 4    (local)    --timeout elapsed while waiting
    └── Interrupted            exit 130  (local)    Ctrl+C while waiting

Exit codes (README, "Exit codes"): 0 success, 1 the task failed (or was cancelled, or an
unexpected error), 2 bad input or usage, 3 a service is unreachable, 4 --timeout elapsed while
waiting, 130 interrupted (Ctrl+C).
"""

from __future__ import annotations

from collections.abc import Iterator

EXIT_OK = 0
EXIT_TASK_FAILED = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3
EXIT_TIMEOUT = 4
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it


class StoryboardError(Exception):
    """Base class: an expected failure with a message meant for the user."""

    exit_code = EXIT_USAGE
    http_status = 500
    # Statuses a client reads back as this class besides its own (a proxy's, a guard's).
    also_read_from: tuple[int, ...] = ()


class UsageError(StoryboardError):
    """Bad input: unknown id, empty story, malformed configuration."""

    exit_code = EXIT_USAGE
    http_status = 422
    also_read_from = (400, 413)  # a malformed request; a body over the size limit


class ConfigError(UsageError):
    """A configuration file or value is wrong."""


class NotFound(UsageError):
    """An id or title that names nothing in the store."""

    http_status = 404


class ServiceUnavailable(StoryboardError):
    """Redis, the GPU daemon, the tunnel or the bucket cannot be reached."""

    exit_code = EXIT_UNAVAILABLE
    http_status = 503
    also_read_from = (502, 504)  # a proxy in front of the server: bad gateway, timeout


class ServerFailed(StoryboardError):
    """The server hit an unexpected error: exit 1, as an unexpected error does locally."""

    exit_code = EXIT_TASK_FAILED
    http_status = 500


class WaitTimeout(StoryboardError):
    exit_code = EXIT_TIMEOUT


class Interrupted(StoryboardError):
    """Ctrl+C while waiting for a task (which keeps running)."""

    exit_code = EXIT_INTERRUPTED


def error_for_status(status: int) -> type[StoryboardError]:
    """The class an HTTP error answer stands for: the first, parents before children, that
    declares `status` itself; ServerFailed for any other status."""
    for cls in error_tree():
        if status == cls.__dict__.get("http_status") or status in cls.__dict__.get(
                "also_read_from", ()):
            return cls
    return ServerFailed


def error_tree() -> Iterator[type[StoryboardError]]:
    """Every subclass of StoryboardError (those of other modules once imported), breadth
    first: parents before children."""
    level = StoryboardError.__subclasses__()
    while level:
        yield from level
        level = [sub for parent in level for sub in parent.__subclasses__()]
