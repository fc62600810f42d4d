"""The `storyboard` command. Kept light: a command's module is imported when it runs (the
command modules cost start-up more than click itself), heavy modules inside commands."""

from __future__ import annotations

from pathlib import Path

import click

from storyboard_cli import __version__
from storyboard_cli.commands.common import LazyGroup, service_options

# Every command, in the order --help lists them: (its module under storyboard_cli.commands,
# the first sentence of its help, which --help shortens to the terminal's width). A test holds
# each to the command's own help (tests/test_projects_cli.py).
COMMANDS: dict[str, tuple[str, str]] = {
    "init": ("projects", "Write a commented storyboard.toml and .env.example where none exist."),
    "config": ("projects",
        "Print the effective configuration, secrets redacted, and where each value came from."),
    "new": ("projects",
        "Create a project from a story in prose (UTF-8, UTF-8 with BOM, UTF-16 or GB18030) or a "
        "screenplay (Fountain, Final Draft): a screenplay's shots follow its scenes."),
    "list": ("projects", "List projects with their shot count and latest task status."),
    "show": ("projects",
        "Show one project: its story, frame, cast, its latest storyboard task with its progress, "
        "and every shot (camera, action, dialogue, characters, duration, prompt, seed) with "
        "links."),
    "cast": ("projects",
        "List a project's characters, or change them: your word holds over every plan."),
    "settings": ("projects",
        "Show a project's render settings, or change them: the model, LoRAs, sampler, steps, "
        "CFG, negative prompt and consistency mode its next tasks render with (a task already "
        "queued keeps its own)."),
    "rename": ("projects", "Give a project a new title."),
    "rm": ("projects",
        "Remove a project: its tasks, shots and cast, and its objects in the bucket unless "
        "--keep-objects: the images and shot-list scripts its tasks made under `<[s3] "
        "prefix>/<project id>/` and its uploaded exports (their links stop working)."),
    "generate": ("tasks",
        "Plan a project's shot list and render one image per shot on the GPU daemon."),
    "regen-shot": ("tasks",
        "Render one shot again (a shot_generation task); only that shot's image changes."),
    "status": ("tasks", "Show one task: status, progress, error and its shots with links."),
    "tasks": ("tasks",
        "List tasks, newest first, with their status and progress (--json: task objects without "
        "their shots)."),
    "links": ("tasks",
        "Fresh presigned links for every shot image and the shot-list script of the storyboard "
        "`show` lists (nothing is rendered again); with --json, the project object with the new "
        "links."),
    "retry": ("tasks",
        "Run again only what failed or was cancelled: the planning, or the shots not done; done "
        "shots stay."),
    "cancel": ("tasks",
        "Cancel a pending or running task: its queued jobs leave the queue, a render in progress "
        "stops at its next step, and the task is marked cancelled."),
    "worker": ("tasks",
        "Run an RQ worker for this system's queues (plan and render jobs); logs on stderr."),
    "shot": ("edits", "Show one shot, or change its fields."),
    "shots": ("edits",
        "Change the order of a project's shots: split, merge, move, insert, delete."),
    "note": ("edits",
        "Write a note on a shot's panel: in `show`, the boards (HTML, PDF), the zip's shot list "
        "and Storyboarder's notes."),
    "approve": ("edits",
        "Approve a shot's panel: a re-plan (generate, update), a retry and `generate --stale` "
        "leave it as it is; only an explicit regen-shot renders it again."),
    "unapprove": ("edits", "Take a panel's approval back."),
    "log": ("edits",
        "The history of a project's storyboard: every edit and story revision, newest first, "
        "with who, when, and each field before → after."),
    "undo": ("edits",
        "Undo the newest edit of the storyboard `show` lists that is not undone yet: its shots "
        "as they were before it."),
    "update": ("edits",
        "Store a revised story as a new revision and plan it: shots whose text is unchanged keep "
        "their panels (images, seeds, notes, approval) and are not rendered; new and changed "
        "shots render, and `show` marks them."),
    "revisions": ("edits",
        "The revisions of a project's story, oldest first, with the storyboard task planned from "
        "each (`show --revision N` shows it)."),
    "diff": ("edits",
        "The shots added, removed and changed between the storyboards of two revisions of the "
        "story (shots matched by their text, not their position)."),
    "export": ("board",
        "Export a project's storyboard: frames read from the bucket by their keys, each with its "
        "number, shot size, camera move, duration, action and dialogue."),
    "up": ("stack",
        "Start the local stack (Redis, S3, GPU daemon, FRP tunnel, workers) in the background."),
    "down": ("stack", "Stop exactly the processes `storyboard up` started (by pid); data stays."),
    "ps": ("stack", "Show the local stack: each part's state, pid and address."),
    "demo": ("stack",
        "From nothing to a finished storyboard on this machine: up, new, generate, the board "
        "exported as HTML and PDF (in ./exports), and the one URL to open it in a browser."),
    "doctor": ("stack",
        "Check every part of the system; one row per check, with a fix for each failure."),
    "frp": ("stack", "The FRP tunnel between the host and the GPU box."),
    "bucket": ("stack", "The S3 bucket: create it, or serve one from this machine."),
    "serve": ("serve",
        "Serve the HTTP API (the original system's endpoints and the rest, /docs) and the web "
        "board at /, over this machine's store, Redis and bucket; prints the URL to open."),
    "token": ("serve",
        "Print the API token of `storyboard serve` on stdout, and where it lives: what the web "
        "board's login form asks for once per browser, and what remote clients send "
        "(STORYBOARD_API_TOKEN, in the environment or the .env beside storyboard.toml, where "
        "`storyboard up` generates one)."),
}


@click.group(
    "storyboard", cls=LazyGroup, lazy=COMMANDS, no_args_is_help=True,
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


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
