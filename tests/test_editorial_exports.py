"""Handing the board to an editor, end to end: tests/data/night_ferry.fountain planned and
rendered once by the real stack (Redis, SeaweedFS, the sketch GPU daemon, a worker), then
exported as an OpenTimelineIO timeline, a CMX 3600 EDL, Final Cut Pro 7 and Final Cut Pro X
XML (each a folder of the timeline and its frames, or one file of presigned links) and a CSV
shot list. Each is read back with its own library: OTIO and its adapters, an XML parser,
Python's csv; every timeline lasts as long as the animatic, frame for frame. The camera moves
show: the animatic's push-in shot moves in over its frames (a synthetic frame measures the
scale), the PDF draws an arrow on its panel."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import urllib.request
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import defusedxml.ElementTree as ElementTree
import opentimelineio as otio
import pytest
from PIL import Image, ImageDraw
from test_board_export import Rendered, mean_difference, render_once

from storyboard_cli.board import animatic
from storyboard_cli.board.options import ExportOptions
from storyboard_cli.board.panels import Panel
from storyboard_cli.board.pdf import MOVE
from storyboard_cli.board.sheet import sheet
from storyboard_cli.board.shotlist import COLUMNS

SCRIPT = Path(__file__).parent / "data" / "night_ferry.fountain"
FPS = 24
ADAPTERS = {"otio": ("otio_json", ".otio"), "edl": ("cmx_3600", ".edl"),
            "fcp7xml": ("fcp_xml", ".xml"), "fcpxml": ("fcpx_xml", ".fcpxml")}
PUSH_IN = "2.3"  # "PUSH IN on Ivy as she grips the rail."


@pytest.fixture(scope="module")
def ferry(tmp_path_factory, redis_server, s3_server, sketch_daemon) -> Rendered:
    rendered = render_once(tmp_path_factory, redis_server, s3_server, sketch_daemon, SCRIPT)
    assert len(rendered.shots) == 14
    return rendered


@pytest.fixture(scope="module")
def animatic_frames(ferry) -> int:
    """How many frames the animatic of the board has."""
    film = Path(exported(ferry, "mp4")["path"])
    with av.open(str(film)) as container:
        return sum(1 for _ in container.decode(container.streams.video[0]))


def exported(ferry: Rendered, fmt: str, *args: str) -> dict[str, Any]:
    """The export's object; an export of this module's board replaces the one before it."""
    return ferry.exported(fmt, "--force", *args)


def timeline_of(result: dict[str, Any], fmt: str) -> tuple[otio.schema.Timeline, Path]:
    """The exported timeline read back by OTIO's adapter for it, and its file."""
    adapter, extension = ADAPTERS[fmt]
    path = Path(result["path"])
    file = path / f"{path.name}{extension}" if path.is_dir() else path
    return otio.adapters.read_from_file(str(file), adapter_name=adapter), file


def frames_of(clip: Any) -> int:
    duration = clip.source_range.duration
    return round(duration.value * FPS / duration.rate)


@pytest.mark.parametrize("fmt", list(ADAPTERS))
def test_each_timeline_reads_back_a_clip_per_panel_with_its_frame_as_long_as_the_animatic(
        ferry, animatic_frames, s3_server, fmt):
    shots = ferry.shots
    result = exported(ferry, fmt)
    folder = Path(result["path"])
    assert folder.is_dir() and folder.name == f"The-Night-Ferry-{ferry.id}-{fmt}"
    timeline, file = timeline_of(result, fmt)
    clips = list(timeline.find_clips())

    assert [c.name for c in clips] == [f"Shot {s['label']} - {s['scene_heading']}"
                                       for s in shots]
    # As long as the animatic, frame for frame; each clip as the animatic holds its shot.
    assert sum(frames_of(c) for c in clips) == animatic_frames
    clock = 0.0
    for clip, shot in zip(clips, shots, strict=True):
        start = round(clock * FPS)
        clock += shot["duration"]
        assert frames_of(clip) == round(clock * FPS) - start
    # The frames: files beside the timeline, named relatively, the bucket's PNGs.
    for clip, shot in zip(clips, shots, strict=True):
        url = clip.media_reference.target_url
        assert url == f"frames/shot-{shot['number']:03d}.png"
        assert (file.parent / url).read_bytes() == ferry.frame(shot, s3_server)
    # Markers: each scene on its first shot, the framing, every spoken line with its speaker.
    names = [[m.name for m in c.markers] for c in clips]
    upper = fmt == "edl"  # the CMX adapter writes LOC comments in capitals

    def said(text: str) -> str:
        return text.upper() if upper else text

    assert said("Scene 2: EXT. FERRY DECK - CONTINUOUS") in names[6]
    assert not any(n.startswith(said("Scene")) for n in names[7])
    assert said("medium, push in") in names[8] and said("wide") in names[0]
    assert said("OTTO (gruff): Fare's doubled after midnight.") in names[3]
    assert said("OTTO: Suit yourself.") in names[5] and said("IVY: Fine.") in names[5]


