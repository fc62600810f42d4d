"""Identity carried by the model: which consistency modes this daemon can render, checked
before anything is loaded.

A render's mode is its project's (RenderSettings.consistency), else ``[images] consistency``:

- ``text``: the character's description in every prompt (gpu_daemon/styles.py), nothing more;
- ``reference``: IP-Adapter (images/reference.py) with the shot's characters' reference
  images from the bucket, each kept to its own strip of the frame when there are several;
  needs ``[images] ip_adapter``, a local folder;
- ``attention``: consistent self-attention across the images of a call that show the same
  character, its features kept per project in the bucket (images/shared_attention.py);
  no weights, a UNet model;
- ``lora``: the character's own LoRA (a file in ``[images] lora_dir``) and its trigger word,
  only on the shots that show it (models/loras.py switches them per call).

What a mode needs and the daemon does not have is one line: a ConfigError at start-up and in
`gpu-daemon check` for the configured mode, a 422 for a render that asks for another one.
Nothing is ever downloaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from storyboard_contract.errors import ConfigError

if TYPE_CHECKING:
    from storyboard_contract.config import Config

IP_ADAPTER_WEIGHTS = (".safetensors", ".bin")
IMAGE_ENCODER = "image_encoder"


def ip_adapter_files(folder: Path, allow_pickle: bool = False) -> Path:
    """The weight file of an IP-Adapter folder (its image encoder is the folder's
    image_encoder/); a ConfigError naming what is missing."""
    what = f"images.ip_adapter = {str(folder)!r}"
    if not folder.is_dir():
        raise ConfigError(f"{what} is not a folder; put an IP-Adapter weight file (e.g. "
                          "ip-adapter_sd15.safetensors) and its image_encoder/ folder in it")
    weights = sorted(p for p in folder.iterdir()
                     if p.is_file() and p.suffix in IP_ADAPTER_WEIGHTS)
    if len(weights) != 1:
        found = ", ".join(p.name for p in weights) or "none"
        raise ConfigError(f"{what} must hold one IP-Adapter weight file (.safetensors or "
                          f".bin); found {found}")
    if weights[0].suffix == ".bin" and not allow_pickle:
        raise ConfigError(f"{what}: {weights[0].name} is a Python pickle, which can run code "
                          "when loaded; use the .safetensors version or set "
                          "images.allow_pickle = true")
    if not (folder / IMAGE_ENCODER / "config.json").is_file():
        raise ConfigError(f"{what} has no {IMAGE_ENCODER}/ folder with a config.json (the CLIP "
                          "vision model the IP-Adapter was trained with)")
    return weights[0]


def check_consistency(cfg: Config, backend: str) -> None:
    """[images] consistency and the weights of every mode that is set up, against the disk;
    a ConfigError for what is wrong."""
    images = cfg.images
    if images.ip_adapter:
        ip_adapter_files(cfg.resolve(images.ip_adapter), images.allow_pickle)
    problem = refusal(images.consistency, cfg, backend)
    if problem is not None:
        raise ConfigError(f"images.consistency = {images.consistency!r}: {problem}")


def refusal(mode: str, cfg: Config, backend: str) -> str | None:
    """Why this daemon cannot render in `mode` (one line), None when it can."""
    if mode == "text":
        return None
    if backend != "diffusers":
        return (f"the {backend} backend draws the description only (consistency text); "
                "identity modes need a diffusion model")
    if mode == "reference" and not cfg.images.ip_adapter:
        return ("this daemon has no IP-Adapter: set [images] ip_adapter to a local folder with "
                "an IP-Adapter weight file and its image_encoder/ folder")
    if mode == "lora" and not cfg.resolve(cfg.images.lora_dir).is_dir():
        return (f"[images] lora_dir {str(cfg.resolve(cfg.images.lora_dir))!r} is not a folder; "
                "the characters' LoRA files are looked up there")
    return None
