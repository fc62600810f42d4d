"""The board as a Wonder Unit Storyboarder project, to finish by hand: a folder holding
`NAME.storyboarder` (JSON) and `images/`.

The format is Storyboarder 3.0.0's (wonderunit/storyboarder at 8b81a25, June 2022: its test
fixtures such as test/fixtures/example/example.storyboarder, src/js/models/board.js and the
image import of src/js/window/main-window.js). A scene holds `version`, `aspectRatio` (width over
height, as its New dialog lists them), `fps`, `defaultBoardTiming` (ms) and `boards`. A board
has a five-character `uid`, `url` (`board-N-UID.png`, the name its layer files derive from;
that file itself must not exist, or Storyboarder migrates the board as a pre-1.6 one),
`newShot`, `lastEdited` (ms), `layers`, `number`, `shot` (`1A`; a screenplay's shots keep their
scene numbers, `3.2`), `time` and `duration` (ms), and the text fields `dialogue`, `action` and
`notes` (the writer's note and approval first, then the scene, shot size, camera move and
cast, the prompt and the seed). As Storyboarder does when it imports an image, the frame goes
on the reference layer (opacity 1) at the board size (900 px on the short side), with a
thumbnail and a poster frame beside it, so the project opens
without the "missing files" warning. A shot without a frame gets an empty board whose notes
say why.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from storyboard_cli.board.panels import Panel
from storyboard_cli.board.sheet import (
    FPS,
    Sheet,
    dialogue_text,
    framing,
    opens_scene,
    panel_marks,
    provenance_line,
)
from storyboard_contract.frames import aspect_ratio

if TYPE_CHECKING:
    from PIL import Image

    from storyboard_cli.board.options import ExportOptions

VERSION = "3.0.0"  # the Storyboarder release whose format this is
DEFAULT_BOARD_TIMING_MS = 2000  # Storyboarder's default preference
BOARD_SHORT_SIDE = 900
_BASE36 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def write(project: dict[str, Any], sheet: Sheet, panels: Iterable[Panel], path: Path,
          options: ExportOptions) -> None:
    """The project folder at `path`, with `path.name + ".storyboarder"` in it."""
    images = path / "images"
    images.mkdir(parents=True)
    ratio = aspect_ratio(sheet.aspect)
    size = board_size(ratio)
    edited = int(time.time() * 1000)
    boards, used, clock_ms = [], set(), 0
    for panel in panels:
        shot = panel.shot
        uid = board_uid(project["id"], shot["id"], used)
        board = board_json(shot, uid, clock_ms, edited, panel.missing)
        write_images(images, board, panel, size, thumbnail_size(ratio))
        boards.append(board)
        clock_ms += board["duration"]
    scene = {"version": VERSION, "aspectRatio": ratio, "fps": FPS,
             "defaultBoardTiming": DEFAULT_BOARD_TIMING_MS, "boards": boards}
    (path / f"{path.name}.storyboarder").write_text(
        json.dumps(scene, ensure_ascii=False, indent=2), encoding="utf-8")
    # The cast's reference images beside the boards, for the artist to draw from.
    for number, portrait in enumerate(sheet.portraits(), 1):
        (path / portrait.file_name(number)).write_bytes(portrait.image or b"")


def board_size(ratio: float) -> tuple[int, int]:
    """Storyboarder's boardFileImageSize: 900 px on the short side."""
    if ratio >= 1:
        return round(BOARD_SHORT_SIDE * ratio), BOARD_SHORT_SIDE
    return BOARD_SHORT_SIDE, round(BOARD_SHORT_SIDE / ratio)


def thumbnail_size(ratio: float) -> tuple[int, int]:
    """Storyboarder's getThumbnailSize."""
    return math.floor(60 * ratio) * 2, 120


def board_uid(project_id: int, shot_id: int, used: set[str]) -> str:
    """Five base-36 characters, as Storyboarder's uidGen(5), but derived from the shot so that
    exporting again gives the same file names; unique within the scene."""
    salt = 0
    while True:
        digest = hashlib.blake2b(f"{project_id}:{shot_id}:{salt}".encode(), digest_size=8)
        value = int.from_bytes(digest.digest(), "big")
        uid = "".join(_BASE36[(value // 36**k) % 36] for k in range(5))
        if uid not in used:
            used.add(uid)
            return uid
        salt += 1


def board_json(shot: dict[str, Any], uid: str, time_ms: int, edited: int,
               missing: str | None) -> dict[str, Any]:
    number = shot["number"]
    url = f"board-{number}-{uid}.png"
    # The writer's own first: their note and approval, then what the shot was made from.
    notes = [f"[{mark}]" for mark in panel_marks(shot)]
    if missing:
        notes.append(f"[{missing}]")
    notes += [shot["notes"], " · ".join(p for p in (opens_scene(shot), framing(shot),
                                                    ", ".join(shot["characters"])) if p)]
    made = shot.get("provenance")
    notes += [f"prompt: {shot['prompt']}" if shot["prompt"] else "",
              f"made by: {provenance_line(made)}" if made
              else f"seed: {shot['seed']}" if shot["seed"] is not None else ""]
    layers = {} if missing else {
        "reference": {"url": url.replace(".png", "-reference.png"), "opacity": 1}}
    return {
        "uid": uid, "url": url, "newShot": True, "lastEdited": edited, "layers": layers,
        "number": number, "shot": shot_name(shot), "time": time_ms,
        "duration": round(float(shot["duration"]) * 1000),
        "dialogue": dialogue_text(shot["dialogue"]), "action": shot["action"] or "",
        "notes": "\n".join(n for n in notes if n),
    }


def shot_name(shot: dict[str, Any]) -> str:
    """Storyboarder's shot field: a screenplay's shot as the panels number it (3.2), else the
    board's number with Storyboarder's first letter (7A, as its own boards are named)."""
    return shot["label"] if shot["scene"] is not None else f"{shot['number']}A"


def write_images(folder: Path, board: dict[str, Any], panel: Panel, size: tuple[int, int],
                 thumb: tuple[int, int]) -> None:
    """The reference layer (when there is a frame), the thumbnail and the poster frame."""
    from PIL import Image

    stem = board["url"].removesuffix(".png")
    if panel.image is None:
        blank = Image.new("RGB", size, (255, 255, 255))
        blank.resize(thumb).save(folder / f"{stem}-thumbnail.png")
        blank.save(folder / f"{stem}-posterframe.jpg", quality=85)
        return
    frame = fitted(panel.image, size)
    frame.save(folder / board["layers"]["reference"]["url"])
    frame.resize(thumb, Image.Resampling.LANCZOS).save(folder / f"{stem}-thumbnail.png")
    frame.save(folder / f"{stem}-posterframe.jpg", quality=85)


def fitted(png: bytes, size: tuple[int, int]) -> Image.Image:
    """The frame scaled to fit the board, centred on white (Storyboarder's fitImageData)."""
    from PIL import Image

    with Image.open(io.BytesIO(png)) as source:
        frame = source.convert("RGB")
    if frame.size == size:
        return frame
    scale = min(size[0] / frame.width, size[1] / frame.height)
    frame = frame.resize((round(frame.width * scale), round(frame.height * scale)),
                         Image.Resampling.LANCZOS)
    board = Image.new("RGB", size, (255, 255, 255))
    board.paste(frame, ((size[0] - frame.width) // 2, (size[1] - frame.height) // 2))
    return board
