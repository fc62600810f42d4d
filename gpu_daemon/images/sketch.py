"""The ``sketch`` backend: a storyboard frame drawn with PIL, so the system works without a GPU.

The whole image is the camera frame, at the project's aspect: a header with shot number and
shot size (and the style), the people of the shot as rough figures sized by the shot size (a
wide shot shows small figures, a close-up one head filling the frame), each labelled with its
name, and the description as a caption band at the bottom. Sizes follow the frame's short
side, so a 2.39:1 strip and a 9:16 portrait frame read alike. The same request always gives
the same bytes; the seed only moves the figures along the rule-of-thirds lines.

Chinese text needs a font that covers it: fontconfig is asked for one (Debian:
fonts-wqy-microhei or fonts-noto-cjk). Without one, characters outside Latin-1 are drawn as
'?' after one warning at start-up, never as tofu boxes.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from gpu_daemon.images import RenderJob, StepCallback, WithoutModels
from gpu_daemon.models.provenance import ModelIdentity, describe
from storyboard_contract.frames import sketch_caption_share
from storyboard_contract.typeset import wrap

log = logging.getLogger("gpu_daemon.sketch")

# Relative size of the subject (head radius as a fraction of the frame height) per shot size.
_SUBJECT_SCALE = {
    "extreme wide": 0.03, "wide": 0.06, "full": 0.09, "medium": 0.16, "over-the-shoulder": 0.16,
    "medium close-up": 0.22, "close-up": 0.32, "extreme close-up": 0.5, "insert": 0.0,
}

INK = (30, 30, 30)
PAPER = (250, 249, 245)
SHADE = (205, 205, 200)


class SketchBackend(WithoutModels):
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

    def provenance(self, job: RenderJob) -> dict[str, Any]:
        return describe(ModelIdentity("sketch"), job)

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
        short = min(w, h)
        img = Image.new("RGB", (w, h), PAPER)
        draw = ImageDraw.Draw(img)
        pad = max(2, short // 28)
        line = max(1, short // 170)
        head_font = self.font(max(8, short // 17))
        body_font = self.font(max(8, short // 20))
        label_font = self.font(max(8, short // 24))

        header = self._drawable(f"SHOT {job.index + 1} · {job.camera.upper()}")
        draw.text((pad, pad), header, fill=INK, font=head_font)
        if job.style:
            style = self._drawable(job.style)[:30]
            sw = draw.textlength(style, font=head_font)
            if sw < w - 3 * pad - draw.textlength(header, font=head_font):
                draw.text((w - pad - sw, pad), style, fill=INK, font=head_font)
        scene_top = pad + _text_height(draw, head_font) + pad

        # The caption: as many lines as fit in the lower part of the frame (more of it in a
        # portrait frame, where lines are short).
        line_h = _text_height(draw, body_font) + max(1, pad // 3)
        band = int(h * sketch_caption_share(w, h))
        max_w = w - 2 * pad
        text = self._drawable(job.description or job.prompt)
        lines = wrap(text, lambda t: draw.textlength(t, font=body_font) <= max_w)
        room = max(0, (band - pad) // line_h)
        if len(lines) > room:
            lines = lines[:room]
            if lines:
                last = lines[-1]
                while last and draw.textlength(last + "…", font=body_font) > max_w:
                    last = last[:-1]
                lines[-1] = last + "…"
        caption_top = h - pad - len(lines) * line_h
        scene_bottom = caption_top - pad if lines else h - pad

        # Figures on their own canvas, so a large subject is cropped as a camera would.
        scene = Image.new("RGB", (w - 2, max(1, scene_bottom - scene_top)), PAPER)
        _subjects(ImageDraw.Draw(scene), scene.size, job, line,
                  [self._drawable(n) for n in job.characters], label_font)
        img.paste(scene, (1, scene_top))
        if lines:
            draw.line((pad, scene_bottom, w - pad, scene_bottom), fill=SHADE, width=line)
        for i, text_line in enumerate(lines):
            draw.text((pad, caption_top + i * line_h), text_line, fill=INK, font=body_font)
        draw.rectangle((0, 0, w - 1, h - 1), outline=INK, width=line)
        return img


def _subjects(
    draw: ImageDraw.ImageDraw,
    size: tuple[int, int],
    job: RenderJob,
    line: int,
    names: list[str],
    font: ImageFont.FreeTypeFont,
) -> None:
    """A horizon, then a figure per person (one unnamed figure when the shot names nobody):
    side by side on the thirds in a wider shot, the first person alone in a close-up."""
    fw, fh = size
    horizon = fh * 2 // 3
    draw.line((0, horizon, fw, horizon), fill=SHADE, width=line)
    scale = _SUBJECT_SCALE.get(job.camera, 0.16)
    shift = fw // 12 if job.seed % 2 else -fw // 12
    if scale == 0.0:  # insert: an object, not a person
        s = fh // 4
        cx = fw // 2 + shift
        draw.rectangle((cx - s, horizon - s, cx + s, horizon), outline=INK, width=line)
        return
    people: list[str | None] = list(names[:4]) or [None]
    if scale >= 0.32:
        people = people[:1]
    # Sized by the short side: a portrait frame shows people as small as a landscape one.
    r = max(1, int(min(fw, fh) * scale))
    cy = fh * 2 // 5 if scale >= 0.16 else horizon - 3 * r
    for k, name in enumerate(people):
        if len(people) == 1:
            cx = fw * (1 + job.seed % 2) // 3
        else:
            cx = fw * (k + 1) // (len(people) + 1) + shift // 2
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), outline=INK, width=line)
        draw.line((cx, cy + r, cx, cy + r * 5), fill=INK, width=line)
        draw.line((cx - 2 * r, cy + 2 * r, cx + 2 * r, cy + 2 * r), fill=INK, width=line)
        if name:
            # Under the feet of a whole figure; beside the head when the frame crops the body.
            label_w, label_h = draw.textlength(name, font=font), _text_height(draw, font)
            if scale < 0.22:
                left, top = cx - label_w / 2, cy + r * 5 + line * 3
            else:
                left, top = cx - r * 0.75 - label_w, cy - r * 0.75 - label_h
            left = max(line * 2, min(left, fw - label_w - line * 2))
            top = max(line * 2, min(top, fh - label_h - line * 2))
            draw.text((left, top), name, fill=INK, font=font)


def _text_height(draw: ImageDraw.ImageDraw, font: ImageFont.FreeTypeFont) -> int:
    left, top, right, bottom = draw.textbbox((0, 0), "Hg中", font=font)
    return bottom - top
