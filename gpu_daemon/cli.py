"""`gpu-daemon serve`: load the configuration and the model, then serve the API with uvicorn.
`gpu-daemon check`: what serve would load, or the one line saying why it would refuse, without
loading anything (`storyboard doctor --side gpu` runs it).

Example: STORYBOARD_DAEMON_TOKEN=... gpu-daemon serve --config storyboard.toml
"""

from __future__ import annotations

import os

# huggingface_hub reads this once, when it is imported: it has to be set before anything can
# import it. Offline is the default; `images.allow_download = true` restores the caller's value.
# The render process (spawned: it imports this module again) keeps what its daemon decided.
_HF_DECIDED = "STORYBOARD_DAEMON_HF_DECIDED"
_CALLER_HF_OFFLINE = os.environ.get("HF_HUB_OFFLINE")
if os.environ.get(_HF_DECIDED) != "1":
    os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
# transformers warns at import about optional backends the daemon never uses (torchvision for
# image processors of other model families); TRANSFORMERS_VERBOSITY=warning shows them again.
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import argparse  # noqa: E402
import ipaddress  # noqa: E402
import logging  # noqa: E402
import sys  # noqa: E402
from typing import Any  # noqa: E402

from gpu_daemon import __version__  # noqa: E402

log = logging.getLogger("gpu_daemon")


class StartupError(Exception):
    """The daemon cannot start; the message says why and what to do."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gpu-daemon",
        description="The storyboard GPU daemon: plans shot lists, renders images, uploads them.",
        epilog="Example: STORYBOARD_DAEMON_TOKEN=$(openssl rand -hex 24) gpu-daemon serve",
    )
    parser.add_argument("--version", action="version", version=__version__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser(
        "serve", help="serve the HTTP API",
        description="Serve the HTTP API (default 127.0.0.1:7860, from [daemon] in the config).",
        epilog="Example: STORYBOARD_DAEMON_TOKEN=secret gpu-daemon serve --port 7860",
    )
    serve.add_argument("--host", help="address to listen on [daemon.host, 127.0.0.1]")
    serve.add_argument("--port", type=int, help="port to listen on [daemon.port, 7860]")
    serve.add_argument("--config", default=os.environ.get("STORYBOARD_CONFIG"),
                       help="configuration file [default: ./storyboard.toml, then user config]")
    serve.add_argument("--device",
                       help="where to render: cuda:N for GPU N of several (one daemon per GPU), "
                            "cuda, mps, cpu or auto [images.device, auto]")
    serve.add_argument("--insecure-no-token", action="store_true",
                       help="serve without authentication (loopback addresses only)")
    serve.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    check = sub.add_parser(
        "check", help="check the configuration and the model settings, loading nothing",
        description="Read the configuration and check the model settings against the disk and "
                    "the cache, as serve does before it loads anything; print what it would "
                    "load, or the reason it would refuse (exit 2).",
        epilog="Example: gpu-daemon check --config storyboard.toml",
    )
    check.add_argument("--config", default=os.environ.get("STORYBOARD_CONFIG"),
                       help="configuration file [default: ./storyboard.toml, then user config]")
    check.add_argument("--debug", action="store_true", help="show tracebacks")
    return parser


def check(args: argparse.Namespace) -> None:
    from gpu_daemon.images import check_model_settings
    from storyboard_contract.config import load_config

    catalog = check_model_settings(load_config(args.config))
    if not catalog.entries:
        print(f"model: {catalog.backend} backend: no model")
    for entry in catalog.entries.values():
        print(f"model: {entry.describe()}")


class HealthCheckFilter(logging.Filter):
    """Keeps frpc's health checks (every 2 s) and the doctor's out of the access log."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        return not (isinstance(args, tuple) and len(args) >= 3 and args[2] == "/healthz")


def log_config(debug: bool) -> dict[str, Any]:
    """uvicorn's logging, with timestamps like ours, no query string's values (a token sent
    as ?token= or ?access_token=) and, unless debugging, no health checks."""
    import copy

    from uvicorn.config import LOGGING_CONFIG

    from storyboard_contract.access_log import RedactQuery

    config = copy.deepcopy(LOGGING_CONFIG)
    for name, fmt in (("default", "%(levelprefix)s %(message)s"),
                      ("access", '%(levelprefix)s %(client_addr)s - "%(request_line)s" '
                                 "%(status_code)s")):
        config["formatters"][name]["fmt"] = "%(asctime)s " + fmt
    filters = config.setdefault("filters", {})
    # No token a client put in a query string reaches the log.
    filters["redact_query"] = {"()": RedactQuery}
    config["handlers"]["access"]["filters"] = ["redact_query"]
    if not debug:
        filters["no_health"] = {"()": HealthCheckFilter}
        config["handlers"]["access"]["filters"].append("no_health")
    return config


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(args: argparse.Namespace) -> None:
    from storyboard_contract.config import load_config

    cfg = load_config(args.config)
    if args.device:
        from storyboard_contract.config import check_config

        cfg.images.device = args.device
        check_config(cfg, "--device")
    host = args.host or cfg.daemon.host
    port = args.port or cfg.daemon.port
    token = cfg.daemon.token or None
    if token is None and not args.insecure_no_token:
        raise StartupError(
            "no token: set STORYBOARD_DAEMON_TOKEN (the same value the workers use), "
            "or pass --insecure-no-token for a local experiment"
        )
    if token is None and not _is_loopback(host):
        raise StartupError(f"refusing --insecure-no-token on the non-loopback address {host}")
    if cfg.images.allow_download:
        if _CALLER_HF_OFFLINE is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = _CALLER_HF_OFFLINE
    os.environ[_HF_DECIDED] = "1"

    import uvicorn

    from gpu_daemon.app import Daemon, create_app
    from gpu_daemon.images import check_model_settings
    from gpu_daemon.images.process import RenderProcess, RenderUnavailable
    from gpu_daemon.planner import make_planner
    from gpu_daemon.uploader import PngUploads, S3Uploader

    # A wrong model setting is one line at once, not after the render process imported torch.
    catalog = check_model_settings(cfg)
    uploader = S3Uploader(cfg.s3)
    planner = make_planner(cfg)
    # The model loads in the render process; its load errors are raised here.
    try:
        renderer = RenderProcess(cfg, cfg.images.max_batch)
    except RenderUnavailable as exc:
        raise StartupError(str(exc)) from None
    daemon = Daemon(cfg, planner, renderer, uploader, PngUploads(cfg.s3), catalog)
    backend = daemon.backend
    if token is None:
        log.warning("authentication is OFF (--insecure-no-token)")
    if not _is_loopback(host):
        log.warning("listening on %s: reachable from other machines; prefer 127.0.0.1 behind "
                    "an frp stcp tunnel", host)
    log.info("planner %s, images %s (models %s; loaded %s; device %s), bucket %s",
             planner.name, backend.name, ", ".join(catalog.entries) or "-",
             ", ".join(backend.loaded) or "-", backend.device, cfg.s3.bucket)
    uvicorn.run(
        create_app(daemon, token), host=host, port=port,
        log_level="debug" if args.debug else "info", log_config=log_config(args.debug),
        server_header=False, timeout_graceful_shutdown=10,
    )


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # httpx logs every request at INFO, presigned URLs (the bucket check's) included.
    logging.getLogger("httpx").setLevel(logging.DEBUG if args.debug else logging.WARNING)
    from storyboard_contract.errors import StoryboardError

    try:
        (check if args.command == "check" else serve)(args)
    except (StartupError, StoryboardError) as exc:
        if args.debug:
            raise
        print(f"gpu-daemon: error: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
