"""The PDF board is made a bounded number of pages at a time and the parts are joined into one
file (fpdf2 holds a document's images until it writes it): the joined file shows what one
document made at once shows, page for page, read back with poppler."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path
from typing import Any

from PIL import Image, ImageChops, ImageDraw

from storyboard_cli.board import pdf
from storyboard_cli.board.options import ExportOptions
from storyboard_cli.board.panels import Panel
from storyboard_cli.board.sheet import Portrait, Sheet

SHOTS = 27  # 5 pages of 6 panels, the last one not full


def frame(number: int) -> bytes:
    image = Image.new("RGB", (320, 180), (200 - number * 5, 120, 40 + number * 5))
    ImageDraw.Draw(image).rectangle((10 + number * 8, 40, 60 + number * 8, 140), fill="white")
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def shot(number: int) -> dict[str, Any]:
    return {"label": str(number), "camera": "wide" if number % 2 else "close-up",
            "move": ("static", "pan left", "push in")[number % 3], "duration": 2.5,
            "action": f"The keeper climbs to landing {number}. 灯塔{number}",
            "dialogue": [{"speaker": "Tom", "line": f"Landing {number}"}] if number % 2 else [],
            "notes": "", "scene": None, "scene_heading": None, "scene_shot": 0}


def board(path: Path, pages_per_part: int) -> Path:
    sheet = Sheet(title="Parts", aspect="16:9", style="sketch", shots=SHOTS,
                  running_time=SHOTS * 2.5, date="2026-12-06", chinese=True,
                  cast=(Portrait("Tom", "The keeper.", frame(0)),))
    # A generator, as the exporter passes them: each panel is read once.
    panels = (Panel(shot(n), frame(n) if n % 4 else None, missing=None if n % 4 else "no frame")
              for n in range(1, SHOTS + 1))
    pdf.write({}, sheet, panels, path, ExportOptions(), pages_per_part=pages_per_part)
    return path


def poppler(*args: str) -> str:
    return subprocess.run(list(args), capture_output=True, text=True, check=True).stdout


def test_a_board_made_in_parts_shows_every_page_in_order_as_one_made_at_once(tmp_path):
    whole = board(tmp_path / "whole.pdf", pages_per_part=100)
    parts = board(tmp_path / "parts.pdf", pages_per_part=2)

    # 5 board pages and the cast page, each page's text where it was.
    assert "Pages:           6" in poppler("pdfinfo", str(parts))
    text = poppler("pdftotext", "-layout", str(parts), "-").split("\f")
    assert text == poppler("pdftotext", "-layout", str(whole), "-").split("\f")
    for n in range(1, SHOTS + 1):
        page = text[(n - 1) // 6]
        assert f"Shot {n}" in page and f"landing {n}." in page
        assert f"{(n - 1) // 6 + 1}/5" in page.replace(" ", "")
    assert "Parts · Cast" in text[5] and "The keeper." in text[5]
    # A part of at most 2 pages each (3 parts), each with its own subset of the font.
    fonts = poppler("pdffonts", str(parts)).splitlines()[2:]
    assert len(fonts) == 3 and len(poppler("pdffonts", str(whole)).splitlines()[2:]) == 1

    # Drawn the same, pixel for pixel.
    for pdf_path in (whole, parts):
        poppler("pdftoppm", "-r", "30", "-png", str(pdf_path), str(tmp_path / pdf_path.stem))
    for k in range(1, 7):
        with Image.open(tmp_path / f"whole-{k}.png") as a, \
                Image.open(tmp_path / f"parts-{k}.png") as b:
            assert ImageChops.difference(a.convert("RGB"), b.convert("RGB")).getbbox() is None
