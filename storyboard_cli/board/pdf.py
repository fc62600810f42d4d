"""The board as a PDF, laid out like Storyboarder's PDF export: A4 or Letter, landscape unless
asked otherwise, a grid of panels (3 × 2 by default) under a header on every page (title,
shots, running time, aspect, style, date, page number). Each panel: the frame, with an arrow
drawn on it for a camera move (pans and tilts across it, a push in as arrows from the corners
toward the middle, a pull out as arrows from the middle toward the corners), then its number,
shot size, move and duration (and its marks: approved, stale, new, changed), a scene's heading
over its first shot, the action, the dialogue with its speaker and the writer's note; text
that does not fit ends in […].

The text is real text in an embedded, subset CJK font (found with fontconfig, as the sketch
backend finds it), so Chinese reads and everything is selectable and searchable. Frames are
scaled down to what the panel prints at 200 dpi and stored as JPEG, which keeps a board of
thousands of shots to a few tens of kilobytes per panel. fpdf2 keeps a document's images, and
then the whole file, until it is written: the board is made PAGES_PER_PART pages at a time,
each part a document of its own joined to the file as soon as it is done (pdfjoin.py), so the
export's memory does not grow with the board.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

from storyboard_cli.board.options import PAPER_MM, ExportOptions
from storyboard_cli.board.panels import Panel
from storyboard_cli.board.pdfjoin import Joiner
from storyboard_cli.board.sheet import (
    Sheet,
    dialogue_text,
    find_font,
    framing,
    opens_scene,
    panel_marks,
)
from storyboard_contract.frames import aspect_ratio
from storyboard_contract.typeset import wrap

if TYPE_CHECKING:
    from fpdf import FPDF

MARGIN = 10.0
HEADER = 17.0
GAP = 6.0
DPI = 200
PORTRAIT_MM = 40.0  # a reference image on the cast page
INK = (29, 29, 27)
MUTED = (107, 107, 102)
LINE = (200, 199, 192)
EMPTY = (236, 235, 230)
WARN = (138, 75, 47)
MOVE = (230, 72, 24)  # camera-move arrows: a colour no frame of the sketch backend has
NOTE = (122, 100, 22)
FONT = "board"
ELLIPSIS = "[…]"
# fpdf2 holds a part's frames (a few tens of kilobytes each) until it writes the part.
PAGES_PER_PART = 50


def write(project: dict[str, Any], sheet: Sheet, panels: Iterable[Panel], path: Path,
          options: ExportOptions, pages_per_part: int = PAGES_PER_PART) -> None:
    """The board, made `pages_per_part` pages at a time (fpdf2 holds a document's images
    until it writes it) and joined as each part is done: the same pages as one document."""
    columns, rows = options.grid
    per_page = columns * rows
    pages = max(1, -(-sheet.shots // per_page))
    panels = iter(panels)
    parts = -(-pages // pages_per_part)
    if parts == 1:
        draw_part(sheet, panels, options, 0, pages, cast=True).output(str(path))
        return
    with path.open("wb") as out:
        joiner = Joiner(out)
        for part in range(parts):
            first = part * pages_per_part
            chunk = islice(panels, per_page * min(pages_per_part, pages - first))
            joiner.add(bytes(draw_part(sheet, chunk, options, first, pages,
                                       cast=part == parts - 1).output()))
        joiner.close()


def draw_part(sheet: Sheet, panels: Iterable[Panel], options: ExportOptions, first: int,
              pages: int, cast: bool) -> FPDF:
    """A document of the board's pages from page `first` (counted from 0) holding `panels`,
    and the cast page after them where `cast`."""
    columns, rows = options.grid
    per_page = columns * rows
    pdf = new_document(options, sheet)
    width_of = Widths(pdf)
    ratio = aspect_ratio(sheet.aspect)
    page_w, page_h = pdf.w, pdf.h
    cell_w = (page_w - 2 * MARGIN - (columns - 1) * GAP) / columns
    cell_h = (page_h - 2 * MARGIN - HEADER - (rows - 1) * GAP) / rows
    # The frame takes the cell's width unless that leaves under 40% of the cell for text.
    frame_w = min(cell_w, cell_h * 0.6 * ratio)
    frame_h = frame_w / ratio
    slot = 0
    for panel in panels:
        if slot % per_page == 0:
            pdf.add_page()
            draw_header(pdf, width_of, sheet, first + slot // per_page + 1, pages)
        column, row = slot % columns, (slot % per_page) // columns
        x = MARGIN + column * (cell_w + GAP)
        y = MARGIN + HEADER + row * (cell_h + GAP)
        draw_frame(pdf, width_of, panel, x + (cell_w - frame_w) / 2, y, frame_w, frame_h)
        draw_move(pdf, panel.shot["move"], x + (cell_w - frame_w) / 2, y, frame_w, frame_h)
        draw_fields(pdf, width_of, panel.shot, x, y + frame_h + 2.0, cell_w,
                    cell_h - frame_h - 2.0)
        slot += 1
    if slot == 0:
        pdf.add_page()
        draw_header(pdf, width_of, sheet, first + 1, pages)
    if cast:
        draw_cast(pdf, width_of, sheet)
    return pdf


def draw_cast(pdf: FPDF, width_of: Widths, sheet: Sheet) -> None:
    """The cast strip: a last page of the characters' reference images, each with its name
    and description under it (no page when none has an image)."""
    portraits = sheet.portraits()
    size, width = PORTRAIT_MM, pdf.w - 2 * MARGIN
    cell_h = size + 16  # the image, the name and two lines of description
    columns = max(1, int((width + GAP) // (size + GAP)))
    rows = max(1, int((pdf.h - 2 * MARGIN - HEADER + GAP) // (cell_h + GAP)))
    for k, portrait in enumerate(portraits):
        if k % (columns * rows) == 0:
            pdf.add_page()
            bold_line(pdf, width_of, f"{sheet.title} · Cast", MARGIN, MARGIN, width, 15, 7)
        x = MARGIN + (k % columns) * (size + GAP)
        y = MARGIN + HEADER + (k % (columns * rows)) // columns * (cell_h + GAP)
        pdf.image(print_jpeg(portrait.image or b"", size, size), x=x, y=y, w=size, h=size,
                  keep_aspect_ratio=True)
        pdf.set_font(size=9)
        bold(pdf, True)
        pdf.set_text_color(*INK)
        pdf.set_xy(x, y + size + 1)
        pdf.cell(size, 4.5, truncate(width_of, portrait.name, size))
        bold(pdf, False)
        pdf.set_font(size=7)
        pdf.set_text_color(*MUTED)
        for n, line in enumerate(wrap(portrait.description,
                                      lambda text: width_of(text) <= size)[:2]):
            pdf.set_xy(x, y + size + 5.5 + 4 * n)
            pdf.cell(size, 4, truncate(width_of, line, size))


def new_document(options: ExportOptions, sheet: Sheet) -> FPDF:
    from fpdf import FPDF

    width, height = PAPER_MM[options.paper]
    if options.orientation == "portrait":
        width, height = height, width
    pdf = FPDF(unit="mm", format=(width, height))
    pdf.set_auto_page_break(False)
    pdf.set_margin(MARGIN)
    pdf.set_title(sheet.title)
    pdf.set_creator("storyboard")
    pdf.set_lang("zh-Hans" if sheet.chinese else "en")
    font = find_font()
    pdf.add_font(FONT, "", font, collection_font_number=0)
    pdf.set_font(FONT, size=9)
    return pdf


def bold(pdf: FPDF, on: bool) -> None:
    """The CJK fonts come without a bold face: outlining the glyphs stands in for one."""
    pdf.text_mode = "FILL_STROKE" if on else "FILL"
    pdf.set_line_width(0.12)


def bold_line(pdf: FPDF, width_of: Widths, text: str, x: float, y: float, w: float,
              size: float, h: float) -> None:
    """One line of bold ink at (x, y), cut to `w`."""
    pdf.set_text_color(*INK)
    pdf.set_font(size=size)
    bold(pdf, True)
    pdf.set_xy(x, y)
    pdf.cell(w, h, truncate(width_of, text, w))
    bold(pdf, False)


def draw_header(pdf: FPDF, width_of: Widths, sheet: Sheet, page: int, pages: int) -> None:
    left, top, width = MARGIN, MARGIN, pdf.w - 2 * MARGIN
    pdf.set_text_color(*INK)
    pdf.set_draw_color(*INK)
    pdf.set_font(size=15)
    bold(pdf, True)
    pdf.set_xy(left, top)
    pdf.cell(width * 0.8, 7, truncate(width_of, sheet.title, width * 0.8))
    bold(pdf, False)
    pdf.set_font(size=8)
    pdf.set_text_color(*MUTED)
    pdf.set_xy(left, top)
    pdf.cell(width, 7, f"{page} / {pages}", align="R")
    pdf.set_xy(left, top + 8)
    stats = "   ·   ".join(f"{label.upper()} {value}" for label, value in sheet.stats())
    pdf.cell(width, 5, truncate(width_of, stats, width))
    pdf.set_draw_color(*LINE)
    pdf.set_line_width(0.2)
    pdf.line(left, top + HEADER - 3, left + width, top + HEADER - 3)


def draw_frame(pdf: FPDF, width_of: Widths, panel: Panel, x: float, y: float, w: float,
               h: float) -> None:
    if panel.image is not None:
        pdf.image(print_jpeg(panel.image, w, h), x=x, y=y, w=w, h=h)
    else:
        pdf.set_fill_color(*EMPTY)
        pdf.rect(x, y, w, h, style="F")
        pdf.set_text_color(*WARN)
        pdf.set_font(size=8)
        lines = wrap(panel.missing or "no image", lambda line: width_of(line) <= w - 4)[:3]
        for k, line in enumerate(lines):
            pdf.set_xy(x, y + h / 2 - 2 * len(lines) + 4 * k)
            pdf.cell(w, 4, truncate(width_of, line, w - 4), align="C")
    pdf.set_draw_color(*INK)
    pdf.set_line_width(0.3)
    pdf.rect(x, y, w, h)


def draw_move(pdf: FPDF, move: str, x: float, y: float, w: float, h: float) -> None:
    """The camera move as arrows on the frame (none for a static shot)."""
    cx, cy = x + w / 2, y + h / 2
    head = min(w, h) * 0.09
    across = {"pan left": ((x + w * 0.78, cy), (x + w * 0.22, cy)),
              "pan right": ((x + w * 0.22, cy), (x + w * 0.78, cy)),
              "tilt up": ((cx, y + h * 0.8), (cx, y + h * 0.2)),
              "tilt down": ((cx, y + h * 0.2), (cx, y + h * 0.8))}
    if move in across:
        arrows = [across[move]]
    elif move in ("push in", "pull out"):
        corners = [(x + w * fx, y + h * fy) for fx, fy in ((0.1, 0.12), (0.9, 0.12),
                                                            (0.1, 0.88), (0.9, 0.88))]
        inner = [(cx + (px - cx) * 0.45, cy + (py - cy) * 0.45) for px, py in corners]
        pairs = list(zip(corners, inner, strict=True))
        arrows = pairs if move == "push in" else [(b, a) for a, b in pairs]
    else:
        return
    pdf.set_draw_color(*MOVE)
    pdf.set_fill_color(*MOVE)
    pdf.set_line_width(max(0.5, head * 0.22))
    for start, end in arrows:
        arrow(pdf, start, end, head)
    pdf.set_draw_color(*INK)  # the outline of the bold text that follows is drawn with it


def arrow(pdf: FPDF, start: tuple[float, float], end: tuple[float, float], head: float) -> None:
    """A shaft from start to a filled head whose tip is at end."""
    (x0, y0), (x1, y1) = start, end
    length = ((x1 - x0) ** 2 + (y1 - y0) ** 2) ** 0.5 or 1.0
    ux, uy = (x1 - x0) / length, (y1 - y0) / length
    bx, by = x1 - ux * head, y1 - uy * head  # where the head starts
    pdf.line(x0, y0, bx, by)
    pdf.polygon([(x1, y1), (bx - uy * head * 0.6, by + ux * head * 0.6),
                 (bx + uy * head * 0.6, by - ux * head * 0.6)], style="F")


def print_jpeg(png: bytes, w_mm: float, h_mm: float) -> io.BytesIO:
    """The frame as a JPEG no larger than the panel needs at DPI (never scaled up)."""
    from PIL import Image

    with Image.open(io.BytesIO(png)) as image:
        frame = image.convert("RGB")
    frame.thumbnail((round(w_mm / 25.4 * DPI), round(h_mm / 25.4 * DPI)))
    out = io.BytesIO()
    frame.save(out, "JPEG", quality=85)
    out.seek(0)
    return out


def draw_fields(pdf: FPDF, width_of: Widths, shot: dict[str, Any], x: float, y: float,
                w: float, h: float) -> None:
    """Number, shot size, move, marks and duration on one line; a scene's heading over its
    first shot; then action, dialogue and the writer's note, cut to fit."""
    pdf.set_text_color(*INK)
    pdf.set_font(size=9)
    bold(pdf, True)
    pdf.set_xy(x, y)
    number = f"Shot {shot['label']}"
    number_w = width_of(number) + 3
    pdf.cell(number_w, 4.5, number)
    bold(pdf, False)
    pdf.set_font(size=7)
    pdf.set_text_color(*MUTED)
    camera_w = max(0.0, w - number_w - 16)
    head = "  ·  ".join([framing(shot).upper(),
                         *(m.upper() for m in panel_marks(shot))]).strip(" ·")
    pdf.cell(camera_w, 4.5, truncate(width_of, head, camera_w - 2))
    pdf.cell(16, 4.5, f"{shot['duration']:g} s", align="R")
    top, bottom = y + 5.5, y + h
    scene = opens_scene(shot)
    if scene and top + 4 <= bottom:
        bold_line(pdf, width_of, f"SCENE {scene}", x, top, w, 7, 3.5)
        top += 4.5
    # As on the HTML board: what we see, then what is said, set off by a rule on its left,
    # then the writer's note.
    note = f"Note: {shot['notes']}" if shot.get("notes") else ""
    blocks = [(shot["action"], 7.5, 0.0, INK), (dialogue_text(shot["dialogue"]), 8.0, 2.2, INK),
              (note, 7.0, 0.0, NOTE)]
    for text, size, indent, colour in blocks:
        if not text or top >= bottom:
            continue
        pdf.set_text_color(*colour)
        pdf.set_font(size=size)
        line_h = size * 0.45
        room = max(0, int((bottom - top) // line_h))
        if room == 0:
            break
        lines = wrap(text, lambda line, room_w=w - indent: width_of(line) <= room_w)
        if len(lines) > room:
            lines = lines[:room]
            lines[-1] = ending(width_of, lines[-1], w - indent, " " + ELLIPSIS)
        if indent:
            pdf.set_draw_color(*LINE)
            pdf.set_line_width(0.6)
            pdf.line(x + 0.4, top + 0.4, x + 0.4, top + line_h * len(lines) - 0.4)
        for line in lines:
            pdf.set_xy(x + indent, top)
            pdf.cell(w - indent, line_h, line)
            top += line_h
        top += 1.2


class Widths:
    """Widths of text in the document's font at its current size (mm), from each character's
    width measured once: fpdf2 measures a string glyph by glyph on every call, and breaking
    the text of thousands of panels into lines asks for many."""

    def __init__(self, pdf: FPDF) -> None:
        self.pdf = pdf
        self.em: dict[str, float] = {}

    def __call__(self, text: str) -> float:
        em, total = self.em, 0.0
        for char in text:
            width = em.get(char)
            if width is None:
                width = em[char] = self.pdf.get_string_width(char) / self.pdf.font_size
            total += width
        return total * self.pdf.font_size


def truncate(width_of: Widths, text: str, width: float) -> str:
    """`text` cut to `width` in the current font, ending in … where cut."""
    return text if width_of(text) <= width else ending(width_of, text, width, "…")


def ending(width_of: Widths, text: str, width: float, end: str) -> str:
    """As much of `text` as fits in `width` with `end` after it."""
    while text and width_of(text.rstrip() + end) > width:
        text = text[:-1]
    return text.rstrip() + end
