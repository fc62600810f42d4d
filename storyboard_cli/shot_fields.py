"""The fields of a shot a writer edits, in one table: `storyboard shot PROJECT/N --NAME VALUE`,
`shots PROJECT insert`, the API's `PATCH /api/shots/{shot}` body and the history's changes are
all made from it. A field is added with one entry (its check goes in storyboard_cli/inputs.py).

Each field has: its name (the option `--NAME`, the key in the API body and in the shot
object), the `shots` column it is stored in, the check that turns what a user gives into the
stored value (inputs.py: one line and exit 2 for bad input), whether a change alters what the
panel shows (`redraw`: the panel becomes stale and `generate --stale` renders it), and its
help text. List fields (dialogue, characters) are stored as JSON text.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from storyboard_cli import inputs
from storyboard_cli.inputs import ShotContext
from storyboard_contract.errors import UsageError


@dataclass(frozen=True)
class ShotField:
    name: str
    column: str
    check: Callable[[Any, ShotContext], Any]
    redraw: bool
    help: str
    metavar: str = "TEXT"
    # Given several times on the command line (each a list item).
    multiple: bool = False
    # Stored as JSON text (a list).
    as_json: bool = False

    def stored(self, value: Any) -> Any:
        """The column's value for a checked value."""
        return json.dumps(value, ensure_ascii=False) if self.as_json else value

    def shown(self, column_value: Any) -> Any:
        """The shot object's value for the column's."""
        if self.as_json:
            return json.loads(column_value or "[]")
        return column_value


FIELDS: tuple[ShotField, ...] = (
    ShotField("camera", "camera", inputs.check_camera, redraw=True, metavar="SIZE",
              help="Shot size: wide, medium, close-up, ... (the prompt's opening words "
              "follow). Example: --camera close-up"),
    ShotField("move", "move", inputs.check_move, redraw=False, metavar="MOVE",
              help="Camera move over the shot: static, push in, pull out, pan left, pan right, "
              "tilt up or tilt down (the animatic plays it and the PDF draws it; the frame "
              'stays). Example: --move "push in"'),
    ShotField("action", "action", inputs.check_action, redraw=True,
              help="What we see (the prompt follows unless --prompt is given). Example: "
              '--action "Lin unlocks the shop door"'),
    ShotField("dialogue", "dialogue", inputs.check_dialogue, redraw=False, multiple=True,
              as_json=True, metavar='"SPEAKER: LINE"',
              help='A spoken line (repeatable; all of them replace the shot\'s; "" for none; '
              'a line with no speaker: no colon, or ": line"). Example: --dialogue "Lin: '
              'You are early"'),
    ShotField("characters", "characters", inputs.check_characters, redraw=True, as_json=True,
              metavar='"A,B"',
              help='The cast members the shot shows, comma-separated ("" for none). Example: '
              '--characters "Lin,Tom"'),
    ShotField("duration", "duration", inputs.check_duration, redraw=False, metavar="SECONDS",
              help="Seconds on screen. Example: --duration 4.5"),
    ShotField("prompt", "prompt", inputs.check_shot_prompt, redraw=True,
              help='The content prompt the image is rendered from. Example: --prompt "close-up, '
              'Lin at the door, dawn light"'),
)
BY_NAME = {f.name: f for f in FIELDS}


def checked(given: dict[str, Any], ctx: ShotContext) -> dict[str, Any]:
    """The fields a user gives (name -> value, as the CLI or the API passes them) checked,
    in the table's order; an unknown name is refused."""
    unknown = [name for name in given if name not in BY_NAME]
    if unknown:
        raise UsageError(f"unknown shot field {unknown[0]!r}; the fields are "
                         f"{', '.join(BY_NAME)}")
    return {f.name: f.check(given[f.name], ctx) for f in FIELDS if f.name in given}


def shown_values(row: dict[str, Any]) -> dict[str, Any]:
    """The editable fields of a shot row as the shot object shows them."""
    return {f.name: f.shown(row[f.column]) for f in FIELDS}
