"""The board as an animatic: an H.264 MP4 at 24 fps in which each frame is held for its shot's
duration, at the project's aspect, with the dialogue burned in as subtitles and also written
as an .srt beside it (players show it, editors import it) in plain text: no markup that
players would render, no terminal escapes (plain_text).

A shot's camera move plays over its duration as a slow move across the still (Ken Burns): a
push in goes from the whole frame to MOVE_ZOOM times closer, a pull out the other way; pans
and tilts cross the frame at MOVE_ZOOM, from one edge to the other; eased in and out. The
subtitles stay still over it. A static shot is one picture encoded for each of its frames.

PyAV's wheel brings its own FFmpeg and x264, so nothing needs installing on the system. Shot
boundaries fall on the frame nearest to their time on the running clock (sheet.FrameClock, as
in the editors' timelines), so the film lasts the sum of the shots' durations to within one
frame. The picture is at least 480 pixels on its short
side (the frames' own size when larger), both sides even as yuv420p demands. One frame is in
memory at a time.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Iterator
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from storyboard_cli.board.panels import Panel
from storyboard_cli.board.sheet import FPS, FrameClock, Sheet, dialogue_text, find_font
from storyboard_contract import control_chars
from storyboard_contract.frames import aspect_ratio, sketch_caption_share

if TYPE_CHECKING:
    from PIL import Image

    from storyboard_cli.board.options import ExportOptions

MIN_SHORT_SIDE = 480
MOVE_ZOOM = 1.2
MAX_SUBTITLE_LINES = 4
ENCODER_OPTIONS = {"preset": "ultrafast", "tune": "stillimage", "crf": "23"}
# What players read as markup in a cue: tags (<b>, </font>, <img ...>; not "a < b") and SSA
# style overrides ({\an8}).
_MARKUP = re.compile(r"</?[A-Za-z][^<>]*>|\{\\[^{}]*\}")


def write(project: dict[str, Any], sheet: Sheet, panels: Iterable[Panel], path: Path,
          options: ExportOptions) -> None:
    """The MP4 at `path`; its subtitles go to subtitles_path(path)."""
    import av

    width, height = video_size(sheet.aspect, project["width"], project["height"])
    font_path = find_font()
    srt = subtitles_path(path).open("w", encoding="utf-8", newline="\n")
    container = av.open(str(path), "w", format="mp4", options={"movflags": "+faststart"})
    try:
        stream = container.add_stream("libx264", rate=FPS, options=ENCODER_OPTIONS)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.time_base = Fraction(1, FPS)
        frames, cue = FrameClock(FPS), 0
        for panel in panels:
            start = frames.seconds
            first, end = frames.span(panel.shot["duration"])
            if end == first:
                continue
            said = dialogue_text(panel.shot["dialogue"])
            for n, picture in enumerate(moving(panel, said, width, height, font_path,
                                               end - first), start=first):
                frame = av.VideoFrame.from_image(picture).reformat(format="yuv420p")
                frame.pts = n
                container.mux(stream.encode(frame))
            if plain_text(said):
                cue += 1
                srt.write(f"{cue}\n{timestamp(start)} --> {timestamp(frames.seconds)}\n"
                          f"{plain_text(said)}\n\n")
        container.mux(stream.encode(None))
    finally:
        container.close()
        srt.close()


def moving(panel: Panel, said: str, width: int, height: int, font_path: str, frames: int
           ) -> Iterator[Image.Image]:
    """The shot's `frames` pictures: the still, or the still under its camera move, with the
    subtitles on top."""
    move = panel.shot["move"]
    caption = captions(said, width, height, font_path, subtitle_bottom(panel, width, height))
    if move == "static" or panel.image is None or frames < 2:
        picture = backdrop(panel, width, height, font_path)
        if caption is not None:
            picture.paste(caption, (0, 0), caption)
        for _ in range(frames):
            yield picture
        return
    from PIL import Image

    canvas = backdrop(panel, round(width * MOVE_ZOOM), round(height * MOVE_ZOOM), font_path)
    sx, sy = canvas.width / width, canvas.height / height
    for k in range(frames):
        left, top, right, bottom = camera_box(move, k / (frames - 1), width, height)
        box = (max(0.0, left * sx), max(0.0, top * sy), min(canvas.width, right * sx),
               min(canvas.height, bottom * sy))
        picture = canvas.resize((width, height), Image.Resampling.BILINEAR, box=box)
        if caption is not None:
            picture.paste(caption, (0, 0), caption)
        yield picture


def camera_box(move: str, t: float, width: int, height: int
               ) -> tuple[float, float, float, float]:
    """The part of a width × height picture the camera sees at time t (0 to 1) of a move."""
    eased = t * t * (3 - 2 * t)
    zoom = {"push in": 1 + (MOVE_ZOOM - 1) * eased,
            "pull out": MOVE_ZOOM - (MOVE_ZOOM - 1) * eased}.get(move, MOVE_ZOOM)
    w, h = width / zoom, height / zoom
    cx, cy = width / 2, height / 2
    # From one side to the other: pan left looks further left as it goes.
    if move in ("pan left", "pan right"):
        left, right = w / 2, width - w / 2
        cx = right + (left - right) * eased if move == "pan left" else left + (right - left) * eased
    elif move in ("tilt up", "tilt down"):
        top, bottom = h / 2, height - h / 2
        cy = bottom + (top - bottom) * eased if move == "tilt up" else top + (bottom - top) * eased
    return cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2


def plain_text(said: str) -> str:
    """A cue's text as players cannot read it as anything but text: no markup tags (players
    render <b>, <font>, even <img>), no style overrides ({\\an8}), no terminal escapes or
    control characters; each line's spaces folded, empty lines dropped."""
    text = control_chars.strip(_MARKUP.sub("", said), keep="\n")
    return "\n".join(line for line in (" ".join(row.split()) for row in text.split("\n"))
                     if line)


