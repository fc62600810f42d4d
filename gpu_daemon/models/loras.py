"""LoRAs on a loaded pipeline: loaded once each under an adapter name, switched per call.

A model's own LoRAs (``images.loras``, or its table's ``loras``) are loaded with it (the
default model at start-up, so a missing or incompatible file stops the daemon with one
line). A request may name more LoRAs (files in
``images.lora_dir``), with scales: the HTTP side checks that each is a LoRA file there
(``request_lora``, a 422 otherwise), the render process loads it on first use and keeps the
most recently used ones. Before each pipeline call the call's set (the daemon's LoRAs, then
the request's, a request's scale winning for a file in both) is switched on with
``set_adapters``; a call without any runs with LoRA disabled. Jobs with different sets never
share a call (RenderJob.batch_key).

diffusers reads both the diffusers/peft layout (``lora_A``/``lora_B``) and kohya's
(``lora_unet_…`` with ``lora_down``/``lora_up`` and ``alpha``).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gpu_daemon.models.provenance import UsedLora, short_hash
from gpu_daemon.models.sources import LoraSpec, check_lora_file
from storyboard_contract.errors import ConfigError

log = logging.getLogger("gpu_daemon.diffusers")

# A request's LoRAs kept loaded besides the daemon's: each costs its size in memory.
MAX_REQUEST_LORAS = 8


def request_lora(name: str, lora_dir: Path) -> Path:
    """The file a request's LoRA names: a path inside lora_dir, a safetensors LoRA.
    ValueError (the daemon answers 422) otherwise."""
    if not name or Path(name).is_absolute() or ".." in Path(name).parts:
        raise ValueError(f"LoRA {name!r}: name a file inside the daemon's images.lora_dir "
                         "(a relative path, no '..')")
    path = (lora_dir / name).resolve()
    if not path.is_relative_to(lora_dir.resolve()):
        raise ValueError(f"LoRA {name!r} is outside the daemon's images.lora_dir")
    try:
        check_lora_file(path, f"LoRA {name!r}")
    except ConfigError as exc:
        raise ValueError(str(exc)) from None
    return path


class Adapters:
    """The LoRAs loaded into one pipeline, and which are switched on."""

    def __init__(self, pipe: Any, base: Sequence[LoraSpec]) -> None:
        self.pipe = pipe
        self.base = tuple(base)
        self._loaded: OrderedDict[Path, UsedLora] = OrderedDict()  # request LoRAs, LRU order
        self._base_used: dict[Path, UsedLora] = {}
        self._active: tuple[tuple[str, float], ...] | None = None
        for spec in self.base:
            try:
                self._base_used[spec.path] = self._load(spec.path, spec.scale)
            except ValueError as exc:
                raise ConfigError(f"images.loras: {exc}") from None

    @property
    def supported(self) -> bool:
        return hasattr(self.pipe, "load_lora_weights")

    def _load(self, path: Path, scale: float) -> UsedLora:
        """Loads a LoRA file under its adapter name; ValueError if it fits this model not."""
        if not self.supported:
            raise ValueError(f"{path.name}: this pipeline ({type(self.pipe).__name__}) takes no "
                             "LoRA")
        name = LoraSpec(path).adapter_name
        try:
            self.pipe.load_lora_weights(str(path), adapter_name=name)
        except Exception as exc:  # noqa: BLE001 - whatever diffusers/peft raise: refused
            self._forget(name)
            raise ValueError(f"{path.name} does not fit this model: {type(exc).__name__}: "
                             f"{(str(exc).strip().splitlines() or [''])[0]}") from None
        if name not in _adapter_names(self.pipe):
            self._forget(name)
            raise ValueError(f"{path.name} does not fit this model: none of its weights "
                             "match the model's layers (a LoRA for another architecture?)")
        log.info("loaded LoRA %s as %s", path.name, name)
        return UsedLora(path.name, short_hash(path), scale)

    def _forget(self, name: str) -> None:
        if name in _adapter_names(self.pipe):
            self.pipe.delete_adapters(name)

    def activate(self, wanted: Sequence[tuple[str, float]]) -> None:
        """Switches on the LoRAs a call with `wanted` uses, loading what is not loaded yet."""
        scales = call_scales(self.base, wanted)
        for path, scale in scales.items():
            if path in self._loaded:
                self._loaded.move_to_end(path)
            elif path not in self._base_used:
                self._loaded[path] = self._load(path, scale)
                self._evict(keep=set(scales))
        key = tuple((LoraSpec(p).adapter_name, s) for p, s in scales.items())
        if key != self._active:
            if key:
                self.pipe.enable_lora()
                self.pipe.set_adapters([n for n, _ in key], adapter_weights=[s for _, s in key])
            elif self._base_used or self._loaded:
                self.pipe.disable_lora()
            self._active = key

    def _evict(self, keep: set[Path]) -> None:
        while len(self._loaded) > MAX_REQUEST_LORAS:
            path = next((p for p in self._loaded if p not in keep), None)
            if path is None:
                return
            del self._loaded[path]
            self._forget(LoraSpec(path).adapter_name)
            self._active = None


def call_scales(base: Sequence[LoraSpec], wanted: Sequence[tuple[str, float]]
                ) -> dict[Path, float]:
    """The LoRAs a call uses: the model's own, then `wanted` ((file, scale), a request's)."""
    scales = {spec.path: spec.scale for spec in base}
    scales.update((Path(file), scale) for file, scale in wanted)
    return scales


def used(base: Sequence[LoraSpec], wanted: Sequence[tuple[str, float]]) -> list[UsedLora]:
    """The LoRAs a call with `wanted` uses, named and hashed, with their scales."""
    return [UsedLora(path.name, short_hash(path), scale)
            for path, scale in call_scales(base, wanted).items()]


def _adapter_names(pipe: Any) -> set[str]:
    """Every adapter loaded into any of the pipeline's components."""
    if not hasattr(pipe, "get_list_adapters"):
        return set()
    return {name for names in pipe.get_list_adapters().values() for name in names}
