"""Fountain (https://fountain.io/syntax, version 1.1) to the screenplay model
(storyboard_contract/screenplay.py).

Why our own parser: the maintained Fountain parsers on PyPI were run over 27 cases of the
spec (title page, every heading prefix, forced elements, extensions, dual dialogue,
parentheticals, two-space lines, transitions, centered text, lyrics, notes, boneyard,
sections, synopses, page breaks, emphasis, scene numbers, the blank-line rules, a non-ASCII
cue). None reads them all, and each miss would put a cue, a note or a deleted scene into a
shot or lose a speaker:

| package (release)         | cases | what it gets wrong (the worst)                  |
| ------------------------- | ----- | ----------------------------------------------- |
| fountain-py 0.3.0 (2026)  | 25/27 | non-ASCII cues (ÉLODIE) are action; inline      |
|                           |       | notes dropped; needs Python >= 3.11 (ours 3.10) |
| screenplain 0.12.0 (2026) | 24/27 | lyrics are action; notes dropped                |
| screenplay-tools 0.0.10   | 22/27 | 2nd extension lost; `/*` left in action across  |
| (2026; = fountain-tools)  |       | a blank line; non-ASCII cues; markup kept       |
| jouvence 0.4.2 (2020)     | 17/27 | no scene numbers, extensions or `^`; notes and  |
|                           |       | boneyard left in text; non-ASCII cues           |
| fountain-parser 0.1.1     | 17/27 | no I/E, lyrics, notes; `!` kept; two-space line |
| (2026)                    |       | ends dialogue; blank-line rules ignored         |
| fountain 0.1.3 (2016)     |  0/27 | does not import on Python 3.6+ (re.LOCALE)      |

screenplay-tools also reads FDX, but with plain ElementTree rather than defusedxml, only a
paragraph's first Text run, no DualDialogue or title page, and Shot taken for a heading; so
FDX has its own reader too (fdx.py).

None of them gives the model either (INT/EXT, location, time of day, speeches with their
parentheticals, metadata out of the shots), so an adapter would have been as long as this
reader. This one passes the 27 cases; the tests hold one per rule
(tests/test_screenplay_fountain.py). On a 120-page script it takes about 12 ms, in line with
the fastest of them (fountain-parser 7 ms, screenplain 25 ms, fountain-py 37 ms).

Steps (parse_fountain):
1. Normalise: byte-order mark, CR/CRLF line ends.
2. Boneyard `/* ... */` goes, across lines and blank lines (an unclosed `/*` stays text rather
   than swallowing the rest of the script).
3. Notes `[[ ... ]]` (across lines, not across an empty line) leave the text; each is kept with
   the line it was on. A line of notes alone is neither blank nor content, so a note between
   a cue and its dialogue does not end the dialogue.
4. The title page, if the file opens with `Key: value` lines of which one is a known key.
5. The body, one paragraph (lines between blank lines) at a time. A line of exactly two spaces
   is not blank: it keeps an empty line inside a paragraph (the spec's way to put one in
   dialogue). Single-line elements are taken off the top of a paragraph (heading, section,
   synopsis, page break, centered text, forced transition, lyrics); what remains is a
   dialogue block (a cue and at least one more line), a transition (one uppercase line
   ending in `TO:`) or action.

Deviations from the spec, each on purpose: a heading at the top of a paragraph is a heading
even without a blank line after it (writers often omit it, and the line can be nothing else);
EXT./INT. and E/I open headings too (Final Draft writes them); "FADE IN:", "FADE OUT.",
"FADE TO BLACK." and "CUT TO BLACK." alone on a line are transitions, as in most Fountain
apps; page breaks are dropped (a storyboard has no pages).
"""

from __future__ import annotations

import re

from storyboard_cli.screenplay.build import ScreenplayBuilder
from storyboard_cli.screenplay.errors import ScreenplayError
from storyboard_cli.screenplay.lines import (
    KEPT_EMPTY,
    is_blank,
    is_cue,
    is_heading,
    plain,
    split_cue,
    split_title_page,
)
from storyboard_contract.screenplay import Action, Dialogue, Lyrics, Screenplay, Transition