def subtitles_path(path: Path) -> Path:
    return path.with_suffix(".srt")


def video_size(aspect: str, frame_w: int, frame_h: int) -> tuple[int, int]:
    """(width, height): the aspect's, with a short side of max(480, the frame's), both even."""
    ratio = aspect_ratio(aspect)
    short = max(MIN_SHORT_SIDE, min(frame_w, frame_h))
    short -= short % 2
    long = round(short * max(ratio, 1 / ratio) / 2) * 2
    return (long, short) if ratio >= 1 else (short, long)


def timestamp(seconds: float) -> str:
    """SubRip time: 00:01:02,500."""
    ms = round(seconds * 1000)
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    secs, ms = divmod(ms, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d},{ms:03d}"


def backdrop(panel: Panel, width: int, height: int, font_path: str) -> Image.Image:
    """The frame fitted into a width × height picture (or a marked empty one)."""
    from PIL import Image, ImageDraw

    picture = Image.new("RGB", (width, height), (0, 0, 0))
    if panel.image is not None:
        with Image.open(io.BytesIO(panel.image)) as source:
            frame = source.convert("RGB")
        scale = min(width / frame.width, height / frame.height)
        frame = frame.resize((round(frame.width * scale), round(frame.height * scale)),
                             Image.Resampling.LANCZOS)
        picture.paste(frame, ((width - frame.width) // 2, (height - frame.height) // 2))
        return picture
    picture.paste((58, 58, 56), (0, 0, width, height))
    note = font(font_path, max(14, min(width, height) // 20))
    ImageDraw.Draw(picture).text(
        (width / 2, height / 2), f"Shot {panel.shot['label']}: {panel.missing or 'no image'}",
        font=note, fill=(230, 200, 170), anchor="mm")
    return picture


def subtitle_bottom(panel: Panel, width: int, height: int) -> float:
    """Where the subtitles end: at the picture's bottom, or for a sketch panel above its
    caption band (the frame as backdrop fits it into the picture)."""
    shot = panel.shot
    made_by = (shot.get("provenance") or {}).get("backend")
    if panel.image is None or made_by != "sketch" or not (shot.get("width")
                                                          and shot.get("height")):
        return height
    frame_w, frame_h = shot["width"], shot["height"]
    scale = min(width / frame_w, height / frame_h)
    top = (height - frame_h * scale) / 2
    return top + frame_h * scale * (1 - sketch_caption_share(frame_w, frame_h))


def captions(said: str, width: int, height: int, font_path: str, bottom: float
             ) -> Image.Image | None:
    """The shot's dialogue ending at `bottom`, on a transparent layer; None when nobody
    speaks."""
    if not said:
        return None
    from PIL import Image, ImageDraw

    layer = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    subtitle(ImageDraw.Draw(layer, "RGBA"), said, width, bottom,
             font(font_path, max(14, min(width, height) // 18)))
    return layer


@lru_cache(maxsize=4)
def font(path: str, size: int) -> Any:
    from PIL import ImageFont

    return ImageFont.truetype(path, size)


def subtitle(pen: Any, text: str, width: int, bottom: float, font: Any) -> None:
    """White lines on a dark band, centred, ending a little above `bottom`, wrapped to 90% of
    the width."""
    from storyboard_contract.typeset import wrap

    limit = width * 0.9
    lines = [line for said in text.splitlines()
             for line in wrap(said, lambda s: pen.textlength(s, font=font) <= limit)]
    if len(lines) > MAX_SUBTITLE_LINES:
        lines = lines[:MAX_SUBTITLE_LINES]
        lines[-1] = lines[-1].rstrip() + " …"
    size = font.size
    line_h = round(size * 1.3)
    y = bottom - round(size * 0.8) - line_h * len(lines)
    stroke = max(1, size // 12)
    widest = max(pen.textlength(line, font=font) for line in lines)
    pad = size // 2
    pen.rectangle((width / 2 - widest / 2 - pad, y - pad / 2, width / 2 + widest / 2 + pad,
                   y + line_h * len(lines)), fill=(0, 0, 0, 150))
    for line in lines:
        pen.text((width / 2, y), line, font=font, fill=(255, 255, 255), anchor="ma",
                 stroke_width=stroke, stroke_fill=(0, 0, 0))
        y += line_h
