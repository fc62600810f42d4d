"""What a checkpoint file is, from its safetensors header alone (gpu_daemon/models/checkpoints.py),
and the original layout the tests write checkpoints in (gpu_daemon/models/original_layout.py),
checked against diffusers' own conversion at the full sizes of SD 1.5 and SDXL."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from gpu_daemon.models import checkpoints
from gpu_daemon.testing import SD15, SDXL, text_config
from storyboard_contract.errors import ConfigError


def safetensors_file(path: Path, shapes: dict[str, list[int]]) -> Path:
    """A valid safetensors file of zero float32 tensors with these names and shapes."""
    header, offset = {}, 0
    for name, shape in shapes.items():
        size = 4
        for n in shape:
            size *= n
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + bytes(offset))
    return path


def detect(path: Path, allow_pickle: bool = False):
    return checkpoints.detect(path, allow_pickle)


def test_the_tiny_single_files_are_read_as_the_architectures_they_are(
        tiny_checkpoint, tiny_sdxl_dir, tmp_path):
    from gpu_daemon.testing import write_single_file

    assert detect(tiny_checkpoint) == checkpoints.SD1
    sdxl = write_single_file(tiny_sdxl_dir, tmp_path / "xl.safetensors")
    assert detect(sdxl) == checkpoints.SDXL


@pytest.mark.parametrize(("shapes", "expected"), [
    ({"model.diffusion_model.joint_blocks.0.context_block.adaLN_modulation.1.bias": [4],
      "model.diffusion_model.pos_embed": [1, 36864, 1]}, checkpoints.SD3),
    ({"joint_blocks.0.context_block.adaLN_modulation.1.bias": [4],
      "pos_embed": [1, 147456, 1]}, checkpoints.SD35_MEDIUM),
    ({"joint_blocks.0.context_block.adaLN_modulation.1.bias": [4],
      "joint_blocks.37.x_block.mlp.fc1.weight": [2, 2]}, checkpoints.SD35_LARGE),
    ({"double_blocks.0.img_attn.norm.key_norm.scale": [4], "img_in.weight": [3, 64],
      "guidance_in.in_layer.bias": [3]}, checkpoints.FLUX_DEV),
    ({"model.diffusion_model.double_blocks.0.img_attn.norm.key_norm.scale": [4],
      "model.diffusion_model.img_in.weight": [3, 64]}, checkpoints.FLUX_SCHNELL),
    ({"model.diffusion_model.input_blocks.0.0.weight": [8, 4, 3, 3],
      "cond_stage_model.model.token_embedding.weight": [10, 8]}, checkpoints.SD2),
], ids=["sd3", "sd35-medium", "sd35-large", "flux-dev", "flux-schnell", "sd2"])
def test_sd3_flux_and_sd2_are_told_by_their_tensor_names(tmp_path, shapes, expected):
    assert detect(safetensors_file(tmp_path / "m.safetensors", shapes)) == expected


UNET_IN = "model.diffusion_model.input_blocks.0.0.weight"


@pytest.mark.parametrize(("shapes", "says"), [
    ({UNET_IN: [8, 9, 3, 3], "cond_stage_model.transformer.text_model.x": [1]},
     "is an inpainting or instruct model (9 input channels)"),
    ({UNET_IN: [8, 4, 3, 3], "conditioner.embedders.0.model.positional_embedding": [77, 8]},
     "is an SDXL refiner"),
    ({UNET_IN: [8, 4, 3, 3]}, "holds a UNet without its text encoder"),
    ({"lora_unet_down_blocks_0_attn1_to_q.lora_down.weight": [4, 8]}, "is a LoRA, not a model"),
    ({"encoder.conv_in.weight": [8, 3, 3, 3], "decoder.conv_in.weight": [8, 4, 3, 3]},
     "is a VAE alone: set it as images.vae"),
    ({"double_blocks.0.img_attn.norm.key_norm.scale": [4], "img_in.weight": [3, 384]},
     "FLUX.1 Fill/Depth"),
    ({"transformer.h.0.attn.weight": [4, 4]}, "is not a checkpoint of a supported architecture"),
], ids=["inpainting", "refiner", "unet-only", "lora", "vae", "flux-fill", "other"])
def test_what_is_not_a_text_to_image_checkpoint_is_named_in_one_line(tmp_path, shapes, says):
    path = safetensors_file(tmp_path / "m.safetensors", shapes)
    with pytest.raises(ConfigError) as refused:
        detect(path)
    message = str(refused.value)
    assert message.startswith(f"images.model: {path} ") and says in message
    assert "\n" not in message


def test_random_bytes_are_not_a_safetensors_file(tmp_path):
    path = tmp_path / "model.safetensors"
    path.write_bytes(bytes(range(256)) * 64)
    with pytest.raises(ConfigError, match=r"is not a safetensors file$"):
        detect(path)


def test_a_truncated_file_is_named_with_its_missing_bytes(tiny_checkpoint, tmp_path):
    whole = tiny_checkpoint.read_bytes()
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(whole[: len(whole) - 1000])
    with pytest.raises(ConfigError) as refused:
        detect(cut)
    assert str(refused.value) == (
        f"images.model: {cut} is truncated: its header describes {len(whole):,} bytes, the "
        f"file holds {len(whole) - 1000:,} (an interrupted download or copy; fetch it again)")
    # A file cut inside its header is not read as one either.
    cut.write_bytes(whole[:100])
    with pytest.raises(ConfigError, match="is not a safetensors file"):
        detect(cut)


def test_the_header_alone_is_read(tiny_checkpoint, tmp_path):
    # The tensors' bytes are never read: a file whose data is garbage detects the same.
    whole = bytearray(tiny_checkpoint.read_bytes())
    length = struct.unpack("<Q", whole[:8])[0]
    whole[8 + length:] = b"\xff" * (len(whole) - 8 - length)
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(whole)
    assert detect(garbage) == checkpoints.SD1


def test_a_pickle_is_refused_unless_allowed(tmp_path):
    import torch

    path = tmp_path / "model.ckpt"
    torch.save({"state_dict": {"x": torch.zeros(1)}}, path)
    with pytest.raises(ConfigError) as refused:
        detect(path)
    assert "is a pickle (.ckpt): loading one can run code" in str(refused.value)
    assert "images.allow_pickle = true" in str(refused.value)
    assert detect(path, allow_pickle=True) is None  # known once loaded
    # A pickle under a safetensors name says what it is.
    renamed = path.rename(tmp_path / "model.safetensors")
    with pytest.raises(ConfigError, match="it is a PyTorch pickle"):
        detect(renamed)


# -- the original layout at full size, against diffusers' own conversion --


def _meta_state(model) -> dict:
    return dict(model.state_dict())


def _full_size(spec, sdxl: bool):
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    with torch.device("meta"):
        unet = UNet2DConditionModel(**spec.unet)
        vae = AutoencoderKL(**spec.vae)
        encoders = [CLIPTextModel(text_config(spec.text_encoders[0]))]
        if sdxl:
            encoders.append(CLIPTextModelWithProjection(text_config(spec.text_encoders[1])))
    return unet, vae, encoders


@pytest.mark.parametrize("name", ["sd15", "sdxl"])
def test_the_original_layout_is_what_diffusers_converts_back_at_full_size(name):
    from diffusers.loaders.single_file_utils import (
        CHECKPOINT_KEY_NAMES,
        convert_ldm_unet_checkpoint,
        convert_ldm_vae_checkpoint,
        convert_open_clip_checkpoint,
        infer_diffusers_model_type,
    )

    from gpu_daemon.models import original_layout as layout

    sdxl = name == "sdxl"
    unet, vae, encoders = _full_size(SDXL if sdxl else SD15, sdxl)
    state = {**layout.unet_state(unet), **layout.vae_state(vae)}
    state.update(layout.clip_state(encoders[0], layout.SDXL_CLIP_PREFIX if sdxl
                                   else layout.SD1_CLIP_PREFIX))
    if sdxl:
        state.update(layout.open_clip_state(encoders[1], layout.SDXL_OPEN_CLIP_PREFIX))

    # The names real checkpoints have, by which diffusers and this daemon tell them apart.
    assert infer_diffusers_model_type(state) == ("xl_base" if sdxl else "v1")
    assert CHECKPOINT_KEY_NAMES["xl_base" if sdxl else "v1"] in state
    shapes = {k: list(v.shape) for k, v in state.items()}
    assert checkpoints.detect_tensors(shapes, Path("m.safetensors")) == \
        (checkpoints.SDXL if sdxl else checkpoints.SD1)

    # Converted back by diffusers: every parameter, under its own name, in its own shape.
    for model, back in (
        (unet, convert_ldm_unet_checkpoint(state, unet.config)),
        (vae, convert_ldm_vae_checkpoint(state, vae.config)),
    ):
        original = _meta_state(model)
        assert set(back) == set(original)
        assert all(back[k].shape == original[k].shape for k in original)
    if sdxl:
        back = convert_open_clip_checkpoint(encoders[1], state,
                                            prefix=layout.SDXL_OPEN_CLIP_PREFIX)
        original = _meta_state(encoders[1])
        assert set(back) == set(original) - {"text_model.embeddings.position_ids"}
        assert all(back[k].shape == original[k].shape for k in back)


def test_the_mmdit_layout_is_what_diffusers_converts_back_at_sd3_medium_size():
    import torch
    from diffusers import SD3Transformer2DModel
    from diffusers.loaders.single_file_utils import (
        convert_sd3_transformer_checkpoint_to_diffusers,
        infer_diffusers_model_type,
    )

    from gpu_daemon.models.original_layout import mmdit_state

    with torch.device("meta"):
        transformer = SD3Transformer2DModel(
            sample_size=128, patch_size=2, in_channels=16, out_channels=16, num_layers=24,
            attention_head_dim=64, num_attention_heads=24, joint_attention_dim=4096,
            caption_projection_dim=1536, pooled_projection_dim=2048, pos_embed_max_size=192)
    state = mmdit_state(transformer)
    assert infer_diffusers_model_type(state) == "sd3"
    shapes = {k: list(v.shape) for k, v in state.items()}
    assert checkpoints.detect_tensors(shapes, Path("m.safetensors")) == checkpoints.SD3
    back = convert_sd3_transformer_checkpoint_to_diffusers(dict(state))
    original = _meta_state(transformer)
    assert set(back) == set(original)
    assert all(back[k].shape == original[k].shape for k in original)
