"""up, down, ps, demo, doctor, and `frp render`: the local stack and the tunnel."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from storyboard_cli import output
from storyboard_cli.commands.common import (
    PATH,
    Command,
    Context,
    Group,
    argument,
    command,
    common_options,
)
from storyboard_cli.errors import ServiceUnavailable

if TYPE_CHECKING:
    from storyboard_cli.stack.doctor import Check
    from storyboard_cli.stack.supervisor import PartStatus, Stack

workers_option = click.option(
    "--workers", "-w", type=click.IntRange(min=0),
    help="How many workers to run [default: [stack] workers].",
)
STATE_STYLE = {"started": "green", "running": "green", "external": "cyan", "stopped": "yellow",
               "failed": "bold red", "unhealthy": "bold red", "skipped": "yellow",
               "not running": "yellow"}
CHECK_STYLE = {"ok": "green", "fail": "bold red", "warn": "yellow", "skip": "dim"}


def _progress(status: PartStatus) -> None:
    """One line per part as it settles, on a terminal only (the table follows on stdout)."""
    if sys.stderr.isatty():
        style = STATE_STYLE.get(status.state, "")
        output.info(f"  [{style}]{status.state:>11}[/] {status.name}")


def _parts_table(statuses: list[PartStatus]) -> None:
    from rich.table import Table

    table = Table("part", "state", "pid", "address", "detail")
    for s in statuses:
        style = STATE_STYLE.get(s.state, "")
        table.add_row(s.name, f"[{style}]{s.state}[/]", str(s.pid or "-"),
                      output.escape(s.address), output.escape(s.detail))
    output.stdout.print(table)
    for s in statuses:
        if s.log_tail:
            output.stdout.print(f"\n[bold]{s.name}[/] log ({output.escape(s.log)}), last lines:")
            output.stdout.print(s.log_tail, markup=False, highlight=False)


def _start_stack(config: Path | None, workers: int | None, json_out: bool,
                 quiet: bool = False) -> Stack:
    """`up`: start what is missing, print the table (unless quiet); raise if a part failed."""
    from storyboard_cli.stack import frp
    from storyboard_cli.stack.supervisor import load_stack

    stack, notes = load_stack(config, generate=True)
    for note in notes:
        output.info(note)
    if not json_out and sys.stderr.isatty():
        output.info(f"Starting the stack in {stack.dir} ...")
    statuses = stack.up(workers, None if json_out else _progress)
    failed = [s.name for s in statuses if not s.ok]
    if json_out and not quiet:
        output.print_json({"ok": not failed, "daemon_url": stack.tunnel_url,
                           "state_dir": str(stack.dir), "parts": [s.as_dict() for s in statuses]})
    elif not quiet or failed:
        _parts_table(statuses)
    if failed:
        raise ServiceUnavailable(f"{len(failed)} part(s) not healthy: {', '.join(failed)} "
                                 "(log tail above); fix and run `storyboard up` again")
    if not (json_out or quiet):
        output.info(f"Workers reach the daemon through the {stack.cfg.frp.mode} tunnel at "
                    f"{stack.tunnel_url}. Stop everything: storyboard down")
        warning = frp.url_warning(stack.cfg)
        if warning:
            output.info(f"[yellow]Note:[/] {output.escape(warning)}")
    return stack


@click.command("up", cls=Command)
@workers_option
@common_options
@command
def up(workers: int | None, config: Path | None, json_out: bool, debug: bool) -> None:
    """Start the local stack (Redis, S3, GPU daemon, FRP tunnel, workers) in the background.

    Parts already running are left alone; each is waited for until healthy. Logs and pid
    files live under [stack] state_dir.

    \b
    Example: storyboard up --workers 3 && storyboard ps
    """
    _start_stack(config, workers, json_out)


@click.command("down", cls=Command)
@common_options
@command
def down(config: Path | None, json_out: bool, debug: bool) -> None:
    """Stop exactly the processes `storyboard up` started (by pid); data stays.

    \b
    Example: storyboard down
    """
    from storyboard_cli.stack.supervisor import load_stack

    stack, _ = load_stack(config)
    statuses = stack.down()
    if json_out:
        output.print_json({"parts": [s.as_dict() for s in statuses]})
    elif statuses:
        _parts_table(statuses)
    else:
        output.info("Nothing to stop: no part of the stack is recorded as running.")


@click.command("ps", cls=Command)
@common_options
@command
def ps(config: Path | None, json_out: bool, debug: bool) -> None:
    """Show the local stack: each part's state, pid and address.

    Exit code 3 if a recorded part is not running or not healthy.

    \b
    Example: storyboard ps --json | jq -r '.parts[] | "\\(.name) \\(.state)"'
    """
    from storyboard_cli.stack.supervisor import load_stack

    stack, _ = load_stack(config)
    statuses = stack.ps()
    if json_out:
        output.print_json({"daemon_url": stack.tunnel_url, "state_dir": str(stack.dir),
                           "parts": [s.as_dict() for s in statuses]})
    elif statuses:
        _parts_table(statuses)
    else:
        output.info("The stack is not running. Start it: storyboard up")
    bad = [s.name for s in statuses if not s.ok]
    if bad:
        raise ServiceUnavailable(f"not healthy: {', '.join(bad)}; `storyboard up` restarts "
                                 "what has stopped")


@click.command("doctor", cls=Command)
@common_options
@command
def doctor(config: Path | None, json_out: bool, debug: bool) -> None:
    """Check config, store, Redis, workers, the tunnel, the daemon (auth) and the bucket.

    Prints one row per check with a hint for each failure. Exit code 2 for a configuration
    problem, 3 when a service is unreachable.

    \b
    Example: storyboard doctor || storyboard up
    """
    from storyboard_cli.errors import StoryboardError
    from storyboard_cli.stack.doctor import Doctor, config_failure, exit_code

    try:
        cfg = Context(config).config
    except StoryboardError as exc:
        checks = config_failure(exc)
    else:
        checks = Doctor(cfg).run()
    code = exit_code(checks)
    failed = [c.name for c in checks if c.status == "fail"]
    if json_out:
        data: dict[str, Any] = {"ok": not failed, "checks": [c.as_dict() for c in checks]}
        if failed:
            data["error"] = f"failed: {', '.join(failed)}"
        output.print_json(data)
    else:
        _checks_table(checks)
    if failed:
        if not json_out:
            output.error(f"{len(failed)} check(s) failed: {', '.join(failed)}")
        raise click.exceptions.Exit(code)


def _checks_table(checks: list[Check]) -> None:
    from rich.table import Table

    table = Table("check", "status", "detail", "fix")
    for c in checks:
        table.add_row(c.name, f"[{CHECK_STYLE.get(c.status, '')}]{c.status}[/]",
                      output.escape(c.detail), output.escape(c.hint))
    output.stdout.print(table)


@click.command("demo", cls=Command)
@argument("file", "Story file [default: the bundled bilingual example].", type=PATH,
          required=False)
@workers_option
@click.option("--timeout", type=click.FloatRange(min=0),
              help="Stop waiting after this many seconds (exit 4).")
@common_options
@command
def demo(
    file: Path | None, workers: int | None, timeout: float | None, config: Path | None,
    json_out: bool, debug: bool,
) -> None:
    """From nothing to a finished storyboard on this machine: up, new, generate, and the
    board exported as HTML and PDF (in ./exports, uploaded, with links).

    The stack keeps running afterwards; stop it with `storyboard down`.

    \b
    Example: storyboard demo examples/lantern_zh.txt
    """
    from storyboard_cli.commands.board import exported, print_export
    from storyboard_cli.commands.tasks import _print_outcome
    from storyboard_cli.service import LocalService
    from storyboard_cli.stack.demo import (
        EXPORT_FOLDER,
        EXPORTS,
        ensure_redis_server,
        example_story,
        run_story,
    )

    for line in ensure_redis_server(Context(config).config):
        output.info(line)
    story = file or example_story()
    stack = _start_stack(config, workers, json_out, quiet=json_out)
    view = run_story(stack.cfg, story, timeout, quiet=json_out)
    exports = []
    if view["status"] == "succeeded":
        EXPORT_FOLDER.mkdir(exist_ok=True)
        service = LocalService(stack.cfg)
        try:
            exports = [exported(service, str(view["project_id"]), fmt, EXPORT_FOLDER,
                                force=True, upload=True) for fmt in EXPORTS]
        finally:
            service.close()
    try:
        # The shots with their links (and with --json the exports); exits 1 if the task failed.
        _print_outcome({**view, "exports": exports} if json_out else view, json_out)
    finally:
        if not json_out and exports:
            output.stdout.print("\nThe board, to look at, print or send (the links are "
                                "presigned):")
            for result in exports:
                print_export(result)
            output.info(f"\nThe stack keeps running (storyboard ps); see the project again "
                        f"with: storyboard show {view['project_id']}. Stop everything with: "
                        "storyboard down")


@click.group("frp", cls=Group, no_args_is_help=True)
def frp_group() -> None:
    """The FRP tunnel between the host and the GPU box."""


@frp_group.command("render")
@click.option("--side", required=True, help="host (frps + stcp visitor) or gpu (frpc).")
@click.option("--mode", help="tcp or stcp [default: [frp] mode].")
@click.option("--out", type=PATH,
              help="Folder to write to [default: ./frp/<side>].")
@common_options
@command
def frp_render(
    side: str, mode: str | None, out: Path | None, config: Path | None, json_out: bool,
    debug: bool,
) -> None:
    """Write ready-to-run frp configs for one side from storyboard.toml and .env.

    Ports and the daemon address agree on both sides by construction; secrets stay in the
    environment (the configs read them from it), and each file is checked with `frp verify`
    when frp is available.

    \b
    Example: storyboard frp render --side gpu --mode stcp --out /tmp/frp-gpu
    """
    from storyboard_cli.stack import frp

    cfg = Context(config).config
    rendered = frp.write_configs(cfg, side, mode, out or Path("frp") / side)
    verified = _verify(cfg, rendered.paths)
    if json_out:
        output.print_json({"side": side, "mode": mode or cfg.frp.mode,
                           "files": [str(p) for p in rendered.paths],
                           "daemon_url": frp.tunnel_url(cfg, mode), "verified": verified,
                           "warnings": rendered.warnings})
        return
    for path in rendered.paths:
        output.stdout.print(f"{path}  ({verified.get(str(path), 'not verified')})", markup=False)
    for warning in rendered.warnings:
        output.info(f"[yellow]Note:[/] {output.escape(warning)}")
    start = "frp/start_frps.sh" if side == "host" else "frp/start_frpc.sh (Windows: " \
        "frp\\start_frpc_worker.ps1)"
    output.info(f"Start it with {start}; workers use {frp.tunnel_url(cfg, mode)}.")


def _verify(cfg: Any, paths: list[Path]) -> dict[str, str]:
    """`frpc|frps verify` on each file; skipped (not failed) when frp is not installed."""
    import os

    from storyboard_cli.errors import UsageError
    from storyboard_cli.stack import frp

    results = {}
    env = {**os.environ, **frp.frp_env(cfg)}
    for path in paths:
        name = "frps" if path.name == frp.FRPS_FILE else "frpc"
        try:
            ok, message = frp.verify(frp.frp_binary(name), path, env)
        except frp.FrpError:
            results[str(path)] = "not verified: frp not installed"
            continue
        if not ok:
            raise UsageError(f"{path}: frp rejects it: {message}")
        results[str(path)] = f"{name} verify ok"
    return results


def register(group: click.Group) -> None:
    for cmd in (up, down, ps, demo, doctor, frp_group):
        group.add_command(cmd)
