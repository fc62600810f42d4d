"""shot, shots (split, merge, move, insert, delete), note, approve, unapprove, log, undo,
update, revisions, diff: editing the storyboard `show` lists, its history, and revisions of
the story.

The field options of `shot` and `shots insert` are made from the one table of a shot's
fields (storyboard_cli/shot_fields.py): a field added there is an option here.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from storyboard_cli import output
from storyboard_cli.commands.common import (
    PROJECT,
    SHOT,
    Command,
    ConfigAndService,
    Group,
    argument,
    command,
    print_newest,
    service_options,
)
from storyboard_cli.commands.tasks import _queued, no_wait_option, timeout_option
from storyboard_cli.screenplay import FORMATS
from storyboard_cli.shot_fields import FIELDS

F = TypeVar("F", bound=Callable[..., Any])

SHOT_HELP = ("PROJECT/NUMBER (project id or title, the shot number `storyboard show` prints: "
             "7, or 3.2 in a screenplay) or a shot id.")


def field_options(fn: F) -> F:
    """An option per editable field (shot_fields.FIELDS), in the table's order."""
    for field in reversed(FIELDS):
        fn = click.option(f"--{field.name}", field.name, multiple=field.multiple,
                          metavar=field.metavar, help=field.help)(fn)
    return fn


def given_fields(values: dict[str, Any]) -> dict[str, Any]:
    """The field options given ({name: value}; a repeated option as a list)."""
    given = {}
    for field in FIELDS:
        value = values.get(field.name)
        if field.multiple and value:
            given[field.name] = list(value)
        elif not field.multiple and value is not None:
            given[field.name] = value
    return given


def print_edit(answer: dict[str, Any], json_out: bool) -> None:
    """An edit's answer: the shots it leaves (as `show` prints them) and what it did."""
    if json_out:
        output.print_json(answer)
        return
    from storyboard_cli.commands.text import print_shot

    edit = answer["edit"]
    for shot in answer["shots"]:
        print_shot(shot, f"{edit['project_id']}/{shot['label']}")
    output.info(f"Edit #{edit['id']}: {output.escape(edit['summary'])} "
                f"(take it back: storyboard undo {edit['project_id']})")
    if any(s["stale"] and not s["approved"] for s in answer["shots"]):
        output.info(f"Render the stale panels: storyboard generate {edit['project_id']} --stale")


@click.command("shot", cls=Command)
@argument("shot", SHOT_HELP, type=SHOT)
@field_options
@service_options
@command
def shot(shot: str, config: Path | None, json_out: bool, debug: bool, **fields: Any) -> None:
    """Show one shot, or change its fields. A change to what its panel shows (size, action,
    cast, prompt) makes the panel stale: `generate PROJECT --stale` renders the stale ones.
    A new action or size rewrites the prompt the way the planner writes it, unless --prompt
    is given too.

    \b
    Example: storyboard shot lighthouse/3 --camera close-up --dialogue "Tom: Who's there?"
             storyboard shot 1/2 --characters "Lin,Tom" --duration 4
    """
    service = ConfigAndService(config).service
    given = given_fields(fields)
    if given:
        print_edit(service.edit_shot(shot, given), json_out)
        return
    found = service.shot(shot)
    if json_out:
        output.print_json(found)
        return
    from storyboard_cli.commands.text import print_shot

    print_shot(found, shot if "/" in shot else None)


@click.group("shots", cls=Group)
@argument("project", "Project id or exact title.", type=PROJECT)
@click.pass_context
def shots(ctx: click.Context, project: str) -> None:
    """Change the order of a project's shots: split, merge, move, insert, delete. The shots
    stay numbered 1, 2, ... in order (and the exports follow). Each edit is in `storyboard
    log` and `storyboard undo` takes it back.

    \b
    Example: storyboard shots lighthouse split 3 --at "He turned"
             storyboard shots 1 move 5 --to 2
    """
    ctx.obj = project


def _project() -> str:
    return str(click.get_current_context().obj)


@shots.command("split", cls=Command)
@argument("number", "The shot's number.", type=int)
@click.option("--at", metavar="TEXT", help="Words of the shot's text its second shot starts "
              "with [default: the sentence boundary nearest the middle].")
