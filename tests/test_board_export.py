"""`storyboard export` end to end, as a writer uses it: the bilingual example rendered once by
the real stack (Redis, SeaweedFS, the sketch GPU daemon, a `storyboard worker`), then exported
in every format and each file opened with the tool a person would use: the HTML page in
headless Chromium (Debian's, driven by Playwright), the PDF with poppler's pdftotext and
pdftoppm, the animatic with PyAV, the Storyboarder project and the zip as their files.
"""

from __future__ import annotations

import io
import json
import math
import shutil
import subprocess
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import pytest
from fixtures_queue import QueueStack, write_stack
from PIL import Image, ImageChops, ImageStat

from storyboard_cli.board.animatic import video_size
from storyboard_cli.board.sheet import clock, provenance_line
from storyboard_cli.board.storyboarder import board_size, thumbnail_size
from storyboard_cli.stack.processes import free_port

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "bilingual.txt"
CHROMIUM = "/usr/bin/chromium"
# As the machine notes say: without the background-networking flags Chromium keeps trying
# to reach Google's hosts.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


@dataclass
class Rendered:
    stack: QueueStack
    project: dict[str, Any]

    @property
    def id(self) -> str:
        return str(self.project["id"])

    @property
    def shots(self) -> list[dict[str, Any]]:
        return self.project["shots"]

    def export(self, fmt: str, *args: str, env: dict[str, str] | None = None
               ) -> subprocess.CompletedProcess[str]:
        return self.stack.run("export", self.id, "--format", fmt, *args, env=env, timeout=120)

    def exported(self, fmt: str, *args: str) -> dict[str, Any]:
        done = self.export(fmt, "--json", *args)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    def frame(self, shot: dict[str, Any], s3_server: Any) -> bytes:
        """A shot's PNG as the bucket holds it."""
        got = s3_server.client().get_object(Bucket=s3_server.bucket, Key=shot["image_key"])
        return got["Body"].read()


def render_once(tmp_path_factory, redis_server, s3_server, sketch_daemon, story: Path
                ) -> Rendered:
    """`story` made a project, planned and rendered by the real stack, for a module's tests to
    share (exports only read the store and the bucket)."""
    if not (redis_server.proc and redis_server.proc.alive()):
        redis_server.start()
    redis_server.client().flushdb()
    stack = write_stack(tmp_path_factory.mktemp("export"), redis_server.url, s3_server,
                        sketch_daemon.url, sketch_daemon.token)
    shutil.copy(story, stack.root / story.name)
    stack.start_worker()
    try:
        project_id = str(stack.json("new", story.name)["id"])
        done = stack.run("generate", project_id, "--json", "--timeout", "90", timeout=120)
        assert done.returncode == 0, done.stderr
    finally:
        stack.stop_workers()
    project = stack.json("show", project_id)
    assert all(s["image_key"] for s in project["shots"])
    return Rendered(stack, project)


@pytest.fixture(scope="module")
def bilingual(tmp_path_factory, redis_server, s3_server, sketch_daemon) -> Rendered:
    """examples/bilingual.txt planned and rendered once, shared by the tests of this module."""
    rendered = render_once(tmp_path_factory, redis_server, s3_server, sketch_daemon, EXAMPLE)
    assert len(rendered.shots) > 6
    return rendered


def spoken(shot: dict[str, Any]) -> list[str]:
    return [d["line"] for d in shot["dialogue"]]


def chromium():
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).is_file(), "no Debian chromium: sh scripts/system-deps.sh --test"
    return sync_playwright()


def test_the_html_board_opens_offline_in_chromium_with_every_frame_loaded(bilingual):
    result = bilingual.exported("html")
    shots = bilingual.shots
    assert (result["shots"], result["frames"], result["empty"]) == (len(shots), len(shots), [])
    path = Path(result["path"])
    assert path.name == f"bilingual-{bilingual.id}.html"

    requests: list[str] = []
    with chromium() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(offline=True, viewport={"width": 1280, "height": 900})
            page = context.new_page()
            page.on("request", lambda r: requests.append(r.url))
            page.goto(path.as_uri(), wait_until="load")
            images = page.evaluate("""Array.from(document.querySelectorAll('.panel img'))
                .map(i => ({complete: i.complete, width: i.naturalWidth, height: i.naturalHeight,
                            src: i.src.slice(0, 22)}))""")
            panels = page.locator(".panel").all_inner_texts()
            header = page.locator("header").inner_text()
            page.emulate_media(media="print")
            print_columns = page.evaluate(
                "getComputedStyle(document.querySelector('.grid')).gridTemplateColumns")
        finally:
            browser.close()

    assert len(images) == len(panels) == len(shots)
    for image, shot in zip(images, shots, strict=True):
        assert image == {"complete": True, "width": shot["width"], "height": shot["height"],
                         "src": "data:image/png;base64,"}
    assert all(url.startswith(("file:", "data:")) for url in requests), requests
    assert bilingual.project["title"] in header and "16:9" in header
    total = sum(s["duration"] for s in shots)
    assert f"SHOTS\n{len(shots)}" in header.upper() and clock(total) in header
    for text, shot in zip(panels, shots, strict=True):
        assert text.startswith(f"{shot['number']}\n") and f"{shot['duration']:g} s" in text
        assert shot["camera"].upper() in text.upper() and shot["action"] in text
        for line in spoken(shot):
            assert line in text
    assert any("你从哪里得到的" in text for text in panels)
    assert len(print_columns.split()) == 3  # three panels a row on paper


