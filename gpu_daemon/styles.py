"""Style presets: a style name becomes a prompt prefix, a prompt suffix and a negative prompt.

A planned shot's prompt holds only its content (shot size + subject); the style is added
here, at render time, so a shot can be re-rendered in another style without re-planning.
An unknown style name is used verbatim as the prefix, so users can write their own
("oil painting, impressionist") without touching the code.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from gpu_daemon import prompts
from storyboard_contract.tokens import TokenCounter


@dataclass(frozen=True)
class Style:
    prefix: str
    suffix: str
    negative: str


# What no storyboard frame wants, whatever the style.
DEFAULT_NEGATIVE = (
    "lowres, blurry, deformed, bad anatomy, extra fingers, watermark, text, signature"
)

STYLES: dict[str, Style] = {
    "movie": Style(
        "cinematic film still",
        "35mm film, dramatic lighting, shallow depth of field, film grain",
        f"cartoon, anime, illustration, {DEFAULT_NEGATIVE}",
    ),
    "cinematic": Style(
        "cinematic shot, anamorphic widescreen",
        "moody color grading, volumetric light, epic composition",
        f"cartoon, anime, illustration, flat lighting, {DEFAULT_NEGATIVE}",
    ),
    "realistic": Style(
        "photorealistic photograph",
        "natural lighting, highly detailed, sharp focus",
        f"cartoon, anime, illustration, painting, 3d render, {DEFAULT_NEGATIVE}",
    ),
    "animation": Style(
        "2d animation still",
        "clean line art, flat colors, vibrant, expressive characters",
        f"photo, photorealistic, 3d render, {DEFAULT_NEGATIVE}",
    ),
    "anime": Style(
        "anime key visual",
        "cel shading, detailed background, vibrant colors",
        f"photo, photorealistic, 3d render, western cartoon, {DEFAULT_NEGATIVE}",
    ),
    "pixar": Style(
        "3d animated film still, pixar style",
        "soft global illumination, expressive characters, subsurface scattering",
        f"2d, flat, sketch, photo, {DEFAULT_NEGATIVE}",
    ),
    "noir": Style(
        "film noir still, black and white",
        "high contrast, hard shadows, venetian blind light, 1940s",
        f"color, colorful, cartoon, {DEFAULT_NEGATIVE}",
    ),
    "watercolor": Style(
        "watercolor painting",
        "soft washes, paper texture, loose brushstrokes, muted palette",
        f"photo, photorealistic, 3d render, {DEFAULT_NEGATIVE}",
    ),
    "sketch": Style(
        "pencil storyboard sketch",
        "rough graphite lines, monochrome, white paper, loose hatching",
        f"color, photo, photorealistic, 3d render, {DEFAULT_NEGATIVE}",
    ),
    "comic": Style(
        "comic book panel",
        "bold ink outlines, halftone shading, vivid flat colors",
        f"photo, photorealistic, blurry, 3d render, {DEFAULT_NEGATIVE}",
    ),
    "ink": Style(
        "traditional chinese ink wash painting",
        "sumi-e brushwork, rice paper, negative space, monochrome",
        f"photo, photorealistic, 3d render, saturated colors, {DEFAULT_NEGATIVE}",
    ),
    "cyberpunk": Style(
        "cyberpunk concept art",
        "neon lights, rain-slick streets, high tech, night",
        f"daylight, pastoral, {DEFAULT_NEGATIVE}",
    ),
}

# Other names users reach for, English and Chinese.
ALIASES: dict[str, str] = {
    "film": "movie", "cinema": "movie", "3d": "pixar", "pixar-3d": "pixar", "photo": "realistic",
    "photorealistic": "realistic", "cartoon": "animation", "manga": "anime", "storyboard": "sketch",
    "pencil": "sketch", "black-and-white": "noir", "shuimo": "ink",
    "电影": "movie", "电影感": "cinematic", "写实": "realistic", "动画": "animation",
    "动漫": "anime", "二次元": "anime", "三维": "pixar", "黑色电影": "noir", "水彩": "watercolor",
    "素描": "sketch", "草图": "sketch", "漫画": "comic", "水墨": "ink", "赛博朋克": "cyberpunk",
}


def _key(style: str) -> str:
    return "-".join(style.strip().lower().replace("_", " ").replace("/", " ").split())


def lookup(style: str) -> Style:
    """The preset for `style`, or `style` itself as a verbatim prefix when it names none."""
    key = _key(style)
    key = ALIASES.get(key, key)
    if key in STYLES:
        return STYLES[key]
    return Style(" ".join(style.split()), "", DEFAULT_NEGATIVE)


def compose(
    prompt: str,
    style: str,
    token_count: TokenCounter | None = None,
    characters: Iterable[tuple[str, str]] = (),
) -> tuple[str, str]:
    """(positive, negative) prompts for a content prompt in a style, each within 77 CLIP tokens.

    `characters` are the (name, description) pairs of the cast members the shot shows: their
    descriptions follow the content whole, the same words in every shot. `token_count`
    counts tokens without BOS/EOS with the backend's real tokenizer; without it the
    conservative estimate in gpu_daemon.prompts is used. When the whole does not fit, the
    style suffix loses words first, then the end of the content; the subject (the start of
    the content) and the cast are kept.
    """
    preset = lookup(style)
    content = " ".join(prompt.split())
    cast = prompts.cast_phrase(characters, token_count)
    positive = prompts.fit_parts(preset.prefix, content, preset.suffix, count=token_count,
                                 keep=cast)
    negative = prompts.fit(preset.negative, count=token_count)
    return positive, negative
