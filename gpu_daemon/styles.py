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

# Other names users reach for, English and Chinese; "… style", "…风格", "…画" and the like
# are read as the name before it (preset_name).
ALIASES: dict[str, str] = {
    "film": "movie", "cinema": "movie", "3d": "pixar", "pixar-3d": "pixar", "photo": "realistic",
    "photorealistic": "realistic", "photography": "realistic", "cartoon": "animation",
    "manga": "anime", "storyboard": "sketch", "pencil": "sketch", "pencil-sketch": "sketch",
    "black-and-white": "noir", "film-noir": "noir", "shuimo": "ink", "ink-wash": "ink",
    "sumi-e": "ink", "watercolour": "watercolor", "comic-book": "comic", "cel": "animation",
    "电影": "movie", "电影感": "cinematic", "大片": "cinematic", "写实": "realistic",
    "真实": "realistic", "照片": "realistic", "摄影": "realistic", "动画": "animation",
    "动画片": "animation", "卡通": "animation", "动漫": "anime", "二次元": "anime",
    "日漫": "anime", "日系动漫": "anime", "三维": "pixar", "三维动画": "pixar",
    "3d动画": "pixar", "皮克斯": "pixar", "黑色电影": "noir", "黑白": "noir",
    "黑白电影": "noir", "水彩": "watercolor", "素描": "sketch", "草图": "sketch",
    "铅笔": "sketch", "线稿": "sketch", "分镜": "sketch", "分镜草图": "sketch", "漫画": "comic",
    "美漫": "comic", "水墨": "ink", "国画": "ink", "中国画": "ink", "赛博朋克": "cyberpunk",
    "赛博": "cyberpunk",
}
# What follows a style's name without changing it: "watercolor style", "水彩画风格".
_SUFFIXES = ("风格", "画风", "风", "画", "style", "painting", "art")


def _key(style: str) -> str:
    return "-".join(style.strip().lower().replace("_", " ").replace("/", " ").split())


def preset_name(style: str) -> str | None:
    """The preset a style names, by its name or one of its English or Chinese names, with or
    without a "style"/"风格"/"画" after it; None for a style of the user's own."""
    key = _key(style)
    while key:
        name = ALIASES.get(key, key)
        if name in STYLES:
            return name
        suffix = next((x for x in _SUFFIXES if key.endswith(x) and len(key) > len(x)), None)
        if suffix is None:
            return None
        key = key[: -len(suffix)].rstrip("-")
    return None


def lookup(style: str) -> Style:
    """The preset for `style`, or `style` itself as a verbatim prefix when it names none."""
    name = preset_name(style)
    if name is not None:
        return STYLES[name]
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
