"""Human-readable output: projects, shots, the cast and links (the --json shapes live in
store.py)."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from storyboard_cli import output
from storyboard_cli.board.sheet import dialogue_text


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def shots_table(shots: list[dict[str, Any]]) -> Table:
    table = Table("id", "#", "camera", "s", "action / dialogue", "image link", show_lines=False)
    for s in shots:
        said = dialogue_text(s["dialogue"]).replace("\n", " / ")
        seen = s["action"] or (f"“{said}”" if said else s["description"])
        table.add_row(
            str(s["id"]), str(s["number"]), output.cell(s["camera"] or ""),
            f"{s['duration']:g}", output.cell(_cut(seen, 60)),
            output.cell(s["image_url"] or "-"),
        )
    return table


def print_shot(shot: dict[str, Any]) -> None:
    """One shot as a storyboard artist reads it: number, size, duration, then the fields."""
    out = output.stdout
    head = (f"Shot {shot['number']} · {shot['camera']} · {shot['duration']:g} s"
            f"  (id {shot['id']}, seed {shot['seed']})")
    out.print(f"\n[bold]{output.escape(head)}[/]")
    fields = [
        ("Action", shot["action"]),
        ("Dialogue", dialogue_text(shot["dialogue"])),
        ("Cast", ", ".join(shot["characters"])),
        ("Prompt", shot["prompt"]),
        ("Image", shot["image_url"] or "not rendered yet"),
    ]
    for label, value in fields:
        if value:
            lines = output.visible(value, keep="\n").splitlines()
            out.print(f"  {label + ':':<10}{lines[0]}", markup=False, soft_wrap=True)
            for more in lines[1:]:
                out.print(f"  {'':<10}{more}", markup=False, soft_wrap=True)


def print_cast(characters: list[dict[str, Any]], project: int | str) -> None:
    if not characters:
        output.info(f"No characters yet: storyboard generate {project} finds them, or add "
                    f'one: storyboard cast {project} --set "NAME=DESCRIPTION"')
        return
    table = Table("name", "description", "shots", "from")
    for c in characters:
        shots = ", ".join(map(str, c["shots"])) or "-"
        table.add_row(output.cell(c["name"]), output.cell(c["description"] or "(none)"),
                      _cut(shots, 30),
                      "you" if c["source"] == "user" else "planner")
    output.stdout.print(table)


def print_project(data: dict[str, Any]) -> None:
    out = output.stdout
    title, style = (output.cell(data[k]) for k in ("title", "style"))
    out.print(f"[bold]{title}[/]  (project {data['id']}, style {style}, {data['aspect']} frames "
              f"of {data['width']}×{data['height']})")
    story = data["story_text"].strip()
    out.print(output.visible(_cut(story, 300), keep="\n\t"), markup=False)
    if data["cast"]:
        cast = "; ".join(f"{c['name']} ({c['description']})" if c["description"] else c["name"]
                         for c in data["cast"])
        out.print(f"\nCast: {output.visible(cast)}", markup=False, soft_wrap=True)
    task = data["task"]
    if task is None:
        out.print(f"\nNo storyboard yet: storyboard generate {data['id']}")
        return
    p = task["progress"]
    out.print(
        f"\nLatest storyboard task {task['id']}: {task['status']} ({p['done']}/{p['total']} shots)",
        markup=False,
    )
    if task["error"]:
        out.print(f"error: {output.visible(task['error'])}", markup=False)
    if data["shots"]:
        total = sum(s["duration"] for s in data["shots"])
        out.print(f"{len(data['shots'])} shots, {total:g} s in all", markup=False)
    if data["script_url"]:
        out.print(f"Shot list: {output.visible(data['script_url'])}", markup=False,
                  soft_wrap=True)
    for shot in data["shots"]:
        print_shot(shot)
