"""The full-size random-weight pipelines (gpu_daemon/testing.py) have the real models' sizes.

Counted on PyTorch's meta device: the modules are built without memory for their weights, in
well under a second. The parameter counts are those of the released checkpoints.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gpu_daemon.testing import SD15, SDXL, build_sd15_pipeline, text_config
from storyboard_contract.config import ImagesConfig


def parameters(module) -> int:
    return sum(p.numel() for p in module.parameters())


def sizes(spec) -> list[int]:
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    with torch.device("meta"):
        unet, vae = UNet2DConditionModel(**spec.unet), AutoencoderKL(**spec.vae)
        encoders = [(CLIPTextModel if i == 0 else CLIPTextModelWithProjection)(text_config(te))
                    for i, te in enumerate(spec.text_encoders)]
    return [parameters(unet), parameters(vae), *map(parameters, encoders)]


def test_sd15_has_the_sizes_of_stable_diffusion_1_5():
    assert SD15.unet["block_out_channels"] == (320, 640, 1280, 1280)
    # UNet, VAE, CLIP ViT-L/14 text encoder.
    assert sizes(SD15) == [859_520_964, 83_653_863, 123_060_480]


def test_sdxl_has_the_sizes_of_sdxl_base():
    # UNet, VAE, CLIP ViT-L/14, OpenCLIP ViT-bigG/14 with its projection.
    assert sizes(SDXL) == [2_567_463_684, 83_653_863, 123_060_480, 694_659_840]


@pytest.mark.skipif(os.environ.get("STORYBOARD_BUILD_SD15") != "1",
                    reason="builds 1.07 B parameters (about a minute, 4 GB); "
                           "STORYBOARD_BUILD_SD15=1 runs it")
def test_the_sd15_build_loads_and_renders_like_any_model(tmp_path: Path):
    from gpu_daemon.images import RenderJob
    from gpu_daemon.images.diffusion import DiffusersBackend

    model = build_sd15_pipeline(tmp_path / "sd15")
    backend = DiffusersBackend.load(ImagesConfig(model=str(model)), tmp_path)
    image = backend.render([RenderJob("a door", "", 1, 64, 64, 1, 5.0)], lambda s, t: None)[0]
    assert image.size == (64, 64)


def test_the_sdxl_unet_takes_sdxl_conditioning():
    import torch
    from diffusers import UNet2DConditionModel
    from transformers import CLIPTextModelWithProjection

    with torch.device("meta"):
        unet = UNet2DConditionModel(**SDXL.unet)
        bigg = CLIPTextModelWithProjection(text_config(SDXL.text_encoders[1]))
        pooled = bigg(torch.zeros(2, 77, dtype=torch.long)).text_embeds
        # Both encoders' hidden states side by side (768 + 1280), the pooled embedding and
        # the six size/crop numbers: what StableDiffusionXLPipeline passes.
        out = unet(torch.randn(2, 4, 128, 128), torch.tensor([10, 10]),
                   encoder_hidden_states=torch.randn(2, 77, 768 + 1280),
                   added_cond_kwargs={"text_embeds": pooled, "time_ids": torch.randn(2, 6)})
    assert out.sample.shape == (2, 4, 128, 128)
