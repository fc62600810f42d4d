"""The sketch backend: storyboard panels drawn with PIL, Chinese included, byte-for-byte
repeatable."""

from __future__ import annotations

import io
import logging
import shutil
import subprocess

import pytest
from PIL import Image, ImageChops, ImageDraw

from gpu_daemon.images import RenderJob
from gpu_daemon.images.sketch import SketchBackend
from storyboard_contract.typeset import find_cjk_font, wrap

STORY = "夜色中，老人推开木门，看见院子里站着一个陌生的孩子。"


def job(**overrides) -> RenderJob:
    fields = dict(prompt="p", negative_prompt="", seed=1, width=320, height=320, steps=1,
                  guidance_scale=1.0, index=0, camera="medium", description=STORY, style="movie")
    return RenderJob(**{**fields, **overrides})


def png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def sketch() -> SketchBackend:
    return SketchBackend(find_cjk_font())


def test_the_font_found_covers_the_chinese_text(sketch):
    assert sketch.font_path, "no CJK font: run `sh scripts/system-deps.sh`"
    if shutil.which("fc-list"):
        chars = sorted({c for c in STORY if "\u4e00" <= c <= "\u9fff"})
        charset = " ".join(f"{ord(c):x}" for c in chars)
        covering = subprocess.run(["fc-list", f":charset={charset}", "file"],
                                  capture_output=True, text=True).stdout
        assert sketch.font_path in covering
    # Real glyphs, not the one "missing glyph" box drawn for every unknown character.
    font = sketch.font(24)
    missing = bytes(font.getmask("\ue000"))
    masks = {c: bytes(font.getmask(c)) for c in "夜色老人"}
    assert len(set(masks.values())) == len(masks)
    assert missing not in masks.values()


def test_a_panel_shows_shot_number_shot_size_and_the_description(sketch):
    panel = sketch.panel(job(index=4, camera="close-up"))
    assert panel.size == (320, 320)
    without_text = sketch.panel(job(index=4, camera="close-up", description=" "))
    other_text = sketch.panel(job(index=4, camera="close-up", description="孩子没有回答。"))
    assert ImageChops.difference(panel, without_text).getbbox() is not None
    assert png(panel) != png(other_text)
    assert png(sketch.panel(job(index=5, camera="close-up"))) != png(panel)
    assert png(sketch.panel(job(index=4, camera="wide"))) != png(panel)


def test_the_same_job_gives_the_same_bytes_and_the_seed_moves_the_subject(sketch):
    assert png(sketch.panel(job(seed=8))) == png(sketch.panel(job(seed=8)))
    assert png(sketch.panel(job(seed=8))) != png(sketch.panel(job(seed=9)))


def test_render_reports_one_step_per_call(sketch):
    steps = []
    images = sketch.render([job(seed=1), job(seed=2)], lambda s, t: steps.append((s, t)))
    assert len(images) == 2 and steps == [(1, 1)]


def test_without_a_cjk_font_text_degrades_to_question_marks_with_one_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="gpu_daemon.sketch"):
        fallback = SketchBackend(None)
    assert len(caplog.records) == 1 and "fonts-wqy-microhei" in caplog.text
    assert fallback._drawable("Door 木门 opens") == "Door ?? opens"
    assert png(fallback.panel(job(description="木门"))) == png(
        fallback.panel(job(description="??")))


def test_wrap_keeps_every_character_and_breaks_where_a_reader_expects():
    draw = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    font = SketchBackend(find_cjk_font()).font(16)

    def fits(s: str) -> bool:
        return draw.textlength(s, font=font) <= 120

    text = STORY + " The old man opens the wooden door and sees a child."
    lines = wrap(text, fits)
    assert len(lines) > 3
    assert "".join(lines).replace(" ", "") == text.replace(" ", "")
    # English breaks between words; closing punctuation never starts a line.
    english = [line for line in lines if line.isascii()]
    words = set(text.split())
    assert all(set(line.split()) <= words for line in english)
    assert not any(line[0] in "，。" for line in lines)
    assert wrap("abcdefghijklmnopqrstuvwxyz" * 3, fits)[0] != "abcdefghijklmnopqrstuvwxyz" * 3


@pytest.mark.parametrize("size", [(792, 328), (384, 680), (152, 64), (64, 112)])
def test_the_frame_is_the_whole_image_at_any_aspect_with_the_people_named(sketch, size):
    w, h = size
    people = sketch.panel(job(width=w, height=h, camera="wide", characters=("Lin", "Tom")))
    assert people.size == size
    others = sketch.panel(job(width=w, height=h, camera="wide", characters=("Ann", "Bob")))
    alone = sketch.panel(job(width=w, height=h, camera="wide", characters=("Lin",)))
    assert len({png(people), png(others), png(alone)}) == 3
    # Ink in the caption band at the bottom (the description) and in the header at the top.
    ink = people.convert("L").point(lambda v: 255 if v < 100 else 0)
    assert ink.crop((2, h * 3 // 4, w - 2, h - 2)).getbbox() is not None
    assert ink.crop((2, 2, w // 2, max(4, h // 8))).getbbox() is not None