def test_the_pdf_has_every_shot_number_and_line_as_text_in_an_embedded_cjk_font(
    bilingual, tmp_path
):
    shots = bilingual.shots
    result = bilingual.exported("pdf")
    path = Path(result["path"])
    pages = math.ceil(len(shots) / 6)
    assert pdfinfo(path)["Pages"] == str(pages)
    assert pdfinfo(path)["Page size"] == "841.89 x 595.28 pts (A4)"  # landscape

    text = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True,
                          text=True, check=True).stdout
    per_page = text.split("\f")
    for k, shot in enumerate(shots):
        page = per_page[k // 6]
        assert f"Shot {shot['number']}" in page
        for line in spoken(shot):
            assert line in page
    assert "你从哪里得到的" in text and f"RUNNING TIME {clock(sum(s['duration'] for s in shots))}" \
        in text and f"1/{pages}" in text.replace(" ", "")
    fonts = subprocess.run(["pdffonts", str(path)], capture_output=True, text=True,
                           check=True).stdout.splitlines()[2:]
    assert fonts and all(line.split()[-5:-2] == ["yes", "yes", "yes"] for line in fonts), fonts

    subprocess.run(["pdftoppm", "-r", "40", "-png", str(path), str(tmp_path / "page")],
                   check=True)
    rendered = sorted(tmp_path.glob("page-*.png"))
    assert len(rendered) == pages
    with Image.open(rendered[0]) as first:
        assert first.width > first.height
        low, high = first.convert("L").getextrema()
        assert low < 60 and high > 240  # ink on paper, not a blank page

    letter = bilingual.exported("pdf", "--paper", "letter", "--portrait", "--layout", "2x4",
                                "-o", str(tmp_path / "letter.pdf"))
    info = pdfinfo(Path(letter["path"]))
    assert (info["Page size"], info["Pages"]) == ("612 x 792 pts (letter)",
                                                  str(math.ceil(len(shots) / 8)))


def pdfinfo(path: Path) -> dict[str, str]:
    out = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True,
                         check=True).stdout
    return dict((k, v.strip()) for k, _, v in (line.partition(":") for line in out.splitlines()))


