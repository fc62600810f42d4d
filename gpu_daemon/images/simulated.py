"""The ``simulated`` backend: a GPU that takes time and draws nothing. A benchmark tool.

It stands in for a GPU box when what is measured is everything around the pipeline: the
daemon, the workers, Redis, the store, the bucket (bench/fleet.py runs 16 of them on a 2-core
host). Everything but the pipeline is real: the render process and its queue (batching,
cancelling at a step), progress events, PNG uploads to the bucket, the answers and the store.

**Time.** A pipeline call of N images takes ``images.simulated_call_ms`` + N ×
``images.simulated_image_ms``, whatever the frame size and steps. It is slept, in ``steps``
equal slices to deadlines fixed at the start (so the sleeps' own overshoot does not add up),
with the step callback after each slice, as the diffusers backend reports its steps: no CPU
while it "renders". The defaults model Stable Diffusion 1.5 at 20 steps on one H100:

- 100 + 100 ms = 0.2 s for a lone image. stable-fast's published figure is 104 it/s at batch
  1 on an H100, 0.19 s for 20 steps, before the VAE decode and the text encoder (for scale:
  fal.ai's published A100 figures are 31 it/s for plain diffusers, 61 it/s for TensorRT);
- 0.5 s for a batch of 4 (0.125 s an image, 1.6 × batch 1's throughput) and 0.9 s for 8
  (0.11 s, 1.8 ×): batching is published to add 40–80 % on such a GPU, and a batched image
  takes 0.1–0.2 s.

So a daemon with the default ``max_batch = 4`` turns out 8 images a second when its windows
are full: the host's load from a fast GPU, the case a benchmark of the host wants.

**Images.** Every image is the same frame for its size: seeded noise over a gradient whose
PNG is about 1.5 bytes a pixel (about 400 KB at 680 × 384), the size of a PNG of a
photograph-like SD 1.5 frame, so uploads move realistic bytes. Frame and PNG are made once
per size and process: a ``SimulatedFrame`` writes its cached PNG when saved as PNG, so the
upload process's ``image.save(buf, "PNG")`` is a copy instead of 40–70 ms of zlib per image,
work that a real deployment does on the GPU box's CPU and that would here take the very
cores whose use the benchmark measures. The pixels still cross the render process's pipe
and the upload pool's as a real frame's do.
"""

from __future__ import annotations

import io
import time
from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from PIL import Image

from gpu_daemon.images import RenderJob, StepCallback, WithoutModels
from gpu_daemon.models.provenance import ModelIdentity, describe

if TYPE_CHECKING:
    from storyboard_contract.config import ImagesConfig

# Noise of this amplitude (per channel, over a smooth gradient) makes PNGs of about 1.5 bytes
# a pixel with Pillow's default compression (measured: 1.4 at 8, 1.6 at 12).
NOISE_AMPLITUDE = 10
NOISE_SEED = 1_000


class SimulatedFrame(Image.Image):
    """A frame whose PNG is encoded once per size (module docstring). It pickles as an image
    of this class (Pillow's __getstate__/__setstate__), so the copy an upload process gets
    is one too."""

    @classmethod
    def of_size(cls, width: int, height: int) -> SimulatedFrame:
        frame = cls()
        frame.__setstate__(_noise(width, height).__getstate__())
        return frame

    def save(self, fp: Any, format: str | None = None, **params: Any) -> None:
        if (format or "").upper() != "PNG" or params or not hasattr(fp, "write"):
            super().save(fp, format, **params)
            return
        fp.write(png_bytes(self.width, self.height))


def _noise(width: int, height: int) -> Image.Image:
    import numpy as np

    rng = np.random.default_rng(NOISE_SEED)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 200 // width, y * 200 // height, (x + y) * 100 // (width + height) + 50],
                    axis=-1)
    pixels = base + rng.integers(0, NOISE_AMPLITUDE, (height, width, 3))
    return Image.fromarray(pixels.clip(0, 255).astype(np.uint8), "RGB")


@lru_cache(maxsize=16)
def frame(width: int, height: int) -> SimulatedFrame:
    return SimulatedFrame.of_size(width, height)


@lru_cache(maxsize=16)
def png_bytes(width: int, height: int) -> bytes:
    """The PNG of the frame of this size, encoded by Pillow as any other image's."""
    buf = io.BytesIO()
    _noise(width, height).save(buf, format="PNG")
    return buf.getvalue()


class SimulatedBackend(WithoutModels):
    name = "simulated"
    model = None
    device = "simulated"

    def __init__(self, call_ms: float, image_ms: float) -> None:
        self.call_s = call_ms / 1000
        self.image_s = image_ms / 1000

    @classmethod
    def load(cls, cfg: ImagesConfig) -> SimulatedBackend:
        """Ready to answer: the default aspect's frame is made now, not by the first call."""
        frame(*cfg.frame_size(cfg.aspect))
        return cls(cfg.simulated_call_ms, cfg.simulated_image_ms)

    def provenance(self, job: RenderJob) -> dict[str, Any]:
        return describe(ModelIdentity("simulated"), job)

    def call_seconds(self, images: int) -> float:
        return self.call_s + images * self.image_s

    def render(self, jobs: Sequence[RenderJob], on_step: StepCallback) -> list[Image.Image]:
        started = time.monotonic()
        first = jobs[0]
        image = frame(first.width, first.height)
        duration = self.call_seconds(len(jobs))
        steps = max(1, first.steps)
        for step in range(1, steps + 1):
            left = started + duration * step / steps - time.monotonic()
            if left > 0:
                time.sleep(left)
            on_step(step, steps)  # raises Cancelled when nobody waits any more
        return [image] * len(jobs)
