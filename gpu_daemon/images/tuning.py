"""The GPU settings of the diffusers backend ([images] in storyboard.toml), and what a device
makes of them.

``plan`` decides, without touching a model, which settings apply on the chosen device and
which it ignores (a CPU-only torch keeps working: half precision and torch.compile are
dropped, and one log line says so). ``apply`` then sets them on a loaded pipeline:

- dtype: ``auto`` is float16 on CUDA and MPS, float32 on the CPU; bfloat16 needs a GPU that
  supports it (Ampere, Hopper and later) or the CPU.
- attention: ``sdpa`` is torch 2's scaled_dot_product_attention (diffusers' own default with
  torch 2, set explicitly so that a model's saved processors cannot change it: FlashAttention
  or memory-efficient kernels on CUDA); ``classic`` is diffusers' plain AttnProcessor.
- channels_last: the UNet's weights in NHWC layout, faster convolutions on tensor cores.
- compile: torch.compile of the UNet (CUDA only), warmed up at start-up at the configured
  frame size for every batch size from 1 to max_batch, so no request pays for compiling.
- vae_slicing / vae_tiling: decode a batch one image at a time / a large frame in tiles, for
  memory rather than speed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from storyboard_contract.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Callable

    from storyboard_contract.config import ImagesConfig

log = logging.getLogger("gpu_daemon.diffusers")

@dataclass(frozen=True)
class Tuning:
    device: str  # cpu, mps, cuda:N
    dtype: str
    attention: str
    channels_last: bool
    compile: bool
    vae_slicing: bool
    vae_tiling: bool
    ignored: tuple[str, ...] = field(default=())  # "setting = value (why)"

    def describe(self) -> str:
        on = [name for name in ("channels_last", "compile", "vae_slicing", "vae_tiling")
              if getattr(self, name)]
        return f"{self.device}, {self.dtype}, attention {self.attention}" + \
            "".join(f", {name}" for name in on)


def plan(cfg: ImagesConfig, device: str, bf16_supported: bool = True) -> Tuning:
    """The settings that apply on `device` (already picked), and those it ignores."""
    ignored = []
    kind = device.split(":")[0]
    dtype = cfg.dtype
    if dtype == "auto":
        # Half precision halves memory and time on GPUs; on the CPU float32 is the fast one.
        dtype = "float32" if kind == "cpu" else "float16"
    elif kind == "cpu" and dtype == "float16":
        ignored.append("dtype = float16 (no half-precision kernels on the CPU; float32)")
        dtype = "float32"
    elif dtype == "bfloat16" and kind != "cpu" and not bf16_supported:
        raise ConfigError(
            f"images.dtype = bfloat16, but {device} does not support it (it needs an Ampere "
            "GPU or newer); use float16 or auto"
        )
    compile_unet = cfg.compile
    if compile_unet and kind != "cuda":
        ignored.append(f"compile = true (torch.compile is used on CUDA only, not on {kind})")
        compile_unet = False
    return Tuning(device, dtype, cfg.attention, cfg.channels_last, compile_unet,
                  cfg.vae_slicing, cfg.vae_tiling, tuple(ignored))


def pick_device(wanted: str) -> str:
    """auto: the first CUDA GPU, else Apple MPS, else the CPU; cuda means cuda:0."""
    import torch

    cuda = torch.cuda.is_available()
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if wanted == "auto":
        return "cuda:0" if cuda else "mps" if mps else "cpu"
    if wanted.startswith("cuda"):
        if not cuda:
            raise ConfigError(
                f"images.device = {wanted}, but this torch ({torch.__version__}) sees no CUDA "
                "device"
            )
        index = int(wanted.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise ConfigError(
                f"images.device = {wanted}, but this machine has {torch.cuda.device_count()} "
                "CUDA device(s), numbered from 0"
            )
        return f"cuda:{index}"
    if wanted == "mps" and not mps:
        raise ConfigError("images.device = mps, but this torch sees no Apple MPS device")
    return wanted


def bf16_supported(device: str) -> bool:
    import torch

    if device.startswith("cuda"):
        with torch.cuda.device(device):
            return bool(torch.cuda.is_bf16_supported())
    return True


def apply(pipe: Any, tuning: Tuning, before_compile: Callable[[], None] | None = None) -> None:
    """Sets the attention, memory layout, VAE modes and compilation on a loaded pipeline
    (moved to its device already); before_compile adds what replaces attention processors
    (IP-Adapter) after the attention is set and before the UNet is compiled."""
    import torch
    from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0

    processor = AttnProcessor2_0 if tuning.attention == "sdpa" else AttnProcessor
    for name in ("unet", "vae"):
        model = getattr(pipe, name, None)
        if model is not None and hasattr(model, "set_attn_processor"):
            model.set_attn_processor(processor())
    if tuning.channels_last and getattr(pipe, "unet", None) is not None:
        pipe.unet.to(memory_format=torch.channels_last)
    vae = getattr(pipe, "vae", None)
    if vae is not None:
        if tuning.vae_slicing:
            vae.enable_slicing()
        if tuning.vae_tiling:
            vae.enable_tiling()
    if before_compile is not None:
        before_compile()
    if tuning.compile:
        pipe.unet = torch.compile(pipe.unet)
