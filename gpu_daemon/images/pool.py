"""Several models on one daemon: the diffusers backend of the render process.

The catalog (gpu_daemon/models/catalog.py) knows every model of the configuration; the
default one is loaded at start-up. A call for another model loads it first, and the queue
tells the call's requests so ("loading model sdxl", a progress state the host shows). At most
``images.max_loaded`` models stay in memory, the most recently used: before another is
loaded the least recently used goes (first, so that two big models never need to fit at
once). Jobs of different models never share a call (RenderJob.batch_key), and one call runs at
a time (batching.py), so a model is never unloaded under a running call.

A model that cannot be loaded on demand (its file changed since start-up, it does not fit
the memory left) fails the call: a ConfigError as a ValueError (the daemon answers 422: the
same request would fail the same way), anything else as it is (500: worth a retry).
"""

from __future__ import annotations

import gc
import logging
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from gpu_daemon.images import RenderJob, StateCallback, StepCallback
from gpu_daemon.images.diffusion import DiffusersBackend, tokenizer_json
from storyboard_contract.errors import ConfigError

if TYPE_CHECKING:
    from PIL import Image

    from gpu_daemon.models.catalog import Catalog, ModelEntry
    from storyboard_contract.config import Config

log = logging.getLogger("gpu_daemon.diffusers")


class ModelPool:
    name = "diffusers"

    def __init__(self, cfg: Config, catalog: Catalog) -> None:
        self.cfg = cfg
        self.catalog = catalog
        self.max_loaded = cfg.images.max_loaded
        self._loaded: OrderedDict[str, DiffusersBackend] = OrderedDict()
        default = catalog.entry(None)
        assert default is not None
        self._load(default)
        first = self._loaded[default.name]
        self.model, self.device = first.model, first.device

    # A model whose pipeline takes none refuses a request's LoRAs when it renders (422).
    takes_loras = True

    def tokenizers(self) -> dict[str, str | None]:
        """Every model's tokenizer: a loaded model's own, the others' read from their
        configuration folder (small files), so that prompts are fitted the same before and
        after a model is loaded."""
        return {name: (self._loaded[name].counting_tokenizer() if name in self._loaded
                       else folder_tokenizer(entry))
                for name, entry in self.catalog.entries.items()}

    def loaded(self) -> tuple[str, ...]:
        return tuple(self._loaded)

    def prepare(self, job: RenderJob, on_state: StateCallback) -> None:
        entry = self.catalog.entry(job.model or None)  # UnknownModel, a ValueError: 422
        assert entry is not None
        if entry.name in self._loaded:
            self._loaded.move_to_end(entry.name)
            return
        on_state(f"loading model {entry.name}")
        try:
            self._load(entry)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None

    def _load(self, entry: ModelEntry) -> None:
        while len(self._loaded) >= self.max_loaded:
            name, backend = self._loaded.popitem(last=False)
            del backend
            _free_memory()
            log.info("unloaded model %s (images.max_loaded = %d)", name, self.max_loaded)
        started = time.monotonic()
        images = self.cfg.images
        backend = DiffusersBackend.load_resolved(
            entry.spec, entry.resolved, images, self.catalog.identity(entry.name),
            self.cfg.resolve(images.ip_adapter) if images.ip_adapter else None)
        if (images.consistency == "reference" and backend.reference is None
                and entry.name == self.catalog.default):
            # The configured mode must work with the default model, or the daemon not start.
            raise ConfigError(f"images.consistency = 'reference': {backend.reference_problem}")
        self._loaded[entry.name] = backend
        log.info("model %s ready in %.1f s", entry.name, time.monotonic() - started)

    def render(self, jobs: Sequence[RenderJob], on_step: StepCallback) -> list[Image.Image]:
        return self._backend(jobs[0]).render(jobs, on_step)

    def provenance(self, job: RenderJob) -> dict[str, Any]:
        return self._backend(job).provenance(job)

    def made_identities(self, job: RenderJob) -> dict[str, bytes]:
        return self._backend(job).made_identities(job)

    def _backend(self, job: RenderJob) -> DiffusersBackend:
        backend = self._loaded.get(job.model or self.catalog.default or "")
        if backend is None:  # prepare() was not called: the queue always calls it first
            raise RuntimeError(f"model {job.model!r} is not loaded")
        return backend


def folder_tokenizer(entry: ModelEntry) -> str | None:
    """A model's (first) tokenizer from its configuration folder, without its weights."""
    from gpu_daemon.models.catalog import folder_of

    folder = folder_of(entry.resolved)
    if folder is None or not (folder / "tokenizer").is_dir():
        return None
    from transformers import AutoTokenizer

    try:
        return tokenizer_json(AutoTokenizer.from_pretrained(folder / "tokenizer"))
    except Exception:  # noqa: BLE001 - one that needs code of its own (ChatGLM): the estimate
        return None


def _free_memory() -> None:
    gc.collect()
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()