_BONEYARD = re.compile(r"/\*.*?\*/", re.DOTALL)
# A note may span lines but not an empty one (a blank line that is not KEPT_EMPTY).
_NOTE = re.compile(r"\[\[((?:(?!\]\]|\n(?!  \n)[ \t]*\n).)*)\]\]", re.DOTALL)
# Notes wait in the text as private-use markers, so that every later step sees note-free lines.
_MARK_OPEN, _MARK_CLOSE = "\ue000", "\ue001"
_MARK = re.compile(f"{_MARK_OPEN}(\\d+){_MARK_CLOSE}")

_FORCED_HEADING = re.compile(r"\.(?=[^\W_])")  # one dot, then a letter or digit: not "..."
_SCENE_NUMBER = re.compile(r"\s*#([\w.-]+)#\s*$")
_SECTION = re.compile(r"(#+)\s*(.*)")
_SYNOPSIS = re.compile(r"=(?!=)\s*(.*)")
_PAGE_BREAK = re.compile(r"={3,}")
_CENTERED = re.compile(r">\s*(.*?)\s*<")
_FORCED_TRANSITION = re.compile(r">\s*(.+)")
_LYRIC = re.compile(r"~\s*(.*)")
_PARENTHETICAL = re.compile(r"\((.*)\)")
_FIXED_TRANSITIONS = frozenset({"FADE IN:", "FADE OUT.", "FADE TO BLACK.", "CUT TO BLACK."})


def strip_markup(text: str) -> tuple[str, list[str]]:
    """(text without boneyard and notes, the notes' texts); each note is left as a marker
    that note_marks() reads back."""
    text = text.replace(_MARK_OPEN, "").replace(_MARK_CLOSE, "")
    text = _BONEYARD.sub("", text)
    notes: list[str] = []

    def keep(match: re.Match[str]) -> str:
        lines = [line.strip() for line in match[1].split("\n")]
        notes.append("\n".join(lines).strip())
        return f"{_MARK_OPEN}{len(notes) - 1}{_MARK_CLOSE}"

    return _NOTE.sub(keep, text), notes


def note_marks(line: str) -> tuple[str, list[int]]:
    """(the line without note markers, the numbers of its notes)."""
    if _MARK_OPEN not in line:
        return line, []
    return _MARK.sub("", line), [int(number) for number in _MARK.findall(line)]


