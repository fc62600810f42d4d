"""The export's pure parts, without services: the panel stream's memory bound and order, what
the header and the file names say, escaping in the HTML template, the sizes each format uses,
and the options a writer can get wrong."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from storyboard_cli.board import export, html, shotlist
from storyboard_cli.board.animatic import timestamp, video_size
from storyboard_cli.board.options import ExportOptions
from storyboard_cli.board.panels import (
    NOT_IN_BUCKET,
    NOT_RENDERED,
    Panel,
    missing_reasons,
    read_panels,
)
from storyboard_cli.board.sheet import Portrait, clock, file_stem, sheet
from storyboard_cli.board.storyboarder import board_size, board_uid, thumbnail_size
from storyboard_cli.inputs import check_export
from storyboard_contract.errors import UsageError
from storyboard_contract.frames import ASPECTS, aspect_ratio


def shot(n: int, key: str | None = "k", **fields) -> dict:
    return {"id": 100 + n, "number": n, "label": str(n), "scene": None, "scene_heading": None,
            "scene_shot": None, "camera": "medium", "move": "static", "action": "", "dialogue": [],
            "characters": [], "duration": 2.5, "description": "", "prompt": "", "seed": n,
            "width": 64, "height": 36, "image_key": key and f"{key}{n}", **fields}


def test_panels_come_in_shot_order_with_a_bounded_number_of_frames_read_ahead():
    shots = [shot(n, None if n % 7 == 0 else "k") for n in range(1, 101)]
    fetched: list[str] = []
    lock = threading.Lock()

    def fetch(key: str) -> bytes | None:
        with lock:
            fetched.append(key)
        return None if key == "k50" else key.encode()

    seen, progress = [], []
    panels = read_panels(shots, fetch, {107: "render failed: boom"},
                         lambda done, total: progress.append((done, total)),
                         readers=4, read_ahead=8)
    for panel in panels:
        # Never more than read_ahead shots taken from the list ahead of the consumer.
        assert len(fetched) <= panel.shot["number"] + 8
        seen.append(panel)
    assert [p.shot["number"] for p in seen] == list(range(1, 101))
    assert seen[6].missing == "render failed: boom" and seen[13].missing == NOT_RENDERED
    assert seen[49].missing == NOT_IN_BUCKET and seen[0].image == b"k1"
    keyed = sum(1 for s in shots if s["image_key"])
    assert progress[0] == (0, keyed) and progress[-1] == (keyed, keyed)


def test_a_consumer_that_stops_early_leaves_the_rest_unread():
    fetched: list[str] = []
    panels = read_panels([shot(n) for n in range(1, 1001)], lambda k: fetched.append(k) or b"",
                         readers=2, read_ahead=4)
    next(panels)
    panels.close()
    assert len(fetched) <= 6


def test_failed_renders_say_so_with_their_error():
    reasons = missing_reasons([
        {"shot_id": 1, "status": "failed", "error": "daemon said 500\ntraceback"},
        {"shot_id": 2, "status": "failed", "error": None},
        {"shot_id": 3, "status": "done", "error": None}])
    assert reasons == {1: "render failed: daemon said 500", 2: "render failed"}


def test_the_html_template_escapes_what_the_story_and_the_planner_wrote():
    evil = shot(1, camera="<b>wide</b>", action='<script>alert("x")</script>',
                dialogue=[{"speaker": "<i>Lin</i>", "line": "a & b </p>"}])
    text = html.panel_html(Panel(evil, url='https://bucket/x.png?a=1&b="2"'))
    assert "<script>" not in text and "&lt;script&gt;alert(&quot;x&quot;)" in text
    assert "&lt;i&gt;Lin&lt;/i&gt;" in text and "a &amp; b &lt;/p&gt;" in text
    assert 'src="https://bucket/x.png?a=1&amp;b=&quot;2&quot;"' in text
    project = {"title": "<title>", "aspect": "9:16", "style": "noir", "story_text": "林看清封面",
               "shots": [evil], "cast": [{"name": "<Lin>", "description": "a & b"}]}
    head = html.head(sheet(project), "storyboard")
    assert "<title>&lt;title&gt; · storyboard</title>" in head and 'lang="zh-Hans"' in head
    assert "<b>&lt;Lin&gt;</b> — a &amp; b" in head and "--panel-min: 200px" in head
    # The cast strip: the reference image's link and the name escaped too.
    linked = html.head(sheet(project, portray=lambda c: Portrait(
        c["name"], c["description"], url='/api/images/a"b')), "storyboard")
    assert ('<figure class="portrait" data-character="&lt;Lin&gt;"><img '
            'src="/api/images/a&quot;b" alt="&lt;Lin&gt;"') in linked
    assert "<figcaption>&lt;Lin&gt;</figcaption>" in linked
    assert 'class="cast-strip"' not in head  # no reference image: no strip


def test_the_web_page_links_frames_and_the_export_embeds_them():
    linked = html.panel_html(Panel(shot(3), url="/api/shots/3/image"))
    embedded = html.panel_html(Panel(shot(3), image=b"\x89PNG"))
    empty = html.panel_html(Panel(shot(3), missing=NOT_RENDERED))
    assert 'src="/api/shots/3/image"' in linked
    assert 'src="data:image/png;base64,iVBORw=="' in embedded
    assert "<img" not in empty and 'data-missing="not rendered yet"' in empty


def test_the_header_counts_shots_and_running_time():
    project = {"title": "t", "aspect": "16:9", "style": "movie", "story_text": "Lin.",
               "shots": [shot(1), shot(2, duration=60.0)], "cast": []}
    facts = dict(sheet(project).stats())
    assert facts["Shots"] == "2" and facts["Running time"] == "1:02" and facts["Aspect"] == "16:9"
    assert clock(3723.4) == "1:02:03" and clock(0) == "0:00"
    assert not sheet(project).chinese


def test_export_file_names_keep_the_title_readable_and_safe():
    assert file_stem({"id": 3, "title": "灯塔 / night: 1?"}) == "灯塔-night-1-3"
    assert file_stem({"id": 4, "title": "..."}) == "storyboard-4"


@pytest.mark.parametrize("aspect", ASPECTS)
def test_every_aspect_has_even_video_sides_and_storyboarder_board_sizes(aspect):
    ratio = aspect_ratio(aspect)
    width, height = video_size(aspect, 344, 192)
    assert width % 2 == height % 2 == 0 and min(width, height) == 480
    assert abs(width / height - ratio) < 2 / min(width, height)
    board = board_size(ratio)
    assert min(board) == 900 and abs(board[0] / board[1] - ratio) < 0.01
    assert thumbnail_size(ratio)[1] == 120


def test_storyboarder_sizes_match_its_own_for_16_9():
    # Storyboarder 3.0.0: boardFileImageSize 900 * aspectRatio x 900; getThumbnailSize
    # [floor(60 * aspectRatio) * 2, 120].
    assert board_size(16 / 9) == (1600, 900) and thumbnail_size(16 / 9) == (212, 120)
    assert board_size(2.39) == (2151, 900) and thumbnail_size(2.39) == (286, 120)


def test_board_uids_are_stable_and_unique():
    used: set[str] = set()
    uids = [board_uid(1, n, used) for n in range(2000)]
    assert len(set(uids)) == 2000 and all(len(u) == 5 and u.isalnum() for u in uids)
    assert board_uid(1, 7, set()) == uids[7]


def test_subtitle_times():
    assert timestamp(3723.5) == "01:02:03,500" and timestamp(0.0004) == "00:00:00,000"


def test_layouts_papers_and_formats_are_checked():
    assert check_export("pdf") == ExportOptions("a4", "landscape", "3x2")
    assert check_export("pdf", ExportOptions(" Letter", "PORTRAIT", " 2×4 ")) == ExportOptions(
        "letter", "portrait", "2x4")
    assert ExportOptions(layout="2x4").grid == (2, 4)
    for bad in ("3", "0x2", "7x1", "ax2", "3x2x1", "²x2"):
        with pytest.raises(UsageError, match="COLUMNSxROWS"):
            check_export("pdf", ExportOptions(layout=bad))
    with pytest.raises(UsageError, match="use a4 or letter"):
        check_export("pdf", ExportOptions(paper="a3"))
    with pytest.raises(UsageError, match="use one of html, pdf"):
        check_export("gif")


def test_the_destination_is_refused_when_it_exists_unless_forced(tmp_path):
    project = {"id": 2, "title": "bookshop"}
    assert export.destination(project, "pdf", tmp_path, False) == tmp_path / "bookshop-2.pdf"
    (tmp_path / "bookshop-2.mp4").touch()
    (tmp_path / "bookshop-2.srt").touch()
    with pytest.raises(UsageError, match="exists; pass --force"):
        export.destination(project, "mp4", tmp_path, False)
    assert export.destination(project, "mp4", tmp_path, True) == tmp_path / "bookshop-2.mp4"
    # A Storyboarder folder given as -o is the project to replace, not a place to put one.
    scene = tmp_path / "scene"
    scene.mkdir()
    (scene / "scene.storyboarder").write_text("{}")
    assert export.destination(project, "storyboarder", scene, True) == scene
    with pytest.raises(UsageError, match="not a folder"):
        export.destination(project, "pdf", Path(tmp_path / "no" / "x.pdf"), False)


def test_a_timeline_is_a_folder_beside_its_frames_unless_they_are_links(tmp_path):
    project = {"id": 2, "title": "bookshop"}
    links = ExportOptions(links=True)
    assert export.destination(project, "otio", tmp_path, False) == tmp_path / "bookshop-2-otio"
    assert export.destination(project, "otio", tmp_path, False, links) == \
        tmp_path / "bookshop-2.otio"
    assert export.destination(project, "fcpxml", tmp_path, False, links) == \
        tmp_path / "bookshop-2.fcpxml"
    assert export.destination(project, "csv", tmp_path, False) == tmp_path / "bookshop-2.csv"
    # A timeline's folder given as -o is the one to replace, not a place to put one.
    cut = tmp_path / "cut"
    cut.mkdir()
    (cut / "cut.xml").write_text("<xmeml/>")
    assert export.destination(project, "fcp7xml", cut, True) == cut
    assert export.destination(project, "edl", cut, False) == cut / "bookshop-2-edl"
    assert check_export("edl", links) == links
    with pytest.raises(UsageError, match="--links is for the timelines"):
        check_export("csv", links)


def test_a_csv_cell_is_text_never_a_formula():
    row = shotlist.row(Panel(shot(1, action="=HYPERLINK(\"http://x\")", prompt="+SUM(A1)",
                                  dialogue=[{"speaker": None, "line": "@once"}],
                                  characters=["-Lin"]), url="https://x/1.png"))
    assert row == ["1", "", "medium", "static", "'-Lin", "'=HYPERLINK(\"http://x\")",
                   "'@once", "2.5", "'+SUM(A1)", "1", "https://x/1.png"]
