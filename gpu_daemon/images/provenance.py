"""What made an image: enough to tell two renders apart and to render one again.

Every rendered image carries its provenance (RenderResponse.provenance): the model by name and
the short hash of its file (so a renamed or retrained file is told apart), the VAE, the LoRAs
with their scales, the scheduler, steps, guidance (CFG), seed and size. The hashes are
computed once, when the daemon loads each file (models.short_hash).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gpu_daemon.images import RenderJob


@dataclass(frozen=True)
class ModelIdentity:
    """The loaded model as provenance names it."""

    backend: str  # diffusers, sketch
    model: str | None = None  # as configured: a file, a folder or a hub id
    model_hash: str | None = None
    vae: str | None = None
    vae_hash: str | None = None


@dataclass(frozen=True)
class UsedLora:
    name: str  # the file's name
    hash: str
    scale: float


def describe(identity: ModelIdentity, job: RenderJob, loras: Sequence[UsedLora] = (),
             scheduler: str = "default") -> dict[str, Any]:
    """A render's provenance, as the wire's Provenance holds it (plain data)."""
    return {
        "backend": identity.backend,
        "model": identity.model,
        "model_hash": identity.model_hash,
        "vae": identity.vae,
        "vae_hash": identity.vae_hash,
        "loras": [{"name": lora.name, "hash": lora.hash, "scale": lora.scale}
                  for lora in loras],
        "scheduler": scheduler,
        "steps": job.steps,
        "guidance_scale": job.guidance_scale,
        "seed": job.seed,
        "width": job.width,
        "height": job.height,
    }
