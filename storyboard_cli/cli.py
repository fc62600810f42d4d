"""The `storyboard` command. Kept light: heavy modules are imported inside commands."""

from __future__ import annotations

from pathlib import Path

import click

from storyboard_cli import __version__
from storyboard_cli.commands import board, edits, projects, serve, stack, tasks
from storyboard_cli.commands.common import Group, service_options


@click.group(
    "storyboard", cls=Group, no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@service_options  # before the command, for every command: storyboard --json list
@click.version_option(__version__, "--version", message="%(version)s",
                      help="Print the version and exit.")
def cli(config: Path | None, json_out: bool, debug: bool) -> None:
    """Turn a story into a storyboard: a shot list plus one image per shot, rendered on a GPU
    box through Redis/RQ and an FRP tunnel, stored in S3 with presigned links.

    Quick start: storyboard demo

    Exit codes: 0 ok, 1 task failed or cancelled, 2 bad input, 3 service unreachable,
    4 timeout, 130 interrupted.

    \b
    The options below go before or after the command:
      storyboard --json list    storyboard list --json
    With --server URL (or $STORYBOARD_SERVER, token in $STORYBOARD_API_TOKEN) the project
    and task commands drive a `storyboard serve` elsewhere, with the same output.
    """


projects.register(cli)
tasks.register(cli)
edits.register(cli)
board.register(cli)
stack.register(cli)
serve.register(cli)


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
