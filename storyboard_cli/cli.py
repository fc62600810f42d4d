"""The `storyboard` command. Kept light: heavy modules are imported inside commands."""

from __future__ import annotations

import click

from storyboard_cli import __version__
from storyboard_cli.commands import board, projects, stack, tasks
from storyboard_cli.commands.common import Group


@click.group(
    "storyboard", cls=Group, no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(__version__, "--version", message="%(version)s",
                      help="Print the version and exit.")
def cli() -> None:
    """Turn a story into a storyboard: a shot list plus one image per shot, rendered on a GPU
    box through Redis/RQ and an FRP tunnel, stored in S3 with presigned links.

    Quick start: storyboard demo

    Exit codes: 0 ok, 1 task failed, 2 bad input, 3 service unreachable, 4 timeout.
    """


projects.register(cli)
tasks.register(cli)
board.register(cli)
stack.register(cli)


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
