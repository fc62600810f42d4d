"""The shot list as a table: a CSV file that a spreadsheet opens, one row per shot.

UTF-8 with a byte-order mark (Excel reads anything beyond ASCII wrongly without one), the
excel dialect (commas, CRLF, quotes around a cell that holds a comma, a quote or a line break,
so a speech's lines stay in one cell). Columns: the number on the panel (3.2), the scene
(number and heading), shot size, camera move, characters, action, dialogue with speakers,
duration in seconds, prompt, seed, and a presigned link to the frame (signed afresh, for
[s3] link_expiry). A cell a spreadsheet would take for a formula (one that starts with =, +,
- or @) starts with an apostrophe, which spreadsheets show as text and hide.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from storyboard_cli.board.panels import Panel
from storyboard_cli.board.sheet import Sheet, dialogue_text, scene_title

if TYPE_CHECKING:
    from storyboard_cli.board.options import ExportOptions

COLUMNS = ("number", "scene", "shot size", "camera move", "characters", "action", "dialogue",
           "duration", "prompt", "seed", "image link")
_FORMULA = ("=", "+", "-", "@")


def write(project: dict[str, Any], sheet: Sheet, panels: Iterable[Panel], path: Path,
          options: ExportOptions) -> None:
    with path.open("w", encoding="utf-8-sig", newline="") as out:
        table = csv.writer(out)
        table.writerow(COLUMNS)
        for panel in panels:
            table.writerow(row(panel))


def row(panel: Panel) -> list[str]:
    shot = panel.shot
    text = [shot["label"], scene_title(shot) or "", shot["camera"] or "", shot["move"],
            "; ".join(shot["characters"]), shot["action"], dialogue_text(shot["dialogue"])]
    numbers = [f"{shot['duration']:g}"]
    return ([as_text(cell) for cell in text] + numbers
            + [as_text(shot["prompt"]), "" if shot["seed"] is None else str(shot["seed"]),
               panel.url or ""])


def as_text(cell: str) -> str:
    """A cell that a spreadsheet shows as the text it is, never runs as a formula."""
    return f"'{cell}" if cell.startswith(_FORMULA) else cell
