"""Image backends: ``sketch`` (a drawn storyboard panel, no model), ``diffusers``, and
``simulated`` (a benchmark tool: a GPU's timing, no drawing; images/simulated.py).

A backend renders a batch of jobs that share their settings in one call; the render queue
(batching.py) decides what goes into a batch and makes sure only one call runs at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from PIL import Image

    from storyboard_contract.config import Config

StepCallback = Callable[[int, int], None]


@dataclass
class RenderJob:
    prompt: str  # the final positive prompt, style applied
    negative_prompt: str
    seed: int
    width: int
    height: int
    steps: int
    guidance_scale: float
    # What the sketch backend draws; diffusers only uses the prompts.
    index: int = 0
    camera: str = "medium"
    description: str = ""
    characters: tuple[str, ...] = ()  # names of the people in the shot
    style: str = ""
    scheduler: str = "default"  # a name of storyboard_contract.config.SCHEDULER_NAMES
    # A request's LoRAs: (absolute file path, scale), on top of the daemon's own.
    loras: tuple[tuple[str, float], ...] = ()

    def batch_key(self) -> tuple:
        """Jobs with equal keys can share one pipeline call: the same size, steps, guidance,
        negative prompt, scheduler and LoRA set."""
        return (self.width, self.height, self.steps, self.guidance_scale, self.negative_prompt,
                self.scheduler, self.loras)


class BackendInfo(Protocol):
    """What the HTTP side needs to know of a backend: names, and how prompts are counted."""

    name: str
    model: str | None
    device: str
    scheduler_names: tuple[str, ...]  # what a request may pick; () when it has no choice
    takes_loras: bool

    def token_count(self) -> Callable[[str], int] | None:
        """Counts CLIP tokens with the loaded tokenizer, when there is one."""


class ImageBackend(BackendInfo, Protocol):
    def counting_tokenizer(self) -> str | None:
        """The tokenizer as `tokenizers` JSON (it crosses to the HTTP process), or None."""

    def render(self, jobs: Sequence[RenderJob], on_step: StepCallback) -> list[Image.Image]:
        """One image per job, in order; on_step(step, total) after each denoising step."""

    def provenance(self, job: RenderJob) -> dict[str, Any]:
        """What made the job's image (provenance.describe), after it was rendered."""


def token_counter(tokenizer_json: str | None) -> Callable[[str], int] | None:
    """Counts tokens (without BOS/EOS) as the serialized tokenizer does, None without one."""
    if tokenizer_json is None:
        return None
    from tokenizers import Tokenizer

    # Its own copy: a pipeline call leaves padding to 77 switched on in the pipeline's (every
    # count would read 77). Unlike the transformers wrapper, it does not warn about candidates
    # over 77 tokens, which prompt fitting tries on purpose.
    counter = Tokenizer.from_str(tokenizer_json)
    counter.no_padding()
    counter.no_truncation()
    # encode_batch, unlike encode, releases the GIL: prompt fitting on the event loop (a dozen
    # candidates per request) does not stall a render thread in the same process.
    return lambda text: len(counter.encode_batch([text], add_special_tokens=False)[0].ids)


def backend_name(cfg: Config) -> str:
    """The configured backend ("auto": diffusers when a model is set, else sketch)."""
    backend = cfg.images.backend
    if backend == "auto":
        backend = "diffusers" if cfg.images.model else "sketch"
    return backend


def check_model_settings(cfg: Config) -> str:
    """Checks the model settings against the disk and the cache without loading anything (a
    ConfigError line for what is wrong), before the daemon starts its render process and in
    `doctor --side gpu`; what will be loaded."""
    backend = backend_name(cfg)
    if backend in ("sketch", "simulated"):
        return f"{backend} backend: no model"
    from gpu_daemon.models.sources import ModelSpec, resolve

    resolved = resolve(ModelSpec.from_images(cfg.images, cfg.base_dir))
    what = {"folder": "diffusers folder", "hub": "Hugging Face id", "file": "checkpoint"}
    kind = resolved.architecture.label + " " if resolved.architecture else ""
    return f"{resolved.source} ({kind}{what[resolved.kind]})"


def make_backend(cfg: Config) -> ImageBackend:
    """The configured backend, loaded and ready."""
    images = cfg.images
    backend = backend_name(cfg)
    if backend == "sketch":
        from gpu_daemon.images.sketch import SketchBackend
        from storyboard_contract.typeset import find_cjk_font

        return SketchBackend(find_cjk_font())
    if backend == "simulated":
        from gpu_daemon.images.simulated import SimulatedBackend

        return SimulatedBackend.load(images)
    from gpu_daemon.images.diffusion import DiffusersBackend

    return DiffusersBackend.load(images, cfg.base_dir)
