"""Single-file checkpoints, VAEs and model configuration through the daemon's loader
(gpu_daemon/models/sources.py, diffusion.py): tiny random-weight SD 1.x and SDXL pipelines
written in the original layout load back through diffusers' from_single_file and render what
the folder they came from renders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fixtures_daemon import hub_cache_with, load_offline_in_a_fresh_process

from gpu_daemon.images import RenderJob
from storyboard_contract.config import ImagesConfig
from storyboard_contract.errors import ConfigError


def load(base_dir: Path, **images):
    from gpu_daemon.images.diffusion import DiffusersBackend

    return DiffusersBackend.load(ImagesConfig(**images), base_dir)


def pixels(backend, job: RenderJob | None = None) -> np.ndarray:
    job = job or RenderJob("a lighthouse in a storm", "", 7, 64, 64, 2, 5.0)
    return np.asarray(backend.render([job], lambda step, total: None)[0], dtype=np.int16)


def test_a_single_file_renders_what_its_folder_renders(tiny_model_dir, tiny_checkpoint):
    folder = load(tiny_model_dir.parent, model=str(tiny_model_dir))
    single = load(tiny_model_dir.parent, model=str(tiny_checkpoint),
                  model_config=str(tiny_model_dir))
    assert type(single.pipe).__name__ == "StableDiffusionPipeline"
    for part in ("unet", "vae", "text_encoder"):
        a, b = getattr(folder.pipe, part).state_dict(), getattr(single.pipe, part).state_dict()
        assert set(a) == set(b) and all(a[k].equal(b[k]) for k in a), part
    assert np.array_equal(pixels(folder), pixels(single))


def test_an_sdxl_single_file_renders_what_its_folder_renders(tiny_sdxl_dir, tmp_path):
    from gpu_daemon.testing import write_single_file

    checkpoint = write_single_file(tiny_sdxl_dir, tmp_path / "tiny-sdxl.safetensors")
    folder = load(tmp_path, model=str(tiny_sdxl_dir))
    single = load(tmp_path, model=checkpoint.name, model_config=str(tiny_sdxl_dir))
    assert type(single.pipe).__name__ == "StableDiffusionXLPipeline"
    assert np.array_equal(pixels(folder), pixels(single))


def test_a_relative_path_with_a_folder_in_it_is_a_file_not_a_hub_id(tiny_model_dir,
                                                                    tiny_checkpoint, tmp_path):
    # The report that opened issue 19: models/NAME.safetensors was taken for a hub id.
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "v1-5.safetensors").symlink_to(tiny_checkpoint)
    backend = load(tmp_path, model="models/v1-5.safetensors", model_config=str(tiny_model_dir))
    assert backend.model == "models/v1-5.safetensors"
    with pytest.raises(ConfigError) as missing:
        load(tmp_path, model="models/v1-6.safetensors", model_config=str(tiny_model_dir))
    assert str(missing.value) == \
        f"images.model: no model file or folder at {tmp_path / 'models' / 'v1-6.safetensors'}"


def test_without_model_config_the_cached_hub_configuration_is_required_offline(
        tiny_checkpoint, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(ConfigError) as refused:
        load(tmp_path, model=str(tiny_checkpoint))
    message = str(refused.value)
    assert "'stable-diffusion-v1-5/stable-diffusion-v1-5' (the configuration of SD 1.x " \
           "checkpoints like tiny-sd15.safetensors" in message
    assert "hf download stable-diffusion-v1-5/stable-diffusion-v1-5 --include" in message
    assert "images.model_config" in message and "HF_ENDPOINT" in message


def test_a_cached_hub_configuration_is_used_for_a_single_file(tiny_model_dir, tiny_checkpoint,
                                                               tmp_path):
    hf_home = hub_cache_with(tmp_path / "hf", "stable-diffusion-v1-5/stable-diffusion-v1-5",
                             tiny_model_dir)
    loaded = load_offline_in_a_fresh_process(str(tiny_checkpoint), hf_home)
    assert loaded[-1] == "StableDiffusionPipeline"


def test_a_model_config_of_another_architecture_is_refused(tiny_checkpoint, tiny_sdxl_dir):
    with pytest.raises(ConfigError) as refused:
        load(tiny_checkpoint.parent, model=str(tiny_checkpoint), model_config=str(tiny_sdxl_dir))
    assert str(refused.value).startswith(
        f"images.model_config: {tiny_sdxl_dir} configures a StableDiffusionXLPipeline, but "
        "tiny-sd15.safetensors is an SD 1.x checkpoint")


def test_an_allowed_pickle_checkpoint_loads_like_its_safetensors(tiny_model_dir,
                                                                  tiny_checkpoint, tmp_path):
    import torch
    from safetensors.torch import load_file

    pickle = tmp_path / "tiny.ckpt"
    torch.save({"state_dict": load_file(tiny_checkpoint)}, pickle)
    with pytest.raises(ConfigError, match="is a pickle"):
        load(tmp_path, model=str(pickle), model_config=str(tiny_model_dir))
    from_pickle = load(tmp_path, model=str(pickle), model_config=str(tiny_model_dir),
                       allow_pickle=True)
    from_safetensors = load(tmp_path, model=str(tiny_checkpoint),
                            model_config=str(tiny_model_dir))
    assert np.array_equal(pixels(from_pickle), pixels(from_safetensors))


def _vae_file(model_dir: Path, out: Path, seed: int | None) -> Path:
    """The model's VAE (or, with a seed, a random one of the same shape) as a single file in
    the original layout, as VAEs are distributed."""
    import torch
    from diffusers import AutoencoderKL
    from safetensors.torch import save_file

    from gpu_daemon.models.original_layout import vae_key

    vae = AutoencoderKL.from_pretrained(model_dir, subfolder="vae")
    if seed is not None:
        torch.manual_seed(seed)
        vae = AutoencoderKL.from_config(vae.config)
    state = {}
    for key, value in vae.state_dict().items():
        name = vae_key(key, vae.config)
        state[name] = value[:, :, None, None] if ".attn_1." in name and value.ndim == 2 \
            else value
    save_file({k: v.contiguous() for k, v in state.items()}, out)
    return out


def test_a_vae_file_replaces_the_models_vae(tiny_model_dir, tiny_checkpoint, tmp_path):
    same = _vae_file(tiny_model_dir, tmp_path / "same-vae.safetensors", seed=None)
    other = _vae_file(tiny_model_dir, tmp_path / "other-vae.safetensors", seed=5)
    common = {"model": str(tiny_checkpoint), "model_config": str(tiny_model_dir)}
    plain = pixels(load(tmp_path, **common))
    assert np.array_equal(pixels(load(tmp_path, **common, vae=same.name)), plain)
    with_other = load(tmp_path, **common, vae=other.name)
    assert not np.array_equal(pixels(with_other), plain)
    assert with_other.identity.vae == "other-vae.safetensors"
    assert with_other.identity.vae_hash and with_other.identity.vae_hash != \
        load(tmp_path, **common, vae=same.name).identity.vae_hash
    # A folder works too.
    assert np.array_equal(pixels(load(tmp_path, **common, vae=str(tiny_model_dir / "vae"))),
                          plain)


def test_a_missing_vae_or_a_file_that_is_no_vae_is_one_line(tiny_checkpoint, tiny_model_dir):
    base = tiny_model_dir.parent
    with pytest.raises(ConfigError) as missing:
        load(base, model=str(tiny_model_dir), vae="vae.safetensors")
    assert str(missing.value) == f"images.vae: no VAE file or folder at {base / 'vae.safetensors'}"
    with pytest.raises(ConfigError) as not_a_vae:
        load(base, model=str(tiny_model_dir), vae=str(tiny_checkpoint))
    assert str(not_a_vae.value) == \
        f"images.vae: {tiny_checkpoint} is not a VAE (no encoder/decoder weights in it)"


@pytest.fixture(scope="module")
def tiny_sd3(tmp_path_factory) -> tuple[Path, Path]:
    from gpu_daemon.testing import build_tiny_sd3_pipeline, write_single_file

    folder = build_tiny_sd3_pipeline(tmp_path_factory.mktemp("tiny-sd3") / "model")
    return folder, write_single_file(folder, folder.parent / "tiny-sd3.safetensors")


def test_an_sd3_single_file_without_t5_renders_what_its_folder_renders(tiny_sd3):
    from gpu_daemon.models import checkpoints

    folder, checkpoint = tiny_sd3
    assert checkpoints.detect(checkpoint, allow_pickle=False).family == "sd3"
    from_folder = load(folder.parent, model=str(folder))
    single = load(folder.parent, model=str(checkpoint), model_config=str(folder))
    assert type(single.pipe).__name__ == "StableDiffusion3Pipeline"
    assert single.pipe.text_encoder_3 is None
    for part in ("transformer", "vae", "text_encoder", "text_encoder_2"):
        a, b = getattr(from_folder.pipe, part).state_dict(), getattr(single.pipe, part).state_dict()
        assert set(a) == set(b) and all(a[k].equal(b[k]) for k in a), part
    # Float noise in the attention kernels may move a pixel by a level.
    assert np.abs(pixels(from_folder) - pixels(single)).max() <= 1


def test_a_flow_matching_model_refuses_the_other_schedulers(tiny_sd3):
    folder, checkpoint = tiny_sd3
    with pytest.raises(ConfigError) as refused:
        load(folder.parent, model=str(checkpoint), model_config=str(folder),
             scheduler="dpmpp_2m_karras")
    assert str(refused.value) == ("images.scheduler: scheduler 'dpmpp_2m_karras' is not for "
                                  "this model (a flow-matching model: default, euler)")
    euler = load(folder.parent, model=str(checkpoint), model_config=str(folder),
                 scheduler="euler")
    assert euler.scheduler_names == ("default", "euler")
    assert type(euler.pipe.scheduler).__name__ == "FlowMatchEulerDiscreteScheduler"
