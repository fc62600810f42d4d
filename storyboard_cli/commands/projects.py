"""init, config, new, list, show, cast, settings, rename, rm."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from storyboard_cli import output
from storyboard_cli.commands.common import (
    PATH,
    PROJECT,
    Command,
    ConfigAndService,
    argument,
    command,
    common_options,
    debug_option,
    json_option,
    render_settings,
    render_settings_options,
    service_options,
)
from storyboard_cli.screenplay import FORMATS
from storyboard_contract.errors import UsageError
from storyboard_contract.frames import ASPECTS


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
    """Print the effective configuration, secrets redacted, and where each value came from.

    Each value's source is one of: default, file (storyboard.toml), .env $VAR (which file),
    environment $VAR. The environment wins over .env, and both over the file.

    \b
    Example: STORYBOARD_REDIS_URL=redis://queue:6379/0 storyboard config --json | jq .redis
             storyboard config | grep -v default     # what is set, and where
    """
    from storyboard_contract.config import value_sources

    sources = value_sources(config)  # before loading: that copies .env into the environment
    data = ConfigAndService(config).config.redacted()
    if json_out:
        output.print_json({**data, "sources": sources})
        return
    source = output.visible(data.pop("source") or "built-in defaults")
    output.stdout.print(f"# source: {source}", markup=False)
    for section, values in data.items():
        output.stdout.print(f"\n[{section}]", markup=False)
        for key, value in values.items():
            origin = sources.get(section, {}).get(key, "")
            output.stdout.print(f"{key} = {_toml_value(value)}  # {origin}", markup=False,
                                soft_wrap=True)


def _toml_value(value: Any) -> str:
    import json

    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value, ensure_ascii=False)


@click.command("new", cls=Command)
@argument("file", "Story or screenplay file (prose, .fountain, .fdx), or - for stdin.")
@click.option("--title", help="Project title [default: the screenplay's title page, else the "
              "file name].")
@click.option("--format", "story_format", type=click.Choice(FORMATS, case_sensitive=False),
              help="What the file holds [default: by its extension, else its content].")
@click.option("--style", default="movie", show_default=True,
              help="Visual style preset (movie, anime, noir, watercolor, ...).")
@click.option("--aspect", metavar="RATIO",
              help=f"Frame aspect: {', '.join(ASPECTS)} [default: images.aspect, 16:9].")
@click.option("--encoding", help="Force the text encoding [default: detect].")
@render_settings_options
@service_options
@command
def new(
    file: str, title: str | None, story_format: str | None, style: str, aspect: str | None,
    encoding: str | None, model: str | None, loras: tuple[str, ...], scheduler: str | None,
    steps: int | None, cfg: float | None, negative: str | None, consistency: str | None,
    config: Path | None, json_out: bool, debug: bool,
) -> None:
    """Create a project from a story in prose (UTF-8, UTF-8 with BOM, UTF-16 or GB18030) or a
    screenplay (Fountain, Final Draft): a screenplay's shots follow its scenes.

    The render settings (--model, --lora, --scheduler, --steps, --cfg, --negative,
    --consistency) are the model's defaults from storyboard.toml unless given; change them
    later with `storyboard settings`.

    \b
    Example: storyboard new examples/lighthouse.txt --style watercolor --aspect 2.39:1
             storyboard new last_light.fdx            # titled from its title page
             cat draft.txt | storyboard new - --format fountain --title "Draft 2"
             storyboard new story.txt --model sdxl --lora ink-wash.safetensors:0.8 \
               --scheduler dpmpp_2m_karras --steps 30 --cfg 6 --negative "text, watermark"
    """
    from storyboard_cli.inputs import check_aspect, check_story_format
    from storyboard_cli.stories import file_limit, load_story

    held = ConfigAndService(config, create_store=True)
    if aspect is not None:  # refused before the story is even read
        aspect = check_aspect(aspect)
    story_format = check_story_format(story_format)
    settings = render_settings(model, loras, scheduler, steps, cfg, negative, consistency)
    text, name, _ = load_story(file, encoding, file_limit(held.config.limits))
    service = held.service
    project = service.create_project(title, text, style, aspect, story_format, name, settings)
    if json_out:
        output.print_json(project)
        return
    if project["format"] == "prose":
        what = f"{len(text):,} characters"
    else:
        kind = "Fountain" if project["format"] == "fountain" else "Final Draft"
        what = f"a {kind} screenplay of {len(project['scenes'])} scene(s)"
    output.info(
        f"Created project [bold]{project['id']}[/] {output.escape(repr(project['title']))} "
        f"({what}, style {output.escape(project['style'])}, "
        f"{project['aspect']} frames of {project['width']}×{project['height']})."
    )
    twins = [p["id"] for p in service.list_projects()
             if p["title"] == project["title"] and p["id"] != project["id"]]
    if twins:
        output.info(f"[yellow]Note:[/] project {', '.join(map(str, twins))} has this title too: "
                    f"name this one by its id ({project['id']}), or rename one "
                    "(storyboard rename ID TITLE)")
    output.info(f"Next: storyboard generate {project['id']}")


@click.command("list", cls=Command)
@service_options
@command
def list_(config: Path | None, json_out: bool, debug: bool) -> None:
    """List projects with their shot count and latest task status.

    \b
    Example: storyboard list --json | jq '.[].title'
    """
    rows = ConfigAndService(config).service.list_projects()
    if json_out:
        output.print_json(rows)
        return
    if not rows:
        output.info("No projects yet. Create one: storyboard new story.txt")
        return
    from rich.table import Table

    table = Table("id", "title", "style", "aspect", "chars", "shots", "last task", "created")
    for r in rows:
        table.add_row(
            str(r["id"]), output.cell(r["title"]), output.cell(r["style"]), r["aspect"],
            str(r["story_chars"]), str(r["shots"]), r["last_task_status"] or "-",
            r["created_at"][:19],
        )
    output.stdout.print(table)


@click.command("show", cls=Command)
@argument("project", "Project id or exact title.", type=PROJECT)
@click.option("--task", metavar="TASK_ID",
              help="Show this storyboard task's shots (see `storyboard tasks PROJECT`).")
@click.option("--revision", type=int, metavar="N",
              help="Show the storyboard of revision N of the story (see `storyboard update`).")
@service_options
@command
def show(project: str, task: str | None, revision: int | None, config: Path | None,
         json_out: bool, debug: bool) -> None:
    """Show one project: its story, frame, cast, its latest storyboard task with its progress,
    and every shot (camera, action, dialogue, characters, duration, prompt, seed) with links.

    The shots are those of the newest storyboard with a plan that was not cancelled: while a
    new task is planning, the one before it; after `generate --no-images`, the new plan
    (it says where the latest frames are: show --task). Each shot says whether its panel
    is approved, stale (edited since it was rendered), or new or changed in this revision
    of the story, with the writer's notes.

    \b
    Example: storyboard show 1 --json | jq '.shots[] | {number, camera, dialogue}'
             storyboard show lighthouse --revision 1
    """
    data = ConfigAndService(config).service.project(project, task, revision)
    if json_out:
        output.print_json(data)
        return
    from storyboard_cli.commands.text import print_project

    print_project(data, chosen=task is not None or revision is not None)


@click.command("cast", cls=Command)
@argument("project", "Project id or exact title.", type=PROJECT)
@click.option("--set", "assignments", multiple=True, metavar='"NAME=DESCRIPTION"',
              help="Describe a character (repeatable); a new name joins the cast.")
@click.option("--remove", multiple=True, metavar="NAME",
              help="Drop a character (repeatable): not a person; no plan casts the name again.")
@click.option("--alias", "aliases", multiple=True, metavar='"NAME=OTHER,OTHER"',
              help="A character's other names, all of them (repeatable; NAME= for none): "
                   "the same person wherever the story says them.")
@click.option("--image", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              metavar="FILE", help="With one --set: the character's reference image (a PNG "
              "or JPEG, uploaded to the bucket).")
@click.option("--lora", metavar="FILE[:SCALE]",
              help="With one --set: the character's own LoRA, a .safetensors file in the GPU "
                   "daemon's images.lora_dir (\"\" for none; consistency lora).")
@click.option("--trigger", metavar="WORD",
              help="With one --set: the word the character's LoRA was trained on (\"\" for "
                   "none).")
@click.option("--portraits", is_flag=True,
              help="Render a neutral portrait of every character from its description and "
                   "keep it as its reference image (again: a new one).")
@click.option("--portrait", "portrait_names", multiple=True, metavar="NAME",
              help="As --portraits, for this character only (repeatable).")
@service_options
@command
def cast(
    project: str, assignments: tuple[str, ...], remove: tuple[str, ...],
    aliases: tuple[str, ...], image: Path | None, lora: str | None, trigger: str | None,
    portraits: bool, portrait_names: tuple[str, ...], config: Path | None, json_out: bool,
    debug: bool,
) -> None:
    """List a project's characters, or change them: your word holds over every plan.

    A character's description goes, word for word, into the prompt of every shot that shows
    the character; later renders and regen-shot use the new words. A character described or
    given other names is linked at once to every shot whose narration names it (one edit:
    `undo` takes it back), and every later plan keeps it, its other names and the removals.

    \b
    A reference image (--image, or a portrait rendered from the description) and a LoRA with
    its trigger word carry the character's identity from shot to shot under the project's
    consistency mode (README, "Characters").

    \b
    Example: storyboard cast 1 --set "Lin=young woman, red wool scarf, black bob"
             storyboard cast 1 --alias "Lin=林"
             storyboard cast 2 --remove Glasgow
             storyboard cast 1 --set "Lin=young woman" --image lin.png
             storyboard cast 1 --portraits
    """
    service = ConfigAndService(config).service
    descriptions = _pairs(assignments, "--set", "DESCRIPTION")
    identity = {key: value for key, value in (("lora", lora), ("trigger", trigger))
                if value is not None}
    if image is not None:
        identity["image"] = _read_image(image)
    if identity and len(descriptions) != 1:
        raise UsageError('--image, --lora and --trigger go with one --set "NAME=DESCRIPTION"')
    if (portraits or portrait_names) and (descriptions or remove or aliases or identity):
        raise UsageError("--portraits renders the cast as it is: change it in another command")
    if portraits or portrait_names:
        characters = service.portraits(project, list(portrait_names) or None)
    elif descriptions or remove or aliases:
        characters = service.set_cast(
            project, descriptions, list(remove), _pairs(aliases, "--alias", "OTHER,OTHER"),
            {next(iter(descriptions)): identity} if identity else None)
    else:
        characters = service.cast(project)
    if json_out:
        output.print_json(characters)
        return
    from storyboard_cli.commands.text import print_cast

    print_cast(characters, project)


def _read_image(path: Path) -> bytes:
    """A reference image file's bytes, read no further than a reference image may be."""
    from storyboard_contract.wire import MAX_REFERENCE_BYTES

    try:
        with path.open("rb") as f:
            return f.read(MAX_REFERENCE_BYTES + 1)
    except OSError as exc:
        raise UsageError(f"--image {path}: cannot read it: {exc.strerror}") from None


