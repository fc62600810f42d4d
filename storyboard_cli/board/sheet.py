"""What every format shows of a board, worded once: the header's facts (title, aspect, shot
count, running time, date) and each panel's fields (number, shot size, duration, dialogue,
and the marks: approved, stale, new, changed)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import PurePath
from typing import Any

from storyboard_contract.cjk import has_han
from storyboard_contract.errors import UsageError

# What may not be in a file name on any of the usual systems, plus whitespace.
_UNSAFE = re.compile(r'[\\/:*?"<>|\s\x00-\x1f]+')


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

    def stats(self) -> list[tuple[str, str]]:
        """(label, value) pairs of the header line, in the order Storyboarder's PDF has them."""
        return [("Shots", str(self.shots)), ("Running time", clock(self.running_time)),
                ("Aspect", self.aspect), ("Style", self.style), ("Date", self.date)]


def sheet(project: dict[str, Any], when: datetime | None = None) -> Sheet:
    """The header of a project object's board, exported at `when` (default: now)."""
    shots = project["shots"]
    when = when or datetime.now(timezone.utc)
    return Sheet(
        title=project["title"], aspect=project["aspect"], style=project["style"],
        shots=len(shots), running_time=running_time(shots),
        date=when.astimezone().date().isoformat(),
        chinese=has_han(project["story_text"]) or has_han(project["title"]),
    )


def running_time(shots: list[dict[str, Any]]) -> float:
    return float(sum(s["duration"] for s in shots))


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
    """Spoken lines as a script writes them: SPEAKER: line (the speaker where known)."""
    return "\n".join(f"{d['speaker']}: {d['line']}" if d["speaker"] else d["line"]
                     for d in lines)


def provenance_line(made: dict[str, Any]) -> str:
    """What made an image, in one line: model (hash), VAE, LoRAs, sampler, steps, CFG, seed,
    size."""
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
    """A panel's first line: Shot 3 · medium · 3.5 s."""
    parts = [f"Shot {shot['number']}", shot["camera"] or "", seconds(shot["duration"])]
    return " · ".join(p for p in parts if p)


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