class _FountainReader:
    """One pass over a Fountain body's lines, telling a ScreenplayBuilder what it meets."""

    def __init__(self, lines: list[str], line_notes: list[list[str]]) -> None:
        self.lines = lines
        self.line_notes = line_notes
        self.builder = ScreenplayBuilder()

    def read(self, start: int) -> ScreenplayBuilder:
        lines, end = self.lines, len(self.lines)
        index = start
        while index < end:
            if is_blank(lines[index]):
                self._notes(index, index + 1, attached=False)
                index += 1
                continue
            stop = index
            while stop < end and not is_blank(lines[stop]):
                stop += 1
            self._paragraph(index, stop)
            index = stop
        return self.builder

    def _notes(self, start: int, stop: int, *, attached: bool) -> None:
        for index in range(start, stop):
            for note in self.line_notes[index]:
                self.builder.note(note, attached=attached)

    def _paragraph(self, start: int, stop: int) -> None:
        """Lines [start, stop) between blank lines: single-line elements off the top, then
        one element for the rest."""
        lines, builder = self.lines, self.builder
        while start < stop:
            line = lines[start]
            text = line.strip()
            if line == KEPT_EMPTY:  # an empty line at the top of a paragraph is only blank
                self._notes(start, start + 1, attached=False)
                start += 1
                continue
            if text.startswith("!"):
                self._action(start, stop)
                return
            taken = self._single_line(start, stop, text)
            if taken:
                start += taken
                continue
            if stop - start >= 2 and is_cue(line):
                self._dialogue(start, stop)
            elif stop - start == 1 and _is_transition(text):
                builder.element(Transition(text=plain(text)))
                self._notes(start, stop, attached=True)
            else:
                self._action(start, stop)
            return

    def _single_line(self, start: int, stop: int, text: str) -> int:
        """How many lines a single-line element at `start` took (0: none there)."""
        builder = self.builder
        forced = _FORCED_HEADING.match(text)
        if forced or is_heading(text):
            heading = text[1:] if forced else text
            number = _SCENE_NUMBER.search(heading)
            if number:
                heading = heading[: number.start()]
            builder.heading(plain(heading.strip()), number[1] if number else None)
            self._notes(start, start + 1, attached=True)
            return 1
        if _PAGE_BREAK.fullmatch(text):
            self._notes(start, start + 1, attached=False)
            return 1
        if match := _SYNOPSIS.fullmatch(text):
            builder.synopsis(plain(match[1].strip()))
            self._notes(start, start + 1, attached=False)
            return 1
        if match := _SECTION.fullmatch(text):
            builder.section(plain(match[2].strip()), depth=len(match[1]))
            self._notes(start, start + 1, attached=False)
            return 1
        if _CENTERED.fullmatch(text):
            centered = self._run(start, stop, _CENTERED)
            builder.element(Action(text="\n".join(centered), centered=True))
            self._notes(start, start + len(centered), attached=True)
            return len(centered)
        if match := _FORCED_TRANSITION.fullmatch(text):
            builder.element(Transition(text=plain(match[1].strip())))
            self._notes(start, start + 1, attached=True)
            return 1
        if _LYRIC.fullmatch(text):
            sung = self._run(start, stop, _LYRIC)
            builder.element(Lyrics(text="\n".join(sung)))
            self._notes(start, start + len(sung), attached=True)
            return len(sung)
        return 0

    def _run(self, start: int, stop: int, pattern: re.Pattern[str]) -> list[str]:
        """The texts (group 1, plain) of the lines from `start` on that match `pattern`."""
        texts = []
        for line in self.lines[start:stop]:
            match = pattern.fullmatch(line.strip())
            if not match:
                break
            texts.append(plain(match[1].strip()))
        return texts

    def _dialogue(self, start: int, stop: int) -> None:
        cue = self.lines[start].strip()
        name, extensions, dual = split_cue(cue[1:] if cue.startswith("@") else cue)
        parentheticals: list[str] = []
        spoken: list[str] = []
        for line in self.lines[start + 1: stop]:
            text = line.strip()
            if match := _PARENTHETICAL.fullmatch(text):
                parentheticals.append(plain(match[1].strip()))
            elif match := _LYRIC.fullmatch(text):
                spoken.append(plain(match[1]))
            else:
                spoken.append(plain(text))
        self.builder.element(Dialogue(
            character=name.strip(), extensions=extensions, parentheticals=parentheticals,
            line="\n".join(spoken).strip("\n"), dual="right" if dual else None,
        ))
        self._notes(start, stop, attached=True)

    def _action(self, start: int, stop: int) -> None:
        """Action keeps its line breaks and indentation; `!` forces a line to be action."""
        kept = []
        for line in self.lines[start:stop]:
            stripped = line.lstrip()
            if stripped.startswith("!"):
                line = line[: len(line) - len(stripped)] + stripped[1:]
            kept.append(plain(line.rstrip()))
        text = "\n".join(kept).strip("\n")
        if text.strip():
            self.builder.element(Action(text=text))
        self._notes(start, stop, attached=bool(text.strip()))


def _is_transition(text: str) -> bool:
    """A transition without `>`: capitals ending in TO:, or one of the fixed fades."""
    if text in _FIXED_TRANSITIONS:
        return True
    return text.endswith("TO:") and not any(c.islower() for c in text)


def parse_fountain(text: str) -> Screenplay:
    """The screenplay a Fountain text holds; ScreenplayError if it holds none."""
    # 1. normalise
    text = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    # 2-3. boneyard and notes out of the text
    text, notes = strip_markup(text)
    lines: list[str] = []
    line_notes: list[list[str]] = []
    leading_notes: list[str] = []  # notes on note-only lines before any other line
    for raw in text.split("\n"):
        line, numbers = note_marks(raw)
        if numbers and not line.strip():
            (line_notes[-1] if line_notes else leading_notes).extend(notes[n] for n in numbers)
            continue
        lines.append(line)
        line_notes.append([notes[n] for n in numbers])
    # 4. title page
    title_page, body = split_title_page(lines)
    free_notes = leading_notes + [note for found in line_notes[:body] for note in found]
    # 5. body
    reader = _FountainReader(lines, line_notes)
    for note in free_notes:
        reader.builder.note(note)
    builder = reader.read(body)
    if not builder.has_content():
        raise ScreenplayError(
            "no screenplay in this Fountain text: no scene heading, action or dialogue")
    return builder.build(title_page)
