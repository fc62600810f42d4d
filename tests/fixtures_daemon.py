"""GPU daemon fixtures: a real `gpu-daemon serve` (uvicorn) process on a free port.

- ``start_daemon(tmp_path, s3_server, backend=..., model=...)``: start one, get a DaemonHandle
  (url, token, proc, stop()); the caller stops it (use it inside a fixture with a finalizer).
- ``sketch_daemon``: a session-wide daemon with the sketch backend.
- ``tiny_model_dir`` / ``diffusers_daemon``: a tiny random-weight diffusers pipeline saved to
  disk, and a session-wide daemon that loads it from there.
- ``tiny_checkpoint``: the same pipeline as one single-file checkpoint in the original layout;
  ``tiny_sdxl_dir``: a tiny SDXL pipeline.
- ``slow_daemon``: slow_daemon(steps, max_batch): a daemon of the test's own with the tiny
  pipeline at many steps, so that a render takes seconds (stopped when the test ends).
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from storyboard_cli.stack import processes


def daemon_argv() -> list[str]:
    """The installed console script, as a user runs it."""
    script = processes.find_binary("gpu-daemon")
    return [script] if script else [sys.executable, "-m", "gpu_daemon.cli"]


def write_toml(path: Path, sections: dict[str, dict[str, Any]]) -> Path:
    lines = []
    for name, values in sections.items():
        lines.append(f"[{name}]")
        # JSON scalars are valid TOML scalars (strings, numbers, booleans).
        lines += [f"{key} = {json.dumps(value)}" for key, value in values.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@dataclass
class DaemonHandle:
    url: str
    token: str
    proc: processes.Process
    config_path: Path
    env: dict[str, str] = field(repr=False)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def client(self, **kwargs: Any):  # -> httpx.Client
        import httpx

        kwargs.setdefault("timeout", 60.0)
        return httpx.Client(base_url=self.url, headers=self.headers, **kwargs)

    def status(self) -> dict[str, Any]:
        with self.client() as c:
            resp = c.get("/v1/status")
            resp.raise_for_status()
            return resp.json()

    def stop(self) -> None:
        self.proc.stop()


def hub_cache_with(root: Path, repo_id: str, snapshot: Path) -> Path:
    """An HF_HOME whose cache holds `snapshot` as the hub leaves a download of repo_id:
    refs/main names a snapshot folder (here a link to `snapshot`)."""
    repo = root / "hub" / f"models--{repo_id.replace('/', '--')}"
    revision = "0123456789abcdef0123456789abcdef01234567"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(revision)
    (repo / "snapshots").mkdir()
    (repo / "snapshots" / revision).symlink_to(snapshot, target_is_directory=True)
    return root


def load_offline_in_a_fresh_process(model: str, hf_home: Path) -> list[str]:
    """The diffusers backend loaded as the daemon loads it, offline, in a new interpreter (the
    offline switch is read at import): its model name, device and pipeline class."""
    code = ("from pathlib import Path; from storyboard_contract.config import ImagesConfig; "
            "from gpu_daemon.images.diffusion import DiffusersBackend; "
            f"b = DiffusersBackend.load(ImagesConfig(model={model!r}), Path('.')); "
            "print(b.model, b.device, type(b.pipe).__name__)")
    env = {**os.environ, "HF_HOME": str(hf_home), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def start_daemon(
    tmp_path: Path,
    s3_server: Any,
    backend: str = "sketch",
    model: str | Path | None = None,
    *,
    images: dict[str, Any] | None = None,
    sections: dict[str, dict[str, Any]] | None = None,
    env: dict[str, str] | None = None,
    serve_args: tuple[str, ...] = (),
    timeout: float = 60.0,
) -> DaemonHandle:
    """Start `gpu-daemon serve` against the test bucket and wait until /healthz answers.

    images / sections: extra settings for [images] and other config sections;
    serve_args: extra command-line options.
    """
    tmp_path.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(24)
    config = {
        "s3": {"addressing_style": "path"},
        "images": {"backend": backend, "model": str(model or ""), **(images or {})},
    }
    for name, values in (sections or {}).items():
        config[name] = {**config.get(name, {}), **values}
    config_path = write_toml(tmp_path / "daemon.toml", config)
    proc_env = {**os.environ, **s3_server.env(), "STORYBOARD_DAEMON_TOKEN": token,
                "HF_HUB_OFFLINE": "1", **(env or {})}
    port_holder: dict[str, int] = {}

    def make() -> processes.Process:
        port_holder["port"] = processes.free_port()
        argv = [*daemon_argv(), "serve", "--config", str(config_path),
                "--host", "127.0.0.1", "--port", str(port_holder["port"]), *serve_args]
        return processes.Process("gpu-daemon", argv, tmp_path / "daemon.log", env=proc_env,
                                cwd=tmp_path)

    proc = processes.start_with_retry(
        make,
        lambda p: processes.http_ok(f"http://127.0.0.1:{port_holder['port']}/healthz"),
        timeout=timeout,
    )
    url = f"http://127.0.0.1:{port_holder['port']}"
    return DaemonHandle(url, token, proc, config_path,
                        env={"STORYBOARD_DAEMON_URL": url, "STORYBOARD_DAEMON_TOKEN": token})


@pytest.fixture(scope="session")
def sketch_daemon(
    tmp_path_factory: pytest.TempPathFactory, s3_server: Any
) -> Iterator[DaemonHandle]:
    handle = start_daemon(tmp_path_factory.mktemp("sketch-daemon"), s3_server, "sketch",
                          images={"width": 256, "height": 256})
    yield handle
    handle.stop()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from gpu_daemon.testing import build_tiny_pipeline

    return build_tiny_pipeline(tmp_path_factory.mktemp("tiny-sd") / "model")


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Path:
    """The tiny pipeline as one SD 1.x checkpoint in the original layout (its configuration:
    tiny_model_dir)."""
    from gpu_daemon.testing import write_single_file

    return write_single_file(tiny_model_dir,
                             tmp_path_factory.mktemp("tiny-ckpt") / "tiny-sd15.safetensors")


@pytest.fixture(scope="session")
def tiny_sdxl_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from gpu_daemon.testing import build_tiny_sdxl_pipeline

    return build_tiny_sdxl_pipeline(tmp_path_factory.mktemp("tiny-sdxl") / "model")


@pytest.fixture(scope="session")
def diffusers_daemon(
    tmp_path_factory: pytest.TempPathFactory, s3_server: Any, tiny_model_dir: Path
) -> Iterator[DaemonHandle]:
    handle = start_daemon(tmp_path_factory.mktemp("diffusers-daemon"), s3_server, "diffusers",
                          tiny_model_dir,
                          images={"width": 64, "height": 64, "steps": 4, "max_batch": 4})
    yield handle
    handle.stop()


@pytest.fixture()
def slow_daemon(tmp_path: Path, s3_server: Any, tiny_model_dir: Path) -> Iterator[Any]:
    handles: list[DaemonHandle] = []

    def make(steps: int, max_batch: int) -> DaemonHandle:
        handle = start_daemon(tmp_path / f"slow-daemon-{len(handles)}", s3_server, "diffusers",
                              tiny_model_dir, images={"width": 64, "height": 64, "steps": steps,
                                                      "max_batch": max_batch})
        handles.append(handle)
        return handle

    yield make
    for handle in handles:
        handle.stop()
