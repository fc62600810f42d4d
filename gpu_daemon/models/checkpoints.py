"""What a single-file checkpoint is, read from its safetensors header alone.

A ``.safetensors`` file starts with an 8-byte little-endian length and a JSON header naming
every tensor with its dtype, shape and byte range; the tensors follow. Reading the header
tells the architecture (from the tensor names and a few shapes) and whether the file is whole
(the last tensor's end against the file's size) without reading gigabytes of weights, so a
wrong or damaged file is refused in milliseconds, at daemon start and in ``doctor``.

Only text-to-image checkpoints of the families diffusers' ``from_single_file`` loads are
accepted: SD 1.x, SD 2.x, SDXL (base), SD 3.x and FLUX.1. Everything else (an inpainting or
refiner model, a LoRA, a VAE alone, a UNet without its text encoder) gets one line saying what
the file is and what to do with it.

A pickle (``.ckpt``, ``.pt``, ``.pth``, ``.bin``) can run code when it is loaded; it is
refused unless ``images.allow_pickle`` is set, and its architecture is then read from the
loaded tensors (``detect_tensors``).

Pure Python (no torch): ``storyboard doctor`` can use it on a machine without a GPU stack.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from storyboard_contract.errors import ConfigError

SAFETENSORS_SUFFIXES = (".safetensors", ".sft")
PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin")
# A header is a few MB even for FLUX (a few thousand tensors); more is not a checkpoint.
MAX_HEADER_BYTES = 100 * 2**20

# The ldm/sgm (CompVis, Stability) layout's prefixes.
LDM_UNET = "model.diffusion_model."
SD1_CLIP = "cond_stage_model.transformer.text_model."
SD2_OPEN_CLIP = "cond_stage_model.model."
SDXL_CLIP = "conditioner.embedders.0.transformer.text_model."
SDXL_OPEN_CLIP = "conditioner.embedders.1.model."
SDXL_REFINER_OPEN_CLIP = "conditioner.embedders.0.model."


@dataclass(frozen=True)
class Architecture:
    """A checkpoint's family: the diffusers pipeline that loads it, and the hub repository
    whose configuration (model_index.json and each component's config) fits it."""

    family: str  # sd1, sd2, sdxl, sd3, flux
    label: str  # what a user calls it
    pipeline: str  # the diffusers pipeline class
    config_repo: str
    flow_matching: bool = False  # SD3 and FLUX: only their own (flow-matching) scheduler


SD1 = Architecture("sd1", "SD 1.x", "StableDiffusionPipeline",
                   "stable-diffusion-v1-5/stable-diffusion-v1-5")
SD2 = Architecture("sd2", "SD 2.x", "StableDiffusionPipeline", "stabilityai/stable-diffusion-2-1")
SDXL = Architecture("sdxl", "SDXL", "StableDiffusionXLPipeline",
                    "stabilityai/stable-diffusion-xl-base-1.0")
SD3 = Architecture("sd3", "SD 3 medium", "StableDiffusion3Pipeline",
                   "stabilityai/stable-diffusion-3-medium-diffusers", flow_matching=True)
SD35_MEDIUM = Architecture("sd3", "SD 3.5 medium", "StableDiffusion3Pipeline",
                           "stabilityai/stable-diffusion-3.5-medium", flow_matching=True)
SD35_LARGE = Architecture("sd3", "SD 3.5 large", "StableDiffusion3Pipeline",
                          "stabilityai/stable-diffusion-3.5-large", flow_matching=True)
FLUX_DEV = Architecture("flux", "FLUX.1 dev", "FluxPipeline", "black-forest-labs/FLUX.1-dev",
                        flow_matching=True)
FLUX_SCHNELL = Architecture("flux", "FLUX.1 schnell", "FluxPipeline",
                            "black-forest-labs/FLUX.1-schnell", flow_matching=True)
# The pipeline class a diffusers folder's model_index.json names, per family: a model_config
# folder of another family is refused before anything loads.
PIPELINES_OF_FAMILY = {
    "sd1": ("StableDiffusionPipeline",), "sd2": ("StableDiffusionPipeline",),
    "sdxl": ("StableDiffusionXLPipeline",), "sd3": ("StableDiffusion3Pipeline",),
    "flux": ("FluxPipeline",),
}

Shapes = Mapping[str, Sequence[int]]


def is_pickle(path: Path) -> bool:
    return path.suffix.lower() in PICKLE_SUFFIXES


def read_header(path: Path, what: str = "images.model") -> dict[str, list[int]]:
    """Each tensor's shape, from the header; a file that is not a whole safetensors file is
    refused with one line saying what it is instead."""
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            head = f.read(8)
            length = struct.unpack("<Q", head)[0] if len(head) == 8 else -1
            if not 2 <= length <= min(MAX_HEADER_BYTES, size - 8):
                raise ConfigError(f"{what}: {path} is not a safetensors file{_looks_like(head)}")
            raw = f.read(length)
    except OSError as exc:
        raise ConfigError(f"{what}: cannot read {path}: {exc.strerror or exc}") from None
    try:
        header = json.loads(raw)
        if not isinstance(header, dict):
            raise ValueError
        shapes, end = {}, 0
        for name, entry in header.items():
            if name == "__metadata__":
                continue
            start, stop = entry["data_offsets"]
            shapes[name] = [int(n) for n in entry["shape"]]
            end = max(end, int(stop))
            if not 0 <= int(start) <= int(stop):
                raise ValueError
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise ConfigError(f"{what}: {path} is not a safetensors file (its header does not "
                          "parse)") from None
    if 8 + length + end > size:
        raise ConfigError(
            f"{what}: {path} is truncated: its header describes {8 + length + end:,} bytes, "
            f"the file holds {size:,} (an interrupted download or copy; fetch it again)")
    if not shapes:
        raise ConfigError(f"{what}: {path} holds no tensors")
    return shapes


def _looks_like(head: bytes) -> str:
    if head.startswith(b"PK") or head[:1] == b"\x80":
        return (" (it is a PyTorch pickle: name it .ckpt and set images.allow_pickle = true, "
                "or better, convert it to safetensors)")
    return ""


def detect(path: Path, allow_pickle: bool, what: str = "images.model") -> Architecture | None:
    """The architecture of a safetensors checkpoint; None for a pickle that is allowed (its
    names are only known once it is loaded: ``detect_tensors`` on its tensors)."""
    if is_pickle(path):
        check_pickle_allowed(path, allow_pickle, what)
        return None
    return detect_tensors(read_header(path, what), path, what)


def check_pickle_allowed(path: Path, allow_pickle: bool, what: str = "images.model") -> None:
    if not allow_pickle:
        raise ConfigError(
            f"{what}: {path} is a pickle ({path.suffix}): loading one can run code hidden in "
            "it; use the .safetensors version of the model, or set images.allow_pickle = true "
            "if you trust where it came from")


def detect_tensors(shapes: Shapes, path: Path, what: str = "images.model") -> Architecture:
    """The architecture named by a checkpoint's tensor names and shapes."""
    names = shapes.keys()

    def has(*candidates: str) -> str | None:
        return next((c for c in candidates if c in shapes), None)

    def starts(prefix: str) -> bool:
        return any(n.startswith(prefix) for n in names)

    def refuse(why: str) -> ConfigError:
        return ConfigError(f"{what}: {path} {why}")

    if (key := has("joint_blocks.0.context_block.adaLN_modulation.1.bias",
                   LDM_UNET + "joint_blocks.0.context_block.adaLN_modulation.1.bias")):
        prefix = key[: -len("joint_blocks.0.context_block.adaLN_modulation.1.bias")]
        if prefix + "joint_blocks.37.x_block.mlp.fc1.weight" in shapes:
            return SD35_LARGE
        pos = shapes.get(prefix + "pos_embed", [0, 0])
        return SD35_MEDIUM if len(pos) > 1 and pos[1] == 147456 else SD3
    if (key := has("double_blocks.0.img_attn.norm.key_norm.scale",
                   LDM_UNET + "double_blocks.0.img_attn.norm.key_norm.scale")):
        prefix = key[: -len("double_blocks.0.img_attn.norm.key_norm.scale")]
        img_in = shapes.get(prefix + "img_in.weight", [0, 64])
        if len(img_in) > 1 and img_in[1] != 64:
            raise refuse("is a FLUX.1 Fill/Depth model (extra input channels), not a "
                         "text-to-image one")
        return FLUX_DEV if prefix + "guidance_in.in_layer.bias" in shapes else FLUX_SCHNELL
    conv_in = shapes.get(LDM_UNET + "input_blocks.0.0.weight")
    if conv_in is not None:
        if len(conv_in) > 1 and conv_in[1] != 4:
            raise refuse(f"is an inpainting or instruct model ({conv_in[1]} input channels), "
                         "not a text-to-image one")
        if starts(SDXL_OPEN_CLIP) and starts(SDXL_CLIP):
            return SDXL
        if starts(SDXL_REFINER_OPEN_CLIP):
            raise refuse("is an SDXL refiner (an image-to-image model): use an SDXL base "
                         "checkpoint")
        if starts(SD2_OPEN_CLIP):
            return SD2
        if starts(SD1_CLIP):
            return SD1
        raise refuse("holds a UNet without its text encoder: use a full checkpoint (UNet, "
                     "text encoder and VAE in one file) or a diffusers folder")
    if is_lora(shapes):
        raise refuse("is a LoRA, not a model: list it in images.loras (or a project's loras) "
                     "and point images.model at the model it was trained for")
    if is_vae(shapes):
        raise refuse("is a VAE alone: set it as images.vae, with images.model the full model")
    sample = ", ".join(sorted(names)[:3])
    raise refuse(f"is not a checkpoint of a supported architecture (SD 1.x, SD 2.x, SDXL, "
                 f"SD 3.x, FLUX.1); it holds {len(shapes)} tensors such as {sample}")


def is_lora(shapes: Shapes) -> bool:
    """LoRA weights: peft/diffusers names (lora_A, lora_B) or kohya's (lora_down, lora_up)."""
    return any(".lora_down." in n or ".lora_A." in n or ".lora.down." in n for n in shapes)


def is_vae(shapes: Shapes) -> bool:
    """A VAE alone, in the original layout (with or without its prefix) or diffusers'."""
    return any(f"{p}encoder.conv_in.weight" in shapes for p in ("", "first_stage_model.", "vae.")) \
        and any(f"{p}decoder.conv_in.weight" in shapes
                for p in ("", "first_stage_model.", "vae.")) \
        and LDM_UNET + "input_blocks.0.0.weight" not in shapes


def pipeline_class_of_folder(folder: Path) -> str | None:
    """The pipeline class a diffusers folder's model_index.json names, None without one."""
    try:
        data = json.loads((folder / "model_index.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    name = data.get("_class_name") if isinstance(data, dict) else None
    return name if isinstance(name, str) else None