@service_options
@command
def split(number: int, at: str | None, config: Path | None, json_out: bool, debug: bool
          ) -> None:
    """Split a shot in two: its story text, action and dialogue are shared out where TEXT
    starts, the duration in proportion; both panels are stale.

    \b
    Example: storyboard shots lighthouse split 3 --at "The lamp went out"
    """
    print_edit(ConfigAndService(config).service.split_shot(_project(), number, at), json_out)


@shots.command("merge", cls=Command)
@argument("first", "A shot's number.", type=int)
@argument("second", "The number of the shot next to it.", type=int)
@service_options
@command
def merge(first: int, second: int, config: Path | None, json_out: bool, debug: bool) -> None:
    """Merge two neighbouring shots into one: texts joined, dialogue and cast in order,
    durations added; its panel is stale.

    \b
    Example: storyboard shots lighthouse merge 4 5
    """
    print_edit(ConfigAndService(config).service.merge_shots(_project(), first, second),
               json_out)


@shots.command("move", cls=Command)
@argument("number", "The shot's number.", type=int)
@click.option("--to", "to", type=int, required=True, metavar="K",
              help="Its new position (1 = first).")
@service_options
@command
def move(number: int, to: int, config: Path | None, json_out: bool, debug: bool) -> None:
    """Move a shot to another position; the shots between shift by one.

    \b
    Example: storyboard shots lighthouse move 6 --to 2
    """
    print_edit(ConfigAndService(config).service.move_shot(_project(), number, to), json_out)


@shots.command("insert", cls=Command)
@click.option("--after", type=int, required=True, metavar="N",
              help="The shot it follows (0: before the first).")
@field_options
@service_options
@command
def insert(after: int, config: Path | None, json_out: bool, debug: bool, **fields: Any
           ) -> None:
    """Insert a new shot: --action says what it shows (its prompt follows unless --prompt);
    size medium and 3 s unless given. Its panel is stale until rendered.

    \b
    Example: storyboard shots lighthouse insert --after 2 --action "Gulls over the rocks" \\
                 --camera wide
    """
    print_edit(ConfigAndService(config).service.insert_shot(_project(), after,
                                                            given_fields(fields)), json_out)


@shots.command("delete", cls=Command)
@argument("number", "The shot's number.", type=int)
@service_options
@command
def delete(number: int, config: Path | None, json_out: bool, debug: bool) -> None:
    """Remove a shot; the ones after it move up (`storyboard undo` brings it back).

    \b
    Example: storyboard shots lighthouse delete 7
    """
    print_edit(ConfigAndService(config).service.delete_shot(_project(), number), json_out)


@click.command("note", cls=Command)
@argument("shot", SHOT_HELP, type=SHOT)
@argument("text", 'The note ("" clears it).')
@service_options
@command
def note(shot: str, text: str, config: Path | None, json_out: bool, debug: bool) -> None:
    """Write a note on a shot's panel: in `show`, the boards (HTML, PDF), the zip's shot list
    and Storyboarder's notes.

    \b
    Example: storyboard note lighthouse/3 "warmer light; the lamp should glow"
    """
    print_edit(ConfigAndService(config).service.note_shot(shot, text), json_out)


@click.command("approve", cls=Command)
@argument("shot", SHOT_HELP, type=SHOT)
@service_options
@command
def approve(shot: str, config: Path | None, json_out: bool, debug: bool) -> None:
    """Approve a shot's panel: a re-plan (generate, update), a retry and `generate --stale`
    leave it as it is; only an explicit regen-shot renders it again.

    \b
    Example: storyboard approve lighthouse/3
    """
    print_edit(ConfigAndService(config).service.approve_shot(shot, True), json_out)


@click.command("unapprove", cls=Command)
@argument("shot", SHOT_HELP, type=SHOT)
@service_options
@command
def unapprove(shot: str, config: Path | None, json_out: bool, debug: bool) -> None:
    """Take a panel's approval back.

    \b
    Example: storyboard unapprove lighthouse/3
    """
    print_edit(ConfigAndService(config).service.approve_shot(shot, False), json_out)


@click.command("log", cls=Command)
@argument("project", "Project id or exact title.", type=PROJECT)
@click.option("--limit", type=click.IntRange(min=0), default=20, show_default=True,
              metavar="N", help="Show this many, newest first (0: all).")
