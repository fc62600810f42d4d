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
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from storyboard_cli.errors import ConfigError

if TYPE_CHECKING:
    from PIL import Image

    from gpu_daemon.images import RenderJob, StepCallback
    from storyboard_cli.config import ImagesConfig

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


def pick_device(wanted: str) -> str:
    import torch

    cuda = torch.cuda.is_available()
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if wanted == "auto":
        return "cuda" if cuda else "mps" if mps else "cpu"
    if wanted == "cuda" and not cuda:
        raise ConfigError(
            f"images.device = cuda, but this torch ({torch.__version__}) sees no CUDA device"
        )
    if wanted == "mps" and not mps:
        raise ConfigError("images.device = mps, but this torch sees no Apple MPS device")
    return wanted


def pick_dtype(wanted: str, device: str) -> Any:
    import torch

    if wanted == "auto":
        # Half precision halves memory and time on CUDA; on MPS and CPU float32 is the safe one.
        wanted = "float16" if device == "cuda" else "float32"
    if device == "cpu" and wanted == "float16":
        raise ConfigError("images.dtype = float16 does not run on the CPU; use float32 or auto")
    return getattr(torch, wanted)


def _quiet() -> None:
    """No progress bars in a server log: loading, downloading and denoising stay silent."""
    import diffusers.utils.logging as diffusers_logging
    import huggingface_hub.utils as hub_utils
    import transformers.utils.logging as transformers_logging

    diffusers_logging.disable_progress_bar()
    transformers_logging.disable_progress_bar()
    hub_utils.disable_progress_bars()


def _token_counter(pipe: Any) -> Callable[[str], int] | None:
    """Counts tokens (without BOS/EOS) as the pipeline's tokenizer does, None without one."""
    tokenizer = getattr(pipe, "tokenizer", None)
    if tokenizer is None:
        return None
    fast = getattr(tokenizer, "backend_tokenizer", None)
    if fast is None:
        return lambda text: len(tokenizer(text, add_special_tokens=False).input_ids)
    # A private copy: the pipeline's calls leave padding to 77 switched on in the shared one
    # (every count would read 77), and the render thread uses it concurrently. Unlike the
    # transformers wrapper, it does not warn about candidates over 77 tokens, which prompt
    # fitting tries on purpose.
    from tokenizers import Tokenizer

    counter = Tokenizer.from_str(fast.to_str())
    counter.no_padding()
    counter.no_truncation()
    # encode_batch, unlike encode, releases the GIL: prompt fitting on the event loop then
    # does not stall the render thread (it counts a dozen candidates per request).
    return lambda text: len(counter.encode_batch([text], add_special_tokens=False)[0].ids)


class DiffusersBackend:
    name = "diffusers"

    def __init__(self, pipe: Any, model: str, device: str) -> None:
        self.pipe = pipe
        self.model = model
        self.device = device
        self._accepts = set(inspect.signature(pipe.__call__).parameters)
        self._count = _token_counter(pipe)

    @classmethod
    def load(cls, cfg: ImagesConfig, base_dir: Path) -> DiffusersBackend:
        source = resolve_model(cfg.model, base_dir, cfg.allow_download)
        device = pick_device(cfg.device)
        dtype = pick_dtype(cfg.dtype, device)
        _quiet()
        from diffusers import AutoPipelineForText2Image

        try:
            pipe = AutoPipelineForText2Image.from_pretrained(
                source, dtype=dtype, local_files_only=not cfg.allow_download
            )
        except (OSError, ValueError) as exc:
            raise ConfigError(f"images.model: cannot load {cfg.model!r}: {exc}") from None
        pipe.set_progress_bar_config(disable=True)
        if device != "cpu":
            pipe.to(device)
        backend = cls(pipe, cfg.model, device)
        backend.warm_up()
        log.info("loaded %s on %s (%s)", cfg.model, device, str(dtype).removeprefix("torch."))
        return backend

    def warm_up(self) -> None:
        """One tiny call, so lazy initialisation is not paid by the first request."""
        from gpu_daemon.images import RenderJob

        self.render([RenderJob("warm-up", "", 0, 64, 64, 1, 1.0)], lambda step, total: None)

    def token_count(self) -> Callable[[str], int] | None:
        return self._count


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
