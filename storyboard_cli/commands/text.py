"""Human-readable output: tables of shots and links (the --json shapes live in store.py)."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from storyboard_cli import output


def shots_table(shots: list[dict[str, Any]]) -> Table:
    table = Table("id", "#", "camera", "description", "image link", show_lines=False)
    for s in shots:
        desc = s["description"]
        table.add_row(
            str(s["id"]), str(s["index"] + 1), output.cell(s["camera"] or ""),
            output.cell(desc if len(desc) <= 60 else desc[:59] + "…"),
            output.cell(s["image_url"] or "-"),
        )
    return table


def print_project(data: dict[str, Any]) -> None:
    title, style = (output.cell(data[k]) for k in ("title", "style"))
    output.stdout.print(f"[bold]{title}[/]  (project {data['id']}, style {style})")
    story = data["story_text"].strip()
    story = story if len(story) <= 300 else story[:299] + "…"
    output.stdout.print(output.visible(story, keep="\n\t"), markup=False)
    task = data["task"]
    if task is None:
        output.stdout.print(f"\nNo storyboard yet: storyboard generate {data['id']}")
        return
    p = task["progress"]
    output.stdout.print(
        f"\nLatest storyboard task {task['id']}: {task['status']} ({p['done']}/{p['total']} shots)",
        markup=False,
    )
    if task["error"]:
        output.stdout.print(f"error: {output.visible(task['error'])}", markup=False)
    if data["shots"]:
        output.stdout.print(shots_table(data["shots"]))
