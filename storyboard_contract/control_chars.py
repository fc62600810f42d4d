"""Control characters in text: one definition for every side.

The service layer refuses them in one-line fields (title, style, prompt), the daemon's request
schemas (wire.py) refuse them too, planners' prompts are flattened with them, and output shows
the ones that come from stories or an LLM as visible escapes instead of passing them to the
terminal. Only ``re`` is imported: the daemon and the CLI both use this module.

A control character is a C0 or C1 control or DEL (newline, tab, ESC that starts a terminal
escape sequence, ...), a Unicode line or paragraph separator, or a bidirectional override or
isolate (they reorder how the text around them is displayed).
"""

from __future__ import annotations

import re

CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_RUNS = re.compile(CONTROL.pattern + "+")
_NAMES = {"\n": "a newline", "\r": "a carriage return", "\t": "a tab", "\x1b": "ESC"}
_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def problem(text: str, what: str) -> str | None:
    """Why text cannot be a one-line field named `what`, or None when it can."""
    found = CONTROL.search(text)
    if found is None:
        return None
    char = found.group()
    name = _NAMES.get(char, "a control character")
    return (f"{what} must be plain text on one line; it contains {name} "
            f"(U+{ord(char):04X}) at character {found.start() + 1}")


def visible(text: str, keep: str = "") -> str:
    """text with every control character not in `keep` written as an escape: \\x1b, \\n,
    \\u202e. Nothing that reaches a terminal through it can move the cursor or recolour."""
    return CONTROL.sub(lambda m: m.group() if m.group() in keep else _escape(m.group()), text)


def flatten(text: str) -> str:
    """text on one line: each run of control characters becomes one space."""
    return _RUNS.sub(" ", text).strip()


def _escape(char: str) -> str:
    code = ord(char)
    return _ESCAPES.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
