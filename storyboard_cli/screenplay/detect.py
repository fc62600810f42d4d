"""Which reader a story file needs: prose, Fountain or Final Draft.

By the file's extension first (.fountain and .spmd are Fountain, .fdx is Final Draft), else by
its content. Final Draft is XML whose root element is FinalDraft. Fountain is told from prose
by the structure only a screenplay has, and the test is strict, because prose read as
Fountain loses its sentences to cues and dialogue while a screenplay read as prose only loses
its structure (and `--format fountain` or the extension brings it back):

- a scene heading with its prefix in capitals (INT., EXT., EST., INT./EXT., I/E) and a place
  with a letter in it, opening a paragraph, together with a second heading or a cue; or
- a title page (`Title:`, `Author:`, ... up to the first blank line) together with a
  conversation: two names cueing dialogue, one of them at least twice.

A cue is a line in capitals (or forced with `@`) directly followed by text. Prose has lines
like that ("CHAPTER ONE" over its first paragraph), but no headings, and rarely both a title
page and two capitalised lines over paragraphs, one of them twice.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import PurePath

from storyboard_cli.screenplay import Format
from storyboard_cli.screenplay.lines import (
    HEADING_PREFIX,
    is_blank,
    is_cue,
    is_heading,
    split_cue,
    split_title_page,
)

EXTENSIONS: dict[str, Format] = {".fountain": "fountain", ".spmd": "fountain", ".fdx": "fdx"}

# The first element after an XML declaration, comments and a doctype is FinalDraft.
_FDX_ROOT = re.compile(
    r"\ufeff?\s*(?:<\?xml[^>]*\?>\s*)?(?:<!--.*?-->\s*|<!DOCTYPE[^\[>]*(?:\[.*?\])?\s*>\s*)*"
    r"<FinalDraft[\s/>]",
    re.DOTALL,
)


def detect_format(name: str, text: str) -> Format:
    """"fountain", "fdx" or "prose" for a story file called `name` holding `text`."""
    by_extension = EXTENSIONS.get(PurePath(name).suffix.lower())
    if by_extension:
        return by_extension
    if _FDX_ROOT.match(text):
        return "fdx"
    return "fountain" if looks_like_fountain(text) else "prose"


def looks_like_fountain(text: str) -> bool:
    """Whether `text` has a screenplay's structure (see the module's rules)."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").lstrip("\ufeff").split("\n")
    title_page, start = split_title_page(lines)
    headings = 0
    cues: Counter[str] = Counter()
    index = start
    while index < len(lines):
        if is_blank(lines[index]):
            index += 1
            continue
        stop = index
        while stop < len(lines) and not is_blank(lines[stop]):
            stop += 1
        first = lines[index].strip()
        if _counts_as_heading(first):
            headings += 1
        elif stop - index >= 2 and is_cue(first):
            cues[split_cue(first.lstrip("@"))[0]] += 1
        index = stop
    if headings and (headings >= 2 or cues):
        return True
    conversation = len(cues) >= 2 and max(cues.values()) >= 2
    return bool(title_page) and conversation


def _counts_as_heading(line: str) -> bool:
    """A heading whose prefix is in capitals and whose place has a letter: a sign reading
    "EST. 1890" in a story is none."""
    match = HEADING_PREFIX.match(line)
    return (is_heading(line) and match is not None and match["prefix"].isupper()
            and any(c.isalpha() for c in line[match.end():]))
