"""What both parsers share: reading a scene heading and a character cue, and putting the
paragraphs they find into scenes (storyboard_contract/screenplay.py).

A parser walks its file in reading order and tells a ScreenplayBuilder what it meets: a
heading, an element, a note, a section, a synopsis. The builder decides where each belongs, so
the Fountain and the Final Draft reader cannot disagree about it:

- a heading opens a scene; elements met before the first heading open a scene without one;
- the dialogue after a `^` cue and the dialogue before it become the two halves of a dual
  dialogue ("left", "right");
- a note written inside a heading or an element stays in that scene; a free-standing note,
  section or synopsis goes with what follows it (an act's `#` heading opens the next scene,
  not the last one of the act before), or with the last scene at the end of the file.
"""

from __future__ import annotations

import re

from storyboard_cli.screenplay.lines import HEADING_PREFIX
from storyboard_contract.screenplay import (
    Dialogue,
    Element,
    IntExt,
    Note,
    Scene,
    Screenplay,
    Section,
    Synopsis,
)

# " - ", " -- ", en and em dashes: the separators between location and time of day. A hyphen
# without spaces joins words ("HALF-WAY HOUSE").
_SEPARATOR = re.compile(r"\s+-{1,2}\s+|\s*--\s*|\s*[\u2013\u2014]\s*")
# The first word of a time of day as headings write it; anything else after the last dash is
# part of the location ("INT. HOUSE - KITCHEN").
_TIMES = frozenset({
    "DAY", "NIGHT", "MORNING", "AFTERNOON", "EVENING", "DAWN", "DUSK", "SUNRISE", "SUNSET",
    "NOON", "MIDNIGHT", "MIDDAY", "TWILIGHT", "DAYBREAK", "NIGHTFALL", "PRE-DAWN",
    "CONTINUOUS", "LATER", "MOMENTS", "SAME", "EARLY", "LATE", "MAGIC",
})
_CLOCK = re.compile(r"\d{1,2}(?::\d{2})?\s*(?:[AP]\.?M\.?)(?!\w)|\d{1,2}:\d{2}", re.IGNORECASE)


def parse_heading(text: str) -> tuple[IntExt | None, str | None, str | None]:
    """(INT/EXT, location, time of day) of a heading without its scene number.

    "INT. HOUSE - KITCHEN - NIGHT" -> ("INT", "HOUSE - KITCHEN", "NIGHT");
    "EXT. CAR (MOVING) - CONTINUOUS" -> ("EXT", "CAR (MOVING)", "CONTINUOUS");
    ".DREAM SEQUENCE" arrives here as "DREAM SEQUENCE" -> (None, "DREAM SEQUENCE", None).
    """
    int_ext: IntExt | None = None
    rest = text.strip()
    match = HEADING_PREFIX.match(rest)
    if match:
        prefix = re.sub(r"[\s.]", "", match["prefix"]).upper()
        int_ext = prefix if prefix in ("INT", "EXT", "EST") else "INT/EXT"  # type: ignore[assignment]
        rest = rest[match.end():]
    location, time_of_day = rest, None
    separators = list(_SEPARATOR.finditer(rest))
    if separators:
        last = separators[-1]
        tail = rest[last.end():].strip()
        if _is_time_of_day(tail):
            location, time_of_day = rest[: last.start()], tail
    location = location.strip(" \t-.")
    return int_ext, location or None, time_of_day


def _is_time_of_day(text: str) -> bool:
    words = text.lstrip("(").split()
    return bool(words) and (words[0].upper().rstrip(".,") in _TIMES or bool(_CLOCK.match(text)))


class ScreenplayBuilder:
    """Collects a parser's paragraphs in reading order into scenes (see the module's rules)."""

    def __init__(self) -> None:
        self._scenes: list[Scene] = []
        # Free-standing metadata waiting to learn whether a heading or an element follows.
        self._pending: list[Note | Section | Synopsis] = []

    def heading(self, text: str, number: str | None = None) -> None:
        int_ext, location, time_of_day = parse_heading(text)
        self._scenes.append(Scene(heading=text.strip(), int_ext=int_ext, location=location,
                                  time_of_day=time_of_day, number=number or None))
        self._flush()

    def element(self, element: Element) -> None:
        scene = self._current()
        self._flush()
        if isinstance(element, Dialogue) and element.dual == "right":
            before = scene.elements[-1] if scene.elements else None
            if isinstance(before, Dialogue) and before.dual is None:
                before.dual = "left"
            else:  # a `^` with no speech before it to pair with
                element.dual = None
        scene.elements.append(element)

    def note(self, text: str, *, attached: bool = False) -> None:
        """A note; `attached`: written within the heading or element just read, so it stays
        in the current scene; otherwise it goes with what follows."""
        if attached and self._scenes:
            scene = self._scenes[-1]
            scene.metadata.append(Note(text=text, position=len(scene.elements)))
        else:
            self._pending.append(Note(text=text, position=0))

    def section(self, text: str, depth: int) -> None:
        self._pending.append(Section(text=text, depth=depth, position=0))

    def synopsis(self, text: str) -> None:
        self._pending.append(Synopsis(text=text, position=0))

    def build(self, title_page: dict[str, str]) -> Screenplay:
        if self._pending:
            self._current()
            self._flush()
        title = " ".join(title_page.get("title", "").split())  # one line, as titles are
        return Screenplay(
            title=title or None,
            title_page=title_page,
            scenes=self._scenes,
        )

    def has_content(self) -> bool:
        """Whether anything a storyboard can show was found: a heading (a scene with nothing
        but its heading still has a place to establish) or an element."""
        return any(scene.heading or scene.elements for scene in self._scenes)

    def _current(self) -> Scene:
        if not self._scenes:
            self._scenes.append(Scene())
        return self._scenes[-1]

    def _flush(self) -> None:
        scene = self._scenes[-1]
        for item in self._pending:
            item.position = len(scene.elements)
            scene.metadata.append(item)
        self._pending.clear()
