"""serve: the HTTP API and the web board (storyboard_cli/server), under uvicorn; token: the
API token that the board's login form and remote clients need."""

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


def board_url(host: str, port: int, root_path: str = "") -> str:
    """The one URL to open for a board served on host:port (a wildcard address: this
    machine's name)."""
    import socket

    if host in ("0.0.0.0", "::", ""):
        host = socket.gethostname()
    return f"http://{f'[{host}]' if ':' in host else host}:{port}{root_path}/"


def open_board_lines(url: str, port: int, token: bool, loopback: bool) -> list[str]:
    """What `serve`, `up` and `demo` say about the board: the URL to open, how to log in, and
    from a laptop, the one port to forward."""
    lines = [f"Open the board: {url}"]
    if token:
        lines.append(f"  log in with the API token, once per browser: `{output.command()} token` "
                     "prints it")
    if loopback:
        lines.append(f"  from a laptop: ssh -L {port}:127.0.0.1:{port} THIS_HOST, then open "
                     "the same URL there")
    return lines


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
    board at /, over this machine's store, Redis and bucket; prints the URL to open. With
    STORYBOARD_API_TOKEN set (`storyboard token`), the board asks for it once per browser
    and every /api request needs `Authorization: Bearer <token>` or that login's session.
    Runs until Ctrl+C.

    \b
    Example: STORYBOARD_API_TOKEN=$(openssl rand -hex 32) storyboard serve --port 8080
    """
    try:
        import logging

        import uvicorn

        from storyboard_cli.server.app import TOKEN_VARIABLE, create_app
        from storyboard_contract.access_log import ACCESS_LOGGER, RedactQuery
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
    url = board_url(host, port, root_path)
    if json_out:
        output.print_json({"url": url, "login": bool(token)})
    else:
        for line in open_board_lines(url, port, bool(token), is_loopback(host)):
            output.info(line)
        if not token:
            output.info("  no API token set: anyone on this machine may use it "
                        f"(set {TOKEN_VARIABLE} to require a login)")
    # An event stream lasts as long as its task: on Ctrl+C or SIGTERM, streams still open
    # after SHUTDOWN_S are closed instead of keeping the server up.
    server = uvicorn.Config(create_app(cfg, token), host=host, port=port, root_path=root_path,
                            log_level="debug" if debug else "info",
                            timeout_graceful_shutdown=SHUTDOWN_S)
    # uvicorn's own "running on http://host:port" names neither the root path nor the login:
    # the URL above is the one to open.
    # No token a client put in a query string (?token=, ?access_token=) reaches the log.
    logging.getLogger(ACCESS_LOGGER).addFilter(RedactQuery())
    logging.getLogger("uvicorn.error").addFilter(
        lambda record: not record.getMessage().startswith("Uvicorn running on"))
    uvicorn.Server(server).run()


@click.command("token", cls=Command)
@common_options
@command
def token(config: Path | None, json_out: bool, debug: bool) -> None:
    """Print the API token of `storyboard serve` on stdout, and where it lives: what the web
    board's login form asks for once per browser, and what remote clients send
    (STORYBOARD_API_TOKEN, in the environment or the .env beside storyboard.toml, where
    `storyboard up` generates one).

    \b
    Example: storyboard token
             STORYBOARD_API_TOKEN=$(storyboard token) storyboard --server URL list
    """
    from storyboard_contract.config import value_sources

    # Before loading: loading copies .env into the environment.
    source = value_sources(config)["server"]["api_token"]
    secret = ConfigAndService(config).config.server.api_token
    if not secret:
        raise UsageError("no API token is set: `storyboard up` generates one into .env, or "
                         "put STORYBOARD_API_TOKEN=<a long random string> in .env (openssl "
                         "rand -hex 32)")
    if json_out:
        output.print_json({"token": secret, "source": source})
        return
    output.stdout.print(secret, markup=False, highlight=False, soft_wrap=True)
    output.info(f"(from {source}; paste it into the board's login form once per browser)")


def register(group: click.Group) -> None:
    group.add_command(serve)
    group.add_command(token)
