"""The board as one HTML page: a header (title, shot count, running time, aspect, date) and a
grid of panels (frame, shot number, the scene heading over a scene's first shot, shot size and
camera move, duration, action, dialogue with speaker, the writer's note, and marks: approved,
stale, new or changed in this revision). Each panel carries its number, label and shot id
(`data-shot`, `data-label`, `data-shot-id`), its move (`data-move`) and its state
(`data-approved`, `data-stale`, `data-revised`) for the web page's scripts.

One template for two uses: `storyboard export --format html` embeds every frame as a data URI,
so the file opens offline and can be mailed; the web page of `storyboard serve` gives the
panels links instead. The page is written as a stream of pieces (`page`), a panel at a time,
so a board of 10,000 frames never sits in memory whole. Every text that comes from the story,
the planner or the user is escaped. The CSS prints: A4 landscape, three panels a row, no panel
split across pages.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Iterator
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

from storyboard_cli.board.panels import Panel
from storyboard_cli.board.sheet import Sheet, framing, heading, opens_scene, panel_marks
from storyboard_contract.frames import aspect_ratio

if TYPE_CHECKING:
    from storyboard_cli.board.options import ExportOptions

CSS = """
:root { --ink: #1d1d1b; --muted: #6b6b66; --line: #d9d8d2; --paper: #ffffff; --frame: #ecebe6; }
* { box-sizing: border-box; }
body { margin: 0; background: #f6f5f1; color: var(--ink);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", "Helvetica Neue", Arial,
    "PingFang SC", "Hiragino Sans GB", "Microsoft YaHei", "WenQuanYi Micro Hei",
    "Noto Sans CJK SC", "Source Han Sans SC", sans-serif; }
.board-header { padding: 20px 28px 14px; background: var(--paper);
  border-bottom: 1px solid var(--line); }
.board-header h1 { margin: 0 0 6px; font-size: 24px; font-weight: 650; }
.stats { display: flex; flex-wrap: wrap; gap: 4px 22px; margin: 0; color: var(--muted); }
.stats div { display: flex; gap: 6px; }
.stats dt { text-transform: uppercase; font-size: 11px; letter-spacing: .06em; padding-top: 2px; }
.stats dd { margin: 0; color: var(--ink); font-weight: 600; }
.cast { margin: 8px 0 0; color: var(--muted); font-size: 13px; }
.cast b { color: var(--ink); font-weight: 600; }
.cast-strip { display: flex; flex-wrap: wrap; gap: 10px; margin: 10px 0 0; }
.portrait { margin: 0; width: 84px; text-align: center; font-size: 12px; }
.portrait img { width: 84px; height: 84px; object-fit: cover; border-radius: 6px;
  border: 1px solid var(--line); display: block; background: var(--frame); }
.grid { display: grid; gap: 18px; padding: 22px 28px 40px;
  grid-template-columns: repeat(auto-fill, minmax(var(--panel-min, 300px), 1fr)); }
.panel { margin: 0; background: var(--paper); border: 1px solid var(--line); border-radius: 6px;
  overflow: hidden; display: flex; flex-direction: column; break-inside: avoid; }
.frame { margin: 0; aspect-ratio: var(--aspect); background: var(--frame);
  border-bottom: 1px solid var(--line); display: flex; align-items: center;
  justify-content: center; }
.frame img { width: 100%; height: 100%; object-fit: contain; display: block; }
.frame.empty { background: repeating-linear-gradient(135deg, #f3f2ed 0 10px, #e7e6e0 10px 20px);
  color: #8a4b2f; font-weight: 600; font-size: 13px; text-align: center; padding: 8px; }
.fields { padding: 9px 12px 12px; display: flex; flex-direction: column; gap: 5px; }
.head { display: flex; align-items: baseline; gap: 8px; }
.number { font-weight: 700; font-size: 16px; min-width: 1.6em; }
.camera { text-transform: uppercase; font-size: 11px; letter-spacing: .06em; color: var(--muted);
  flex: 1; }
.duration { font-variant-numeric: tabular-nums; color: var(--muted); font-size: 12px; }
.action { margin: 0; }
.dialogue { margin: 0; padding-left: 10px; border-left: 3px solid var(--line); }
.dialogue p { margin: 0; }
.speaker { font-weight: 700; text-transform: uppercase; font-size: 12px; letter-spacing: .04em;
  margin-right: 6px; }
.how { color: var(--muted); font-style: italic; margin-right: 6px; }
.scene { margin: 0; font-weight: 700; font-size: 12px; letter-spacing: .04em; }
.notes { margin: 0; padding: 4px 8px; background: #fbf6df; border-radius: 4px; font-size: 13px;
  white-space: pre-line; }
.notes .label { font-weight: 700; font-size: 11px; text-transform: uppercase;
  letter-spacing: .05em; color: #7a6416; margin-right: 6px; }
.mark { font-size: 10px; font-weight: 700; text-transform: uppercase; letter-spacing: .05em;
  padding: 1px 6px; border-radius: 9px; border: 1px solid currentColor; }
.mark-approved { color: #2f6b34; }
.mark-stale { color: #8a4b2f; }
.mark-new, .mark-changed { color: #2c5c8a; }
.panel[data-approved] { border-color: #7fae84; }
footer { padding: 0 28px 28px; color: var(--muted); font-size: 12px; }
@media print {
  @page { size: A4 landscape; margin: 10mm; }
  body { background: #fff; font-size: 10pt; }
  .board-header { padding: 0 0 8px; }
  .grid { grid-template-columns: repeat(3, 1fr); gap: 8mm; padding: 6mm 0 0; }
  .panel { border-radius: 0; }
  footer { display: none; }
}
"""


def page(sheet: Sheet, panels: Iterable[Panel], generator: str = "storyboard"
         ) -> Iterator[str]:
    """The page, in pieces: the head and header (with the cast strip), one piece per panel,
    the end."""
    yield head(sheet, generator)
    for panel in panels:
        yield panel_html(panel)
    yield (f"</main>\n<footer>{escape(generator)} · {escape(sheet.date)}</footer>\n"
           "</body>\n</html>\n")


def write(project: dict[str, Any], sheet: Sheet, panels: Iterable[Panel], path: Path,
          options: ExportOptions) -> None:
    with path.open("w", encoding="utf-8", newline="\n") as out:
        for piece in page(sheet, panels, "Exported by storyboard"):
            out.write(piece)


def head(sheet: Sheet, generator: str) -> str:
    ratio = aspect_ratio(sheet.aspect)
    # Tall frames (9:16) get narrower columns, so a row still shows several.
    panel_min = 300 if ratio >= 1 else 200
    stats = "".join(f"<div><dt>{escape(label)}</dt><dd>{escape(value)}</dd></div>"
                    for label, value in sheet.stats())
    people = "; ".join(
        f"<b>{escape(c.name)}</b>" + (f" — {escape(c.description)}" if c.description else "")
        for c in sheet.cast)
    cast_line = f'<p class="cast">Cast: {people}</p>\n' if people else ""
    cast_line += cast_strip(sheet)
    title = escape(sheet.title)
    return (
        "<!doctype html>\n"
        f'<html lang="{"zh-Hans" if sheet.chinese else "en"}">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f'<meta name="generator" content="{escape(generator)}">\n'
        f"<title>{title} · storyboard</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        f'<header class="board-header">\n<h1>{title}</h1>\n<dl class="stats">{stats}</dl>\n'
        f"{cast_line}</header>\n"
        f'<main class="grid" style="--aspect: {ratio:.4f}; --panel-min: {panel_min}px">\n'
    )


def cast_strip(sheet: Sheet) -> str:
    """The reference images of the cast, each with its character's name (none: nothing)."""
    figures = "".join(
        f'<figure class="portrait" data-character="{escape(p.name)}">'
        f'<img src="{escape(p.url or data_uri(p.image or b"", mime(p.suffix)))}" '
        f'alt="{escape(p.name)}" decoding="async"><figcaption>{escape(p.name)}</figcaption>'
        "</figure>"
        for p in sheet.portraits())
    return f'<div class="cast-strip">{figures}</div>\n' if figures else ""


def mime(suffix: str) -> str:
    return "image/jpeg" if suffix == ".jpg" else "image/png"


def panel_html(panel: Panel) -> str:
    shot = panel.shot
    number = shot["number"]
    src = panel.url or (data_uri(panel.image) if panel.image is not None else None)
    if src is not None:
        size = (f' width="{shot["width"]}" height="{shot["height"]}"'
                if shot["width"] and shot["height"] else "")
        alt = escape(f"{heading(shot)}: {shot['action'] or shot['description']}")
        frame = (f'<figure class="frame"><img src="{escape(src)}"{size} alt="{alt}" '
                 'decoding="async"></figure>')
    else:
        frame = (f'<div class="frame empty" data-missing="{escape(panel.missing or "")}">'
                 f"<span>{escape(panel.missing or 'no image')}</span></div>")
    lines = "".join(
        "<p>" + (f'<span class="speaker">{escape(d["speaker"])}</span>' if d["speaker"] else "")
        + (f'<span class="how">({escape(d["parenthetical"])})</span>'
           if d.get("parenthetical") else "")
        + f"{escape(d['line'])}</p>"
        for d in shot["dialogue"])
    dialogue = f'<div class="dialogue">{lines}</div>' if lines else ""
    action = f'<p class="action">{escape(shot["action"])}</p>' if shot["action"] else ""
    scene = opens_scene(shot)
    scene_line = f'<p class="scene">Scene {escape(scene)}</p>' if scene else ""
    notes = (f'<p class="notes"><span class="label">Note</span>{escape(shot["notes"])}</p>'
             if shot.get("notes") else "")
    marks = panel_marks(shot)
    badges = "".join(f'<span class="mark mark-{m}">{escape(m)}</span>' for m in marks)
    states = " ".join(f'data-{m}="true"' for m in ("approved", "stale") if m in marks)
    revised = f' data-revised="{escape(shot["revised"])}"' if shot.get("revised") else ""
    return (
        f'<article class="panel" id="shot-{number}" data-shot="{number}" '
        f'data-label="{escape(shot["label"])}" data-move="{escape(shot["move"])}" '
        f'data-shot-id="{shot["id"]}"{" " + states if states else ""}{revised}>{frame}'
        f'<div class="fields">{scene_line}<div class="head">'
        f'<span class="number">{escape(shot["label"])}</span>'
        f'<span class="camera">{escape(framing(shot))}</span>{badges}'
        f'<span class="duration">{shot["duration"]:g} s</span></div>'
        f"{action}{dialogue}{notes}</div></article>\n"
    )


def data_uri(image: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(image).decode('ascii')}"
