"""The consistency modes on the tiny pipeline (gpu_daemon/images/reference.py,
shared_attention.py): an IP-Adapter built at random for it with a tiny CLIP vision encoder,
loaded through diffusers' load_ip_adapter from a local folder; consistent self-attention on
its UNet's up blocks."""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gpu_daemon.images import RenderJob
from storyboard_contract.config import ImagesConfig

SHOT = RenderJob("a woman rowing a boat", "", 7, 64, 64, 3, 5.0)


def reference(color: str) -> bytes:
    """A reference image as the bucket holds one: an encoded file."""
    buffer = io.BytesIO()
    Image.new("RGB", (40, 40), color).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def ip_adapter(tmp_path_factory, tiny_model_dir) -> Path:
    from gpu_daemon.testing import write_ip_adapter

    return write_ip_adapter(tiny_model_dir, tmp_path_factory.mktemp("ip") / "ip-adapter")


def load(model_dir: Path, **images):
    from gpu_daemon.images.diffusion import DiffusersBackend

    return DiffusersBackend.load(ImagesConfig(model=str(model_dir), **images), model_dir.parent)


@pytest.fixture(scope="module")
def plain(tiny_model_dir):
    return load(tiny_model_dir)


@pytest.fixture(scope="module")
def with_reference(tiny_model_dir, ip_adapter):
    return load(tiny_model_dir, ip_adapter=str(ip_adapter), ip_adapter_scale=0.8)


def render(backend, *jobs: RenderJob) -> list[np.ndarray]:
    return [np.asarray(im, dtype=np.float64) for im in backend.render(list(jobs),
                                                                         lambda s, t: None)]


def referenced(job: RenderJob, *colors: str) -> RenderJob:
    return replace(job, consistency="reference", references=tuple(map(reference, colors)))


# -- reference --


def test_ip_adapter_at_scale_0_renders_what_the_model_renders_without_it(
        plain, tiny_model_dir, ip_adapter):
    at_zero = load(tiny_model_dir, ip_adapter=str(ip_adapter), ip_adapter_scale=0.0)
    without, = render(plain, SHOT)
    with_zero, = render(at_zero, referenced(SHOT, "red"))
    assert np.abs(with_zero - without).max() <= 1


def test_a_reference_steers_the_image_and_a_text_shot_is_left_alone(plain, with_reference):
    red, blue = (render(with_reference, referenced(SHOT, c))[0] for c in ("red", "blue"))
    assert np.abs(red - blue).mean() > 2
    # The adapter stays loaded, at scale 0 for a shot in text mode: the model's own image.
    text, = render(with_reference, SHOT)
    assert np.abs(text - render(plain, SHOT)[0]).max() <= 1


def test_each_shot_of_a_call_sees_its_own_references(with_reference):
    alone_red, = render(with_reference, referenced(SHOT, "red"))
    together = render(with_reference, referenced(SHOT, "red"),
                      referenced(replace(SHOT, seed=8), "blue"))
    assert np.abs(together[0] - alone_red).mean() < 0.5


def test_masks_keep_each_reference_to_its_strip(with_reference):
    """Two characters: the first one's reference steers the left strip, the second's the
    right. Seen where nothing else mixes the frame yet: the output of the UNet's first
    cross-attention layer at the first step (8 x 8 tokens at 128 x 128 pixels)."""
    unet = with_reference.pipe.unet
    layer = unet.down_blocks[1].attentions[0].transformer_blocks[0].attn2
    seen: list = []
    hook = layer.register_forward_hook(lambda m, args, out: seen.append(out.detach().clone()))
    job = replace(SHOT, width=128, height=128, steps=1)
    try:
        firsts = []
        for colors in (("red", "green"), ("red", "blue"), ("white", "green")):
            seen.clear()
            render(with_reference, referenced(job, *colors))
            # The conditioned row (after the unconditioned one), as an 8 x 8 grid.
            firsts.append(seen[0][1].reshape(8, 8, -1))
    finally:
        hook.remove()
    base, right_changed, left_changed = firsts

    def change(a, b, columns: slice) -> float:
        return (a[:, columns] - b[:, columns]).abs().mean().item()

    left, right = slice(0, 3), slice(5, 8)
    # Another second reference: the right strip changes, the left does not.
    assert change(base, right_changed, right) > 100 * change(base, right_changed, left)
    # Another first reference: the other way round.
    assert change(base, left_changed, left) > 100 * change(base, left_changed, right)


