"""`storyboard up` / `ps` / `down` as a user runs them: every part started and healthy,
nothing started twice, exactly our processes stopped, a failing part shown with its log."""

from __future__ import annotations

import json
import socket
import stat
import subprocess
import sys

import httpx
import pytest
from dotenv import dotenv_values
from fixtures_stack import stack_config, storyboard

from storyboard_cli.stack import frp, processes
from storyboard_cli.stack.supervisor import ProcessRecord, process_identity
from storyboard_contract.config import load_config

ALL_PARTS = ["redis", "s3", "daemon", "frps", "frpc", "visitor", "serve", "worker-1"]


def parts(done) -> dict[str, dict]:
    return {p["name"]: p for p in json.loads(done.stdout)["parts"]}


def test_up_starts_every_part_once_and_down_stops_every_one(tmp_path):
    root = tmp_path / "stack"
    # Nothing answers at the configured Redis: the stack runs its own on [stack] redis_port.
    path = stack_config(root, mode="stcp", workers=1, serve=True,
                        redis_url=f"redis://127.0.0.1:{processes.free_port()}/0")
    try:
        first = storyboard(root, "up", "--json")
        assert first.returncode == 0, first.stdout + first.stderr
        started = parts(first)
        assert list(started) == ALL_PARTS
        assert {p["state"] for p in started.values()} == {"started"}
        pids = {name: p["pid"] for name, p in started.items()}
        assert all(processes.pid_alive(pid) for pid in pids.values())

        # First run: the secrets both sides share and local S3 credentials, in a private .env.
        env_file = root / ".env"
        values = dotenv_values(env_file)
        for name in ("STORYBOARD_DAEMON_TOKEN", frp.TOKEN_ENV, frp.SECRET_KEY_ENV,
                     frp.ADMIN_PASSWORD_ENV, "STORYBOARD_API_TOKEN", "ACCESS_KEY", "SECRET_KEY",
                     "ENDPOINT"):
            assert values.get(name), name
        assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
        # ... and where its Redis is, for the commands that follow (generate, doctor).
        assert values["STORYBOARD_REDIS_URL"] == started["redis"]["address"]
        # `serve` answers on [server] port, to the generated token only, over the stack.
        api = started["serve"]["address"]
        assert api == f"http://127.0.0.1:{load_config(path, environ={}).server.port}"
        token = {"Authorization": f"Bearer {values['STORYBOARD_API_TOKEN']}"}
        assert httpx.get(f"{api}/api/projects", headers=token).json() == []
        assert httpx.get(f"{api}/api/projects").status_code == 401

        again = storyboard(root, "up", "--json")
        assert again.returncode == 0, again.stderr
        assert {n: (p["state"], p["pid"]) for n, p in parts(again).items()} == {
            n: ("running", pid) for n, pid in pids.items()}
        assert dotenv_values(env_file) == values  # nothing generated twice
        # On a terminal's eyes: the one URL to open, and the token `storyboard token` prints.
        said = storyboard(root, "up")
        assert said.returncode == 0, said.stderr
        assert f"Open the board: {api}/\n" in said.stderr
        assert storyboard(root, "token").stdout == values["STORYBOARD_API_TOKEN"] + "\n"

        shown = storyboard(root, "ps", "--json")
        assert shown.returncode == 0, shown.stderr
        assert {n: p["state"] for n, p in parts(shown).items()} == dict.fromkeys(pids, "running")
        # ... and the workers registered in Redis, with the daemon each one uses.
        [worker] = json.loads(shown.stdout)["workers"]
        assert (worker["pid"], worker["daemon_url"]) == (pids["worker-1"],
                                                         started["worker-1"]["address"][2:])
        # ... and the daemon's models: the sketch backend has none (it answers, though).
        assert json.loads(shown.stdout)["models"] == []

        # The stack's local settings win over storyboard.toml while it runs, and say so.
        sources = json.loads(storyboard(root, "config", "--json").stdout)["sources"]
        for section, key, var in (("s3", "endpoint", "ENDPOINT"),
                                  ("redis", "url", "STORYBOARD_REDIS_URL")):
            assert sources[section][key] == (f".env ${var} ({env_file}, written by "
                                             "`storyboard up`, removed by `storyboard down`)")
        assert "above [redis] url of storyboard.toml until `storyboard down`" in first.stderr
    finally:
        stopped = storyboard(root, "down", "--json")
    assert stopped.returncode == 0, stopped.stderr
    assert {n: p["state"] for n, p in parts(stopped).items()} == dict.fromkeys(ALL_PARTS,
                                                                              "stopped")
    assert not [name for name, pid in pids.items() if processes.pid_alive(pid)]
    assert not list((root / ".storyboard" / "run").glob("*.json"))
    # down takes the local stack's settings out of .env; the generated secrets stay.
    assert sorted(json.loads(stopped.stdout)["env_removed"]) == [
        "ACCESS_KEY", "ENDPOINT", "SECRET_KEY", "STORYBOARD_REDIS_URL"]
    left = dotenv_values(env_file)
    assert not {"ENDPOINT", "ACCESS_KEY", "STORYBOARD_REDIS_URL"} & set(left)
    assert left["STORYBOARD_DAEMON_TOKEN"] == values["STORYBOARD_DAEMON_TOKEN"]
    nothing = storyboard(root, "ps")
    assert nothing.returncode == 0 and "not running" in nothing.stderr


def test_down_never_signals_a_process_that_reused_a_recorded_pid(new_stack):
    handle = new_stack()
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        # A record whose pid now belongs to another process (its start time differs).
        identity = process_identity(stranger.pid)
        handle.stack._save(ProcessRecord("daemon", stranger.pid, identity + "0",
                                         ["gpu-daemon"], "daemon.log", "", ""))
        [status] = handle.stack.down()
        assert (status.name, status.state) == ("daemon", "not running")
        assert stranger.poll() is None
        assert handle.stack.records() == []
    finally:
        stranger.kill()
        stranger.wait()


def test_a_part_that_cannot_start_is_reported_with_its_log_and_blocks_what_needs_it(
    tmp_path, redis_url, s3_server,
):
    root = tmp_path / "stack"
    path = stack_config(root, mode="stcp", workers=1, redis_url=redis_url, s3=s3_server)
    squatter = socket.socket()
    squatter.bind(("127.0.0.1", load_config(path, environ={}).daemon.port))
    squatter.listen()
    try:
        done = storyboard(root, "up")
        assert done.returncode == 3
        assert "not healthy: daemon, frpc, visitor " in done.stderr
        assert "daemon log" in done.stdout and "address already in use" in done.stdout
        assert done.stdout.count("skipped") == 2  # frpc and the visitor wait for the daemon
        shown = storyboard(root, "ps", "--json")
        states = {n: p["state"] for n, p in parts(shown).items()}
        # The failed daemon was cleaned up; what does not need it keeps running.
        assert states == {"frps": "running", "worker-1": "running"}
    finally:
        squatter.close()
        storyboard(root, "down")


def test_demo_says_how_to_install_redis_when_it_cannot(tmp_path, monkeypatch):
    from storyboard_cli.stack.demo import ensure_redis_server
    from storyboard_contract.errors import UsageError

    cfg = load_config(stack_config(tmp_path), environ={})
    monkeypatch.setenv("PATH", str(tmp_path))  # no redis-server, and no apt-get to get one
    with pytest.raises(UsageError, match="apt-get install redis-server"):
        ensure_redis_server(cfg)
