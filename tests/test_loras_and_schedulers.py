"""LoRAs, schedulers and provenance on the tiny pipeline (gpu_daemon/models/loras.py,
schedulers.py, provenance.py): random LoRA weights made with peft change the image, and only
while they are switched on; two LoRA sets or two schedulers never share a pipeline call; every
scheduler name renders."""

from __future__ import annotations

import re
import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from gpu_daemon.images import RenderJob
from gpu_daemon.images.batching import RenderQueue
from storyboard_contract.config import SCHEDULER_NAMES, ImagesConfig
from storyboard_contract.errors import ConfigError

JOB = RenderJob("a lighthouse in a storm", "", 7, 64, 64, 2, 5.0)


@pytest.fixture(scope="module")
def lora_dir(tmp_path_factory, tiny_model_dir, tiny_sdxl_dir) -> Path:
    from gpu_daemon.testing import write_lora

    folder = tmp_path_factory.mktemp("loras")
    write_lora(tiny_model_dir, folder / "ink.safetensors", seed=1)
    # The same weights in kohya's layout, and another LoRA.
    write_lora(tiny_model_dir, folder / "ink-kohya.safetensors", seed=1, layout="kohya")
    write_lora(tiny_model_dir, folder / "noir.safetensors", seed=2)
    write_lora(tiny_sdxl_dir, folder / "for-sdxl.safetensors", seed=3)
    return folder


@pytest.fixture(scope="module")
def backend(tiny_model_dir):
    from gpu_daemon.images.diffusion import DiffusersBackend

    return DiffusersBackend.load(ImagesConfig(model=str(tiny_model_dir)), tiny_model_dir.parent)


def pixels(backend, job: RenderJob = JOB) -> np.ndarray:
    return np.asarray(backend.render([job], lambda step, total: None)[0], dtype=np.int16)


def with_loras(job: RenderJob, *loras: tuple[Path, float]) -> RenderJob:
    return replace(job, loras=tuple((str(path), scale) for path, scale in loras))


def test_a_lora_changes_the_image_only_while_it_is_on(backend, lora_dir):
    plain = pixels(backend)
    ink = pixels(backend, with_loras(JOB, (lora_dir / "ink.safetensors", 1.0)))
    assert np.abs(ink - plain).mean() > 1.0
    # Switched off for a call without it: the image is the plain one again, to the bit.
    assert np.array_equal(pixels(backend), plain)
    # Its scale matters: at 0 it is the plain image, at 0.5 another.
    assert np.array_equal(pixels(backend, with_loras(JOB, (lora_dir / "ink.safetensors", 0.0))),
                          plain)
    half = pixels(backend, with_loras(JOB, (lora_dir / "ink.safetensors", 0.5)))
    assert not np.array_equal(half, plain) and not np.array_equal(half, ink)


def test_a_kohya_lora_is_read_as_the_same_lora(backend, lora_dir):
    diffusers_layout = pixels(backend, with_loras(JOB, (lora_dir / "ink.safetensors", 1.0)))
    kohya_layout = pixels(backend, with_loras(JOB, (lora_dir / "ink-kohya.safetensors", 1.0)))
    assert np.array_equal(diffusers_layout, kohya_layout)


def test_two_loras_together_differ_from_each_alone(backend, lora_dir):
    ink = with_loras(JOB, (lora_dir / "ink.safetensors", 1.0))
    noir = with_loras(JOB, (lora_dir / "noir.safetensors", 1.0))
    both = with_loras(JOB, (lora_dir / "ink.safetensors", 1.0),
                      (lora_dir / "noir.safetensors", 1.0))
    images = [pixels(backend, j) for j in (ink, noir, both)]
    assert len({im.tobytes() for im in images}) == 3
    assert backend.provenance(both)["loras"] == [
        {"name": "ink.safetensors", "hash": backend.provenance(ink)["loras"][0]["hash"],
         "scale": 1.0},
        {"name": "noir.safetensors", "hash": backend.provenance(noir)["loras"][0]["hash"],
         "scale": 1.0}]


class Gate:
    """Holds the render thread inside its current call until opened."""

    def __init__(self) -> None:
        self.entered, self.opened = threading.Event(), threading.Event()

    def __call__(self, step: int, total: int) -> None:
        self.entered.set()
        assert self.opened.wait(60)


