"""The consistency modes through a real `gpu-daemon serve` with the tiny pipeline, its random
IP-Adapter and a random character LoRA: references read from the test bucket, identity
features kept there and read back, a character's LoRA and trigger word on its own shots, and
what a daemon cannot do refused in one line."""

from __future__ import annotations

import io
import os
import subprocess
import uuid

import httpx
import numpy as np
import pytest
from fixtures_daemon import daemon_argv, start_daemon, write_toml
from PIL import Image

from storyboard_cli.board.sheet import provenance_line
from storyboard_contract import keys
from storyboard_contract.config import S3Config

PROJECT = 7
PREFIX = S3Config().prefix


@pytest.fixture(scope="module")
def weights(tmp_path_factory, tiny_model_dir):
    from gpu_daemon.testing import write_ip_adapter, write_lora

    root = tmp_path_factory.mktemp("identity-weights")
    write_ip_adapter(tiny_model_dir, root / "ip-adapter")
    (root / "loras").mkdir()
    write_lora(tiny_model_dir, root / "loras" / "mei.safetensors", seed=5)
    return root


@pytest.fixture(scope="module")
def daemon(tmp_path_factory, s3_server, tiny_model_dir, weights):
    handle = start_daemon(tmp_path_factory.mktemp("identity-daemon"), s3_server, "diffusers",
                          tiny_model_dir,
                          images={"width": 64, "height": 64, "steps": 3, "max_batch": 4,
                                  "ip_adapter": str(weights / "ip-adapter"),
                                  "ip_adapter_scale": 0.8, "lora_dir": str(weights / "loras")})
    yield handle
    handle.stop()


def put_reference(s3_server, name: str, color: str) -> str:
    key = keys.cast_key(PREFIX, PROJECT, name)
    buffer = io.BytesIO()
    Image.new("RGB", (48, 48), color).save(buffer, "PNG")
    s3_server.client().put_object(Bucket=s3_server.bucket, Key=key, Body=buffer.getvalue())
    return key


def shot(shot_id: int, characters: list[dict], mode: str, task: str, **extra) -> dict:
    return {"project_id": PROJECT, "shot_id": shot_id, "task_id": task, "index": shot_id,
            "prompt": f"a harbour at dawn, shot {shot_id}", "seed": 40 + shot_id,
            "characters": characters, "consistency": mode, **extra}


def render(daemon, shots: list[dict]) -> dict[int, dict]:
    with daemon.client() as c:
        resp = c.post("/v1/renders", json={"shots": shots})
    assert resp.status_code == 200, resp.text
    return {o["shot_id"]: o for o in resp.json()["shots"]}


def pixels(outcome: dict) -> np.ndarray:
    assert outcome["status"] == 200, outcome["error"]
    data = httpx.get(outcome["result"]["image_url"]).content
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.int16)


def test_changing_one_characters_reference_changes_only_the_shots_that_show_them(
        daemon, s3_server):
    mei = {"name": "Mei", "reference_key": put_reference(s3_server, "Mei", "red")}
    lin = {"name": "Lin", "reference_key": put_reference(s3_server, "Lin", "blue")}

    def window(mei: dict) -> dict[int, np.ndarray]:
        task = str(uuid.uuid4())
        shots = [shot(1, [mei], "reference", task), shot(2, [lin], "reference", task),
                 shot(3, [mei, lin], "reference", task)]
        return {k: pixels(o) for k, o in render(daemon, shots).items()}

    before = window(mei)
    after = window({**mei, "reference_key": put_reference(s3_server, "Mei", "green")})
    change = {k: np.abs(after[k] - before[k]).mean() for k in before}
    assert change[1] > 2 and change[3] > 2
    assert change[2] < 0.1


def test_a_reference_outside_the_projects_cast_or_not_in_the_bucket_is_refused(daemon):
    task = str(uuid.uuid4())
    elsewhere = {"name": "Mei", "reference_key": f"{PREFIX}/{PROJECT + 1}/cast/x/y.png"}
    missing = {"name": "Mei", "reference_key": keys.cast_key(PREFIX, PROJECT, "Mei")}
    outcomes = render(daemon, [shot(1, [elsewhere], "reference", task),
                               shot(2, [missing], "reference", task)])
    assert outcomes[1]["status"] == 422 and "of the project's cast" in outcomes[1]["error"]
    assert outcomes[2]["status"] == 422 and "is not in" in outcomes[2]["error"]


