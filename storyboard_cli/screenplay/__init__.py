"""Screenplays in: Fountain and Final Draft (FDX) files read into one model (storyboard_contract/screenplay.py).

detect_format() says which reader a story file needs; parse_fountain() and parse_fdx() give a
Screenplay, or raise ScreenplayError (bad input, exit code 2) with one line that says why.
"""

from storyboard_cli.screenplay.detect import Format, detect_format
from storyboard_cli.screenplay.errors import ScreenplayError
from storyboard_cli.screenplay.fdx import parse_fdx
from storyboard_cli.screenplay.fountain import parse_fountain
from storyboard_contract.screenplay import Screenplay

__all__ = [
    "Format",
    "Screenplay",
    "ScreenplayError",
    "detect_format",
    "parse_fdx",
    "parse_fountain",
]
