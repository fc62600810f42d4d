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

    from gpu_daemon.models.catalog import Catalog
    from storyboard_contract.config import Config



class StepCallback(Protocol):
    """Progress of a job: (step, total) after each denoising step; before the steps, a
    state in words with step and total 0 ("loading model sdxl")."""

    def __call__(self, step: int, total: int, state: str | None = None) -> None: ...


StateCallback = Callable[[str], None]


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
    # A request's LoRAs: (absolute file path, scale), on top of the model's own.
    loras: tuple[tuple[str, float], ...] = ()
    model: str = ""  # the daemon's name for the model ("" for a backend without models)
    # How the characters' identity is carried (images/consistency.py): "reference" brings
    # the shot's characters' reference images (encoded files, in the shot's order),
    # "attention" each character's identity key with its kept features (None: none kept yet).
    consistency: str = "text"
    references: tuple[bytes, ...] = ()
    identities: tuple[tuple[str, bytes | None], ...] = ()

    def batch_key(self) -> tuple:
        """Jobs with equal keys can share one pipeline call: the same model, size, steps,
        guidance, negative prompt, scheduler, LoRA set and consistency mode, and as many
        reference images (they share the call's IP-Adapter masks)."""
        return (self.model, self.width, self.height, self.steps, self.guidance_scale,
                self.negative_prompt, self.scheduler, self.loras, self.consistency,
                len(self.references))


class BackendInfo(Protocol):
    """What the HTTP side needs to know of a backend: names, and how prompts are counted."""

    name: str
    model: str | None  # the default model, as configured
    device: str
    takes_loras: bool

    def token_count(self, model: str | None = None) -> Callable[[str], int] | None:
        """Counts tokens with model `model`'s tokenizer (None: the default model's), when
        there is one."""


class ImageBackend(Protocol):
    name: str
    model: str | None
    device: str
    takes_loras: bool

    def tokenizers(self) -> dict[str, str | None]:
        """Each model's tokenizer as `tokenizers` JSON (it crosses to the HTTP process)."""

    def loaded(self) -> tuple[str, ...]:
        """The models in memory now, the most recently used last."""

    def prepare(self, job: RenderJob, on_state: StateCallback) -> None:
        """Makes ready what a call of jobs like `job` needs (loads its model), saying so with
        on_state first when that takes a while."""

    def render(self, jobs: Sequence[RenderJob], on_step: StepCallback) -> list[Image.Image]:
        """One image per job, in order; on_step(step, total) after each denoising step."""

    def provenance(self, job: RenderJob) -> dict[str, Any]:
        """What made the job's image (provenance.describe), after it was rendered."""

    def made_identities(self, job: RenderJob) -> dict[str, bytes]:
        """The identity features the job's call made for its characters that had none kept
        (consistency "attention"), by identity key, for the daemon to keep in the bucket."""


class WithoutModels:
    """The model interface of a backend that has no models (sketch, simulated)."""

    takes_loras = False

    def made_identities(self, job: RenderJob) -> dict[str, bytes]:
        return {}

    def tokenizers(self) -> dict[str, str | None]:
        return {}

    def loaded(self) -> tuple[str, ...]:
        return ()

    def prepare(self, job: RenderJob, on_state: StateCallback) -> None:
        pass


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
        backend = "diffusers" if cfg.images.model_table() else "sketch"
    return backend


def check_model_settings(cfg: Config) -> Catalog:
    """Checks every model's settings and the consistency mode's weights against the disk and
    the cache without loading anything (a ConfigError line for what is wrong), before the
    daemon starts its render process and in `doctor --side gpu` (`gpu-daemon check`); the
    models, resolved."""
    from gpu_daemon.images.consistency import check_consistency
    from gpu_daemon.models.catalog import Catalog

    catalog = Catalog(cfg, backend_name(cfg))
    check_consistency(cfg, catalog.backend)
    return catalog


def make_backend(cfg: Config) -> ImageBackend:
    """The configured backend, its default model loaded and ready."""
    images = cfg.images
    backend = backend_name(cfg)
    if backend == "sketch":
        from gpu_daemon.images.sketch import SketchBackend
        from storyboard_contract.typeset import find_cjk_font

        return SketchBackend(find_cjk_font())
    if backend == "simulated":
        from gpu_daemon.images.simulated import SimulatedBackend

        return SimulatedBackend.load(images)
    from gpu_daemon.images.pool import ModelPool

    return ModelPool(cfg, check_model_settings(cfg))
