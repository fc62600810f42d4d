"""The ``diffusers`` backend: a text-to-image pipeline loaded once at start-up and kept warm.

The model is a local directory or a Hugging Face id that is already in the cache. The daemon
runs offline unless ``images.allow_download`` is set, and checks the cache first so a missing
model is an instant, clear error instead of a network wait (DESIGN.md field notes).

Each job in a batch has its own CPU ``torch.Generator`` seeded with its seed, so an image
depends on its seed and prompt, not on the device or on which requests shared its batch
(up to float noise: a batch is not bitwise equal to single calls).
"""

from __future__ import annotations

import inspect
import logging
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gpu_daemon.images import token_counter, tuning
from storyboard_contract.errors import ConfigError

if TYPE_CHECKING:
    from PIL import Image

    from gpu_daemon.images import RenderJob, StepCallback
    from storyboard_contract.config import ImagesConfig

log = logging.getLogger("gpu_daemon.diffusers")

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


def resolve_model(model: str, base_dir: Path, allow_download: bool) -> str:
    """A local model directory, or a hub id that from_pretrained can load under the rules."""
    if not model:
        raise ConfigError(
            "images.backend = diffusers needs images.model: a local model directory or a "
            "Hugging Face id already in the cache"
        )
    path = Path(model).expanduser()
    if not path.is_absolute():
        path = base_dir / path
    if path.is_dir():
        if not (path / "model_index.json").is_file():
            raise ConfigError(
                f"images.model: {path} is not a diffusers model (no model_index.json)"
            )
        return str(path)
    if model.startswith((".", "/", "~")) or "\\" in model or not _HUB_ID.match(model):
        raise ConfigError(f"images.model: no model directory at {path}")
    if allow_download:
        return model
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(model, "model_index.json")
    if not isinstance(found, str):
        from huggingface_hub.constants import HF_HUB_CACHE

        raise ConfigError(
            f"images.model: {model!r} is not in the Hugging Face cache ({HF_HUB_CACHE}) and "
            "downloads are off; download it once (hf download " + model + "), point "
            "images.model at a local directory, or set images.allow_download = true"
        )
    return model


def _no_steps(step: int, total: int) -> None:
    pass


def _quiet() -> None:
    """No progress bars in a server log: loading, downloading and denoising stay silent."""
    import diffusers.utils.logging as diffusers_logging
    import huggingface_hub.utils as hub_utils
    import transformers.utils.logging as transformers_logging

    diffusers_logging.disable_progress_bar()
    transformers_logging.disable_progress_bar()
    hub_utils.disable_progress_bars()


def _counting_tokenizer(pipe: Any) -> str | None:
    """The pipeline's (first) tokenizer as `tokenizers` JSON, None without one."""
    tokenizer = getattr(pipe, "tokenizer", None)
    if tokenizer is None:
        return None
    fast = getattr(tokenizer, "backend_tokenizer", None)
    if fast is None:
        # A slow (Python) tokenizer: the conversion AutoTokenizer would do gives the same ids.
        from transformers.convert_slow_tokenizer import convert_slow_tokenizer

        fast = convert_slow_tokenizer(tokenizer)
    return fast.to_str()


class DiffusersBackend:
    name = "diffusers"

    def __init__(self, pipe: Any, model: str, device: str) -> None:
        self.pipe = pipe
        self.model = model
        self.device = device
        self._accepts = set(inspect.signature(pipe.__call__).parameters)
        self._tokenizer = _counting_tokenizer(pipe)
        self._count = token_counter(self._tokenizer)

    @classmethod
    def load(cls, cfg: ImagesConfig, base_dir: Path) -> DiffusersBackend:
        source = resolve_model(cfg.model, base_dir, cfg.allow_download)
        device = tuning.pick_device(cfg.device)
        settings = tuning.plan(cfg, device, tuning.bf16_supported(device))
        if settings.ignored:
            log.warning("images: %s ignores %s", device, "; ".join(settings.ignored))
        _quiet()
        import torch
        from diffusers import AutoPipelineForText2Image

        try:
            pipe = AutoPipelineForText2Image.from_pretrained(
                source, dtype=getattr(torch, settings.dtype),
                local_files_only=not cfg.allow_download,
            )
        except (OSError, ValueError) as exc:
            raise ConfigError(f"images.model: cannot load {cfg.model!r}: {exc}") from None
        pipe.set_progress_bar_config(disable=True)
        if device != "cpu":
            pipe.to(device)
        tuning.apply(pipe, settings)
        backend = cls(pipe, cfg.model, device)
        backend.warm_up(cfg, settings.compile)
        log.info("loaded %s on %s", cfg.model, settings.describe())
        return backend

    def warm_up(self, cfg: ImagesConfig, compiled: bool) -> None:
        """Lazy initialisation is paid here, not by the first request: one tiny call, or with
        a compiled UNet one call per batch size at the frame size of the default aspect (each
        shape compiles once; a project with another aspect compiles on its first call)."""
        from gpu_daemon.images import RenderJob

        if not compiled:
            self.render([RenderJob("warm-up", "", 0, 64, 64, 1, 1.0)], _no_steps)
            return
        width, height = cfg.frame_size(cfg.aspect)
        for batch in range(1, cfg.max_batch + 1):
            started = time.monotonic()
            self.render([RenderJob("warm-up", "", i, width, height, 2, cfg.guidance_scale)
                         for i in range(batch)], _no_steps)
            log.info("compiled the UNet for batch %d at %dx%d in %.1f s", batch, width, height,
                     time.monotonic() - started)

    def token_count(self) -> Callable[[str], int] | None:
        return self._count

    def counting_tokenizer(self) -> str | None:
        return self._tokenizer

    def render(self, jobs: Sequence[RenderJob], on_step: StepCallback) -> list[Image.Image]:
        import torch

        first = jobs[0]
        kwargs: dict[str, Any] = {
            "prompt": [j.prompt for j in jobs],
            "width": first.width,
            "height": first.height,
            "num_inference_steps": first.steps,
            "guidance_scale": first.guidance_scale,
            "generator": [torch.Generator("cpu").manual_seed(j.seed) for j in jobs],
            "output_type": "pil",
        }
        if first.negative_prompt and "negative_prompt" in self._accepts:
            kwargs["negative_prompt"] = [first.negative_prompt] * len(jobs)
        if "callback_on_step_end" in self._accepts:
            def step_end(pipe: Any, step: int, timestep: Any, tensors: dict) -> dict:
                on_step(step + 1, getattr(pipe, "num_timesteps", None) or first.steps)
                return tensors

            kwargs["callback_on_step_end"] = step_end
        with torch.inference_mode():
            return list(self.pipe(**kwargs).images)
