"""Camera moves: what a text says the camera does (the rules planner's). The names a model or
a person writes for a move (the LLM planner's answers, `storyboard shot --move`) are read by
storyboard_contract.wire.move_name, which host and daemon share.

The rules planner reads camera language only: the words a script or a story uses for the
camera itself (PUSH IN, the camera pulls back, pans left, TILT UP; 推近, 拉远, 左摇, 上摇),
never the movement of what is filmed: "Tom climbs the stairs" says nothing of the camera, and
a guessed tilt would be wrong as often as right. A text that says nothing is a static shot.
Where a text names several moves, the first one wins: a shot has one move.
"""

from __future__ import annotations

import re

from storyboard_contract.wire import CameraMove

# Each move's camera language, English and Chinese.
_LANGUAGE: dict[str, str] = {
    "push in": r"push(?:es|ed|ing)?[ -]in|dolly(?:ing|ies)?[ -](?:in|forward)"
               r"|zoom(?:s|ed|ing)?[ -]in|(?:camera|we)\s+(?:moves?|drifts?|creeps?|pushes)\s+"
               r"(?:in|closer)|推近|推镜|推向|镜头推",
    "pull out": r"pull(?:s|ed|ing)?[ -](?:back|out)|dolly(?:ing|ies)?[ -](?:out|back)"
                r"|zoom(?:s|ed|ing)?[ -]out|(?:camera|we)\s+(?:moves?|drifts?|pulls)\s+"
                r"(?:back|away|out)|拉远|拉开|镜头拉",
    "pan left": r"pan(?:s|ned|ning)?\s+(?:to\s+the\s+)?left|左摇|向左摇",
    "pan right": r"pan(?:s|ned|ning)?\s+(?:to\s+the\s+)?right|右摇|向右摇",
    "tilt up": r"tilt(?:s|ed|ing)?[ -]up|crane(?:s|d)?[ -]up|上摇|向上摇",
    "tilt down": r"tilt(?:s|ed|ing)?[ -]down|crane(?:s|d)?[ -]down|下摇|向下摇",
}
_ANY_MOVE = re.compile(
    "|".join(f"(?P<m{k}>{pattern})" for k, pattern in enumerate(_LANGUAGE.values())),
    re.IGNORECASE,
)
_BY_GROUP = {f"m{k}": move for k, move in enumerate(_LANGUAGE)}


def camera_move(text: str) -> CameraMove:
    """The move the text gives the camera, the first one it names; static when none."""
    match = _ANY_MOVE.search(text)
    if match is None or match.lastgroup is None:
        return "static"
    return _BY_GROUP[match.lastgroup]  # type: ignore[return-value]

