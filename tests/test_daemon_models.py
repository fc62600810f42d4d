"""`gpu-daemon serve` with a single-file checkpoint, a scheduler and LoRAs: what a user with a
model from a model site configures. Renders carry their provenance; a request's wrong LoRA or
scheduler is refused with 422; a bad model file stops the daemon at start with one line and
exit 2, before the render process is even started."""

from __future__ import annotations

import http.server
import io
import os
import subprocess
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from fixtures_daemon import DaemonHandle, daemon_argv, start_daemon, write_toml
from PIL import Image

from gpu_daemon.models.provenance import short_hash


@pytest.fixture(scope="module")
def lora_dir(tmp_path_factory, tiny_model_dir, tiny_sdxl_dir) -> Path:
    from gpu_daemon.testing import write_lora

    folder = tmp_path_factory.mktemp("daemon-loras")
    write_lora(tiny_model_dir, folder / "ink.safetensors", seed=1)
    write_lora(tiny_sdxl_dir, folder / "for-sdxl.safetensors", seed=2)
    return folder


@pytest.fixture(scope="module")
def checkpoint_daemon(tmp_path_factory, s3_server, tiny_model_dir, tiny_checkpoint,
                      lora_dir) -> Iterator[DaemonHandle]:
    handle = start_daemon(
        tmp_path_factory.mktemp("checkpoint-daemon"), s3_server, "auto", tiny_checkpoint,
        images={"model_config": str(tiny_model_dir), "lora_dir": str(lora_dir),
                "scheduler": "euler_a", "width": 64, "height": 64, "steps": 3,
                "max_batch": 4})
    yield handle
    handle.stop()


def shot(seed: int, **overrides: Any) -> dict[str, Any]:
    return {"project_id": 1, "shot_id": seed, "task_id": str(uuid.uuid4()), "seed": seed,
            "prompt": "a lighthouse in a storm", "style": "watercolor", **overrides}


def pixels(url: str) -> np.ndarray:
    resp = httpx.get(url)
    assert resp.status_code == 200
    return np.asarray(Image.open(io.BytesIO(resp.content)).convert("RGB"), dtype=np.int16)


def test_a_checkpoint_file_is_served_with_provenance_on_every_render(
        checkpoint_daemon, tiny_checkpoint):
    status = checkpoint_daemon.status()
    assert status["image_backend"] == "diffusers" and status["model"] == str(tiny_checkpoint)
    with checkpoint_daemon.client() as c:
        answer = c.post("/v1/render", json=shot(5, guidance_scale=4.5)).json()
    assert answer["provenance"] == {
        "backend": "diffusers", "model_name": "default", "model": str(tiny_checkpoint),
        "model_hash": short_hash(tiny_checkpoint), "vae": None, "vae_hash": None, "loras": [],
        "scheduler": "euler_a", "steps": 3, "guidance_scale": 4.5, "seed": 5, "width": 64,
        "height": 64, "consistency": "text"}


def test_a_requests_lora_and_scheduler_change_its_image_and_its_provenance(
        checkpoint_daemon, lora_dir):
    with checkpoint_daemon.client() as c:
        plain = c.post("/v1/render", json=shot(8)).json()
        styled = c.post("/v1/render", json=shot(
            8, scheduler="ddim", loras=[{"name": "ink.safetensors", "scale": 0.8}])).json()
        again = c.post("/v1/render", json=shot(8)).json()
    assert styled["provenance"]["scheduler"] == "ddim"
    assert styled["provenance"]["loras"] == [
        {"name": "ink.safetensors", "hash": short_hash(lora_dir / "ink.safetensors"),
         "scale": 0.8}]
    assert np.abs(pixels(styled["image_url"]) - pixels(plain["image_url"])).mean() > 1.0
    # The LoRA was switched off again for the next plain request.
    assert np.array_equal(pixels(again["image_url"]), pixels(plain["image_url"]))


def test_a_window_never_mixes_lora_sets_in_one_call(checkpoint_daemon):
    ink = [{"name": "ink.safetensors", "scale": 1.0}]
    shots = [shot(20), shot(21, loras=ink), shot(22), shot(23, loras=ink)]
    with checkpoint_daemon.client() as c:
        resp = c.post("/v1/renders", json={"shots": shots})
    assert resp.status_code == 200, resp.text
    outcomes = {o["shot_id"]: o["result"] for o in resp.json()["shots"]}
    assert {sid: r["batch_size"] for sid, r in outcomes.items()} == dict.fromkeys(outcomes, 2)
    assert {sid: [lora["name"] for lora in r["provenance"]["loras"]]
            for sid, r in outcomes.items()} == {20: [], 21: ["ink.safetensors"], 22: [],
                                                23: ["ink.safetensors"]}


@pytest.mark.parametrize(("overrides", "says"), [
    ({"loras": [{"name": "missing.safetensors"}]}, "LoRA 'missing.safetensors': no LoRA file"),
    ({"loras": [{"name": "../ink.safetensors"}]}, "no '..'"),
    ({"scheduler": "dpm_fast"}, "unknown scheduler 'dpm_fast'; known: default, "),
    ({"loras": [{"name": "ink.safetensors", "scale": 7}]}, "less than or equal to 4"),
])
def test_a_wrong_lora_or_scheduler_is_refused_before_rendering(checkpoint_daemon, overrides,
                                                               says):
    before = checkpoint_daemon.status()["pipeline_calls"]
    with checkpoint_daemon.client() as c:
        resp = c.post("/v1/render", json=shot(30, **overrides))
    assert resp.status_code == 422
    assert says in resp.json()["detail"]
    assert checkpoint_daemon.status()["pipeline_calls"] == before


