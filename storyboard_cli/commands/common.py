"""What every command shares: --json, --config, --debug (after the command or before it:
`storyboard --json list`), --server for the commands that go through the service, and turning
errors into exit codes."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from storyboard_cli import ids, output
from storyboard_contract.errors import (
    EXIT_INTERRUPTED,
    EXIT_TASK_FAILED,
    StoryboardError,
    UsageError,
)

if TYPE_CHECKING:
    from storyboard_cli.service import Service
    from storyboard_contract.config import Config

F = TypeVar("F", bound=Callable[..., Any])


class Argument(click.Argument):
    """A positional argument with a help text, listed under "Arguments:" in --help.

    click has no argument help before 8.5, so the text is kept apart from click's own `help`
    (8.5 would list it a second time, under "Positional arguments").
    """

    def __init__(self, param_decls: list[str], help_text: str = "", **attrs: Any) -> None:
        super().__init__(param_decls, **attrs)
        self.help_text = help_text


class InputError(click.UsageError):
    """Bad input found while parsing (an id), worded for the user already; exit 2."""


class OneLineUsageError(click.UsageError):
    """A usage error shown like every other error: one line on stderr, and {"error": ...} on
    stdout with --json; exit 2."""

    def __init__(self, message: str, json_out: bool) -> None:
        super().__init__(message)
        self.json_out = json_out

    def show(self, file: Any = None) -> None:
        output.error(self.message, self.json_out)


class OneLineUsage:
    """Turns click's usage errors (several lines, no JSON) into OneLineUsageError."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        given = list(args)  # click's parser consumes the list
        try:
            return super().parse_args(ctx, args)  # type: ignore[misc]
        except click.UsageError as exc:
            raise one_line(exc, ctx, given) from None

    def resolve_command(self, ctx: click.Context, args: list[str]) -> Any:
        given = list(args)
        try:
            return super().resolve_command(ctx, args)  # type: ignore[misc]
        except click.UsageError as exc:
            raise one_line(exc, ctx, given) from None


def one_line(exc: click.UsageError, ctx: click.Context, args: list[str]) -> click.UsageError:
    """click's error as one line; a negative number click took for an option is an invalid
    id when the command takes one (`show -1`, `regen-shot -1`)."""
    if isinstance(exc, click.exceptions.NoArgsIsHelpError | OneLineUsageError):
        return exc  # the help text, or converted already
    kinds = [p.type.what for p in ctx.command.params if isinstance(p.type, IdType)]
    if isinstance(exc, click.NoSuchCommand) and isinstance(ctx.command, click.Group):
        # click suggests from the commands imported so far, which for a LazyGroup are none:
        # the suggestion ("Did you mean 'list'?") comes from every command the group lists.
        exc = click.NoSuchCommand(exc.command_name,
                                  possibilities=ctx.command.list_commands(ctx), ctx=ctx)
    if isinstance(exc, InputError):
        message = exc.message
    elif (kinds and isinstance(exc, click.NoSuchOption)
          and ids.NEGATIVE_NUMBER.fullmatch(exc.option_name)):
        message = str(ids.invalid(kinds[0], exc.option_name))
    else:
        message = f"{exc.format_message().rstrip('.')} (see `{ctx.command_path} --help`)"
    return OneLineUsageError(message, "--json" in args or bool(given_before(ctx, "json_out")))


class IdType(click.ParamType):
    """A project, shot or task id argument, parsed by storyboard_cli.ids for every command."""

    def __init__(self, what: str, parse: Callable[[str], Any]) -> None:
        self.what = what
        self.name = f"{what} id"
        self.parse = parse

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None
                ) -> Any:
        if not isinstance(value, str):
            return value
        try:
            return self.parse(value)
        except StoryboardError as exc:
            raise InputError(str(exc), ctx) from None


# A project is an id or a title: the store looks it up (ids.as_row_id), nothing to parse here.
PROJECT = IdType("project", str)
# A shot id or PROJECT/NUMBER, checked here and resolved by the service.
SHOT = IdType("shot", ids.shot_text)
# A task id or a prefix of one, resolved by the service.
TASK_ID = IdType("task", ids.task_id)


class Command(OneLineUsage, click.Command):
    """A command whose --help lists its arguments, with their help, before the options."""

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for param in self.get_params(ctx):
            if isinstance(param, Argument):
                extra = "[required]" if param.required else ""
                if not param.required and isinstance(param.default, str):
                    extra = f"[default: {param.default}]"
                rows.append((param.human_readable_name,
                             f"{param.help_text}  {extra}".strip()))
        if rows:
            with formatter.section("Arguments"):
                formatter.write_dl(rows)
        super().format_options(ctx, formatter)