def test_two_lora_sets_or_schedulers_never_share_a_call(backend, lora_dir):
    ink = with_loras(JOB, (lora_dir / "ink.safetensors", 1.0))
    noir = with_loras(JOB, (lora_dir / "noir.safetensors", 1.0))
    euler = replace(JOB, scheduler="euler")
    alone = {name: pixels(backend, j) for name, j in (("ink", ink), ("noir", noir),
                                                      ("euler", euler))}
    queue = RenderQueue(backend, max_batch=8)
    gate = Gate()
    try:
        blocker = queue.submit(JOB, gate)
        assert gate.entered.wait(60)
        waiting = [(name, queue.submit(replace(j, seed=JOB.seed)))
                   for name, j in (("ink", ink), ("noir", noir), ("euler", euler),
                                   ("ink", ink), ("noir", noir))]
        gate.opened.set()
        blocker.future.result(60)
        results = [(name, t.future.result(60)) for name, t in waiting]
    finally:
        queue.close()
    # The oldest waiting job takes along its equals only: ink twice, then noir twice, euler.
    assert [r.batch_size for _, r in results] == [2, 2, 1, 2, 2]
    assert queue.stats.pipeline_calls == 4
    for name, rendered in results:
        got = np.asarray(rendered.image, dtype=np.int16)
        assert np.abs(got - alone[name]).mean() < 1.0, name
        used = rendered.provenance
        assert [lora["name"] for lora in used["loras"]] == \
            {"ink": ["ink.safetensors"], "noir": ["noir.safetensors"], "euler": []}[name]
        assert used["scheduler"] == ("euler" if name == "euler" else "default")


def test_a_daemon_wide_lora_applies_to_every_call_and_a_request_can_rescale_it(
        tiny_model_dir, lora_dir, backend):
    from gpu_daemon.images.diffusion import DiffusersBackend

    ink = lora_dir / "ink.safetensors"
    wide = DiffusersBackend.load(ImagesConfig(model=str(tiny_model_dir), loras=[f"{ink}:0.5"]),
                                 tiny_model_dir.parent)
    half = pixels(backend, with_loras(JOB, (ink, 0.5)))
    assert np.array_equal(pixels(wide), half)
    assert wide.provenance(JOB)["loras"][0]["scale"] == 0.5
    assert np.array_equal(pixels(wide, with_loras(JOB, (ink, 1.0))),
                          pixels(backend, with_loras(JOB, (ink, 1.0))))


def test_a_lora_for_another_architecture_is_refused(tiny_model_dir, lora_dir, backend):
    from gpu_daemon.images.diffusion import DiffusersBackend

    foreign = lora_dir / "for-sdxl.safetensors"
    # Daemon-wide: one line at start-up.
    with pytest.raises(ConfigError) as refused:
        DiffusersBackend.load(ImagesConfig(model=str(tiny_model_dir), loras=[str(foreign)]),
                              tiny_model_dir.parent)
    assert str(refused.value).startswith(
        "images.loras: for-sdxl.safetensors does not fit this model")
    # For a request: a ValueError (the daemon answers 422), and the next call is unharmed.
    plain = pixels(backend)
    with pytest.raises(ValueError, match="for-sdxl.safetensors does not fit this model"):
        pixels(backend, with_loras(JOB, (foreign, 1.0)))
    assert np.array_equal(pixels(backend), plain)


@pytest.mark.parametrize(("entry", "says"), [
    ("missing.safetensors", "images.loras: no LoRA file at"),
    ("ink.safetensors:9", "the scale must be between -4 and 4"),
    ("model.safetensors", "is not a LoRA (no lora_A/lora_B or lora_down/lora_up weights"),
])
def test_a_wrong_daemon_wide_lora_is_one_line(tiny_model_dir, tiny_checkpoint, lora_dir,
                                              entry, says):
    from gpu_daemon.models.sources import ModelSpec

    base = lora_dir
    if entry == "model.safetensors":
        (lora_dir / entry).unlink(missing_ok=True)
        (lora_dir / entry).symlink_to(tiny_checkpoint)
    with pytest.raises(ConfigError, match=re.escape(says)):
        ModelSpec.from_config(ImagesConfig(model=str(tiny_model_dir), loras=[entry]), base)


