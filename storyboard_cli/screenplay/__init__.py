"""Screenplays in: Fountain and Final Draft (FDX) files read into one model
(storyboard_contract/screenplay.py).

detect_format() says which reader a story file needs; read_screenplay() (or parse_fountain()
and parse_fdx()) gives a Screenplay, or raises ScreenplayError (bad input, exit code 2) with
one line that says why. The readers are imported when first asked for: the CLI reads FORMATS
at start-up, which must not cost it pydantic.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Literal, get_args

if TYPE_CHECKING:
    from storyboard_cli.screenplay.detect import detect_format
    from storyboard_cli.screenplay.errors import ScreenplayError
    from storyboard_cli.screenplay.fdx import parse_fdx
    from storyboard_cli.screenplay.fountain import parse_fountain
    from storyboard_contract.screenplay import Screenplay

Format = Literal["prose", "fountain", "fdx"]
FORMATS: tuple[str, ...] = get_args(Format)

__all__ = [
    "FORMATS",
    "Format",
    "Screenplay",
    "ScreenplayError",
    "detect_format",
    "parse_fdx",
    "parse_fountain",
    "read_screenplay",
]

_LAZY = {
    "detect_format": "storyboard_cli.screenplay.detect",
    "ScreenplayError": "storyboard_cli.screenplay.errors",
    "parse_fdx": "storyboard_cli.screenplay.fdx",
    "parse_fountain": "storyboard_cli.screenplay.fountain",
    "Screenplay": "storyboard_contract.screenplay",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def read_screenplay(text: str, story_format: Format) -> Screenplay:
    """The screenplay a Fountain or FDX text holds, within the wire's bounds
    (storyboard_contract/screenplay.py); ScreenplayError otherwise."""
    from pydantic import ValidationError

    from storyboard_cli.screenplay.errors import ScreenplayError
    from storyboard_cli.screenplay.fdx import parse_fdx
    from storyboard_cli.screenplay.fountain import parse_fountain

    try:
        return parse_fdx(text) if story_format == "fdx" else parse_fountain(text)
    except ValidationError as exc:  # the bounds: too many scenes, too much text
        problem = exc.errors()[0]
        where = ".".join(map(str, problem["loc"]))
        said = problem["msg"].removeprefix("Value error, ")
        raise ScreenplayError(f"this {story_format} screenplay is too large: "
                              + (f"{where}: {said}" if where else said)) from None
