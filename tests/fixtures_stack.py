"""Local-stack and tunnel fixtures: everything on free ports, in a temporary folder.

- ``stack_config(root, ...)``: a storyboard.toml whose every port is free, so stacks of
  different tests (and developers' own `storyboard up`) never collide.
- ``new_stack``: a factory of `storyboard up` stacks (storyboard_cli.stack.Stack) in tmp
  folders; every process they started is stopped by pid when the test ends.
- ``new_tunnel``: a factory of bare FRP tunnels (frps + GPU-side frpc [+ stcp visitor]) in
  front of any local port, from the same rendered configs `storyboard up` uses.
- ``HttpServer``: a plain local HTTP server with /healthz, to stand in front of a tunnel.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fixtures_daemon import write_toml
from fixtures_queue import storyboard_argv

from storyboard_cli.stack import frp, processes
from storyboard_cli.stack.supervisor import Stack, load_stack
from storyboard_contract.config import Config, load_config

_S3_VARS = ("ACCESS_KEY", "SECRET_KEY", "ENDPOINT", "TOS_BUCKET", "REGION")


def clean_env() -> dict[str, str]:
    """This process's environment without what would steer a stack away from its own files:
    STORYBOARD_* settings and secrets, S3 and AWS variables (a developer's shell, or a test
    that loaded a .env into os.environ, may have left some)."""
    return {k: v for k, v in os.environ.items()
            if not k.startswith(("STORYBOARD_", "AWS_")) and k not in _S3_VARS}

# Short retry waits keep the tunnel-outage test fast; the mechanism is the same.
QUEUE = {"retries": 6, "backoff": [1, 1, 1, 1, 1, 1], "heartbeat_s": 1, "job_timeout": 60}


def stack_config(
    root: Path, mode: str = "stcp", workers: int = 1, *, redis_url: str | None = None,
    s3: Any = None, serve: bool = False, extra: dict[str, dict[str, Any]] | None = None,
) -> Path:
    """root/storyboard.toml for a stack on free ports. redis_url / s3 (an S3Server): use
    those services (the stack sees them as external) instead of starting its own. serve:
    whether `up` runs `storyboard serve` too (the default of [stack] serve; off here unless
    a test is about it, to keep the many stack tests light)."""
    root.mkdir(parents=True, exist_ok=True)
    # SeaweedFS puts its gRPC port at s3_port + 10000: keep that a valid port.
    ports = processes.free_ports(8)
    while ports[1] + 10000 >= 65535:
        ports = processes.free_ports(8)
    (redis_port, s3_port, daemon_port, server_port, remote_port, visitor_port, admin_port,
     api_port) = ports
    tag = secrets.token_hex(4)
    tunnel_port = remote_port if mode == "tcp" else visitor_port
    sections: dict[str, dict[str, Any]] = {
        "redis": {"url": redis_url or f"redis://127.0.0.1:{redis_port}/0"},
        # Queues of their own: the session's Redis is shared with other tests.
        "queue": {"plan_queue": f"plan-{tag}", "render_queue": f"render-{tag}", **QUEUE},
        "daemon": {"url": f"http://127.0.0.1:{tunnel_port}", "port": daemon_port},
        "images": {"width": 256, "height": 256},
        "frp": {"mode": mode, "server_port": server_port, "remote_port": remote_port,
                "visitor_port": visitor_port, "admin_port": admin_port},
        "stack": {"redis_port": redis_port, "s3_port": s3_port, "workers": workers,
                  "serve": serve},
        "server": {"port": api_port},
    }
    if s3 is not None:
        sections["s3"] = {"bucket": s3.bucket}
        env_lines = [f"{k}={v}" for k, v in s3.env().items()]
        (root / ".env").write_text("\n".join(env_lines) + "\n")
    for name, values in (extra or {}).items():
        sections[name] = {**sections.get(name, {}), **values}
    return write_toml(root / "storyboard.toml", sections)


@dataclass
class StackHandle:
    root: Path
    config_path: Path
    stack: Stack
    notes: list[str] = field(default_factory=list)

    @property
    def cfg(self) -> Config:
        return self.stack.cfg

    def reload(self) -> Stack:
        """A fresh Stack from the files, as the next `storyboard` command would see it."""
        self.stack, _ = load_stack(self.config_path, environ=clean_env())
        return self.stack

    def up(self, workers: int | None = None) -> dict[str, Any]:
        statuses = self.reload().up(workers)
        return {s.name: s for s in statuses}

    def pids(self) -> dict[str, int]:
        return {r.name: r.pid for r in self.stack.records()}


@pytest.fixture()
def new_stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """new_stack(name, mode=..., workers=..., redis_url=..., s3=...) -> StackHandle (not up)."""
    # The stack reads .env from the config's folder and the current one: make them the same.
    monkeypatch.chdir(tmp_path)
    handles: list[StackHandle] = []

    def make(name: str = "stack", **kwargs: Any) -> StackHandle:
        root = tmp_path / name
        path = stack_config(root, **kwargs)
        stack, notes = load_stack(path, environ=clean_env(), generate=True)
        handle = StackHandle(root, path, stack, notes)
        handles.append(handle)
        return handle

    yield make
    for handle in handles:
        handle.reload().down()


def storyboard(root: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`storyboard ARGS` as a user runs it, in root (where its storyboard.toml and .env are)."""
    return subprocess.run([*storyboard_argv(), *args], cwd=root, capture_output=True,
                          text=True, timeout=timeout, env=clean_env())


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        body = b"ok" if self.path == "/healthz" else f"echo {self.path}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


