"""`gpu-daemon serve` refuses to start, quickly and with one clear line, when it cannot serve
safely or correctly."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from fixtures_daemon import (
    daemon_argv,
    hub_cache_with,
    load_offline_in_a_fresh_process,
    write_toml,
)


def serve(tmp_path: Path, *args: str, env: dict[str, str] | None = None,
          images: dict | None = None) -> tuple[subprocess.CompletedProcess[str], float]:
    config = write_toml(tmp_path / "daemon.toml", {"images": images or {"backend": "sketch"}})
    full_env = {k: v for k, v in os.environ.items() if k != "STORYBOARD_DAEMON_TOKEN"}
    full_env.update({"ACCESS_KEY": "k", "SECRET_KEY": "not-a-real-secret",
                     "ENDPOINT": "http://127.0.0.1:9", "HF_HOME": str(tmp_path / "hf")})
    full_env.update(env or {})
    start = time.monotonic()
    done = subprocess.run(
        [*daemon_argv(), "serve", "--config", str(config), "--port", "9", *args],
        env=full_env, capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )
    return done, time.monotonic() - start


def test_refuses_to_start_without_a_token(tmp_path):
    done, _ = serve(tmp_path)
    assert done.returncode == 2
    assert "STORYBOARD_DAEMON_TOKEN" in done.stderr and "--insecure-no-token" in done.stderr
    assert "Traceback" not in done.stderr


def test_no_token_mode_is_only_for_loopback(tmp_path):
    done, _ = serve(tmp_path, "--insecure-no-token", "--host", "0.0.0.0")
    assert done.returncode == 2
    assert "non-loopback" in done.stderr


def test_missing_bucket_credentials_are_named(tmp_path):
    done, _ = serve(tmp_path, env={"STORYBOARD_DAEMON_TOKEN": "t", "ACCESS_KEY": "",
                                   "SECRET_KEY": ""})
    assert done.returncode == 2
    assert "ACCESS_KEY" in done.stderr and "SECRET_KEY" in done.stderr


def test_an_uncached_model_id_fails_fast_offline(tmp_path):
    done, seconds = serve(tmp_path, env={"STORYBOARD_DAEMON_TOKEN": "t"},
                          images={"backend": "diffusers", "model": "acme/no-such-model"})
    assert done.returncode == 2
    assert "'acme/no-such-model' is not in the Hugging Face cache" in done.stderr
    assert "allow_download" in done.stderr
    assert "not-a-real-secret" not in done.stderr
    assert seconds < 20


def test_a_missing_model_directory_is_named(tmp_path):
    done, _ = serve(tmp_path, env={"STORYBOARD_DAEMON_TOKEN": "t"},
                    images={"backend": "diffusers", "model": "./models/sd"})
    assert done.returncode == 2
    assert f"no model file or folder at {tmp_path / 'models' / 'sd'}" in done.stderr


def test_a_cached_model_id_loads_offline(tmp_path, tiny_model_dir):
    hf_home = hub_cache_with(tmp_path / "hf", "acme/tiny-sd", tiny_model_dir)
    assert load_offline_in_a_fresh_process("acme/tiny-sd", hf_home) == [
        "acme/tiny-sd", "cpu", "StableDiffusionPipeline"]


def test_insecure_mode_serves_without_a_token(tmp_path, s3_server):
    from fixtures_daemon import start_daemon

    daemon = start_daemon(tmp_path, s3_server, env={"STORYBOARD_DAEMON_TOKEN": ""},
                          serve_args=("--insecure-no-token",))
    try:
        status = httpx.get(f"{daemon.url}/v1/status")
    finally:
        daemon.stop()
    assert status.status_code == 200 and status.json()["image_backend"] == "sketch"
    assert "authentication is OFF" in daemon.proc.log_path.read_text()


def _children(pid: int) -> set[int]:
    kids = set()
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text()
        except (OSError, ValueError):
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            kids.add(int(entry.name))
    return kids


def _gone(pids: set[int], timeout: float) -> set[int]:
    deadline = time.monotonic() + timeout
    while (alive := {p for p in pids if Path(f"/proc/{p}").exists()}) and \
            time.monotonic() < deadline:
        time.sleep(0.1)
    return alive


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGKILL"])
def test_upload_processes_end_with_the_daemon(tmp_path, s3_server, sig):
    from fixtures_daemon import start_daemon

    daemon = start_daemon(tmp_path, s3_server)
    uploaders = _children(daemon.proc.pid)
    try:
        assert len(uploaders) >= 2
        os.kill(daemon.proc.pid, getattr(signal, sig))  # the daemon alone, not its group
        left = _gone(uploaders, timeout=5)
    finally:
        daemon.stop()
    assert left == set()


def test_a_gpu_index_this_machine_lacks_is_named(tmp_path, tiny_model_dir):
    import torch

    if torch.cuda.device_count() > 1:
        pytest.skip("this machine has a second GPU")
    done, _ = serve(tmp_path, "--device", "cuda:1", env={"STORYBOARD_DAEMON_TOKEN": "t"},
                    images={"backend": "diffusers", "model": str(tiny_model_dir)})
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "images.device = cuda:1, but this" in done.stderr
