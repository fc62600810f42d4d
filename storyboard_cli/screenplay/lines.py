"""The line syntax of a screenplay that reading one and telling one from prose share: scene
headings, character cues, blank lines, the title page and emphasis (Fountain's, which Final
Draft's cues follow too).

Plain text functions without the screenplay model (storyboard_contract/screenplay.py, whose
pydantic costs ~130 ms to import): detect.py tells a story's format with them at `storyboard
new`, and only a screenplay loads the readers (build.py, fountain.py, fdx.py).
"""

from __future__ import annotations

import re

# INT, EXT, EST, INT./EXT, INT/EXT, I/E (the Fountain spec's list) and the mirrored EXT./INT
# and E/I that Final Draft writes, in any case, followed by a dot or a space: "INTERIOR" or
# "ESTATE" open no heading.
HEADING_PREFIX = re.compile(
    r"(?P<prefix>int\.?\s*/\s*ext|ext\.?\s*/\s*int|i\s*/\s*e|e\s*/\s*i|int|ext|est)[.\s]\s*",
    re.IGNORECASE,
)
# A cue's extensions: "(V.O.)", "(CONT'D)" at its end.
_TRAILING_EXTENSION = re.compile(r"\(([^()]*)\)\s*$")

# A line of exactly two spaces is an empty line that does not end its paragraph.
KEPT_EMPTY = "  "

TITLE_KEYS = frozenset({
    "title", "credit", "author", "authors", "source", "draft date", "date", "contact",
    "contact info", "copyright", "notes", "revision", "watermark",
})
_TITLE_ENTRY = re.compile(r"([A-Za-z][A-Za-z0-9 _-]*?)\s*:[ \t]*(.*)")

# Emphasis: ***bold italic***, **bold**, *italic*, _underline_, on one line; `\*` and `\_`
# are literal. An underscore inside a word (file_name) is not emphasis.
_ESCAPES = {"\\*": "\ue002", "\\_": "\ue003"}
_EMPHASIS = [
    re.compile(r"\*\*\*(?=\S)(.+?)(?<=\S)\*\*\*"),
    re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*"),
    re.compile(r"\*(?=\S)(.+?)(?<=\S)\*"),
    re.compile(r"(?<!\w)_(?=\S)(.+?)(?<=\S)_(?!\w)"),
]


def plain(text: str) -> str:
    """Text without Fountain's emphasis markup: "**loud** \\*not\\*" -> "loud *not*"."""
    if "*" not in text and "_" not in text:
        return text
    for escaped, mark in _ESCAPES.items():
        text = text.replace(escaped, mark)
    for pattern in _EMPHASIS:
        text = pattern.sub(r"\1", text)
    for escaped, mark in _ESCAPES.items():
        text = text.replace(mark, escaped[1])
    return text


def is_blank(line: str) -> bool:
    """A paragraph break: empty or whitespace, except the two spaces of KEPT_EMPTY."""
    return not line.strip() and line != KEPT_EMPTY


def is_heading(line: str) -> bool:
    """A scene heading by its prefix (INT., EXT., ...), with a place after it. (A heading
    forced with `.` is the reader's business: only a Fountain file is read that way.)"""
    match = HEADING_PREFIX.match(line)
    return bool(match) and bool(line[match.end():].strip())


def is_cue(line: str) -> bool:
    """A line that cues dialogue when a non-blank line follows it: forced with `@`, or a name
    in capitals (at least one capital letter, no small one; the extension may have small
    letters: "HANS (on the radio)"). No name ends in a colon: "CUT TO:" over a heading the
    writer forgot to space is not a speaker."""
    text = line.strip()
    if text.startswith("@"):
        return len(text) > 1
    name = split_cue(text)[0]
    return (any(c.isupper() for c in name) and not any(c.islower() for c in name)
            and not name.endswith(":"))


def split_cue(text: str) -> tuple[str, list[str], bool]:
    """(name, extensions, dual) of a character cue: "STEEL (V.O.) (CONT'D) ^" ->
    ("STEEL", ["V.O.", "CONT'D"], True). A cue that is all parentheses keeps its text as the
    name."""
    rest = text.strip()
    dual = rest.endswith("^")
    if dual:
        rest = rest[:-1].rstrip()
    extensions: list[str] = []
    while match := _TRAILING_EXTENSION.search(rest):
        if not rest[: match.start()].strip():
            break
        extensions.insert(0, match[1].strip())
        rest = rest[: match.start()].rstrip()
    return rest, [extension for extension in extensions if extension], dual


def split_title_page(lines: list[str]) -> tuple[dict[str, str], int]:
    """(title page, index of the first body line): `Key: value` lines up to the first blank
    line, a value going on in indented lines below its key. Not a title page (an empty dict,
    0) unless every line of that first paragraph fits and one key is a known one: "FADE IN:"
    opens a body."""
    start = 0
    while start < len(lines) and is_blank(lines[start]):
        start += 1
    entries: list[tuple[str, list[str]]] = []
    end = start
    while end < len(lines) and not is_blank(lines[end]):
        line = lines[end]
        match = None if line[:1] in (" ", "\t") else _TITLE_ENTRY.fullmatch(line)
        if match:
            value = match[2].strip()
            entries.append((match[1].strip().lower(), [value] if value else []))
        elif entries and line[:1] in (" ", "\t"):
            entries[-1][1].append(line.strip())
        else:
            return {}, 0
        end += 1
    if not any(key in TITLE_KEYS for key, _ in entries):
        return {}, 0
    title_page: dict[str, str] = {}
    for key, values in entries:
        value = "\n".join(plain(value) for value in values)
        title_page[key] = f"{title_page[key]}\n{value}" if key in title_page else value
    return title_page, end