def _pairs(values: tuple[str, ...], option: str, what: str) -> dict[str, str]:
    """NAME=VALUE options as {NAME: VALUE}."""
    pairs: dict[str, str] = {}
    for value in values:
        name, sep, given = value.partition("=")
        if not sep:
            raise UsageError(f'{option} {value!r}: write it as "NAME={what}"')
        if name in pairs:
            raise UsageError(f"{name} is given twice in this change ({option})")
        pairs[name] = given
    return pairs


@click.command("settings", cls=Command)
@argument("project", "Project id or exact title.", type=PROJECT)
@render_settings_options
@click.option("--reset", multiple=True, metavar="SETTING",
              type=click.Choice(["model", "loras", "scheduler", "steps", "cfg", "negative",
                                 "consistency"]),
              help="Back to the model's default (repeatable).")
@service_options
@command
def settings(
    project: str, model: str | None, loras: tuple[str, ...], scheduler: str | None,
    steps: int | None, cfg: float | None, negative: str | None, consistency: str | None,
    reset: tuple[str, ...], config: Path | None, json_out: bool, debug: bool,
) -> None:
    """Show a project's render settings, or change them: the model, LoRAs, sampler, steps,
    CFG, negative prompt and consistency mode its next tasks render with (a task already
    queued keeps its own).

    \b
    Example: storyboard settings 1 --scheduler euler_a --steps 28 --lora ink.safetensors:0.6
             storyboard settings 1 --reset loras --reset cfg
    """
    changes = render_settings(model, loras, scheduler, steps, cfg, negative, consistency)
    for name in reset:
        key = "negative_prompt" if name == "negative" else name
        if key in changes:
            raise UsageError(f"--reset {name} and a new value for it: choose one")
        changes[key] = None
    result = ConfigAndService(config).service.project_settings(project, changes or None)
    if json_out:
        output.print_json(result)
        return
    from storyboard_cli.commands.text import settings_line

    output.stdout.print(f"Project {project} renders with: "
                        f"{output.visible(settings_line(result))}", markup=False,
                        soft_wrap=True)


