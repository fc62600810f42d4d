"""Frame aspects and frame sizes.

A project has one aspect, from the list Wonder Unit's Storyboarder offers; every renderer draws
its frames at it. The size of a frame follows from the aspect and a pixel budget: the area of
``[images] width × height`` (what a model was trained at, 512 × 512 for Stable Diffusion 1.x,
1024 × 1024 for SDXL), kept at the project's aspect, each side rounded to a multiple the model
needs. Only the standard library is used: the CLI reads this at start-up.
"""

from __future__ import annotations

import math

# Storyboarder's list, widest first, and the default of a new project.
ASPECTS: tuple[str, ...] = ("2.39:1", "2:1", "1.85:1", "16:9", "4:3", "1:1", "9:16")
DEFAULT_ASPECT = "16:9"

# What every renderer accepts (storyboard_contract.wire.RenderRequest checks the same bounds).
MIN_SIDE = 64
# A sketch panel (the daemon's sketch backend) writes its caption in a band at the bottom of
# at most this share of its height, more in a portrait frame: what lies over a frame (an
# animatic's subtitles) stays above it.
SKETCH_CAPTION_SHARE = 0.28
SKETCH_CAPTION_SHARE_PORTRAIT = 0.36
MAX_SIDE = 2048


def normalise_aspect(text: str) -> str:
    """The aspect's name as listed in ASPECTS ("16x9", "16/9" and "2.39" are understood).

    Raises ValueError naming the choices.
    """
    name = "".join(str(text).split()).lower().replace("x", ":").replace("/", ":")
    if name and ":" not in name:
        name += ":1"
    if name not in ASPECTS:
        raise ValueError(f"unknown aspect {text!r}; use one of {', '.join(ASPECTS)}")
    return name


def aspect_ratio(aspect: str) -> float:
    """Width over height: 16:9 -> 1.777…, 2.39:1 -> 2.39."""
    width, height = normalise_aspect(aspect).split(":")
    return float(width) / float(height)


def frame_size(aspect: str, area: int, multiple: int = 8) -> tuple[int, int]:
    """(width, height) of a frame at `aspect` holding about `area` pixels.

    Each side is a multiple of `multiple`; the short side is at least MIN_SIDE and the long
    side at most MAX_SIDE, the whole frame scaled (never squashed) to get there.
    """
    ratio = aspect_ratio(aspect)
    width, height = math.sqrt(area * ratio), math.sqrt(area / ratio)
    scale = max(MIN_SIDE / min(width, height), 1.0)
    scale = min(scale, MAX_SIDE / max(width, height))
    lowest = math.ceil(MIN_SIDE / multiple) * multiple
    highest = MAX_SIDE // multiple * multiple

    def side(x: float) -> int:
        return min(highest, max(lowest, round(x * scale / multiple) * multiple))

    return side(width), side(height)


def sketch_caption_share(width: int, height: int) -> float:
    """The share of a sketch panel's height its caption band may take (SKETCH_CAPTION_*)."""
    return SKETCH_CAPTION_SHARE_PORTRAIT if height > width else SKETCH_CAPTION_SHARE
