"""Human-readable output: projects, shots, tasks, the cast and links (the --json shapes live
in storyboard_cli/views.py).

Links are printed whole, one to a line, never inside a table: a table cuts long cells to the
terminal's width, or to 80 columns when piped.
"""

from __future__ import annotations

from typing import Any

from rich.table import Table

from storyboard_cli import output
from storyboard_cli.board.sheet import (
    dialogue_text,
    framing,
    heading,
    opens_scene,
    panel_marks,
    provenance_line,
    speech,
)
from storyboard_cli.store.status import TaskStatus, TaskType


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def shots_table(shots: list[dict[str, Any]]) -> Table:
    table = Table("#", "id", "camera", "s", "action / dialogue", "image", show_lines=False)
    for s in shots:
        said = " / ".join(speech(line, quoted=True) for line in s["dialogue"])
        seen = s["action"] or said or s["description"]
        table.add_row(
            output.cell(s["label"]), str(s["id"]), output.cell(framing(s)),
            f"{s['duration']:g}", output.cell(_cut(seen, 60)),
            "yes" if s["image_url"] else "-",
        )
    return table


def print_links(shots: list[dict[str, Any]], project: int, current: bool) -> None:
    """Whole links, one per line, each after its shot's number (the one `show` prints).
    current: these are the shots `show` lists, which regen-shot PROJECT/NUMBER names."""
    linked = [s for s in shots if s["image_url"]]
    if not linked:
        return
    redo = f"; re-render one: storyboard regen-shot {project}/NUMBER" if current else ""
    output.stdout.print(f"\nImage links (renew: storyboard links {project}{redo}):",
                        markup=False, soft_wrap=True)
    for s in linked:
        output.stdout.print(f"  shot {output.visible(s['label'])}: "
                            f"{output.visible(s['image_url'])}", markup=False, soft_wrap=True)


def task_line(task: dict[str, Any]) -> str:
    """A task's state in words: `running, 3/8 shots rendered`, `pending (queued)`,
    `succeeded (plan only, no images)`."""
    p, status = task["progress"], task["status"]
    if task["type"] == TaskType.STORYBOARD and task["no_images"]:
        return f"{status} (plan only, no images)"
    if task["type"] == TaskType.STORYBOARD and task["stale"]:
        return f"{status}, {p['done']}/{p['total']} stale panels rendered"
    if not p["total"]:
        return {TaskStatus.PENDING: "pending (queued)",
                TaskStatus.RUNNING: f"running ({task.get('state') or 'planning the shots'})"
                }.get(
            status, f"{status} (before any shot was planned)")
    return f"{status}, {p['done']}/{p['total']} shots rendered"


def print_tasks(tasks: list[dict[str, Any]]) -> None:
    """Tasks as aligned lines (no table: the ids stay whole when piped)."""
    out = output.stdout
    out.print(f"{'TASK':<36}  {'TYPE':<10}  {'PROJECT':>7}  {'STATUS':<9}  {'DONE':>7}  CREATED",
              markup=False, soft_wrap=True)
    for t in tasks:
        kind = ("stale" if t["stale"] else "storyboard") if t["type"] == TaskType.STORYBOARD \
            else "regen-shot"
        p = t["progress"]
        done = "plan" if t["no_images"] else f"{p['done']}/{p['total']}" if p["total"] else "-"
        out.print(f"{t['id']:<36}  {kind:<10}  {t['project_id']:>7}  {t['status']:<9}  "
                  f"{done:>7}  {t['created_at'][:19].replace('T', ' ')}", markup=False,
                  soft_wrap=True)
        if t["error"]:
            out.print(f"{'':<38}error: {output.visible(t['error'])}", markup=False,
                      soft_wrap=True)


def print_warnings(task: dict[str, Any] | None) -> None:
    """A task's warnings, each on its own line."""
    for warning in (task or {}).get("warnings") or []:
        output.stdout.print(f"warning: {output.visible(warning)}", markup=False,
                            soft_wrap=True)


