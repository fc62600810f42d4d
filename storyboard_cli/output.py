"""Where output goes: results on stdout (JSON with --json), messages and progress on stderr.

Colour and progress bars appear only on a terminal; rich turns them off when piped and
honours NO_COLOR.
"""

from __future__ import annotations

import sys
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console


@cache
def _console(stderr: bool) -> Console:
    # rich costs ~35 ms to import: only commands that print through it pay for it.
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=False)


def __getattr__(name: str) -> Console:
    """`output.stdout` and `output.stderr`: rich consoles, created on first use."""
    if name in ("stdout", "stderr"):
        return _console(stderr=name == "stderr")
    raise AttributeError(name)


def print_json(data: Any) -> None:
    import json  # not at the top: `storyboard --help` does without it

    sys.stdout.write(json.dumps(data, ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()


def error(message: str, json_out: bool = False) -> None:
    """One line on stderr; with --json also {"error": ...} on stdout."""
    if json_out:
        print_json({"error": message})
    _console(True).print(f"[bold red]Error:[/] {escape(message)}", soft_wrap=True)


def info(message: str) -> None:
    _console(True).print(message, soft_wrap=True)


def escape(text: str) -> str:
    """Text shown verbatim inside rich markup (file names may hold [brackets])."""
    from rich.markup import escape as rich_escape

    return rich_escape(text)
