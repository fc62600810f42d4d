"""Control characters in text: one definition for every side.

The service layer refuses them in one-line fields (title, style, prompt), the daemon's request
schemas (wire.py) refuse them too, planners' prompts are flattened with them, and output shows
the ones that come from stories or an LLM as visible escapes instead of passing them to the
terminal. Only ``re`` is imported: the daemon and the CLI both use this module.

A control character is a C0 or C1 control or DEL (newline, tab, ESC that starts a terminal
escape sequence, ...), a Unicode line or paragraph separator, or a bidirectional override or
isolate (they reorder how the text around them is displayed). A lone surrogate counts too: it
is what Python makes of bytes that are not UTF-8 (a command line's `$'bad\xff'`) or what a
JSON escape (`"\ud800"`) gives, and no UTF-8 file, database or answer can hold it.

A story may hold lines, tabs and page breaks, and the scripts' own marks (bidirectional text,
line separators), but no other control character: `text_problem` is its check, the same for
a story read from a file, sent to the API or through the remote CLI.
"""

from __future__ import annotations

import re

_SURROGATES = "\ud800-\udfff"
CONTROL = re.compile(
    f"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069{_SURROGATES}]")
# What a story may not hold: CONTROL but for tab, newline, vertical tab, form feed (a page
# break), carriage return and the scripts' own marks.
TEXT_CONTROL = re.compile(f"[\x00-\x08\x0e-\x1f\x7f-\x9f{_SURROGATES}]")
_RUNS = re.compile(CONTROL.pattern + "+")
_NAMES = {"\n": "a newline", "\r": "a carriage return", "\t": "a tab", "\x1b": "ESC",
          "\x00": "NUL", "\x07": "BEL"}
_SURROGATE_NAME = "a lone surrogate (bytes that are not UTF-8)"
_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def problem(text: str, what: str) -> str | None:
    """Why text cannot be a one-line field named `what`, or None when it can."""
    found = CONTROL.search(text)
    if found is None:
        return None
    return (f"{what} must be plain text on one line; it contains {_name(found.group())} "
            f"at character {found.start() + 1}")


def text_problem(text: str, what: str) -> str | None:
    """Why text cannot be a story (many lines) named `what`, or None when it can."""
    found = TEXT_CONTROL.search(text)
    if found is None:
        return None
    line = text.count("\n", 0, found.start()) + 1
    column = found.start() - (text.rfind("\n", 0, found.start()) + 1) + 1
    return (f"{what} must be plain text; it contains {_name(found.group())} at line {line}, "
            f"character {column}")


def _name(char: str) -> str:
    """A control character as a message names it: ESC (U+001B)."""
    code = ord(char)
    name = _SURROGATE_NAME if 0xD800 <= code <= 0xDFFF else _NAMES.get(char,
                                                                        "a control character")
    return f"{name} (U+{code:04X})"


def visible(text: str, keep: str = "") -> str:
    """text with every control character not in `keep` written as an escape: \\x1b, \\n,
    \\u202e. Nothing that reaches a terminal through it can move the cursor or recolour."""
    return CONTROL.sub(lambda m: m.group() if m.group() in keep else _escape(m.group()), text)


# A terminal's escape sequences, whole: CSI (ESC [ ... final byte, colours and cursor moves),
# OSC (ESC ] ... BEL or ESC \\, window titles, links), and two-byte ones (ESC 7, ESC c).
_ESCAPE_SEQUENCES = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[ -~]?")


def strip(text: str, keep: str = "") -> str:
    """text without terminal escape sequences and control characters (but those in `keep`):
    for files other programs show as plain text (subtitles)."""
    text = _ESCAPE_SEQUENCES.sub("", text)
    return CONTROL.sub(lambda m: m.group() if m.group() in keep else "", text)


def flatten(text: str) -> str:
    """text on one line: each run of control characters becomes one space."""
    return _RUNS.sub(" ", text).strip()


def _escape(char: str) -> str:
    code = ord(char)
    return _ESCAPES.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