@click.command("rename", cls=Command)
@argument("project", "Project id or exact title.", type=PROJECT)
@argument("title", "The new title (one another project does not have).")
@service_options
@command
def rename(project: str, title: str, config: Path | None, json_out: bool, debug: bool) -> None:
    """Give a project a new title. Its images and scripts stay where they are in the bucket
    (their keys name the project's id, not its title), and their links keep working.

    \b
    Example: storyboard rename 3 "lighthouse (winter)"
    """
    view = ConfigAndService(config).service.rename_project(project, title)
    if json_out:
        output.print_json(view)
        return
    output.info(f"Project {view['id']} is now titled {output.escape(repr(view['title']))}.")


@click.command("rm", cls=Command)
@argument("project", "Project id or exact title.", type=PROJECT)
@click.option("--keep-objects", is_flag=True, help="Remove only the project's records; leave "
              "its images and scripts in the bucket.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask (needed without a terminal).")
@service_options
@command
def rm(project: str, keep_objects: bool, yes: bool, config: Path | None, json_out: bool,
       debug: bool) -> None:
    """Remove a project: its tasks, shots and cast, and its objects in the bucket unless
    --keep-objects: the images and shot-list scripts its tasks made under
    `<[s3] prefix>/<project id>/` and its uploaded exports (their links stop working).
    Refused while one of its tasks is unfinished. Its id is never given to another project.

    \b
    Example: storyboard rm 3 --yes
    """
    service = ConfigAndService(config).service
    view = service.project(project)
    if not yes:
        import sys

        if json_out or not sys.stdin.isatty():
            raise UsageError(f"removing project {view['id']} needs --yes without a terminal")
        where = ("its records only (its bucket objects stay)" if keep_objects else
                 "its records and its objects in the bucket")
        click.confirm(f"Remove project {view['id']} {view['title']!r} ({len(view['shots'])} "
                      f"shots shown): {where}?", abort=True, err=True)
    removed = service.remove_project(str(view["id"]), keep_objects)
    if json_out:
        output.print_json(removed)
        return
    objects = removed["objects"]
    fate = ("its bucket objects were kept" if objects["kept"] else
            f"{objects['deleted']} object(s) deleted from bucket {objects['bucket']} under "
            f"{', '.join(objects['prefixes'])}")
    output.stdout.print(
        f"Removed project {removed['id']} {output.visible(repr(removed['title']))}: "
        f"{removed['tasks']} task(s), {removed['shots']} shot(s); {output.visible(fate)}.",
        markup=False, soft_wrap=True)


def register(group: click.Group) -> None:
    for cmd in (init, config, new, list_, show, cast, settings, rename, rm):
        group.add_command(cmd)