class Group(OneLineUsage, click.Group):
    """Lists its commands in the order they were added, not alphabetically."""

    command_class = Command
    group_class = type  # subgroups are Groups too

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)


class LazyGroup(Group):
    """A Group whose commands are imported when one is run: `lazy` maps each command's name
    to (its module under storyboard_cli.commands, the first sentence of its help), in the
    order --help lists them. --help reads the table and imports none of the modules (they
    cost start-up more than click itself); tests/test_projects_cli.py holds the table to the
    commands' own help."""

    def __init__(self, *args: Any, lazy: dict[str, tuple[str, str]], **attrs: Any) -> None:
        super().__init__(*args, **attrs)
        self.lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.lazy)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy:
            import importlib

            module = importlib.import_module(f"storyboard_cli.commands.{self.lazy[cmd_name][0]}")
            module.register(self)  # every command of that module, as an eager group has them
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # click's listing, shortened to the width as click shortens a command's own help.
        limit = formatter.width - 6 - max(map(len, self.lazy))
        rows = [(name, click.Command(name, help=help).get_short_help_str(limit))
                for name, (_, help) in self.lazy.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def argument(name: str, help: str, **attrs: Any) -> Callable[[F], F]:
    """`click.argument` with a help text."""
    return click.argument(name, cls=Argument, help_text=help, **attrs)


# One instance for every path parameter: each click.Path() looks up its gettext translation.
PATH = click.Path(path_type=Path)

json_option = click.option(
    "--json", "json_out", is_flag=True,
    help="Print machine-readable JSON on stdout, nothing else.",
)
config_option = click.option(
    "--config", type=PATH,
    help="Configuration file [default: $STORYBOARD_CONFIG, ./storyboard.toml, then the user "
    "config dir].",
)
debug_option = click.option("--debug", is_flag=True, help="Show tracebacks on errors.")

SERVER_KEY = "storyboard.server"


def _remember_server(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    # Kept in ctx.meta (shared by the group's and the command's contexts), so the commands'
    # signatures do not change: ConfigAndService.service reads it.
    if value:
        ctx.meta[SERVER_KEY] = value


server_option = click.option(
    "--server", metavar="URL", expose_value=False, callback=_remember_server,
    help="Go through the HTTP API of a `storyboard serve` at URL instead of this machine's "
    "store and Redis [default: $STORYBOARD_SERVER; token: $STORYBOARD_API_TOKEN].",
)


def render_settings_options(fn: F) -> F:
    """--model, --lora, --scheduler, --steps, --cfg, --negative and --consistency: a
    project's render settings (`new`, `settings`), read back with render_settings()."""
    # Not from wire (which re-exports them): its pydantic models would load at every start.
    from storyboard_contract.config import CONSISTENCY_MODES, SCHEDULER_NAMES

    options = [
        click.option("--model", metavar="NAME",
                     help="A model of storyboard.toml's [images] (its [images.models.NAME] "
                          "tables; the first is the default)."),
        click.option("--lora", "loras", multiple=True, metavar="FILE[:SCALE]",
                     help="A LoRA inside the GPU daemon's images.lora_dir, at a scale (1 = as "
                          "trained; repeatable)."),
        click.option("--scheduler", metavar="NAME",
                     help=f"The sampler: {', '.join(SCHEDULER_NAMES)}."),
        click.option("--steps", type=int, help="Denoising steps."),
        click.option("--cfg", type=float, help="Guidance scale (CFG)."),
        click.option("--negative", help="Negative prompt [default: the model's, else the "
                                        "style's]."),
        click.option("--consistency", metavar="MODE",
                     help=f"How characters keep their identity: {', '.join(CONSISTENCY_MODES)} "
                          "[default: the GPU daemon's images.consistency]."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def render_settings(model: str | None, loras: tuple[str, ...], scheduler: str | None,
                    steps: int | None, cfg: float | None, negative: str | None,
                    consistency: str | None) -> dict[str, Any]:
    """The render settings given on the command line (render_settings_options)."""
    given = {"model": model, "loras": list(loras) or None, "scheduler": scheduler,
             "steps": steps, "cfg": cfg, "negative_prompt": negative,
             "consistency": consistency}
    return {key: value for key, value in given.items() if value is not None}


def common_options(fn: F) -> F:
    """--config, --json and --debug, listed last in every command's --help; the `storyboard`
    group takes them too, for every command under it."""
    return config_option(json_option(debug_option(fn)))


def service_options(fn: F) -> F:
    """The common options and --server: for the commands that work the same against a remote
    `storyboard serve` (they only talk to ConfigAndService.service)."""
    return config_option(server_option(json_option(debug_option(fn))))


def takes_server(command: click.Command) -> bool:
    return any(p.name == "server" for p in command.params)


def given_before(ctx: click.Context | None, name: str) -> Any:
    """A common option given before the command (`storyboard --json list`), or None."""
    return None if ctx is None else ctx.find_root().params.get(name)


def print_newest(rows: list[dict[str, Any]], json_out: bool, limit: int, empty: str,
                 show: Callable[[list[dict[str, Any]]], None]) -> None:
    """A listing newest first (tasks, the edit history): JSON, or `show`n with a note when
    --limit cut it, or `empty` when there is nothing."""
    if json_out:
        output.print_json(rows)
        return
    if not rows:
        output.info(empty)
        return
    show(rows)
    if limit and len(rows) == limit:
        output.info(f"(the newest {limit}; more: --limit 0)")


def command(fn: F) -> F:
    """Run a command body, turning expected failures into one line and an exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ctx = click.get_current_context(silent=True)
        for name in ("config", "json_out", "debug"):
            if name in kwargs and not kwargs[name]:
                kwargs[name] = given_before(ctx, name) or kwargs[name]
        json_out = bool(kwargs.get("json_out"))
        debug = bool(kwargs.get("debug"))
        try:
            if ctx is not None and ctx.meta.get(SERVER_KEY) and not takes_server(ctx.command):
                raise UsageError(f"`{ctx.command_path}` works on this machine only; --server "
                                 "is for the project and task commands (see README, Remote "
                                 "CLI)")
            return fn(*args, **kwargs)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except StoryboardError as exc:
            if debug:
                raise
            output.error(str(exc), json_out)
            raise click.exceptions.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            output.error("interrupted", json_out)
            raise click.exceptions.Exit(EXIT_INTERRUPTED) from None
        except Exception as exc:
            if debug:
                raise
            from storyboard_cli.service import unreachable_service

            mapped = unreachable_service(exc)
            if mapped is not None:
                output.error(str(mapped), json_out)
                raise click.exceptions.Exit(mapped.exit_code) from None
            output.error(
                f"unexpected {type(exc).__name__}: {exc} (run with --debug for details)", json_out
            )
            raise click.exceptions.Exit(EXIT_TASK_FAILED) from None

    return wrapper  # type: ignore[return-value]


class ConfigAndService:
    """What a command works with, each loaded on first use: the configuration, and the service
    (a LocalService, or with --server / $STORYBOARD_SERVER a RemoteService,
    storyboard_cli/remote.py). Not click's Context: one of these per command invocation."""

    def __init__(self, config_path: Path | None, create_store: bool = False) -> None:
        # Only commands that add a project create the store file; the others, given a bad id
        # in a fresh directory, answer "not found" and leave nothing behind.
        self.config_path = config_path
        self.create_store = create_store
        self._config: Config | None = None
        self._service: Service | None = None

    @property
    def config(self) -> Config:
        if self._config is None:
            from storyboard_contract.config import CONFIG_FILENAME, load_config, user_config_path

            self._config = load_config(self.config_path)
            if self._config.source is None and not self.server:
                # Said once a command: its store is wherever it runs, which may be a surprise.
                output.info(output.escape(
                    f"storyboard: no {CONFIG_FILENAME} in {Path.cwd()} or a folder above it, "
                    f"nor {user_config_path()}: using the built-in defaults and the store "
                    f"{self._config.store_path} (`storyboard init` writes a "
                    f"{CONFIG_FILENAME} here)"))
        return self._config

    @property
    def server(self) -> str:
        """The server the service commands go through, or "" for this machine. An explicit
        --server wins over $STORYBOARD_SERVER (which .env may set: loading the config reads
        it)."""
        ctx = click.get_current_context(silent=True)
        given = ctx.meta.get(SERVER_KEY) if ctx is not None else None
        return given or self.config.server.url

    @property
    def service(self) -> Service:
        if self._service is None:
            server = self.server
            if server:
                from storyboard_cli.remote import RemoteService

                self._service = RemoteService(server, self.config.server.api_token)
            else:
                from storyboard_cli.service import LocalService

                self._service = LocalService(self.config, create_store=self.create_store)
        return self._service