def settings_line(settings: dict[str, Any]) -> str:
    """A project's render settings in words; unset ones are the model's defaults."""
    loras = ", ".join(f"{lora['name']}:{lora['scale']:g}" for lora in settings["loras"])
    parts = [f"model {settings['model'] or 'default'}",
             *([f"LoRAs {loras}"] if loras else []),
             *([f"scheduler {settings['scheduler']}"] if settings["scheduler"] else []),
             *([f"{settings['steps']} steps"] if settings["steps"] else []),
             *([f"CFG {settings['cfg']:g}"] if settings["cfg"] is not None else []),
             *([f"negative {settings['negative_prompt']!r}"] if settings["negative_prompt"]
               else [])]
    return ", ".join(parts) + ("" if len(parts) == 6 else "; the rest the model's defaults")


def print_shot(shot: dict[str, Any], name: str | None) -> None:
    """One shot as a storyboard artist reads it (the scene's heading over its first shot):
    number, size and move, duration and its marks (approved, stale, new, changed), then the
    fields; name: PROJECT/NUMBER, as regen-shot takes it (None for a storyboard it does not
    take)."""
    out = output.stdout
    scene = opens_scene(shot)
    if scene:
        out.print(f"\n[bold]Scene {output.escape(output.visible(scene))}[/]", soft_wrap=True)
    named = f"{name}, " if name else ""
    head = f"{heading(shot)}  ({named}id {shot['id']}, seed {shot['seed']})"
    marks = " ".join(f"[{mark}]" for mark in panel_marks(shot))
    out.print(f"\n[bold]{output.escape(output.visible(head))}[/]"
              + (f"  {output.escape(marks)}" if marks else ""), soft_wrap=True)
    fields = [
        ("Story", shot["description"] if shot["description"] != shot["action"] else ""),
        ("Action", shot["action"]),
        ("Dialogue", dialogue_text(shot["dialogue"])),
        ("Cast", ", ".join(shot["characters"])),
        ("Prompt", shot["prompt"]),
        ("Notes", shot["notes"]),
        ("Image", shot["image_url"] or "not rendered yet"),
        ("Made by", provenance_line(shot["provenance"]) if shot.get("provenance") else ""),
    ]
    for label, value in fields:
        if value:
            lines = output.visible(value, keep="\n").splitlines()
            out.print(f"  {label + ':':<10}{lines[0]}", markup=False, soft_wrap=True)
            for more in lines[1:]:
                out.print(f"  {'':<10}{more}", markup=False, soft_wrap=True)


def _value(value: Any) -> str:
    """A field's value in the log: lists of lines and names on one line."""
    if isinstance(value, list):
        return " / ".join(dialogue_text([v]) if isinstance(v, dict) else str(v)
                          for v in value) or "(none)"
    if value is None or value == "":
        return "(none)"
    return str(value)


def print_history(entries: list[dict[str, Any]]) -> None:
    """The edit history, newest first: #id, when, who, what, then each field before → after."""
    out = output.stdout
    for e in entries:
        undone = f"  (undone by #{e['undone_by']})" if e["undone_by"] else ""
        out.print(f"#{e['id']:<4} {e['at'][:19].replace('T', ' ')}  {output.visible(e['by'])}  "
                  f"{e['op']}: {output.visible(e['summary'])}{undone}", markup=False,
                  soft_wrap=True)
        for change in e["changes"]:
            out.print(f"      shot {change['shot']} {change['field']}: "
                      f"{output.visible(_cut(_value(change['before']), 70))} → "
                      f"{output.visible(_cut(_value(change['after']), 70))}", markup=False,
                      soft_wrap=True)


def print_diff(diff: dict[str, Any]) -> None:
    """Two revisions' storyboards compared: a count line, then + added, - removed and
    ~ changed shots (their fields before → after)."""
    out = output.stdout
    old, new = diff["from"], diff["to"]
    out.print(f"Revision {old['revision']} → {new['revision']} (tasks {old['task_id'][:8]} → "
              f"{new['task_id'][:8]}): {len(diff['added'])} added, {len(diff['removed'])} "
              f"removed, {len(diff['changed'])} changed, {diff['unchanged']} unchanged",
              markup=False, soft_wrap=True)

    def line(sign: str, shot: dict[str, Any]) -> None:
        text = shot["action"] or dialogue_text(shot["dialogue"]) or shot["description"]
        out.print(f"{sign} shot {output.visible(shot['label'])}: "
                  f"{output.visible(_cut(text, 90))}",
                  markup=False, soft_wrap=True)

    for shot in diff["added"]:
        line("+", shot)
    for shot in diff["removed"]:
        line("-", shot)
    for pair in diff["changed"]:
        before, after = pair["from"], pair["to"]
        out.print(f"~ shot {output.visible(before['label'])} → "
                  f"{output.visible(after['label'])}: {', '.join(pair['fields'])}",
                  markup=False, soft_wrap=True)
        for name in pair["fields"]:
            out.print(f"    {name}: {output.visible(_cut(_value(before[name]), 70))} → "
                      f"{output.visible(_cut(_value(after[name]), 70))}", markup=False,
                      soft_wrap=True)


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


