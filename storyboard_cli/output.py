"""Where output goes: results on stdout (JSON with --json), messages and progress on stderr.

Colour and progress bars appear only on a terminal; rich turns them off when piped and
honours NO_COLOR.

Text that comes from users, stories, an LLM or a service (titles, styles, prompts, shot
descriptions, errors, log lines) goes through `visible` wherever it is printed: a control
character in it is shown as an escape, so it cannot recolour or rewrite the terminal.
"""

from __future__ import annotations

import sys
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

# The width of output that goes to a pipe or a file: wider than any line we print.
PIPED_WIDTH = 100_000


@cache
def _console(stderr: bool) -> Console:
    # rich costs ~35 ms to import: only commands that print through it pay for it.
    from rich.console import Console

    console = Console(stderr=stderr, highlight=False, soft_wrap=False)
    if not console.is_terminal:
        # Piped or redirected: no one reads it at a width, so nothing is cut or wrapped to
        # one (rich's default, 80 columns, cut titles and paths in tables).
        console.width = PIPED_WIDTH
    return console


def __getattr__(name: str) -> Console:
    """`output.stdout` and `output.stderr`: rich consoles, created on first use."""
    if name in ("stdout", "stderr"):
        return _console(stderr=name == "stderr")
    raise AttributeError(name)


@cache
def command() -> str:
    """How to type this CLI in a command we print: `storyboard` when that name, looked up on
    PATH, runs this very script; otherwise the script's path (relative to the current folder
    when inside it), so that `make demo`'s .venv/bin/storyboard prints commands that run as
    printed."""
    import os
    import shlex
    import shutil
    from pathlib import Path

    script = Path(sys.argv[0])
    if script.name != "storyboard":  # `python -m storyboard_cli.cli`: the environment's script
        script = Path(sys.executable).with_name("storyboard")
    found = shutil.which("storyboard")
    if not script.is_file() or (found and Path(found).resolve() == script.resolve()):
        return "storyboard"
    here = Path.cwd().resolve()
    path = script.resolve()
    shown = f".{os.sep}{path.relative_to(here)}" if path.is_relative_to(here) else str(path)
    return shlex.quote(shown)


def print_json(data: Any) -> None:
    import json  # not at the top: `storyboard --help` does without it

    from storyboard_contract.control_chars import CONTROL

    text = json.dumps(data, ensure_ascii=False, default=str)
    # json escapes C0 controls itself; C1 controls and bidi overrides too, as \uXXXX. ASCII
    # but for DEL holds none: the check is a fraction of the search (10 MiB of 10,000 shots).
    if not text.isascii() or "\x7f" in text:
        text = CONTROL.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    sys.stdout.write(text)
    sys.stdout.write("\n")
    sys.stdout.flush()


def error(message: str, json_out: bool = False) -> None:
    """One line on stderr; with --json also {"error": ...} on stdout."""
    if json_out:
        print_json({"error": message})
    _console(True).print(f"[bold red]Error:[/] {escape(visible(message))}", soft_wrap=True)


def info(message: str) -> None:
    """A message on stderr, in rich markup (escape() the text in it that is not markup)."""
    _console(True).print(visible(message, keep="\n"), soft_wrap=True)


def visible(text: object, keep: str = "") -> str:
    """text, safe to print: control characters (control_chars.py) shown as escapes such as
    \\x1b, except those in `keep` ("\\n" for text of several lines)."""
    from storyboard_contract.control_chars import visible as escaped

    return escaped(str(text), keep)


def cell(text: object) -> str:
    """visible(text) for a table cell or anywhere rich reads markup: [brackets] stay text."""
    return escape(visible(text))


def escape(text: str) -> str:
    """Text shown verbatim inside rich markup (file names may hold [brackets])."""
    from rich.markup import escape as rich_escape

    return rich_escape(text)