def test_a_lora_for_another_model_is_refused_with_422_not_500(checkpoint_daemon):
    with checkpoint_daemon.client() as c:
        refused = c.post("/v1/render", json=shot(40, loras=[{"name": "for-sdxl.safetensors"}]))
        after = c.post("/v1/render", json=shot(41))
    assert refused.status_code == 422
    assert "for-sdxl.safetensors does not fit this model" in refused.json()["detail"]
    assert after.status_code == 200 and after.json()["provenance"]["loras"] == []


# -- bad model files: one line, exit 2, at once --


def serve(tmp_path: Path, images: dict[str, Any], env: dict[str, str] | None = None
          ) -> subprocess.CompletedProcess[str]:
    config = write_toml(tmp_path / "daemon.toml", {"images": images})
    full_env = {**os.environ, "STORYBOARD_DAEMON_TOKEN": "t", "ACCESS_KEY": "k",
                "SECRET_KEY": "not-a-real-secret", "ENDPOINT": "http://127.0.0.1:9",
                "HF_HOME": str(tmp_path / "hf"), **(env or {})}
    return subprocess.run([*daemon_argv(), "serve", "--config", str(config), "--port", "9"],
                          env=full_env, capture_output=True, text=True, timeout=120,
                          cwd=tmp_path)


def _bad_file(kind: str, folder: Path, tiny_checkpoint: Path, tiny_model_dir: Path) -> Path:
    if kind == "random bytes":
        path = folder / "model.safetensors"
        path.write_bytes(os.urandom(4096))
    elif kind == "truncated":
        path = folder / "model.safetensors"
        path.write_bytes(tiny_checkpoint.read_bytes()[:-4096])
    elif kind == "pickle":
        import torch

        path = folder / "model.ckpt"
        torch.save({"state_dict": {}}, path)
    else:  # an unsupported architecture: here a LoRA given as the model
        from gpu_daemon.testing import write_lora

        path = write_lora(tiny_model_dir, folder / "model.safetensors")
    return path


@pytest.mark.parametrize(("kind", "says"), [
    ("random bytes", "is not a safetensors file"),
    ("truncated", "is truncated: its header describes"),
    ("pickle", "is a pickle (.ckpt): loading one can run code"),
    ("unsupported", "is a LoRA, not a model"),
])
def test_a_bad_model_file_stops_the_daemon_with_one_line(tmp_path, tiny_checkpoint,
                                                          tiny_model_dir, kind, says):
    path = _bad_file(kind, tmp_path, tiny_checkpoint, tiny_model_dir)
    done = serve(tmp_path, {"model": path.name, "model_config": str(tiny_model_dir)})
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"gpu-daemon: error: images.model: {path} ") and says in last


class _Hub(http.server.BaseHTTPRequestHandler):
    seen: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        self.seen.append(self.path)
        self.send_error(404)

    do_HEAD = do_GET  # noqa: N815

    def log_message(self, *args: Any) -> None:
        pass


def test_with_downloads_on_the_configuration_comes_from_hf_endpoint(tmp_path, tiny_checkpoint):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    _Hub.seen = []
    try:
        done = serve(tmp_path, {"model": str(tiny_checkpoint), "allow_download": True},
                     env={"HF_HUB_OFFLINE": "0", "HF_ENDPOINT": endpoint})
    finally:
        server.shutdown()
    assert done.returncode == 2, done.stderr
    assert ("cannot download the configuration of stable-diffusion-v1-5/stable-diffusion-v1-5 "
            f"from {endpoint}") in done.stderr
    # The mirror was asked, nothing else was.
    assert any("stable-diffusion-v1-5" in path for path in _Hub.seen), _Hub.seen


def test_doctor_on_the_gpu_side_names_a_bad_model_file_as_a_config_failure(tmp_path,
                                                                             tiny_checkpoint):
    from storyboard_cli.stack.doctor import Doctor, exit_code
    from storyboard_contract.config import load_config
    from storyboard_contract.errors import EXIT_USAGE

    cut = tmp_path / "model.safetensors"
    cut.write_bytes(tiny_checkpoint.read_bytes()[:-10])
    config = write_toml(tmp_path / "storyboard.toml", {"images": {"model": cut.name}})
    secrets = {"STORYBOARD_DAEMON_TOKEN": "a" * 32, "STORYBOARD_FRP_TOKEN": "b" * 32,
               "STORYBOARD_FRP_SECRET_KEY": "c" * 32, "STORYBOARD_FRP_ADMIN_PASSWORD": "d" * 32}
    cfg = load_config(config, environ=secrets)
    checks = {c.name: c for c in Doctor(cfg, side="gpu").run()}
    assert checks["config"].status == "fail"
    assert checks["config"].detail.startswith(f"images.model: {cut} is truncated")
    assert exit_code(list(checks.values())) == EXIT_USAGE
