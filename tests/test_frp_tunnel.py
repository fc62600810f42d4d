"""Real frps/frpc from the rendered configs carry HTTP in tcp and stcp mode, and fail the way
the design relies on: refused at once when frpc dies, refused (not accepted-and-dropped) when
the service behind it dies, no login with the wrong token."""

from __future__ import annotations

import subprocess
import time
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from fixtures_stack import HttpServer

from storyboard_cli.stack import frp, processes


@pytest.fixture()
def backend():
    server = HttpServer().start()
    yield server
    server.stop()


def _refused(url: str) -> bool:
    try:
        httpx.get(url, timeout=2.0)
    except (httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError):
        return True
    return False


@pytest.mark.parametrize("mode", ["tcp", "stcp"])
def test_tunnel_carries_http_and_a_killed_frpc_is_refused_at_once(new_tunnel, backend, mode):
    tunnel = new_tunnel(mode, backend.port).start_all()
    assert tunnel.carries(timeout=10), (tunnel.root / "frpc.log").read_text()
    assert httpx.get(f"{tunnel.url}/story?id=1", timeout=2).text == "echo /story?id=1"

    # The admin API shows the proxy, needs the password, and keeps the config to itself.
    admin = frp.admin_url(tunnel.cfg)
    assert httpx.get(f"{admin}/api/config", timeout=2).status_code == 401
    wrong = replace(tunnel.cfg, frp=replace(tunnel.cfg.frp, admin_password="wrong"))
    with pytest.raises(PermissionError):
        frp.proxy_status(wrong)
    proxy = frp.proxy_status(tunnel.cfg)
    assert proxy is not None and proxy["status"] == "running"
    assert proxy["name"] == frp.registered_name(tunnel.cfg)

    tunnel.kill("frpc")
    started = time.monotonic()
    assert _refused(f"{tunnel.url}/healthz")
    assert time.monotonic() - started < 1.0  # no hang: the client learns at once

    tunnel.start("frpc")
    assert tunnel.carries(timeout=10)


def test_a_dead_service_makes_the_tunnel_refuse_and_it_comes_back(new_tunnel, backend):
    tunnel = new_tunnel("tcp", backend.port).start_all()
    assert tunnel.carries(timeout=10)
    backend.stop()
    # The health check takes the proxy down: the port refuses instead of accept-and-drop.
    assert processes.wait_until(lambda: not processes.port_open(tunnel.cfg.frp.remote_port), 8)
    assert frp.proxy_status(tunnel.cfg)["status"] == "check failed"
    backend.start()
    assert tunnel.carries(timeout=8)


def test_frpc_with_the_wrong_token_cannot_log_in(new_tunnel, backend):
    tunnel = new_tunnel("tcp", backend.port)
    tunnel.start("frps")
    tunnel.env = {**tunnel.env, frp.TOKEN_ENV: "not-the-token"}
    tunnel.start("frpc")
    log = tunnel.root / "frpc.log"
    assert processes.wait_until(lambda: "token in login doesn't match" in log.read_text(), 10)
    assert not processes.port_open(tunnel.cfg.frp.remote_port)


FRP_DIR = Path(__file__).resolve().parents[1] / "frp"


def test_the_start_scripts_run_rendered_configs_with_secrets_from_env_file(
    new_tunnel, backend, tmp_path,
):
    tunnel = new_tunnel("stcp", backend.port)
    env_file = tmp_path / "tunnel.env"
    env_file.write_text("".join(f'{k}="{v}"\n' for k, v in frp.frp_env(tunnel.cfg).items()))
    env = {k: v for k, v in tunnel.env.items() if not k.startswith("STORYBOARD_FRP_")}
    env["ENV_FILE"] = str(env_file)
    files = tunnel.files()

    refused = subprocess.run(["sh", str(FRP_DIR / "start_frps.sh"), str(files["frps"])],
                             env={**env, "ENV_FILE": "/nonexistent"}, capture_output=True,
                             text=True, timeout=10)
    assert refused.returncode == 2 and "STORYBOARD_FRP_TOKEN is not set" in refused.stderr

    tunnel.env = env
    scripts = {"frps": ["start_frps.sh"], "frpc": ["start_frpc.sh", "gpu"],
               "visitor": ["start_frpc.sh", "visitor"]}
    for name, (script, *role) in scripts.items():
        argv = ["sh", str(FRP_DIR / script), *role, str(files[name])]
        tunnel.procs[name] = processes.Process(name, argv, tunnel.root / f"{name}.log",
                                              env=env).start()
    assert tunnel.carries(timeout=10), (tunnel.root / "frpc.log").read_text()