def test_the_otio_timeline_keeps_each_shot_as_metadata(ferry):
    timeline, _ = timeline_of(exported(ferry, "otio"), "otio")
    clips = list(timeline.find_clips())
    pushed = clips[8].metadata["storyboard"]
    assert (pushed["label"], pushed["move"], pushed["camera"], pushed["scene"]) == (
        PUSH_IN, "push in", "medium", "2")
    assert list(pushed["characters"]) == ["IVY"] and pushed["seed"] == ferry.shots[8]["seed"]
    kinds = [m.metadata["storyboard"]["kind"] for m in clips[3].markers]
    assert kinds == ["framing", "dialogue"]
    assert timeline.name == "The Night Ferry"
    assert timeline.metadata["storyboard"]["running_time"] == sum(
        s["duration"] for s in ferry.shots)


def test_the_xml_timelines_parse_as_the_formats_editors_import(ferry, animatic_frames):
    fcp7 = Path(exported(ferry, "fcp7xml")["path"])
    root = ElementTree.parse(fcp7 / f"{fcp7.name}.xml").getroot()
    assert root.tag == "xmeml"
    items = root.findall(".//sequence/media/video/track/clipitem")
    assert len(items) == 14
    assert sum(int(i.findtext("end")) - int(i.findtext("start")) for i in items) == \
        animatic_frames
    assert [i.findtext("file/pathurl") for i in items][8] == "frames/shot-009.png"
    assert [m.findtext("name") for m in items[3].findall("marker")] == [
        "medium", "OTTO (gruff): Fare's doubled after midnight."]

    fcpx = Path(exported(ferry, "fcpxml")["path"])
    root = ElementTree.parse(fcpx / f"{fcpx.name}.fcpxml").getroot()
    assert root.tag == "fcpxml"
    spine = root.findall(".//sequence/spine/clip")
    assert len(spine) == 14
    seconds = sum(Fraction(c.get("duration").removesuffix("s")) for c in spine)
    assert seconds == Fraction(animatic_frames, FPS)
    sources = {a.get("src") for a in root.findall(".//resources/asset")}
    assert sources == {f"frames/shot-{n:03d}.png" for n in range(1, 15)}


def test_with_links_a_timeline_is_one_file_whose_frames_are_presigned_links(ferry, s3_server):
    result = exported(ferry, "fcp7xml", "--links")
    path = Path(result["path"])
    assert path.is_file() and path.name == f"The-Night-Ferry-{ferry.id}.xml"
    timeline, _ = timeline_of(result, "fcp7xml")
    clip = list(timeline.find_clips())[8]
    with urllib.request.urlopen(clip.media_reference.target_url, timeout=10) as answer:
        assert answer.read() == ferry.frame(ferry.shots[8], s3_server)


