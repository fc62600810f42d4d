"""init, config, new, list, show."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from storyboard_cli import output
from storyboard_cli.commands.common import ConfigOpt, Context, DebugOpt, JsonOpt, command


@command
def init(
    directory: Annotated[Path, typer.Argument(help="Where to write the files.")] = Path("."),
    json_out: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Write a commented storyboard.toml and .env.example where none exist.

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


@command
def config(config: ConfigOpt = None, json_out: JsonOpt = False, debug: DebugOpt = False) -> None:
    """Print the effective configuration (file + .env + environment), secrets redacted.

    Example: STORYBOARD_REDIS_URL=redis://queue:6379/0 storyboard config --json | jq .redis
    """
    data = Context(config).config.redacted()
    if json_out:
        output.print_json(data)
        return
    output.stdout.print(f"# source: {data.pop('source') or 'built-in defaults'}", markup=False)
    for section, values in data.items():
        output.stdout.print(f"\n[{section}]", markup=False)
        for key, value in values.items():
            output.stdout.print(f"{key} = {_toml_value(value)}", markup=False)


def _toml_value(value: Any) -> str:
    import json

    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value, ensure_ascii=False)


@command
def new(
    file: Annotated[str, typer.Argument(help="Story text file, or - for stdin.")],
    title: Annotated[str | None, typer.Option(help="Project title [default: file name].")] = None,
    style: Annotated[
        str, typer.Option(help="Visual style preset (movie, anime, noir, watercolor, ...).")
    ] = "movie",
    encoding: Annotated[
        str | None, typer.Option(help="Force the text encoding [default: detect].")
    ] = None,
    config: ConfigOpt = None,
    json_out: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Create a project from a story file (UTF-8, UTF-8 with BOM, UTF-16 or GB18030).

    Example: storyboard new examples/lighthouse.txt --style watercolor
    """
    from storyboard_cli.stories import load_story

    ctx = Context(config)
    text, name, _ = load_story(file, encoding, ctx.config.limits.max_story_bytes)
    if title is not None and not title.strip():
        from storyboard_cli.errors import UsageError

        raise UsageError("--title must not be empty")
    project_title = (title or Path(name).stem).strip()
    project = ctx.store.create_project(project_title, text, style.strip() or "movie")
    if json_out:
        output.print_json(_project_summary(project))
        return
    output.info(
        f"Created project [bold]{project['id']}[/] {project['title']!r} "
        f"({len(text):,} characters, style {project['style']})."
    )
    output.info(f"Next: storyboard generate {project['id']}")


def _project_summary(project: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": project["id"],
        "title": project["title"],
        "style": project["style"],
        "story_chars": len(project["story"]),
        "created_at": project["created_at"],
    }


@command
def list_(config: ConfigOpt = None, json_out: JsonOpt = False, debug: DebugOpt = False) -> None:
    """List projects with their shot count and latest task status.

    Example: storyboard list --json | jq '.[].title'
    """
    rows = Context(config).store.list_projects()
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
            str(r["id"]), r["title"], r["style"], str(r["story_chars"]), str(r["shots"]),
            r["last_task_status"] or "-", r["created_at"][:19],
        )
    output.stdout.print(table)


@command
def show(
    project: Annotated[str, typer.Argument(help="Project id or exact title.")],
    config: ConfigOpt = None,
    json_out: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Show one project: its story, latest storyboard task and shots with links.

    Example: storyboard show 1 --json | jq '.shots[].image_url'
    """
    ctx = Context(config)
    data = ctx.store.project_view(ctx.store.find_project(project)["id"])
    if json_out:
        output.print_json(data)
        return
    from storyboard_cli.render_text import print_project

    print_project(data)


def register(app: typer.Typer) -> None:
    app.command()(init)
    app.command()(config)
    app.command()(new)
    app.command("list")(list_)
    app.command()(show)
