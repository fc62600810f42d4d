"""What every format shows of a board, worded once: the header's facts (title, aspect, shot
count, running time, date), the cast with its reference images (the cast strip), and each
panel's fields (number, scene, shot size, camera move,
duration, dialogue, and the marks: approved, stale, new, changed)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import PurePath
from typing import Any

from storyboard_contract.cjk import has_han
from storyboard_contract.errors import UsageError

# Frames a second of the animatic and of the editors' timelines.
FPS = 24
# What may not be in a file name on any of the usual systems, plus whitespace.
_UNSAFE = re.compile(r'[\\/:*?"<>|\s\x00-\x1f]+')


@dataclass(frozen=True)
class Portrait:
    """A member of the cast as a board shows it: its name, description and reference image
    (an upload or a portrait, `storyboard cast`): the image's bytes read from the bucket (an
    export), or a link to it (the web page), or neither when it has none."""

    name: str
    description: str
    image: bytes | None = None
    url: str | None = None
    suffix: str = ".png"

    def file_name(self, number: int) -> str:
        """Its image's file in an export's folder or archive: cast-01-Lin.png."""
        name = _UNSAFE.sub("-", self.name).strip("-.")[:40] or "character"
        return f"cast-{number:02d}-{name}{self.suffix}"


# A cast member (a character object) as a Portrait: its image read, or linked.
Portraying = Callable[[dict[str, Any]], Portrait]


def unseen(character: dict[str, Any]) -> Portrait:
    """A cast member without its image: its words only."""
    return Portrait(character["name"], character["description"])


@dataclass(frozen=True)
class Sheet:
    """The header of a board: what a writer reads first."""

    title: str
    aspect: str
    style: str
    shots: int
    running_time: float  # seconds, the sum of the shots' durations
    date: str  # the day of the export, YYYY-MM-DD
    chinese: bool  # the story has Chinese text
    cast: tuple[Portrait, ...] = ()

    def portraits(self) -> list[Portrait]:
        """The cast members with a reference image to show (the cast strip)."""
        return [p for p in self.cast if p.image is not None or p.url is not None]

    def stats(self) -> list[tuple[str, str]]:
        """(label, value) pairs of the header line, in the order Storyboarder's PDF has them."""
        return [("Shots", str(self.shots)), ("Running time", clock(self.running_time)),
                ("Aspect", self.aspect), ("Style", self.style), ("Date", self.date)]


def sheet(project: dict[str, Any], when: datetime | None = None,
          portray: Portraying = unseen) -> Sheet:
    """The header of a project object's board, exported at `when` (default: now), its cast
    as `portray` shows each member (default: words only)."""
    shots = project["shots"]
    when = when or datetime.now(timezone.utc)
    return Sheet(
        title=project["title"], aspect=project["aspect"], style=project["style"],
        shots=len(shots), running_time=running_time(shots),
        date=when.astimezone().date().isoformat(),
        chinese=has_han(project["story_text"]) or has_han(project["title"]),
        cast=tuple(portray(c) for c in project["cast"]),
    )


def running_time(shots: list[dict[str, Any]]) -> float:
    return float(sum(s["duration"] for s in shots))


class FrameClock:
    """Shots laid end to end on a running clock, cut into frames at `fps`: each shot's boundaries
    fall on the frame nearest their time, so the film lasts the sum of the durations to within
    one frame. The animatic and the editors' timelines cut the same frames."""

    def __init__(self, fps: int = FPS) -> None:
        self.fps = fps
        self.seconds = 0.0  # where the next shot starts
        self.frame = 0  # its first frame

    def span(self, duration: float) -> tuple[int, int]:
        """The next shot's frames [first, end); empty (end == first) for a shot too short to
        get a frame of its own."""
        first = self.frame
        self.seconds += float(duration)
        self.frame = max(first, round(self.seconds * self.fps))
        return first, self.frame


def clock(seconds: float) -> str:
    """A running time as editors write it: 0:42, 12:05, 1:02:03 (whole seconds)."""
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def seconds(value: float) -> str:
    """A shot's duration: 3.5 s."""
    return f"{value:g} s"


