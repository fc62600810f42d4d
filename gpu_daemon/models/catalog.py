"""The models one daemon serves, by name, known before any is loaded.

``[images] model`` is the model called "default"; ``[images.models.NAME]`` tables add others
(storyboard_contract.config.ImagesConfig.model_table), the first being the default. Each is
resolved at start-up (sources.resolve: a wrong file is one line and exit 2 before anything
loads), and what the HTTP side needs of it is read from its files alone: its pipeline class
(a checkpoint's header, a folder's model_index.json), hence its text encoder and whether it is
a flow-matching model (which samplers it takes). Requests name a model; the render process
loads the one a call needs (images/pool.py).

Text encoders: CLIP (SD 1.x/2.x, SDXL) and T5 (SD 3, FLUX) read English only: Chinese text
costs them several tokens a character and means little to them. Kolors (ChatGLM3) and
HunyuanDiT (a bilingual CLIP-like BERT and multilingual T5) read Chinese and English. When
text in Chinese, Japanese or Korean is headed for an English-only encoder, the daemon says
so (language_warning), once per task on the host.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gpu_daemon.models import checkpoints, sources
from gpu_daemon.models.provenance import ModelIdentity, short_hash
from storyboard_contract.cjk import CJK_CHAR
from storyboard_contract.config import SCHEDULER_NAMES

if TYPE_CHECKING:
    from storyboard_contract.config import Config


@dataclass(frozen=True)
class TextEncoder:
    name: str
    reads_chinese: bool
    family: str  # what users call models of the pipeline


# The text-to-image pipelines the daemon loads, with the encoder that reads their prompts.
TEXT_ENCODERS = {
    "StableDiffusionPipeline": TextEncoder("CLIP", False, "SD 1.x/2.x"),
    "StableDiffusionXLPipeline": TextEncoder("CLIP ViT-L + OpenCLIP bigG", False, "SDXL"),
    "StableDiffusion3Pipeline": TextEncoder("CLIP + T5", False, "SD 3"),
    "FluxPipeline": TextEncoder("CLIP + T5", False, "FLUX.1"),
    "KolorsPipeline": TextEncoder("ChatGLM3", True, "Kolors"),
    "HunyuanDiTPipeline": TextEncoder("bilingual CLIP (BERT) + mT5", True, "HunyuanDiT"),
}
FLOW_MATCHING_NAMES = ("default", "euler")
KIND_NAMES = {"folder": "diffusers folder", "hub": "Hugging Face id", "file": "checkpoint"}


class UnknownModel(ValueError):
    """A request named a model the daemon does not serve (HTTP 422)."""


@dataclass
class ModelEntry:
    """One model as the HTTP side knows it, unloaded."""

    spec: sources.ModelSpec
    resolved: sources.ResolvedModel
    generation: dict[str, Any]  # width, height, steps, guidance_scale, scheduler, negative
    pipeline: str | None  # the diffusers pipeline class, when its files say
    flow_matching: bool

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def encoder(self) -> TextEncoder | None:
        return TEXT_ENCODERS.get(self.pipeline or "")

    @property
    def label(self) -> str:
        architecture = self.resolved.architecture
        if architecture is not None:
            return architecture.label
        return self.encoder.family if self.encoder else (self.pipeline or "unknown")

    @property
    def scheduler_names(self) -> tuple[str, ...]:
        return FLOW_MATCHING_NAMES if self.flow_matching else SCHEDULER_NAMES

    def describe(self) -> str:
        """What `gpu-daemon check` and doctor print: name, source, kind, text encoder."""
        reads = ""
        if self.encoder is not None:
            reads = f"; {self.encoder.name}: " + ("reads Chinese and English"
                                                  if self.encoder.reads_chinese
                                                  else "reads English only")
        return (f"{self.name}: {self.resolved.source} ({self.label} "
                f"{KIND_NAMES[self.resolved.kind]}{reads})")


def folder_of(resolved: sources.ResolvedModel) -> Path | None:
    """The diffusers folder holding a model's configuration (its own, a single file's
    model_config, or a cached hub snapshot)."""
    if resolved.kind == "folder":
        return Path(resolved.source)
    if resolved.kind == "file":
        return Path(resolved.config) if resolved.config else None
    found = sources.cached_snapshot(resolved.source)
    return Path(found) if found else None


def _scheduler_class(folder: Path | None) -> str:
    if folder is None:
        return ""
    try:
        data = json.loads((folder / "scheduler" / "scheduler_config.json").read_text("utf-8"))
    except (OSError, ValueError):
        return ""
    return str(data.get("_class_name", "")) if isinstance(data, dict) else ""


def entry_for(spec: sources.ModelSpec, cfg: Config) -> ModelEntry:
    """A model's entry: resolved (ConfigError for what is wrong with its files), its pipeline
    read from them."""
    resolved = sources.resolve(spec)
    folder = folder_of(resolved)
    architecture = resolved.architecture
    pipeline = architecture.pipeline if architecture else (
        checkpoints.pipeline_class_of_folder(folder) if folder else None)
    flow = architecture.flow_matching if architecture else \
        _scheduler_class(folder).startswith("FlowMatch")
    return ModelEntry(spec, resolved, cfg.images.generation(spec.name), pipeline, flow)


class Catalog:
    """Every model of the configuration, resolved, the default first."""

    def __init__(self, cfg: Config, backend: str) -> None:
        self.backend = backend
        self.entries: dict[str, ModelEntry] = {}
        if backend == "diffusers":
            for name in cfg.images.model_table() or {None: None}:
                spec = sources.ModelSpec.from_config(cfg.images, cfg.base_dir, name)
                self.entries[spec.name] = entry_for(spec, cfg)
        self.default = next(iter(self.entries), None)
        self._identities: dict[str, ModelIdentity] = {}
        self._lock = threading.Lock()

    def entry(self, name: str | None) -> ModelEntry | None:
        """The entry of model `name` (None: the default); None for a backend without models
        (sketch, simulated); UnknownModel for a name the daemon does not serve."""
        if not self.entries:
            return None
        found = self.entries.get(name or self.default or "")
        if found is None:
            raise UnknownModel(f"unknown model {name!r}; this daemon serves "
                               f"{', '.join(self.entries)} ([images.models.NAME] in its "
                               "storyboard.toml)")
        return found

    def identity(self, name: str | None) -> ModelIdentity:
        """The model as provenance names it, its files hashed once (a few seconds a GB)."""
        entry = self.entry(name)
        if entry is None:
            return ModelIdentity(self.backend)
        with self._lock:
            if entry.name not in self._identities:
                self._identities[entry.name] = identify(entry.spec, entry.resolved)
            return self._identities[entry.name]

    def language_warning(self, name: str | None, texts: list[str]) -> str | None:
        """One line when text in Chinese, Japanese or Korean goes to a model that reads
        English only, with the fix; the same line for every text of a model, so that the
        host says it once per task."""
        entry = self.entry(name)
        if entry is None or entry.encoder is None or entry.encoder.reads_chinese:
            return None
        if not any(CJK_CHAR.search(text) for text in texts):
            return None
        chinese = [e.name for e in self.entries.values()
                   if e.encoder is not None and e.encoder.reads_chinese]
        other = (f"model {chinese[0]!r} of this daemon" if chinese
                 else "a model that reads Chinese (Kolors, HunyuanDiT: README, Recommended setups)")
        return (f"image prompts in Chinese (or Japanese, Korean) go to model {entry.name!r} "
                f"({entry.label}), whose text encoder ({entry.encoder.name}) reads English only: "
                "its images will follow them poorly. Fix: plan with the LLM planner, which writes "
                "English image prompts ([planner] backend = \"openai\", prompt_language = \"en\"), "
                f"or render with {other} (storyboard settings PROJECT --model NAME)")


def identify(spec: sources.ModelSpec, resolved: sources.ResolvedModel) -> ModelIdentity:
    """The model's name and short hashes for provenance (each file hashed once)."""
    source = resolved.source
    if resolved.kind == "hub":
        source = sources.cached_snapshot(source) or ""
    return ModelIdentity("diffusers", spec.model, short_hash(source) if source else None,
                         spec.vae or None,
                         short_hash(resolved.vae) if resolved.vae else None, spec.name)