def test_a_request_lora_must_be_a_lora_file_inside_lora_dir(lora_dir, tmp_path):
    from gpu_daemon.models.loras import request_lora

    assert request_lora("ink.safetensors", lora_dir) == lora_dir / "ink.safetensors"
    for name, says in (("../ink.safetensors", "no '..'"), ("/etc/passwd", "a relative path"),
                       ("nothing.safetensors", "no LoRA file at")):
        with pytest.raises(ValueError, match=says):
            request_lora(name, lora_dir)


@pytest.mark.parametrize("name", SCHEDULER_NAMES)
def test_every_scheduler_name_renders(backend, name):
    image = pixels(backend, replace(JOB, scheduler=name, steps=3))
    assert image.shape == (64, 64, 3)
    assert backend.provenance(replace(JOB, scheduler=name))["scheduler"] == name
    expected = {"default": "DDIMScheduler", "ddim": "DDIMScheduler",
                "dpmpp_2m_karras": "DPMSolverMultistepScheduler",
                "dpmpp_sde_karras": "DPMSolverSinglestepScheduler",
                "euler": "EulerDiscreteScheduler", "euler_a": "EulerAncestralDiscreteScheduler",
                "unipc": "UniPCMultistepScheduler", "lcm": "LCMScheduler"}[name]
    assert type(backend.pipe.scheduler).__name__ == expected


def test_schedulers_keep_the_models_noise_schedule(backend):
    made = backend.schedulers.get("dpmpp_2m_karras")
    default = backend.schedulers.default
    assert made.config.use_karras_sigmas and made.config.algorithm_type == "dpmsolver++"
    for key in ("beta_start", "beta_end", "beta_schedule", "prediction_type"):
        assert made.config[key] == default.config[key]


def test_an_unknown_scheduler_is_refused_with_the_list(backend, tiny_model_dir):
    from pydantic import ValidationError

    from storyboard_contract.config import load_config
    from storyboard_contract.wire import RenderRequest

    says = re.escape(f"unknown scheduler 'dpm_fast'; known: {', '.join(SCHEDULER_NAMES)}")
    with pytest.raises(ValueError, match=says):
        backend.schedulers.get("dpm_fast")
    with pytest.raises(ValidationError, match=says):
        RenderRequest(project_id=1, shot_id=1, task_id="t", prompt="p", seed=1,
                      scheduler="dpm_fast")
    config = tiny_model_dir.parent / "sched.toml"
    config.write_text('[images]\nscheduler = "dpm_fast"\n')
    with pytest.raises(ConfigError, match="images.scheduler = 'dpm_fast' is not one of"):
        load_config(config)


def test_a_flow_matching_model_takes_only_its_own_scheduler():
    from diffusers import FlowMatchEulerDiscreteScheduler

    from gpu_daemon.models.schedulers import Schedulers

    flow = Schedulers(FlowMatchEulerDiscreteScheduler())
    assert flow.names == ("default", "euler")
    assert flow.get("euler") is flow.default
    with pytest.raises(ValueError, match="'dpmpp_2m_karras' is not for this model"):
        flow.get("dpmpp_2m_karras")


def test_provenance_names_everything_that_made_the_image(backend, tiny_model_dir, lora_dir):
    from gpu_daemon.models.provenance import short_hash

    job = with_loras(replace(JOB, scheduler="euler_a", steps=3, guidance_scale=6.5, seed=42),
                     (lora_dir / "noir.safetensors", 0.7))
    pixels(backend, job)
    assert backend.provenance(job) == {
        "backend": "diffusers", "model_name": "default", "model": str(tiny_model_dir),
        "model_hash": short_hash(tiny_model_dir), "vae": None, "vae_hash": None,
        "loras": [{"name": "noir.safetensors",
                   "hash": short_hash(lora_dir / "noir.safetensors"), "scale": 0.7}],
        "scheduler": "euler_a", "steps": 3, "guidance_scale": 6.5, "seed": 42,
        "width": 64, "height": 64, "consistency": "text"}
    assert len(short_hash(tiny_model_dir)) == 10
    # The same settings render the same image: provenance is enough to reproduce it.
    assert np.array_equal(pixels(backend, job), pixels(backend, job))
