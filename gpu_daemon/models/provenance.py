"""What made an image: enough to tell two renders apart and to render one again.

Every rendered image carries its provenance (RenderResponse.provenance): the model by its
daemon's name for it, as configured, and
the short hash of its file (so a renamed or retrained file is told apart), the VAE, the LoRAs
with their scales, the scheduler, steps, guidance (CFG), seed, size and consistency mode.
The hashes are computed once, when the daemon loads each file (short_hash).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from gpu_daemon.models import checkpoints


class RenderSettings(Protocol):
    """What provenance reads of a render (an image backend's RenderJob has it): the models
    package knows nothing of the backends."""

    steps: int
    guidance_scale: float
    seed: int
    width: int
    height: int
    consistency: str


@dataclass(frozen=True)
class ModelIdentity:
    """The loaded model as provenance names it."""

    backend: str  # diffusers, sketch
    model: str | None = None  # as configured: a file, a folder or a hub id
    model_hash: str | None = None
    vae: str | None = None
    vae_hash: str | None = None
    name: str | None = None  # the daemon's name for it ([images.models.NAME], "default")


@dataclass(frozen=True)
class UsedLora:
    name: str  # the file's name
    hash: str
    scale: float


def describe(identity: ModelIdentity, job: RenderSettings, loras: Sequence[UsedLora] = (),
             scheduler: str = "default") -> dict[str, Any]:
    """A render's provenance, as the wire's Provenance holds it (plain data)."""
    return {
        "backend": identity.backend,
        "model_name": identity.name,
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
        "consistency": job.consistency,
    }


_DIGESTS: dict[tuple[str, int, int], str] = {}  # (path, size, mtime) -> sha256
HASH_CHARS = 10
# A folder's identity: its weights and configuration, not a README beside them.
_HASHED_IN_FOLDERS = (".json", ".txt", ".model", *checkpoints.SAFETENSORS_SUFFIXES,
                      *checkpoints.PICKLE_SUFFIXES)


def short_hash(path: str | os.PathLike[str]) -> str:
    """The first 10 hex digits of the sha256 of a file, or of a folder's weight and config
    files (their names and contents, in order); cached by path, size and mtime."""
    p = Path(path)
    if p.is_file():
        return _file_digest(p)[:HASH_CHARS]
    files = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix in _HASHED_IN_FOLDERS)
    digest = hashlib.sha256()
    for f in files:
        digest.update(f.relative_to(p).as_posix().encode() + b"\0" + _file_digest(f).encode())
    return digest.hexdigest()[:HASH_CHARS]


def _file_digest(path: Path) -> str:
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _DIGESTS:
        digest = hashlib.sha256()
        with path.open("rb") as f:
            while chunk := f.read(8 * 2**20):
                digest.update(chunk)
        _DIGESTS[key] = digest.hexdigest()
    return _DIGESTS[key]
