"""A project's model, LoRA and sampler, end to end: `storyboard new --model --scheduler
--steps --cfg`, `storyboard settings`, workers and a daemon serving a tiny SD 1.x checkpoint
("default") and a tiny SDXL folder ("sdxl") with a LoRA folder. Every shot says what made it
(`show --json`); `regen-shot --keep-seed` with nothing changed makes the same pixels; a
Chinese story for an English-only model warns once, with the fix; a LoRA the daemon does not
have fails the shot at once with the daemon's reason, without retries."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from fixtures_daemon import DaemonHandle, start_daemon
from PIL import Image

from gpu_daemon.models.provenance import short_hash

STORY = "Old Tom climbed the lighthouse stairs. Mara waited by the great lens.\n"
CHINESE = "清晨，小镇还在沉睡。老陈推开木门，看见院子里站着一个陌生的孩子。\n"


@pytest.fixture(scope="module")
def lora_dir(tmp_path_factory, tiny_model_dir) -> Path:
    from gpu_daemon.testing import write_lora

    folder = tmp_path_factory.mktemp("project-loras")
    write_lora(tiny_model_dir, folder / "ink.safetensors", seed=1)
    return folder


@pytest.fixture(scope="module")
def model_daemon(tmp_path_factory, s3_server, tiny_model_dir, tiny_checkpoint, tiny_sdxl_dir,
                 lora_dir) -> Iterator[DaemonHandle]:
    handle = start_daemon(
        tmp_path_factory.mktemp("project-models"), s3_server, "auto", tiny_checkpoint,
        images={"model_config": str(tiny_model_dir), "lora_dir": str(lora_dir), "steps": 2,
                "max_batch": 4, "max_loaded": 2},
        sections={"images.models.sdxl": {"model": str(tiny_sdxl_dir)}})
    yield handle
    handle.stop()


@pytest.fixture()
def models_stack(make_stack, model_daemon, tiny_checkpoint, tiny_sdxl_dir):
    # The host names the same models as the GPU box (it checks projects' names there).
    stack = make_stack(daemon=model_daemon, images={"model": str(tiny_checkpoint)},
                       models={"sdxl": {"model": str(tiny_sdxl_dir)}})
    stack.start_worker()
    return stack


def new(stack, story: str, *options: str) -> int:
    (stack.root / "story.txt").write_text(story, encoding="utf-8")
    return stack.json("new", "story.txt", *options)["id"]


def pixels(url: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(httpx.get(url).content)).convert("RGB"))


def made(shot: dict[str, Any]) -> tuple[Any, ...]:
    p = shot["provenance"]
    return (p["model_name"], p["scheduler"], p["steps"], p["guidance_scale"],
            [(lora["name"], lora["scale"]) for lora in p["loras"]])


def test_a_project_renders_with_its_model_and_sampler_and_regen_reproduces_a_frame(
        models_stack, tiny_sdxl_dir, lora_dir):
    stack = models_stack
    pid = new(stack, STORY, "--model", "sdxl", "--scheduler", "euler", "--steps", "3",
              "--cfg", "3.5", "--negative", "text, watermark")
    project = stack.json("show", str(pid))
    assert project["settings"] == {"model": "sdxl", "loras": [], "scheduler": "euler",
                                   "steps": 3, "cfg": 3.5, "negative_prompt": "text, watermark",
                                   "consistency": None}
    done = stack.run("generate", str(pid), "--timeout", "120", "--json")
    task = json.loads(done.stdout)
    assert task["status"] == "succeeded" and task["warnings"] == []
    # The daemon loaded the model for the first window, and the progress lines said so.
    assert "shot 1: loading model sdxl" in done.stderr
    assert [made(s) for s in task["shots"]] == [("sdxl", "euler", 3, 3.5, [])] * len(
        task["shots"])
    first = stack.json("show", str(pid))["shots"][0]
    assert first["provenance"]["model_hash"] == short_hash(tiny_sdxl_dir)
    assert first["provenance"]["seed"] == first["seed"]
    assert (first["provenance"]["width"], first["provenance"]["height"]) == (
        first["width"], first["height"])

    # Nothing changed: the same image again. The shot was first rendered in a window (a
    # batch), the regen alone: a batch is the same image up to float noise (a level here
    # and there), alone the same pixels every time.
    regen = stack.json("regen-shot", f"{pid}/1", "--keep-seed", "--timeout", "120")
    again = stack.json("show", str(pid))["shots"][0]
    assert regen["status"] == "succeeded" and again["image_key"] != first["image_key"]
    assert again["provenance"] == first["provenance"]
    noise = np.abs(pixels(again["image_url"]).astype(int) - pixels(first["image_url"]))
    assert noise.max() <= 1 and (noise > 0).mean() < 0.01
    stack.json("regen-shot", f"{pid}/1", "--keep-seed", "--timeout", "120")
    third = stack.json("show", str(pid))["shots"][0]
    assert third["provenance"] == first["provenance"]
    assert np.array_equal(pixels(third["image_url"]), pixels(again["image_url"]))

    # Another model and a LoRA: the next render says so, and looks different.
    changed = stack.json("settings", str(pid), "--model", "default", "--lora",
                         "ink.safetensors:0.8", "--reset", "steps")
    assert (changed["model"], changed["loras"], changed["steps"]) == (
        "default", [{"name": "ink.safetensors", "scale": 0.8}], None)
    stack.json("regen-shot", f"{pid}/1", "--keep-seed", "--timeout", "120")
    inked = stack.json("show", str(pid))["shots"][0]
    assert made(inked) == ("default", "euler", 2, 3.5, [("ink.safetensors", 0.8)])
    assert inked["provenance"]["loras"][0]["hash"] == short_hash(lora_dir / "ink.safetensors")
    assert np.abs(pixels(inked["image_url"]).astype(int) - pixels(third["image_url"])).mean() > 1
    stack.json("regen-shot", f"{pid}/1", "--keep-seed", "--timeout", "120")
    reinked = stack.json("show", str(pid))["shots"][0]
    assert reinked["provenance"] == inked["provenance"]
    assert np.array_equal(pixels(reinked["image_url"]), pixels(inked["image_url"]))
    # The text output says it too.
    shown = stack.run("show", str(pid))
    assert "Renders with: model default, LoRAs ink.safetensors:0.8, scheduler euler, CFG 3.5" \
        in shown.stdout
    assert "Made by:  default (" in shown.stdout and "LoRA ink.safetensors:0.8 (" in shown.stdout


def test_a_lora_the_daemon_does_not_have_fails_the_shot_at_once_with_its_reason(models_stack):
    stack = models_stack
    pid = new(stack, STORY, "--lora", "missing.safetensors", "--steps", "1")
    done = stack.run("generate", str(pid), "--timeout", "120", "--json")
    assert done.returncode == 1
    task = json.loads(done.stdout)
    assert task["status"] == "failed"
    assert "answered 422: LoRA 'missing.safetensors': no LoRA file at" in task["error"]
    # Refused, not retried: the failure is the first attempt's.
    assert "after" not in task["error"] and "retrying" not in done.stderr


def test_a_chinese_story_for_an_english_only_model_warns_once_with_the_fix(models_stack):
    stack = models_stack
    pid = new(stack, CHINESE, "--steps", "1")
    done = stack.run("generate", str(pid), "--timeout", "120", "--json")
    assert done.returncode == 0, done.stderr
    task = json.loads(done.stdout)
    (warning,) = task["warnings"]
    assert warning.startswith("image prompts in Chinese (or Japanese, Korean) go to model "
                              "'default' (SD 1.x), whose text encoder (CLIP) reads English only")
    assert 'prompt_language = "en"' in warning and "Kolors, HunyuanDiT" in warning
    # Said once on the progress lines, however many shots carried it.
    assert done.stderr.count("warning: image prompts in Chinese") == 1
    assert stack.json("status", task["id"])["warnings"] == [warning]
