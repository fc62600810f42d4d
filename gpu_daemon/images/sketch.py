"""The ``sketch`` backend: a storyboard panel drawn with PIL, so the system works without a GPU.

A panel has a frame with a rough subject sized by the shot size (a wide shot shows a small
figure, a close-up a head filling the frame), a header with shot number and shot size, and the
description wrapped below. The same request always gives the same bytes; the seed only moves
the subject along the rule-of-thirds lines.

Chinese text needs a font that covers it: fontconfig is asked for one (Debian:
fonts-wqy-microhei or fonts-noto-cjk). Without one, characters outside Latin-1 are drawn as
'?' after one warning at start-up, never as tofu boxes.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from gpu_daemon.images import RenderJob, StepCallback

log = logging.getLogger("gpu_daemon.sketch")

# Where CJK fonts live when fontconfig is absent (macOS, Windows, common Linux packages).
KNOWN_CJK_FONTS = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/System/Library/Fonts/PingFang.ttc",
    "/System/Library/Fonts/STHeiti Light.ttc",
    "C:/Windows/Fonts/msyh.ttc",
    "C:/Windows/Fonts/simhei.ttf",
)
_PREFERRED = ("microhei", "notosanscjk", "sourcehansans", "zenhei")

# Relative size of the subject (head radius as a fraction of the frame height) per shot size.
_SUBJECT_SCALE = {
    "extreme wide": 0.03, "wide": 0.06, "full": 0.09, "medium": 0.16, "over-the-shoulder": 0.16,
    "medium close-up": 0.22, "close-up": 0.32, "extreme close-up": 0.5, "insert": 0.0,
}

INK = (30, 30, 30)
PAPER = (250, 249, 245)
SHADE = (205, 205, 200)


def _font_rank(path: str) -> tuple[int, int, str]:
    name = Path(path).name.lower().replace("-", "").replace("_", "")
    preferred = 0 if any(p in name for p in _PREFERRED) else 1
    variant = 1 if any(v in name for v in ("mono", "bold", "light")) else 0
    return (preferred, variant, path)


def find_cjk_font() -> str | None:
    """A font file covering Chinese: fontconfig's answer first, then well-known paths."""
    candidates: list[str] = []
    fc_list = shutil.which("fc-list")
    if fc_list:
        try:
            out = subprocess.run(
                [fc_list, ":lang=zh", "file"], capture_output=True, text=True, timeout=10
            ).stdout
        except (OSError, subprocess.SubprocessError):
            out = ""
        found = {line.split(":")[0].strip() for line in out.splitlines() if line.strip()}
        candidates = sorted(found, key=_font_rank)
    candidates += [p for p in KNOWN_CJK_FONTS if p not in candidates]
    for path in candidates:
        if Path(path).is_file():
            try:
                ImageFont.truetype(path, 12)
            except OSError:
                continue
            return path
    return None


_CJK = re.compile(r"[\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef\u3000-\u303f]")
# Punctuation that must not start a line: it hangs at the end of the previous one.
_NO_LINE_START = set("，。、；：！？…）》」』”’,.;:!?)")
_TOKEN = re.compile(r"[\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef\u3000-\u303f]|\S+\s*|\s+")


def wrap(text: str, fits: Callable[[str], bool]) -> list[str]:
    """Greedy line breaking: CJK may break between any characters, other scripts at spaces.

    A word longer than a line is broken between characters.
    """
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        line = ""
        for token in _TOKEN.findall(paragraph):
            if fits(line + token.rstrip()) or (line and token[0] in _NO_LINE_START):
                line += token
                continue
            if line.strip():
                lines.append(line.rstrip())
            line = ""
            token = token.lstrip()
            while token and not fits(token.rstrip()):
                cut = 1
                while cut < len(token) and fits(token[: cut + 1]):
                    cut += 1
                lines.append(token[:cut])
                token = token[cut:]
            line = token
        lines.append(line.rstrip())
    return [line for line in lines if line] or [""]


