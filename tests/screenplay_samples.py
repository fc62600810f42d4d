"""A feature-length screenplay made on the spot, in Fountain and in Final Draft, for timing the
parsers: the same scenes in both, and how many pages they fill when printed."""

from __future__ import annotations

import math
from dataclasses import dataclass
from xml.sax.saxutils import escape

# Printed-page arithmetic of the standard format: 55 lines a page, action 61 characters a
# line, dialogue 35.
LINES_PER_PAGE = 55
ACTION_WIDTH = 61
DIALOGUE_WIDTH = 35

PLACES = ["HARBOUR WALL", "LIGHTHOUSE LAMP ROOM", "REEF", "KEEPER'S COTTAGE - KITCHEN",
          "FISHING BOAT", "CAFÉ DU PORT"]
TIMES = ["DAY", "NIGHT", "DUSK", "DAWN", "CONTINUOUS"]
SPEAKERS = ["MARA", "TOM", "ÉLODIE", "DR. QUILL"]
ACTION = ("The wind drives rain against the glass while {who} works the iron crank, slowly, "
          "counting each turn under a breath that fogs in the cold air of the tower.")
LINES = ["The light won't turn, and the boats are still out there.",
         "Then we turn it by hand, all night if we have to.",
         "Look, past the reef: a small boat, drifting.",
         "Hold the lantern higher. Higher!"]


@dataclass
class LongScript:
    fountain: str
    fdx: str
    scenes: int
    speeches: int
    pages: int


def long_script(min_pages: int = 120) -> LongScript:
    """Scenes of a heading, two action paragraphs and six speeches (some with a
    parenthetical), a transition every third scene, until the print fills min_pages."""
    fountain: list[str] = ["Title: The Long Night", "Author: Test Writer", ""]
    fdx: list[str] = []
    printed = 0
    scenes = speeches = 0
    while printed < min_pages * LINES_PER_PAGE:
        scenes += 1
        heading = (f"{'INT' if scenes % 2 else 'EXT'}. {PLACES[scenes % len(PLACES)]} - "
                   f"{TIMES[scenes % len(TIMES)]}")
        fountain += [f"{heading} #{scenes}#", ""]
        fdx.append(_paragraph("Scene Heading", heading, number=str(scenes)))
        printed += 2
        for who in ("MARA", "TOM"):
            action = ACTION.format(who=who)
            fountain += [action, ""]
            fdx.append(_paragraph("Action", action))
            printed += math.ceil(len(action) / ACTION_WIDTH) + 1
        for turn in range(6):
            speeches += 1
            speaker = SPEAKERS[(scenes + turn) % len(SPEAKERS)]
            line = LINES[(scenes + turn) % len(LINES)]
            fountain.append(speaker)
            fdx.append(_paragraph("Character", speaker))
            if turn % 3 == 0:
                fountain.append("(quietly)")
                fdx.append(_paragraph("Parenthetical", "(quietly)"))
                printed += 1
            fountain += [line, ""]
            fdx.append(_paragraph("Dialogue", line))
            printed += 2 + math.ceil(len(line) / DIALOGUE_WIDTH)
        if scenes % 3 == 0:
            fountain += ["CUT TO:", ""]
            fdx.append(_paragraph("Transition", "CUT TO:"))
            printed += 2
    fdx_text = ('<?xml version="1.0" encoding="UTF-8" standalone="no" ?>\n'
                '<FinalDraft DocumentType="Script" Template="No" Version="5">\n<Content>\n'
                + "\n".join(fdx) + "\n</Content>\n</FinalDraft>\n")
    return LongScript(fountain="\n".join(fountain), fdx=fdx_text, scenes=scenes,
                      speeches=speeches, pages=printed // LINES_PER_PAGE)


def _paragraph(kind: str, text: str, number: str | None = None) -> str:
    number_attribute = f' Number="{number}"' if number else ""
    return (f'<Paragraph Type="{kind}"{number_attribute}><Text>{escape(text)}</Text>'
            "</Paragraph>")
