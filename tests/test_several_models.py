"""Several models on one daemon ([images.models.NAME], gpu_daemon/images/pool.py): a tiny SD
1.x checkpoint as the default and a tiny SDXL folder, at most one loaded at a time. Requests
for both under load are answered by the model each asked for, never in one pipeline call; a
model is loaded on demand and the requests waiting for it are told so; a model's images are
the same before and after a swap."""

from __future__ import annotations

import io
import json
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
from fixtures_daemon import DaemonHandle, start_daemon
from PIL import Image

from storyboard_contract.wire import NDJSON


@pytest.fixture(scope="module")
def two_models(tmp_path_factory, s3_server, tiny_model_dir, tiny_checkpoint,
               tiny_sdxl_dir) -> Iterator[DaemonHandle]:
    handle = start_daemon(
        tmp_path_factory.mktemp("two-models"), s3_server, "auto", tiny_checkpoint,
        images={"model_config": str(tiny_model_dir), "width": 64, "height": 64, "steps": 2,
                "max_batch": 4, "max_loaded": 1},
        sections={"images.models.sdxl": {"model": str(tiny_sdxl_dir), "steps": 3,
                                         "scheduler": "euler_a", "guidance_scale": 4.0}})
    yield handle
    handle.stop()


def shot(shot_id: int, model: str | None = None, **more: Any) -> dict[str, Any]:
    return {"project_id": 1, "shot_id": shot_id, "task_id": str(uuid.uuid4()), "seed": shot_id,
            "prompt": "a lighthouse in a storm", "style": "movie", "model": model, **more}


def streamed(daemon: DaemonHandle, path: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    with daemon.client(timeout=120) as c, c.stream(
            "POST", path, json=body, headers={"Accept": NDJSON}) as resp:
        assert resp.status_code == 200
        return [json.loads(line) for line in resp.iter_lines() if line]


def pixels(url: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(httpx.get(url).content)).convert("RGB"))


def test_status_lists_every_model_its_text_encoder_and_which_is_loaded(two_models,
                                                                      tiny_checkpoint):
    status = two_models.status()
    assert status["max_loaded"] == 1
    models = {m["name"]: m for m in status["models"]}
    assert list(models) == ["default", "sdxl"]
    assert models["default"] == {
        "name": "default", "source": str(tiny_checkpoint), "kind": "checkpoint",
        "architecture": "SD 1.x", "text_encoder": "CLIP", "reads_chinese": False,
        "default": True, "loaded": True}
    assert (models["sdxl"]["kind"], models["sdxl"]["architecture"], models["sdxl"]["loaded"]
            ) == ("diffusers folder", "SDXL", False)


def test_models_swap_under_load_and_never_share_a_call(two_models):
    before = two_models.status()["pipeline_calls"]
    outcomes: dict[int, dict[str, Any]] = {}
    states: dict[int, list[str]] = {}

    def window(first: int) -> None:
        # Each window mixes the two models: the daemon splits it into one call per model.
        shots = [shot(first + k, "sdxl" if k % 2 else None) for k in range(4)]
        events = streamed(two_models, "/v1/renders", {"shots": shots})
        for e in events:
            if e["event"] == "shot":
                outcomes[e["outcome"]["shot_id"]] = e["outcome"]
            elif e["event"] == "progress" and e["state"]:
                states.setdefault(e["shot_id"], []).append(e["state"])

    threads = [threading.Thread(target=window, args=(100 + 10 * n,)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(outcomes) == 12 and all(o["result"] for o in outcomes.values()), outcomes
    for shot_id, outcome in outcomes.items():
        made = outcome["result"]["provenance"]
        sdxl = shot_id % 2 == 1
        assert made["model_name"] == ("sdxl" if sdxl else "default")
        # Each model's own defaults: steps, sampler, guidance.
        assert (made["steps"], made["scheduler"], made["guidance_scale"]) == (
            (3, "euler_a", 4.0) if sdxl else (2, "default", 7.0))
    # A call holds one model's shots: at most the 6 of a model, never all 12.
    assert max(o["result"]["batch_size"] for o in outcomes.values()) <= 6
    status = two_models.status()
    assert status["pipeline_calls"] - before >= 2
    # The requests that waited for a model to load were told so, by name.
    told = {state for shot_states in states.values() for state in shot_states}
    assert told <= {"loading model sdxl", "loading model default"} and told


def test_a_models_image_is_the_same_after_a_swap(two_models):
    with two_models.client(timeout=120) as c:
        first = c.post("/v1/render", json=shot(7)).json()
        other = c.post("/v1/render", json=shot(8, "sdxl")).json()
        again = c.post("/v1/render", json=shot(7)).json()
    assert other["provenance"]["model_name"] == "sdxl"
    assert [m["loaded"] for m in two_models.status()["models"]] == [True, False]
    assert np.array_equal(pixels(first["image_url"]), pixels(again["image_url"]))
    assert first["provenance"] == again["provenance"]


def test_an_unknown_model_is_refused_with_422_before_rendering(two_models):
    before = two_models.status()["pipeline_calls"]
    with two_models.client() as c:
        resp = c.post("/v1/render", json=shot(9, "flux"))
    assert resp.status_code == 422
    assert resp.json()["detail"] == ("unknown model 'flux'; this daemon serves default, sdxl "
                                     "([images.models.NAME] in its storyboard.toml)")
    assert two_models.status()["pipeline_calls"] == before


def test_a_flow_matching_sampler_name_is_checked_per_model(two_models):
    with two_models.client() as c:
        ok = c.post("/v1/render", json=shot(10, "sdxl", scheduler="dpmpp_2m_karras"))
    assert ok.status_code == 200, ok.text
    assert ok.json()["provenance"]["scheduler"] == "dpmpp_2m_karras"


def test_gpu_daemon_check_lists_the_models_with_their_encoders(two_models):
    import subprocess

    from fixtures_daemon import daemon_argv

    done = subprocess.run([*daemon_argv(), "check", "--config", str(two_models.config_path)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line.split(":")[1].strip() for line in lines] == ["default", "sdxl"]
    assert "(SD 1.x checkpoint; CLIP: reads English only)" in lines[0]