class HttpServer:
    """A plain HTTP server on 127.0.0.1:port (free by default) that can stop and come back."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or processes.free_port()
        self.server: ThreadingHTTPServer | None = None

    def start(self) -> HttpServer:
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), _Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


@dataclass
class Tunnel:
    """frps + GPU-side frpc (+ the host's stcp visitor), rendered from one Config."""

    cfg: Config
    root: Path
    env: dict[str, str]
    procs: dict[str, processes.Process] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return frp.tunnel_url(self.cfg)

    def files(self) -> dict[str, Path]:
        return {"frps": self.root / frp.FRPS_FILE, "frpc": self.root / frp.GPU_FILE,
                "visitor": self.root / frp.VISITOR_FILE}

    def start(self, name: str, config: Path | None = None) -> processes.Process:
        binary = frp.frp_binary("frps" if name == "frps" else "frpc")
        proc = processes.Process(name, [str(binary), "-c", str(config or self.files()[name])],
                                self.root / f"{name}.log", env=self.env).start()
        self.procs[name] = proc
        if name == "frps":
            assert processes.wait_until(lambda: processes.port_open(self.cfg.frp.server_port), 5)
        return proc

    def start_all(self) -> Tunnel:
        for name in ("frps", "frpc", *(("visitor",) if self.cfg.frp.mode == "stcp" else ())):
            self.start(name)
        return self

    def kill(self, name: str) -> None:
        self.procs.pop(name).stop(timeout=2, sig=9)

    def stop(self) -> None:
        for name in list(self.procs):
            self.procs.pop(name).stop(timeout=3)

    def carries(self, timeout: float) -> bool:
        return processes.wait_until(
            lambda: processes.http_ok(f"{self.url}/healthz", timeout=1.0), timeout)


def tunnel_secrets() -> dict[str, str]:
    return {frp.TOKEN_ENV: secrets.token_hex(16), frp.SECRET_KEY_ENV: secrets.token_hex(16),
            frp.ADMIN_PASSWORD_ENV: secrets.token_hex(8), "STORYBOARD_DAEMON_TOKEN": "x"}


@pytest.fixture()
def new_tunnel(tmp_path: Path) -> Iterator[Any]:
    """new_tunnel(mode, local_port) -> Tunnel with configs rendered (not started)."""
    tunnels: list[Tunnel] = []

    def make(mode: str, local_port: int) -> Tunnel:
        root = tmp_path / f"tunnel-{len(tunnels)}"
        path = stack_config(root, mode, extra={"daemon": {"port": local_port}})
        env = {**clean_env(), **tunnel_secrets()}
        cfg = load_config(path, environ=env)
        for side in frp.SIDES:
            frp.write_configs(cfg, side, mode, root)
        tunnel = Tunnel(cfg, root, env)
        tunnels.append(tunnel)
        return tunnel

    yield make
    for tunnel in tunnels:
        tunnel.stop()