def test_the_csv_shot_list_reads_back_a_row_per_shot(ferry, s3_server):
    path = Path(exported(ferry, "csv")["path"])
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")  # Excel's UTF-8 mark
    with path.open(encoding="utf-8-sig", newline="") as table:
        rows = list(csv.DictReader(table))
    assert list(rows[0]) == list(COLUMNS)
    assert [r["number"] for r in rows] == [s["label"] for s in ferry.shots]
    fourth = rows[3]
    assert (fourth["scene"], fourth["shot size"], fourth["camera move"], fourth["characters"],
            fourth["dialogue"]) == ("1 · INT. FERRY CABIN - NIGHT", "medium", "static", "OTTO",
                                    "OTTO (gruff): Fare's doubled after midnight.")
    assert rows[5]["dialogue"] == "OTTO: Suit yourself.\nIVY: Fine."  # one cell, two lines
    assert rows[8]["camera move"] == "push in"
    assert [float(r["duration"]) for r in rows] == [s["duration"] for s in ferry.shots]
    assert [int(r["seed"]) for r in rows] == [s["seed"] for s in ferry.shots]
    assert rows[0]["prompt"] == ferry.shots[0]["prompt"]
    with urllib.request.urlopen(rows[8]["image link"], timeout=10) as answer:
        assert answer.read() == ferry.frame(ferry.shots[8], s3_server)


def test_links_are_for_timelines_only(ferry):
    done = ferry.export("pdf", "--links")
    assert done.returncode == 2
    assert "--links is for the timelines (otio, edl, fcp7xml, fcpxml), not pdf" in done.stderr


# --- camera moves ---------------------------------------------------------------------------


def test_the_animatics_push_in_moves_in_over_the_frames_of_its_shot(ferry, s3_server):
    shots = ferry.shots
    path = Path(exported(ferry, "mp4")["path"])
    clock, spans = 0.0, []
    for shot in shots:
        start = round(clock * FPS)
        clock += shot["duration"]
        spans.append((start, round(clock * FPS)))
    k = [s["label"] for s in shots].index(PUSH_IN)
    first, last = spans[k][0], spans[k][1] - 1
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        width, height = stream.width, stream.height
        seen = {n: f.to_image() for n, f in enumerate(container.decode(stream))
                if n in (first, last)}
    with Image.open(io.BytesIO(ferry.frame(shots[k], s3_server))) as source:
        whole = source.convert("RGB").resize((width, height))
    zoom = animatic.MOVE_ZOOM
    w, h = width / zoom, height / zoom
    closer = whole.crop((round((width - w) / 2), round((height - h) / 2),
                         round((width + w) / 2), round((height + h) / 2))).resize((width, height))
    # It opens on the whole frame and ends MOVE_ZOOM times closer on its middle.
    assert mean_difference(seen[first], whole) < 6 < mean_difference(seen[first], closer)
    assert mean_difference(seen[last], closer) < 6 < mean_difference(seen[last], whole)


def square(size: tuple[int, int], side: int) -> bytes:
    """A white square of `side` pixels in the middle of a black frame."""
    frame = Image.new("RGB", size, (0, 0, 0))
    x, y = (size[0] - side) // 2, (size[1] - side) // 2
    ImageDraw.Draw(frame).rectangle((x, y, x + side - 1, y + side - 1), fill=(255, 255, 255))
    out = io.BytesIO()
    frame.save(out, "PNG")
    return out.getvalue()


def bright_box(picture: Image.Image) -> tuple[int, int, int, int]:
    box = picture.convert("L").point(lambda v: 255 if v > 128 else 0).getbbox()
    assert box is not None
    return box


@pytest.mark.parametrize("move", ["push in", "pull out", "pan left", "pan right", "tilt up",
                                  "tilt down", "static"])
