"""init, config, new, list, show."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from storyboard_cli import output
from storyboard_cli.commands.common import (
    PATH,
    PROJECT,
    Command,
    Context,
    argument,
    command,
    common_options,
    debug_option,
    json_option,
)


@click.command("init", cls=Command)
@argument("directory", "Where to write the files.", default=".", type=PATH)
@json_option
@debug_option
@command
def init(directory: Path, json_out: bool, debug: bool) -> None:
    """Write a commented storyboard.toml and .env.example where none exist.

    \b
    Example: storyboard init && cp .env.example .env && $EDITOR .env
    """
    from storyboard_cli.setup_files import write_starter_files

    written, kept = write_starter_files(directory)
    if json_out:
        output.print_json({"written": [str(p) for p in written], "kept": [str(p) for p in kept]})
        return
    for p in written:
        output.info(f"wrote {p}")
    for p in kept:
        output.info(f"kept existing {p}")


@click.command("config", cls=Command)
@common_options
@command
def config(config: Path | None, json_out: bool, debug: bool) -> None:
    """Print the effective configuration (file + .env + environment), secrets redacted.

    \b
    Example: STORYBOARD_REDIS_URL=redis://queue:6379/0 storyboard config --json | jq .redis
    """
    data = Context(config).config.redacted()
    if json_out:
        output.print_json(data)
        return
    source = output.visible(data.pop("source") or "built-in defaults")
    output.stdout.print(f"# source: {source}", markup=False)
    for section, values in data.items():
        output.stdout.print(f"\n[{section}]", markup=False)
        for key, value in values.items():
            output.stdout.print(f"{key} = {_toml_value(value)}", markup=False)


def _toml_value(value: Any) -> str:
    import json

    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value, ensure_ascii=False)


@click.command("new", cls=Command)
@argument("file", "Story text file, or - for stdin.")
@click.option("--title", help="Project title [default: file name].")
@click.option("--style", default="movie", show_default=True,
              help="Visual style preset (movie, anime, noir, watercolor, ...).")
@click.option("--encoding", help="Force the text encoding [default: detect].")
@common_options
@command
def new(
    file: str, title: str | None, style: str, encoding: str | None, config: Path | None,
    json_out: bool, debug: bool,
) -> None:
    """Create a project from a story file (UTF-8, UTF-8 with BOM, UTF-16 or GB18030).

    \b
    Example: storyboard new examples/lighthouse.txt --style watercolor
    """
    from storyboard_cli.stories import load_story

    ctx = Context(config, create_store=True)
    text, name, _ = load_story(file, encoding, ctx.config.limits.max_story_bytes)
    project = ctx.service.create_project(Path(name).stem if title is None else title, text,
                                         style)
    if json_out:
        output.print_json(project)
        return
    output.info(
        f"Created project [bold]{project['id']}[/] {output.escape(repr(project['title']))} "
        f"({len(text):,} characters, style {output.escape(project['style'])})."
    )
    output.info(f"Next: storyboard generate {project['id']}")


@click.command("list", cls=Command)
@common_options
@command
def list_(config: Path | None, json_out: bool, debug: bool) -> None:
    """List projects with their shot count and latest task status.

    \b
    Example: storyboard list --json | jq '.[].title'
    """
    rows = Context(config).service.list_projects()
    if json_out:
        output.print_json(rows)
        return
    if not rows:
        output.info("No projects yet. Create one: storyboard new story.txt")
        return
    from rich.table import Table

    table = Table("id", "title", "style", "chars", "shots", "last task", "created")
    for r in rows:
        table.add_row(
            str(r["id"]), output.cell(r["title"]), output.cell(r["style"]),
            str(r["story_chars"]), str(r["shots"]), r["last_task_status"] or "-",
            r["created_at"][:19],
        )
    output.stdout.print(table)


@click.command("show", cls=Command)
@argument("project", "Project id or exact title.", type=PROJECT)
@common_options
@command
def show(project: str, config: Path | None, json_out: bool, debug: bool) -> None:
    """Show one project: its story, latest storyboard task and shots with links.

    \b
    Example: storyboard show 1 --json | jq '.shots[].image_url'
    """
    data = Context(config).service.project(project)
    if json_out:
        output.print_json(data)
        return
    from storyboard_cli.commands.text import print_project

    print_project(data)


def register(group: click.Group) -> None:
    for cmd in (init, config, new, list_, show):
        group.add_command(cmd)