def dialogue_text(lines: list[dict[str, Any]]) -> str:
    """Spoken lines as a script writes them: SPEAKER (how): line (the speaker where known, how
    where the screenplay's parenthetical says)."""
    return "\n".join(speech(d) for d in lines)


def speech(line: dict[str, Any], quoted: bool = False) -> str:
    """One spoken line: MARA (breathless): The light won't turn! With `quoted`, the words in
    quotation marks and the speaker outside them: MARA (breathless): “The light won't turn!”"""
    how = f" ({line['parenthetical']})" if line.get("parenthetical") else ""
    words = f"“{line['line']}”" if quoted else line["line"]
    return f"{line['speaker']}{how}: {words}" if line["speaker"] else words


def framing(shot: dict[str, Any]) -> str:
    """The shot size and, when the camera moves, the move: medium · push in."""
    moving = shot["move"] if shot["move"] != "static" else ""
    return " · ".join(p for p in (shot["camera"] or "", moving) if p)


def provenance_line(made: dict[str, Any]) -> str:
    """What made an image, in one line: model (hash), VAE, LoRAs, sampler, steps, CFG, seed,
    size, and how identity was carried unless by the prompt's words alone."""
    model = made.get("model_name") or made.get("model") or made["backend"]
    if made.get("model_hash"):
        model += f" ({made['model_hash']})"
    parts = [model]
    if made.get("vae"):
        parts.append(f"VAE {PurePath(made['vae']).name} ({made.get('vae_hash')})")
    parts += [f"LoRA {lora['name']}:{lora['scale']:g} ({lora['hash']})"
              for lora in made.get("loras") or []]
    parts += [made.get("scheduler") or "default", f"{made['steps']} steps",
              f"CFG {made['guidance_scale']:g}", f"seed {made['seed']}",
              f"{made['width']}×{made['height']}"]
    if made.get("consistency", "text") != "text":
        parts.append(f"identity by {made['consistency']}")
    return ", ".join(parts)


def panel_marks(shot: dict[str, Any]) -> list[str]:
    """What a board says of a panel beside its fields: approved, stale (edited since its
    image was rendered), new or changed in this revision of the story."""
    marks = ["approved"] if shot.get("approved") else []
    if shot.get("stale"):
        marks.append("stale")
    if shot.get("revised"):
        marks.append(shot["revised"])
    return marks


def heading(shot: dict[str, Any]) -> str:
    """A panel's first line: Shot 3.2 · medium · push in · 3.5 s."""
    return " · ".join(p for p in (f"Shot {shot['label']}", framing(shot),
                                  seconds(shot["duration"])) if p)


def scene_title(shot: dict[str, Any]) -> str | None:
    """A screenplay shot's scene: its number and heading (3 · EXT. REEF - NIGHT); None in
    prose."""
    if shot["scene"] is None:
        return None
    return " · ".join(p for p in (shot["scene"], shot["scene_heading"] or "") if p)


def opens_scene(shot: dict[str, Any]) -> str | None:
    """The scene_title of a shot that opens its scene, for the boards to set above it; None
    for the others."""
    return scene_title(shot) if shot["scene_shot"] == 1 else None


def file_stem(project: dict[str, Any]) -> str:
    """A file name for a project's exports: its title made safe, and its id (two projects may
    share a title): `bilingual-1`, `灯塔-3`."""
    title = _UNSAFE.sub("-", project["title"]).strip("-.")[:60] or "storyboard"
    return f"{title}-{project['id']}"


def find_font() -> str:
    """A font file covering Chinese and Latin text, for the PDF and the animatic's subtitles;
    a UsageError saying what to install when there is none."""
    from storyboard_contract.typeset import find_cjk_font

    font = find_cjk_font()
    if font is None:
        raise UsageError("exporting needs a font covering Chinese and none was found "
                         "(Debian/Ubuntu: sudo apt-get install fonts-wqy-microhei; or run "
                         "sh scripts/system-deps.sh)")
    return font
