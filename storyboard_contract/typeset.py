"""Text on a panel: the font that covers Chinese, and where lines break.

The sketch backend (on the GPU box) draws captions into its frames, and the PDF and the
animatic (on the host) set dialogue and action beside them: both find the font the same way and
break lines by the same rule, so a caption reads alike in every place it appears.

fontconfig is asked first (Debian: fonts-wqy-microhei or fonts-noto-cjk), then well-known
paths. Pillow is imported only when a font is checked.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from storyboard_contract.cjk import WIDE

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

# Punctuation that must not start a line: it hangs at the end of the previous one.
_NO_LINE_START = set("，。、；：！？…）》」』”’,.;:!?)")
# A wide character alone, or a run of other non-space characters (a word, “, 3.5).
_TOKEN = re.compile(rf"[{WIDE}]|[^\s{WIDE}]+\s*|\s+")


def _font_rank(path: str) -> tuple[int, int, str]:
    name = Path(path).name.lower().replace("-", "").replace("_", "")
    preferred = 0 if any(p in name for p in _PREFERRED) else 1
    variant = 1 if any(v in name for v in ("mono", "bold", "light")) else 0
    return (preferred, variant, path)


def find_cjk_font() -> str | None:
    """A font file covering Chinese: fontconfig's answer first, then well-known paths."""
    from PIL import ImageFont

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