def test_each_move_plays_over_its_shot(move, tmp_path):
    """A 2-second shot of a white square, measured in the first and last picture: a push in
    grows it by MOVE_ZOOM, a pull out shrinks it as much, a pan or tilt carries it across."""
    shot = {"id": 1, "number": 1, "label": "1", "scene": None, "scene_heading": None,
            "scene_shot": None, "camera": "medium", "move": move, "action": "", "dialogue": [],
            "characters": [], "duration": 2.0, "description": "", "prompt": "", "seed": 1,
            "width": 640, "height": 360}
    project = {"id": 1, "title": "moves", "aspect": "16:9", "style": "movie", "story_text": "x",
               "shots": [shot], "width": 640, "height": 360, "cast": []}
    path = tmp_path / "moves.mp4"
    animatic.write(project, sheet(project), [Panel(shot, image=square((640, 360), 120))], path,
                   ExportOptions())
    with av.open(str(path)) as container:
        pictures = [f.to_image() for f in container.decode(container.streams.video[0])]
    assert len(pictures) == 2 * FPS
    (x0, y0, x1, y1), (a0, b0, a1, b1) = bright_box(pictures[0]), bright_box(pictures[-1])
    grown = (a1 - a0) / (x1 - x0)
    centre = ((x0 + x1) / 2, (y0 + y1) / 2)
    moved = ((a0 + a1) / 2 - centre[0], (b0 + b1) / 2 - centre[1])
    zoom = animatic.MOVE_ZOOM
    expected = {"push in": (zoom, (0, 0)), "pull out": (1 / zoom, (0, 0)),
                "pan left": (1, (1, 0)), "pan right": (1, (-1, 0)),
                "tilt up": (1, (0, 1)), "tilt down": (1, (0, -1)), "static": (1, (0, 0))}[move]
    assert grown == pytest.approx(expected[0], abs=0.03)
    # Pans and tilts carry what is filmed the other way, across the picture's spare width:
    # the view, 1/MOVE_ZOOM of it, crosses from one edge to the other, seen MOVE_ZOOM larger.
    for shift, sign, side in zip(moved, expected[1], (854, 480), strict=True):
        assert shift == pytest.approx(sign * side * (zoom - 1), abs=4)
    if move != "static":
        assert mean_difference(pictures[0], pictures[FPS]) > 0.5  # moving in the middle too


def test_the_pdf_draws_an_arrow_on_the_panel_of_a_moving_shot(ferry, tmp_path):
    path = Path(exported(ferry, "pdf")["path"])
    text = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True,
                          text=True, check=True).stdout
    assert "MEDIUM · PUSH IN" in text and "SCENE 2 · EXT. FERRY DECK - CONTINUOUS" in text
    subprocess.run(["pdftoppm", "-r", "50", "-png", str(path), str(tmp_path / "page")],
                   check=True)
    pages = sorted(tmp_path.glob("page-*.png"))
    assert len(pages) == 3  # 14 panels, 6 a page; shot 2.3 is the 9th: page 2

    def arrow_pixels(page: Path) -> int:
        with Image.open(page) as image:
            data = image.convert("RGB").tobytes()
        return sum(1 for k in range(0, len(data), 3)
                   if all(abs(data[k + j] - MOVE[j]) <= 25 for j in range(3)))

    assert [arrow_pixels(p) > 40 for p in pages] == [False, True, False]


def test_the_storyboarder_boards_are_numbered_by_scene_and_shot(ferry):
    folder = Path(exported(ferry, "storyboarder")["path"])
    scene = json.loads((folder / f"{folder.name}.storyboarder").read_text(encoding="utf-8"))
    boards = scene["boards"]
    assert [b["shot"] for b in boards] == [s["label"] for s in ferry.shots]
    assert [b["number"] for b in boards] == list(range(1, 15))
    assert "medium · push in" in boards[8]["notes"]
    assert boards[6]["notes"].startswith("2 · EXT. FERRY DECK - CONTINUOUS")


def test_the_html_board_numbers_panels_by_scene_with_headings_and_moves(ferry):
    page = Path(exported(ferry, "html")["path"]).read_text(encoding="utf-8")
    labels = re.findall(r'data-label="([^"]+)" data-move="([^"]+)"', page)
    assert labels == [(s["label"], s["move"]) for s in ferry.shots]
    assert page.count('<p class="scene">Scene ') == 3
    assert '<p class="scene">Scene 2 · EXT. FERRY DECK - CONTINUOUS</p>' in page
    assert '<span class="camera">medium · push in</span>' in page
    assert '<span class="speaker">OTTO</span><span class="how">(gruff)</span>' in page