def test_attention_keeps_the_identity_in_the_bucket_and_a_regen_reproduces_the_shot(
        daemon, s3_server):
    project = PROJECT + 10
    mei = [{"name": "Mei"}]
    task = str(uuid.uuid4())
    first = render(daemon, [{**shot(k, mei, "attention", task), "project_id": project}
                            for k in (1, 2, 3)])
    listed = s3_server.client().list_objects_v2(
        Bucket=s3_server.bucket, Prefix=keys.project_prefix(PREFIX, project) + "identity/")
    kept = [o["Key"] for o in listed.get("Contents", [])]
    assert len(kept) == 1 and keys.character_slug("Mei") in kept[0]
    # A regen of shot 2 alone, in a task of its own: the same image.
    again = render(daemon, [{**shot(2, mei, "attention", str(uuid.uuid4())),
                             "project_id": project}])
    assert np.abs(pixels(again[2]) - pixels(first[2])).max() <= 1
    # A new description is a new look: its own identity, the first one kept.
    render(daemon, [{**shot(2, [{"name": "Mei", "description": "in a red coat"}], "attention",
                            str(uuid.uuid4())), "project_id": project}])
    listed = s3_server.client().list_objects_v2(
        Bucket=s3_server.bucket, Prefix=keys.project_prefix(PREFIX, project) + "identity/")
    assert sorted(o["Key"] for o in listed["Contents"]) == sorted([
        kept[0], keys.identity_key(PREFIX, project, "Mei", kept[0].rsplit("/", 1)[1].split("-")[0],
                                   "in a red coat")])


def test_a_characters_lora_and_trigger_word_go_only_to_the_shots_that_show_them(daemon):
    task = str(uuid.uuid4())
    mei = {"name": "Mei", "description": "a boatwoman", "trigger": "meitok",
           "lora": {"name": "mei.safetensors", "scale": 0.9}}
    outcomes = render(daemon, [shot(1, [mei], "lora", task), shot(2, [], "lora", task),
                               shot(3, [mei], "text", task)])
    with_her, without, text = (outcomes[k]["result"] for k in (1, 2, 3))
    assert "meitok, a boatwoman" in with_her["prompt"]
    assert [lora["name"] for lora in with_her["provenance"]["loras"]] == ["mei.safetensors"]
    assert with_her["provenance"]["loras"][0]["scale"] == 0.9
    assert without["provenance"]["loras"] == [] and "meitok" not in without["prompt"]
    # In text mode her LoRA and trigger word stay out.
    assert text["provenance"]["loras"] == [] and "meitok" not in text["prompt"]
    # Provenance says how identity was carried, and the boards' line says it too.
    assert [r["provenance"]["consistency"] for r in (with_her, text)] == ["lora", "text"]
    assert provenance_line(with_her["provenance"]).endswith(", identity by lora")
    assert "identity by" not in provenance_line(text["provenance"])


def test_a_characters_missing_lora_is_refused_in_one_line(daemon):
    mei = {"name": "Mei", "lora": {"name": "gone.safetensors"}}
    outcome = render(daemon, [shot(1, [mei], "lora", str(uuid.uuid4()))])[1]
    assert outcome["status"] == 422 and "gone.safetensors" in outcome["error"]
    assert "\n" not in outcome["error"]


def test_a_mode_the_daemon_cannot_render_is_a_422_line(sketch_daemon):
    with sketch_daemon.client() as c:
        for mode in ("reference", "attention", "lora"):
            resp = c.post("/v1/render", json=shot(1, [], mode, str(uuid.uuid4())))
            assert resp.status_code == 422
            assert resp.json()["detail"].startswith(f"consistency {mode}: the sketch backend")


def check(tmp_path, images: dict) -> subprocess.CompletedProcess:
    config = write_toml(tmp_path / "daemon.toml", {"images": images})
    return subprocess.run([*daemon_argv(), "check", "--config", str(config)],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)


def test_check_refuses_a_mode_whose_weights_are_missing_in_one_line(
        tmp_path, tiny_model_dir, weights):
    model = {"backend": "diffusers", "model": str(tiny_model_dir)}
    no_adapter = check(tmp_path, {**model, "consistency": "reference"})
    assert no_adapter.returncode == 2
    assert "consistency = \"reference\" needs images.ip_adapter" in no_adapter.stderr
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "ip-adapter.safetensors").write_bytes(
        (weights / "ip-adapter" / "ip-adapter.safetensors").read_bytes())
    no_encoder = check(tmp_path, {**model, "consistency": "reference",
                                  "ip_adapter": str(tmp_path / "half")})
    assert no_encoder.returncode == 2 and "no image_encoder/ folder" in no_encoder.stderr
    assert len(no_encoder.stderr.strip().splitlines()) == 1
    no_loras = check(tmp_path, {**model, "consistency": "lora",
                                "lora_dir": str(tmp_path / "none")})
    assert no_loras.returncode == 2 and "is not a folder" in no_loras.stderr
    sketch = check(tmp_path, {"backend": "sketch", "consistency": "attention"})
    assert sketch.returncode == 2 and "the sketch backend" in sketch.stderr
    fine = check(tmp_path, {**model, "consistency": "reference",
                            "ip_adapter": str(weights / "ip-adapter")})
    assert fine.returncode == 0, fine.stderr


def test_serve_refuses_to_start_in_a_mode_whose_weights_are_missing(tmp_path, tiny_model_dir):
    config = write_toml(tmp_path / "daemon.toml", {"images": {
        "backend": "diffusers", "model": str(tiny_model_dir), "consistency": "reference"}})
    done = subprocess.run([*daemon_argv(), "serve", "--config", str(config), "--port", "1"],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path,
                          env={**os.environ, "STORYBOARD_DAEMON_TOKEN": "t"})
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"gpu-daemon: error: {config}: images.consistency = \"reference\" needs "
        "images.ip_adapter: a local folder with an IP-Adapter weight file and its "
        "image_encoder/"]