def test_the_animatic_holds_each_frame_for_its_shot_and_lasts_the_sum_of_the_shots(
    bilingual, s3_server
):
    shots = bilingual.shots
    result = bilingual.exported("mp4")
    path, srt = (Path(f) for f in result["files"])
    assert srt.suffix == ".srt"
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.name, stream.codec_context.pix_fmt) == ("h264", "yuv420p")
        assert stream.average_rate == 24
        width, height = stream.width, stream.height
        duration = float(stream.duration * stream.time_base)
        # The middle frame of each shot, and the frame numbers.
        starts = [0.0]
        for shot in shots:
            starts.append(starts[-1] + shot["duration"])
        middles = {round((a + b) / 2 * 24): k
                   for k, (a, b) in enumerate(zip(starts, starts[1:], strict=False))}
        held = {}
        count = 0
        for count, frame in enumerate(container.decode(stream), start=1):
            if count - 1 in middles:
                held[middles[count - 1]] = frame.to_image()
    total = sum(s["duration"] for s in shots)
    assert abs(duration - total) <= 1 / 24 and count == round(total * 24)
    assert (width, height) == video_size("16:9", 344, 192) == (854, 480)
    assert abs(width / height - 16 / 9) < 2 / height

    # The frame on screen in the middle of each shot is that shot's frame (its top third:
    # on a sketch panel the subtitles end above the caption band, so they reach higher
    # than the bottom third), not a neighbour's.
    for k, shot in enumerate(shots):
        with Image.open(io.BytesIO(bilingual.frame(shot, s3_server))) as source:
            expected = source.convert("RGB").resize((width, height))
        top = (0, 0, width, height // 3)
        own = mean_difference(held[k].crop(top), expected.crop(top))
        other = shots[k - 1] if k else shots[1]
        with Image.open(io.BytesIO(bilingual.frame(other, s3_server))) as source:
            neighbour = source.convert("RGB").resize((width, height))
        assert own < 6 and own < mean_difference(held[k].crop(top), neighbour.crop(top))

    cues = srt.read_text(encoding="utf-8").strip().split("\n\n")
    talking = [(k, s) for k, s in enumerate(shots) if s["dialogue"]]
    assert talking and len(cues) == len(talking)
    for cue, (k, shot) in zip(cues, talking, strict=True):
        number, times, *lines = cue.splitlines()
        assert times == f"{srt_time(starts[k])} --> {srt_time(starts[k + 1])}"
        assert all(line in "\n".join(lines) for line in spoken(shot))


def mean_difference(a: Image.Image, b: Image.Image) -> float:
    return sum(ImageStat.Stat(ImageChops.difference(a, b)).mean) / 3


def srt_time(seconds: float) -> str:
    ms = round(seconds * 1000)
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"


def test_the_storyboarder_project_has_a_board_per_shot_with_the_frame_on_its_reference_layer(
    bilingual, s3_server
):
    shots = bilingual.shots
    result = bilingual.exported("storyboarder")
    folder = Path(result["path"])
    scene = json.loads((folder / f"{folder.name}.storyboarder").read_text(encoding="utf-8"))
    assert {k: scene[k] for k in ("version", "aspectRatio", "fps", "defaultBoardTiming")} == {
        "version": "3.0.0", "aspectRatio": 16 / 9, "fps": 24, "defaultBoardTiming": 2000}
    boards = scene["boards"]
    assert len(boards) == len(shots)
    assert len({b["uid"] for b in boards}) == len(boards)
    images = folder / "images"
    time_ms = 0
    for board, shot in zip(boards, shots, strict=True):
        n, uid = shot["number"], board["uid"]
        assert len(uid) == 5 and uid.isalnum() and uid.upper() == uid
        assert board["url"] == f"board-{n}-{uid}.png"
        assert (board["number"], board["shot"], board["newShot"]) == (n, f"{n}A", True)
        assert (board["time"], board["duration"]) == (time_ms, round(shot["duration"] * 1000))
        time_ms += board["duration"]
        assert board["action"] == shot["action"]
        assert all(line in board["dialogue"] for line in spoken(shot))
        assert shot["camera"] in board["notes"] and str(shot["seed"]) in board["notes"]
        # What made the frame (the sketch backend's: no model, its seed and size).
        assert shot["provenance"]["backend"] == "sketch"
        assert f"made by: {provenance_line(shot['provenance'])}" in board["notes"]
        assert board["layers"] == {"reference": {"url": f"board-{n}-{uid}-reference.png",
                                                 "opacity": 1}}
        # An existing board.url file would make Storyboarder migrate the board as a pre-1.6 one.
        assert not (images / board["url"]).exists()
        with Image.open(images / board["layers"]["reference"]["url"]) as layer:
            assert layer.size == board_size(16 / 9) == (1600, 900)
        with Image.open(images / f"board-{n}-{uid}-thumbnail.png") as thumb:
            assert thumb.size == thumbnail_size(16 / 9) == (212, 120)
        assert (images / f"board-{n}-{uid}-posterframe.jpg").stat().st_size > 0

    again = bilingual.exported("storyboarder", "--force")
    scene_again = json.loads((folder / f"{folder.name}.storyboarder").read_text(encoding="utf-8"))
    assert again["path"] == result["path"]
    assert [b["uid"] for b in scene_again["boards"]] == [b["uid"] for b in boards]


def test_the_zip_holds_the_bucket_pngs_named_by_shot_number_and_the_shot_list(
    bilingual, s3_server
):
    shots = bilingual.shots
    result = bilingual.exported("zip")
    with zipfile.ZipFile(result["path"]) as archive:
        names = archive.namelist()
        assert names == [f"shot-{s['number']:03d}.png" for s in shots] + ["shotlist.json"]
        for shot in shots:
            assert archive.read(f"shot-{shot['number']:03d}.png") == bilingual.frame(shot,
                                                                                     s3_server)
        listing = json.loads(archive.read("shotlist.json"))
    assert (listing["title"], listing["aspect"]) == (bilingual.project["title"], "16:9")
    assert [s["file"] for s in listing["shots"]] == names[:-1]
    kept = ("number", "camera", "action", "dialogue", "characters", "duration", "prompt",
            "seed", "image_key", "provenance")
    assert [{k: s[k] for k in kept} for s in listing["shots"]] == [
        {k: s[k] for k in kept} for s in shots]
    assert not any("image_url" in s for s in listing["shots"])
    assert "script_url" not in listing


def test_upload_puts_the_export_in_the_bucket_behind_a_presigned_link(bilingual):
    result = bilingual.exported("html", "--upload", "--force")
    assert result["key"].startswith(f"projects/{bilingual.id}/exports/")
    assert result["key"].endswith(f"/bilingual-{bilingual.id}.html")
    with urllib.request.urlopen(result["url"], timeout=10) as resp:
        assert resp.headers["Content-Type"] == "text/html; charset=utf-8"
        assert resp.read() == Path(result["path"]).read_bytes()

    human = bilingual.export("storyboarder", "--upload", "--force")
    assert human.returncode == 0, human.stderr
    assert f"Wrote {bilingual.stack.root}/bilingual-{bilingual.id} (storyboarder" in human.stdout
    link = human.stdout.split("Link (valid until ")[1].split("): ", 1)[1].strip()
    with urllib.request.urlopen(link, timeout=10) as resp:
        archive = zipfile.ZipFile(io.BytesIO(resp.read()))
    assert f"bilingual-{bilingual.id}/bilingual-{bilingual.id}.storyboarder" in archive.namelist()


def test_shots_without_an_image_are_marked_empty_frames_and_need_no_bucket(bilingual):
    """A plan without images (never rendered) and a frame gone from the bucket: each an empty
    frame that says why, in every format; with no frames to read, not even the bucket's
    credentials are needed."""
    stack = bilingual.stack
    stack.start_worker()
    try:
        project_id = str(stack.json("new", EXAMPLE.name, "--title", "plan only")["id"])
        done = stack.run("generate", project_id, "--no-images", "--json", "--timeout", "60")
        assert done.returncode == 0, done.stderr
    finally:
        stack.stop_workers()
    no_bucket = {"ACCESS_KEY": "", "SECRET_KEY": "", "ENDPOINT": f"http://127.0.0.1:{free_port()}"}
    for fmt in ("html", "pdf", "zip"):
        done = stack.run("export", project_id, "--format", fmt, "--json", env=no_bucket)
        assert done.returncode == 0, done.stderr
        result = json.loads(done.stdout)
        assert result["frames"] == 0
        assert {e["reason"] for e in result["empty"]} == {"not rendered yet"}
        assert len(result["empty"]) == result["shots"] > 1
    page = Path(result["path"]).with_suffix(".html").read_text(encoding="utf-8")
    assert page.count('data-missing="not rendered yet"') == result["shots"]
    assert "<img" not in page
    pdf_text = subprocess.run(["pdftotext", str(Path(result["path"]).with_suffix(".pdf")), "-"],
                              capture_output=True, text=True, check=True).stdout
    assert pdf_text.count("not rendered yet") == result["shots"]


def test_a_frame_gone_from_the_bucket_is_an_empty_frame_and_the_rest_export(
    bilingual, s3_server, tmp_path
):
    shot = bilingual.shots[2]
    client = s3_server.client()
    kept = bilingual.frame(shot, s3_server)
    client.delete_object(Bucket=s3_server.bucket, Key=shot["image_key"])
    try:
        result = bilingual.exported("mp4", "-o", str(tmp_path / "gone.mp4"))
    finally:
        client.put_object(Bucket=s3_server.bucket, Key=shot["image_key"], Body=kept)
    assert result["empty"] == [{"number": shot["number"], "label": shot["label"],
                                "reason": "image missing from the bucket"}]
    assert result["frames"] == len(bilingual.shots) - 1
    with av.open(result["path"]) as container:
        stream = container.streams.video[0]
        total = sum(s["duration"] for s in bilingual.shots)
        assert abs(float(stream.duration * stream.time_base) - total) <= 1 / 24


def test_bad_input_and_an_unreachable_bucket_change_nothing(bilingual, tmp_path):
    target = tmp_path / "board.html"
    target.write_text("an earlier export", encoding="utf-8")
    exists = bilingual.export("html", "-o", str(target))
    assert exists.returncode == 2 and "exists; pass --force" in exists.stderr

    down = {"ENDPOINT": f"http://127.0.0.1:{free_port()}"}
    unreachable = bilingual.export("html", "-o", str(target), "--force", "--json", env=down)
    assert unreachable.returncode == 3, unreachable.stderr
    assert "the S3 endpoint does not answer" in json.loads(unreachable.stdout)["error"]
    assert target.read_text(encoding="utf-8") == "an earlier export"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["board.html"]  # no leftovers

    layout = bilingual.export("pdf", "--layout", "0x9", "-o", str(tmp_path / "x.pdf"))
    assert layout.returncode == 2 and "--layout '0x9'" in layout.stderr
    fresh = bilingual.stack.json("new", EXAMPLE.name, "--title", "not planned")
    empty = bilingual.stack.run("export", str(fresh["id"]), "--format", "zip")
    assert empty.returncode == 2 and "no shots to export yet" in empty.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["board.html"]
