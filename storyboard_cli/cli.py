"""The `storyboard` command. Kept light: heavy modules are imported inside commands."""

from __future__ import annotations

import typer

from storyboard_cli import __version__
from storyboard_cli.commands import projects, stack, tasks

app = typer.Typer(
    name="storyboard",
    help=(
        "Turn a story into a storyboard: a shot list plus one image per shot, rendered on a "
        "GPU box through Redis/RQ and an FRP tunnel, stored in S3 with presigned links.\n\n"
        "Quick start: storyboard demo\n\n"
        "Exit codes: 0 ok, 1 task failed, 2 bad input, 3 service unreachable, 4 timeout."
    ),
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        print(__version__)
        raise typer.Exit()


@app.callback()
def _main(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    pass


projects.register(app)
tasks.register(app)
stack.register(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
