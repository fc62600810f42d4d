"""serve: the HTTP API and the web board (storyboard_cli/server), under uvicorn."""

from __future__ import annotations

from pathlib import Path

import click

from storyboard_cli import output
from storyboard_cli.commands.common import Command, ConfigAndService, command, common_options
from storyboard_contract.errors import UsageError

SHUTDOWN_S = 3
INSTALL_HINT = "storyboard serve needs the server extra: pip install 'storyboard[server]'"


def is_loopback(host: str) -> bool:
    """Whether only this machine can reach `host` (a name other than localhost may resolve
    to anything, so it counts as reachable)."""
    import ipaddress

    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_can_listen(host: str, port: int) -> None:
    """A UsageError naming the problem when host:port cannot be listened on (port taken, no
    such address), before uvicorn would say so in a few log lines."""
    import socket

    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
            probe.bind(address)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise UsageError(f"cannot listen on {host}:{port}: {reason}; choose another --port "
                         "or --host") from None


@click.command("serve", cls=Command)
@click.option("--host", help="Address to listen on [default: server.host, 127.0.0.1]; any "
              "other than loopback needs STORYBOARD_API_TOKEN.")
@click.option("--port", type=click.IntRange(1, 65535),
              help="Port [default: server.port, 8080].")
@click.option("--root-path", default="", metavar="PATH",
              help="The path a reverse proxy serves this under, e.g. /storyboard.")
@common_options
@command
def serve(host: str | None, port: int | None, root_path: str, config: Path | None,
          json_out: bool, debug: bool) -> None:
    """Serve the HTTP API (the original system's endpoints and the rest, /docs) and the web
    board at /, over this machine's store, Redis and bucket. With STORYBOARD_API_TOKEN set,
    every /api request needs `Authorization: Bearer <token>`. Runs until Ctrl+C.

    \b
    Example: STORYBOARD_API_TOKEN=$(openssl rand -hex 32) storyboard serve --port 8080
    """
    try:
        import uvicorn

        from storyboard_cli.server.app import TOKEN_VARIABLE, create_app
    except ImportError:
        raise UsageError(INSTALL_HINT) from None
    cfg = ConfigAndService(config).config
    host = host or cfg.server.host
    port = port or cfg.server.port
    token = cfg.server.api_token
    if not token and not is_loopback(host):
        raise UsageError(f"--host {host} can be reached from other machines: set "
                         f"{TOKEN_VARIABLE} (a long random string) first, or keep 127.0.0.1")
    check_can_listen(host, port)
    root_path = root_path.rstrip("/")
    where = f"http://{host}:{port}{root_path}/"
    output.info(f"storyboard serve: {where} (API docs: {where}docs); "
                + ("every /api request needs the API token" if token
                   else "no API token set: reachable from this machine only"))
    # An event stream lasts as long as its task: on Ctrl+C or SIGTERM, streams still open
    # after SHUTDOWN_S are closed instead of keeping the server up.
    uvicorn.run(create_app(cfg, token), host=host, port=port, root_path=root_path,
                log_level="debug" if debug else "info", timeout_graceful_shutdown=SHUTDOWN_S)


def register(group: click.Group) -> None:
    group.add_command(serve)