class SketchBackend:
    name = "sketch"
    model = None
    device = "cpu"

    def __init__(self, font_path: str | None) -> None:
        """font_path: a font covering Chinese (see find_cjk_font), None for the fallback."""
        self.font_path = font_path
        if self.font_path is None:
            log.warning(
                "sketch: no font covering Chinese found (Debian/Ubuntu: apt-get install "
                "fonts-wqy-microhei); non-Latin text will be drawn as '?'"
            )
        else:
            log.info("sketch: drawing text with %s", self.font_path)

    def token_count(self) -> None:
        return None

    @lru_cache(maxsize=32)  # noqa: B019 - one backend per process, a handful of sizes
    def font(self, size: int) -> ImageFont.FreeTypeFont:
        if self.font_path is None:
            return ImageFont.load_default(size)
        return ImageFont.truetype(self.font_path, size, layout_engine=ImageFont.Layout.BASIC)

    def _drawable(self, text: str) -> str:
        if self.font_path is not None:
            return text
        return "".join(c if ord(c) < 256 else "?" for c in text)

    def render(self, jobs: Sequence[RenderJob], on_step: StepCallback) -> list[Image.Image]:
        images = [self.panel(job) for job in jobs]
        on_step(1, 1)
        return images

    def panel(self, job: RenderJob) -> Image.Image:
        w, h = job.width, job.height
        img = Image.new("RGB", (w, h), PAPER)
        draw = ImageDraw.Draw(img)
        pad = max(2, w // 40)
        line = max(1, w // 256)
        head_font = self.font(max(8, h // 22))
        body_font = self.font(max(8, h // 26))

        header = self._drawable(f"SHOT {job.index + 1} · {job.camera.upper()}")
        header_h = _text_height(draw, head_font) + pad
        draw.text((pad, pad), header, fill=INK, font=head_font)
        if job.style:
            style = self._drawable(job.style)[:30]
            sw = draw.textlength(style, font=head_font)
            if sw < w - 2 * pad - draw.textlength(header, font=head_font):
                draw.text((w - pad - sw, pad), style, fill=INK, font=head_font)

        frame_top = pad + header_h
        frame = (pad, frame_top, w - pad - 1, frame_top + int((h - frame_top) * 0.62))
        # Drawn on its own canvas so a large subject is cropped by the frame, as a camera would.
        inner = Image.new("RGB", (frame[2] - frame[0], frame[3] - frame[1]), PAPER)
        _subject(ImageDraw.Draw(inner), inner.size, job, line)
        img.paste(inner, frame[:2])
        draw.rectangle(frame, outline=INK, width=line)

        body_top = frame[3] + pad
        line_h = _text_height(draw, body_font) + max(1, pad // 3)
        room = max(0, (h - pad - body_top) // line_h)
        text = self._drawable(job.description or job.prompt)
        max_w = w - 2 * pad
        lines = wrap(text, lambda s: draw.textlength(s, font=body_font) <= max_w)
        if len(lines) > room:
            lines = lines[:room]
            if lines:
                last = lines[-1]
                while last and draw.textlength(last + "…", font=body_font) > max_w:
                    last = last[:-1]
                lines[-1] = last + "…"
        for i, text_line in enumerate(lines):
            draw.text((pad, body_top + i * line_h), text_line, fill=INK, font=body_font)
        draw.rectangle((0, 0, w - 1, h - 1), outline=INK, width=line)
        return img


def _subject(draw: ImageDraw.ImageDraw, size: tuple[int, int], job: RenderJob, line: int) -> None:
    fw, fh = size
    # Horizon line, then a figure on a third chosen by the seed.
    horizon = fh * 2 // 3
    draw.line((0, horizon, fw, horizon), fill=SHADE, width=line)
    scale = _SUBJECT_SCALE.get(job.camera, 0.16)
    cx = fw * (1 + job.seed % 2) // 3
    if scale == 0.0:  # insert: an object, not a person
        s = fh // 4
        draw.rectangle((cx - s, horizon - s, cx + s, horizon), outline=INK, width=line)
        return
    r = max(1, int(fh * scale))
    cy = fh * 2 // 5 if scale >= 0.16 else horizon - 3 * r
    draw.ellipse((cx - r, cy - r, cx + r, cy + r), outline=INK, width=line)
    draw.line((cx, cy + r, cx, cy + r * 5), fill=INK, width=line)
    draw.line((cx - 2 * r, cy + 2 * r, cx + 2 * r, cy + 2 * r), fill=INK, width=line)


def _text_height(draw: ImageDraw.ImageDraw, font: ImageFont.FreeTypeFont) -> int:
    left, top, right, bottom = draw.textbbox((0, 0), "Hg中", font=font)
    return bottom - top
