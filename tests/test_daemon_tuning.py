"""The GPU settings of [images]: what each device makes of them, and that a CPU-only torch
keeps working and says what it ignored. The CUDA side is measured by bench/gpu.sh."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from fixtures_daemon import write_toml

from gpu_daemon.images import tuning
from storyboard_contract.config import ImagesConfig, load_config
from storyboard_contract.errors import ConfigError


def test_the_defaults_are_the_safe_ones():
    images = ImagesConfig()
    assert (images.device, images.dtype, images.attention) == ("auto", "auto", "sdpa")
    assert not (images.channels_last or images.compile or images.vae_slicing
                or images.vae_tiling)


def test_auto_precision_is_half_on_a_gpu_and_float32_on_the_cpu():
    assert tuning.plan(ImagesConfig(), "cuda:0").dtype == "float16"
    assert tuning.plan(ImagesConfig(), "mps").dtype == "float16"
    cpu = tuning.plan(ImagesConfig(), "cpu")
    assert cpu.dtype == "float32" and cpu.ignored == ()


def test_the_cpu_ignores_float16_and_compile_and_says_so():
    cpu = tuning.plan(ImagesConfig(dtype="float16", compile=True, channels_last=True), "cpu")
    assert (cpu.dtype, cpu.compile, cpu.channels_last) == ("float32", False, True)
    assert [line.split(" (")[0] for line in cpu.ignored] == ["dtype = float16", "compile = true"]
    # bfloat16 runs on the CPU: it is the user's choice, not ignored.
    assert tuning.plan(ImagesConfig(dtype="bfloat16"), "cpu").dtype == "bfloat16"


def test_bfloat16_on_a_gpu_without_it_is_refused():
    assert tuning.plan(ImagesConfig(dtype="bfloat16"), "cuda:1", True).dtype == "bfloat16"
    with pytest.raises(ConfigError, match="cuda:1 does not support it"):
        tuning.plan(ImagesConfig(dtype="bfloat16"), "cuda:1", bf16_supported=False)


def test_the_settings_are_read_from_the_config_file(tmp_path):
    path = write_toml(tmp_path / "storyboard.toml", {"images": {
        "device": "cuda:1", "dtype": "bfloat16", "attention": "classic", "channels_last": True,
        "compile": True, "vae_slicing": True, "vae_tiling": True}})
    images = load_config(path, environ={}).images
    assert (images.device, images.dtype, images.attention) == ("cuda:1", "bfloat16", "classic")
    assert images.channels_last and images.compile and images.vae_slicing and images.vae_tiling


@pytest.mark.parametrize(("key", "value", "message"), [
    ("device", "gpu1", "cuda:N"),
    ("attention", "flash", "classic, sdpa"),
    ("compile", "yes", "compile"),
])
def test_a_bad_setting_is_named(tmp_path, key, value, message):
    path = write_toml(tmp_path / "storyboard.toml", {"images": {key: value}})
    with pytest.raises(ConfigError, match=message):
        load_config(path, environ={})


def test_a_cuda_device_on_a_cpu_only_torch_is_refused():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ConfigError, match="sees no CUDA device"):
        tuning.pick_device("cuda:1")
    assert tuning.pick_device("auto") in ("cpu", "mps")


def test_the_settings_apply_to_a_loaded_pipeline_on_the_cpu(tiny_model_dir: Path, caplog):
    import torch
    from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0

    from gpu_daemon.images.diffusion import DiffusersBackend

    wanted = ImagesConfig(model=str(tiny_model_dir), dtype="float16", compile=True,
                          channels_last=True, attention="classic", vae_slicing=True)
    with caplog.at_level(logging.WARNING, logger="gpu_daemon.diffusers"):
        backend = DiffusersBackend.load(wanted, Path.cwd())
    ignored = [r.getMessage() for r in caplog.records if "ignores" in r.getMessage()]
    assert len(ignored) == 1 and "dtype = float16" in ignored[0] and "compile" in ignored[0]
    unet = backend.pipe.unet
    assert not isinstance(unet, torch._dynamo.eval_frame.OptimizedModule)  # compile is off
    assert unet.dtype == torch.float32
    conv = unet.conv_in.weight
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    assert {type(p) for p in unet.attn_processors.values()} == {AttnProcessor}
    assert backend.pipe.vae.use_slicing

    plain = DiffusersBackend.load(ImagesConfig(model=str(tiny_model_dir)), Path.cwd())
    assert {type(p) for p in plain.pipe.unet.attn_processors.values()} == {AttnProcessor2_0}
    assert plain.pipe.unet.conv_in.weight.is_contiguous()
    # Both still render.
    for b in (backend, plain):
        from gpu_daemon.images import RenderJob

        image = b.render([RenderJob("a door", "", 1, 64, 64, 2, 5.0)], lambda s, t: None)[0]
        assert image.size == (64, 64)
