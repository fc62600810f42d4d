"""Where output goes: results on stdout (JSON with --json), messages and progress on stderr.

Colour and progress bars appear only on a terminal; rich turns them off when piped and
honours NO_COLOR.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console


def _console(stderr: bool) -> Console:
    return Console(stderr=stderr, highlight=False, soft_wrap=False)


stdout = _console(stderr=False)
stderr = _console(stderr=True)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()


def error(message: str, json_out: bool = False) -> None:
    """One line on stderr; with --json also {"error": ...} on stdout."""
    if json_out:
        print_json({"error": message})
    stderr.print(f"[bold red]Error:[/] {message}", markup=True, highlight=False, soft_wrap=True)


def info(message: str) -> None:
    stderr.print(message, highlight=False, soft_wrap=True)