def test_an_ip_adapter_for_another_architecture_refuses_reference_renders_only(
        tiny_sdxl_dir, ip_adapter):
    sdxl = load(tiny_sdxl_dir, ip_adapter=str(ip_adapter))
    assert sdxl.reference is None
    with pytest.raises(ValueError, match="does not fit this model") as refused:
        render(sdxl, referenced(SHOT, "red"))
    assert "\n" not in str(refused.value) and "If you want" not in str(refused.value)
    assert getattr(sdxl.pipe, "image_encoder", None) is None
    image, = render(sdxl, SHOT)
    assert image.shape == (64, 64, 3)


def test_an_ip_adapter_folder_without_its_image_encoder_is_one_line(tmp_path, tiny_model_dir):
    from gpu_daemon.images.consistency import ip_adapter_files
    from storyboard_contract.errors import ConfigError

    (tmp_path / "ip-adapter_sd15.safetensors").write_bytes(b"")
    with pytest.raises(ConfigError, match="no image_encoder/ folder"):
        ip_adapter_files(tmp_path)
    with pytest.raises(ConfigError, match="is not a folder"):
        ip_adapter_files(tmp_path / "missing")


# -- attention --


def shows(job: RenderJob, *keys: str, kept: dict[str, bytes] | None = None) -> RenderJob:
    kept = kept or {}
    return replace(job, consistency="attention",
                   identities=tuple((k, kept.get(k)) for k in keys))


WALKING = replace(SHOT, prompt="a woman walking", seed=3)
SITTING = replace(SHOT, prompt="a woman sitting", seed=4)
RUNNING = replace(SHOT, prompt="a woman running in the rain", seed=9)


def test_with_attention_a_shot_depends_on_the_other_images_of_its_window(plain):
    # Two projects' first windows (nothing kept yet): the same first shot, another second.
    one = render(plain, shows(WALKING, "p1/mei"), shows(SITTING, "p1/mei"))[0]
    two = render(plain, shows(WALKING, "p2/mei"), shows(RUNNING, "p2/mei"))[0]
    assert np.abs(one - two).mean() > 0.05
    # Shots that share no character do not see each other.
    three = render(plain, shows(WALKING, "p3/mei"), shows(RUNNING, "p3/lin"))[0]
    alone = render(plain, shows(WALKING, "p4/mei"))[0]
    assert np.abs(three - alone).mean() < 0.01


def test_without_attention_a_shot_does_not(plain):
    one = render(plain, WALKING, SITTING)[0]
    two = render(plain, WALKING, RUNNING)[0]
    assert np.abs(one - two).mean() < 0.01


def test_a_regen_with_the_kept_identity_reproduces_the_image(tiny_model_dir, plain):
    window = [shows(WALKING, "p5/mei"), shows(SITTING, "p5/mei", "p5/lin"),
              shows(RUNNING, "p5/lin")]
    first = render(plain, *window)
    kept = {**plain.made_identities(window[0]), **plain.made_identities(window[2])}
    assert set(kept) == {"p5/mei", "p5/lin"}
    # Another daemon (nothing in memory) reads the kept features: each shot alone again.
    fresh = load(tiny_model_dir)
    for job, image in zip(window, first, strict=True):
        again, = render(fresh, replace(job, identities=tuple(
            (key, kept[key]) for key, _ in job.identities)))
        assert np.abs(again - image).max() <= 1
    # A later window of the project reads them too: its shots no longer depend on each other.
    later = [shows(RUNNING, "p5/mei", kept=kept), shows(SITTING, "p5/mei", kept=kept)]
    assert np.abs(render(fresh, *later)[0] - render(fresh, later[0])[0]).max() <= 1
    assert fresh.made_identities(later[0]) == {}