def print_project(data: dict[str, Any], chosen: bool = False) -> None:
    """The project, its cast and the storyboard it shows (chosen: the one `--task` named),
    saying which task that is and where newer work or older frames are."""
    out = output.stdout
    title, style = (output.cell(data[k]) for k in ("title", "style"))
    out.print(f"[bold]{title}[/]  (project {data['id']}, style {style}, {data['aspect']} frames "
              f"of {data['width']}×{data['height']})")
    if data["scenes"]:  # a screenplay: its scenes say more than its first lines
        kind = "Fountain" if data["format"] == "fountain" else "Final Draft"
        out.print(f"A {kind} screenplay of {len(data['scenes'])} scene(s):", markup=False)
        for scene in data["scenes"][:12]:
            out.print(f"  {output.visible(scene['number'])}  "
                      f"{output.visible(scene['heading'] or '(before the first heading)')}",
                      markup=False, soft_wrap=True)
        if len(data["scenes"]) > 12:
            out.print(f"  … and {len(data['scenes']) - 12} more", markup=False)
    else:
        story = data["story_text"].strip()
        out.print(output.visible(_cut(story, 300), keep="\n\t"), markup=False)
    out.print(f"Renders with: {output.visible(settings_line(data['settings']))}", markup=False,
              soft_wrap=True)
    if data["cast"]:
        cast = "; ".join(f"{c['name']} ({c['description']})" if c["description"] else c["name"]
                         for c in data["cast"])
        out.print(f"\nCast: {output.visible(cast)}", markup=False, soft_wrap=True)
    task, shown, frames = data["task"], data["shots_task"], data["frames_task"]
    pid = data["id"]
    if task is None:
        out.print(f"\nNo storyboard yet: storyboard generate {pid}")
        return
    which = "Storyboard" if chosen else "Latest storyboard"
    revision = f", revision {data['revision']} of {data['revisions']}" \
        if data["revisions"] > 1 and data["revision"] else ""
    out.print(f"\n{which} task {task['id']}: {task_line(task)}{revision}", markup=False,
              soft_wrap=True)
    if task["error"]:
        out.print(f"error: {output.visible(task['error'])}", markup=False, soft_wrap=True)
    print_warnings(task)
    if task["status"] == TaskStatus.CANCELLED:
        out.print(f"Resume it: storyboard retry {task['id']}", markup=False, soft_wrap=True)
    if shown is None:
        out.print("No shots planned yet.", markup=False, soft_wrap=True)
    elif shown["id"] != task["id"] and task["stale"]:
        out.print(f"It renders stale panels of the storyboard below: task {shown['id']}.",
                  markup=False, soft_wrap=True)
    elif shown["id"] != task["id"]:
        out.print(f"Showing the storyboard before it: task {shown['id']}, {task_line(shown)}.",
                  markup=False, soft_wrap=True)
    if frames is not None:
        out.print(f"These shots have no frames yet. The latest frames are task {frames['id']}'s "
                  f"({task_line(frames)}): storyboard show {pid} --task {frames['id'][:8]}",
                  markup=False, soft_wrap=True)
    if data["shots"]:
        total = sum(s["duration"] for s in data["shots"])
        redo = "" if chosen else f"; re-render one: storyboard regen-shot {pid}/NUMBER"
        out.print(f"{len(data['shots'])} shots, {total:g} s in all{redo}", markup=False,
                  soft_wrap=True)
        stale = sum(1 for s in data["shots"] if s["stale"] and not s["approved"])
        if stale and not chosen:
            out.print(f"{stale} stale panel(s): storyboard generate {pid} --stale", markup=False,
                      soft_wrap=True)
    if data["script_url"]:
        out.print(f"Shot list: {output.visible(data['script_url'])}", markup=False,
                  soft_wrap=True)
    for shot in data["shots"]:
        print_shot(shot, None if chosen else f"{pid}/{shot['label']}")