@service_options
@command
def log(project: str, limit: int, config: Path | None, json_out: bool, debug: bool) -> None:
    """The history of a project's storyboard: every edit and story revision, newest first,
    with who, when, and each field before → after.

    \b
    Example: storyboard log lighthouse
             storyboard log 1 --json | jq '.[0].changes'
    """
    from storyboard_cli.commands.text import print_history

    print_newest(ConfigAndService(config).service.history(project, limit or None), json_out,
                 limit, "No edits yet: storyboard shot PROJECT/N --help shows what can change",
                 print_history)


@click.command("undo", cls=Command)
@argument("project", "Project id or exact title.", type=PROJECT)
@service_options
@command
def undo(project: str, config: Path | None, json_out: bool, debug: bool) -> None:
    """Undo the newest edit of the storyboard `show` lists that is not undone yet: its shots
    as they were before it. Again, and the one before goes; the undo is in the log too.

    \b
    Example: storyboard undo lighthouse
    """
    print_edit(ConfigAndService(config).service.undo(project), json_out)


@click.command("update", cls=Command)
@argument("project", "Project id or exact title.", type=PROJECT)
@argument("file", "The revised story or screenplay (prose, .fountain, .fdx), or - for stdin.")
@click.option("--format", "story_format", type=click.Choice(FORMATS, case_sensitive=False),
              help="What the file holds [default: by its extension, else its content].")
@click.option("--encoding", help="Force the text encoding [default: detect].")
@no_wait_option
@timeout_option
@service_options
@command
def update(project: str, file: str, story_format: str | None, encoding: str | None,
           no_wait: bool, timeout: float | None, config: Path | None, json_out: bool,
           debug: bool) -> None:
    """Store a revised story as a new revision and plan it: shots whose text is unchanged keep
    their panels (images, seeds, notes, approval) and are not rendered; new and changed shots
    render, and `show` marks them. A screenplay is read again, scenes and all. `diff` lists
    what changed; `show --revision N` shows an older revision's storyboard.

    \b
    Example: storyboard update lighthouse lighthouse-v2.txt
             storyboard update ferry night_ferry_v2.fountain
             storyboard diff lighthouse
    """
    from storyboard_cli.inputs import check_story_format
    from storyboard_cli.stories import file_limit, load_story

    held = ConfigAndService(config)
    story_format = check_story_format(story_format)
    text, name, _ = load_story(file, encoding, file_limit(held.config.limits))
    service = held.service
    answer = service.update_story(project, text, story_format, name)
    if not json_out:
        output.info(f"Revision {answer['revision']} of the story is stored; planning it.")
    _queued(service, answer, no_wait, timeout, json_out)


@click.command("revisions", cls=Command)
@argument("project", "Project id or exact title.", type=PROJECT)
@service_options
@command
def revisions(project: str, config: Path | None, json_out: bool, debug: bool) -> None:
    """The revisions of a project's story, oldest first, with the storyboard task planned
    from each (`show --revision N` shows it).

    \b
    Example: storyboard revisions lighthouse
    """
    listed = ConfigAndService(config).service.revisions(project)
    if json_out:
        output.print_json(listed)
        return
    for r in listed:
        task = r["task_id"] or "no storyboard"
        output.stdout.print(f"revision {r['number']:<3} {r['created_at'][:19].replace('T', ' ')}  "
                            f"{r['chars']:>7,} characters  {output.visible(r['by'] or '-')}  "
                            f"{task}", markup=False, soft_wrap=True)


@click.command("diff", cls=Command)
@argument("project", "Project id or exact title.", type=PROJECT)
@click.option("--from", "from_", type=int, metavar="N",
              help="The older revision [default: the one before --to with a storyboard].")
@click.option("--to", "to", type=int, metavar="M",
              help="The newer revision [default: the newest with a storyboard].")
@service_options
@command
def diff(project: str, from_: int | None, to: int | None, config: Path | None,
         json_out: bool, debug: bool) -> None:
    """The shots added, removed and changed between the storyboards of two revisions of the
    story (shots matched by their text, not their position).

    \b
    Example: storyboard diff lighthouse
             storyboard diff 1 --from 1 --to 3 --json | jq '.changed[].fields'
    """
    answer = ConfigAndService(config).service.diff(project, from_, to)
    if json_out:
        output.print_json(answer)
        return
    from storyboard_cli.commands.text import print_diff

    print_diff(answer)


def register(group: click.Group) -> None:
    for cmd in (shot, shots, note, approve, unapprove, log, undo, update, revisions, diff):
        group.add_command(cmd)
