"""Image backends: ``sketch`` (a drawn storyboard panel, no model) and ``diffusers``.

A backend renders a batch of jobs that share their settings in one call; the render queue
(batching.py) decides what goes into a batch and makes sure only one call runs at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from PIL import Image

    from storyboard_cli.config import Config

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

    def batch_key(self) -> tuple[int, int, int, float, str]:
        """Jobs with equal keys can share one pipeline call."""
        return (self.width, self.height, self.steps, self.guidance_scale, self.negative_prompt)


class ImageBackend(Protocol):
    name: str
    model: str | None
    device: str

    def token_count(self) -> Callable[[str], int] | None:
        """Counts CLIP tokens with the loaded tokenizer, when there is one."""

    def render(self, jobs: Sequence[RenderJob], on_step: StepCallback) -> list[Image.Image]:
        """One image per job, in order; on_step(step, total) after each denoising step."""


def make_backend(cfg: Config) -> ImageBackend:
    """The configured backend, loaded and ready ("auto": diffusers when a model is set)."""
    images = cfg.images
    backend = images.backend
    if backend == "auto":
        backend = "diffusers" if images.model else "sketch"
    if backend == "sketch":
        from gpu_daemon.images.sketch import SketchBackend, find_cjk_font

        return SketchBackend(find_cjk_font())
    from gpu_daemon.images.diffusion import DiffusersBackend

    return DiffusersBackend.load(images, cfg.base_dir)
