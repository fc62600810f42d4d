"""The board as a zip: each frame as a PNG named by its shot number (`shot-001.png`), each
character's reference image (`cast-01-Lin.png`) and the shot list as JSON (`shotlist.json`:
the project object, with each shot's and character's file name in place of expiring links).
PNGs are stored as they are (they are compressed already), one at a time.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from storyboard_cli.board.panels import Panel
from storyboard_cli.board.sheet import Sheet

if TYPE_CHECKING:
    from storyboard_cli.board.options import ExportOptions

SHOT_LIST = "shotlist.json"
# Links that expire: a zip kept for months must not carry them.
_LINKS = ("image_url", "url_expires_at")
_PROJECT_LINKS = ("script_url", "script_url_expires_at")


def frame_name(number: int, count: int) -> str:
    """shot-007.png: zero-padded to the widest number, so the files sort in shot order."""
    return f"shot-{number:0{max(3, len(str(count)))}d}.png"


def write(project: dict[str, Any], sheet: Sheet, panels: Iterable[Panel], path: Path,
          options: ExportOptions) -> None:
    count = len(project["shots"])
    shots = []
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        for panel in panels:
            shot = {k: v for k, v in panel.shot.items() if k not in _LINKS}
            if panel.image is not None:
                shot["file"] = frame_name(shot["number"], count)
                archive.writestr(shot["file"], panel.image)
            else:
                shot["file"], shot["missing"] = None, panel.missing
            shots.append(shot)
        files = {}
        for number, portrait in enumerate(sheet.portraits(), 1):
            files[portrait.name] = portrait.file_name(number)
            archive.writestr(files[portrait.name], portrait.image or b"")
        listing = {k: v for k, v in project.items() if k not in _PROJECT_LINKS}
        listing["shots"] = shots
        listing["cast"] = [{**c, "file": files.get(c["name"])} for c in project["cast"]]
        listing["running_time"] = sheet.running_time
        archive.writestr(SHOT_LIST, json.dumps(listing, ensure_ascii=False, indent=1),
                         compress_type=zipfile.ZIP_DEFLATED)
