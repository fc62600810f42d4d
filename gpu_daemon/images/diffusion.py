"""The ``diffusers`` backend: a text-to-image pipeline loaded once at start-up and kept warm.

What to load is a ModelSpec (gpu_daemon/models/sources.py: a checkpoint file, a diffusers
folder or a cached hub id, with its VAE and LoRAs), checked before torch is imported. The
daemon runs offline unless ``images.allow_download`` is set, and checks the cache first so a
missing model is an instant, clear error instead of a network wait.

Each call switches on its scheduler (models/schedulers.py) and its LoRA set
(models/loras.py); jobs with another scheduler or LoRA set never share a call
(RenderJob.batch_key). The consistency modes (images/consistency.py) add the IP-Adapter,
loaded with the model when ``images.ip_adapter`` is set (images/reference.py), and the
consistent self-attention of "attention" calls (images/shared_attention.py).

Each job in a batch has its own CPU ``torch.Generator`` seeded with its seed, so an image
depends on its seed and prompt, not on the device or on which requests shared its batch
(up to float noise: a batch is not bitwise equal to single calls).
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gpu_daemon.images import token_counter, tuning
from gpu_daemon.images.reference import ReferenceAdapter
from gpu_daemon.images.shared_attention import SharedAttention
from gpu_daemon.models import loras, sources
from gpu_daemon.models.catalog import identify
from gpu_daemon.models.loras import Adapters
from gpu_daemon.models.provenance import ModelIdentity, describe
from gpu_daemon.models.schedulers import Schedulers, unknown_message
from storyboard_contract.errors import ConfigError

if TYPE_CHECKING:
    from PIL import Image

    from gpu_daemon.images import RenderJob, StateCallback, StepCallback
    from storyboard_contract.config import ImagesConfig

log = logging.getLogger("gpu_daemon.diffusers")


def _no_steps(step: int, total: int) -> None:
    pass


def _quiet() -> None:
    """No progress bars in a server log: loading, downloading and denoising stay silent."""
    import diffusers.utils.logging as diffusers_logging
    import huggingface_hub.utils as hub_utils
    import transformers.utils.logging as transformers_logging

    diffusers_logging.disable_progress_bar()
    transformers_logging.disable_progress_bar()
    hub_utils.disable_progress_bars()


def _counting_tokenizer(pipe: Any) -> str | None:
    """The pipeline's (first) tokenizer as `tokenizers` JSON, None without one."""
    return tokenizer_json(getattr(pipe, "tokenizer", None))


def tokenizer_json(tokenizer: Any) -> str | None:
    """A transformers tokenizer as `tokenizers` JSON; None without one, or for one that has
    no fast form (Kolors' ChatGLM: its prompts are then fitted by the estimate)."""
    if tokenizer is None:
        return None
    fast = getattr(tokenizer, "backend_tokenizer", None)
    if fast is None:
        # A slow (Python) tokenizer: the conversion AutoTokenizer would do gives the same ids.
        from transformers.convert_slow_tokenizer import convert_slow_tokenizer

        try:
            fast = convert_slow_tokenizer(tokenizer)
        except (ValueError, KeyError, ImportError):
            return None
    return fast.to_str()


class DiffusersBackend:
    name = "diffusers"

    def __init__(self, pipe: Any, spec: sources.ModelSpec, device: str,
                 identity: ModelIdentity | None = None) -> None:
        # The IP-Adapter when one is loaded, else why reference renders are refused.
        self.reference: ReferenceAdapter | None = None
        self.reference_problem = ("this daemon has no IP-Adapter ([images] ip_adapter): "
                                  "consistency reference is not available")
        self._shared: SharedAttention | None = None
        self.pipe = pipe
        self.spec = spec
        self.model = spec.model
        self.device = device
        self.identity = identity or ModelIdentity(self.name, spec.model, name=spec.name)
        self._accepts = set(inspect.signature(pipe.__call__).parameters)
        self._tokenizer = _counting_tokenizer(pipe)
        self._count = token_counter(self._tokenizer)
        self.schedulers = Schedulers(pipe.scheduler)
        if spec.scheduler not in self.schedulers.names:
            raise ConfigError(f"{spec.where}.scheduler: "
                              + unknown_message(spec.scheduler, self.schedulers.names))
        self.adapters = Adapters(pipe, spec.loras)

    @property
    def scheduler_names(self) -> tuple[str, ...]:
        return self.schedulers.names

    @property
    def takes_loras(self) -> bool:
        return self.adapters.supported

    @classmethod
    def load(cls, cfg: ImagesConfig, base_dir: Path, name: str | None = None
             ) -> DiffusersBackend:
        """Checks the configured model `name` (None: the default; one line and exit 2 for
        what is wrong), loads it, its VAE, LoRAs and IP-Adapter, and warms it up."""
        spec = sources.ModelSpec.from_config(cfg, base_dir, name)
        resolved = sources.resolve(spec)
        ip_adapter = base_dir / cfg.ip_adapter if cfg.ip_adapter else None
        return cls.load_resolved(spec, resolved, cfg, identify(spec, resolved), ip_adapter)

    @classmethod
    def load_resolved(cls, spec: sources.ModelSpec, resolved: sources.ResolvedModel,
                      cfg: ImagesConfig, identity: ModelIdentity,
                      ip_adapter: Path | None = None) -> DiffusersBackend:
        """Loads a checked model with the [images] GPU settings and the IP-Adapter in
        `ip_adapter` (a model it does not fit renders without: its reference renders are
        refused with the reason), and warms it up."""
        device = tuning.pick_device(cfg.device)
        settings = tuning.plan(cfg, device, tuning.bf16_supported(device))
        if settings.ignored:
            log.warning("images: %s ignores %s", device, "; ".join(settings.ignored))
        _quiet()
        import torch

        started = time.monotonic()
        pipe = sources.load_pipeline(spec, resolved, getattr(torch, settings.dtype))
        pipe.set_progress_bar_config(disable=True)
        if device != "cpu":
            pipe.to(device)
        loaded_s = time.monotonic() - started
        backend = cls(pipe, spec, device, identity)
        if ip_adapter is not None:
            tuning.apply(pipe, settings, lambda: backend.load_reference(
                ip_adapter, cfg.ip_adapter_scale, cfg.allow_pickle))
        else:
            tuning.apply(pipe, settings)
        backend.warm_up(cfg, settings.compile)
        log.info("loaded model %s: %s (%s, hash %s) in %.1f s on %s", spec.name, spec.model,
                 resolved.kind, backend.identity.model_hash, loaded_s, settings.describe())
        return backend

    def warm_up(self, cfg: ImagesConfig, compiled: bool) -> None:
        """Lazy initialisation is paid here, not by the first request: one tiny call, or with
        a compiled UNet one call per batch size at the frame size of the default aspect (each
        shape compiles once; a project with another aspect compiles on its first call)."""
        from gpu_daemon.images import RenderJob

        if not compiled:
            self.render([RenderJob("warm-up", "", 0, 64, 64, 1, 1.0,
                                   scheduler=self.spec.scheduler, model=self.spec.name)],
                        _no_steps)
            return
        width, height = cfg.frame_size(cfg.aspect, self.spec.name)
        for batch in range(1, cfg.max_batch + 1):
            started = time.monotonic()
            self.render([RenderJob("warm-up", "", i, width, height, 2, cfg.guidance_scale,
                                   scheduler=self.spec.scheduler, model=self.spec.name)
                         for i in range(batch)], _no_steps)
            log.info("compiled the UNet for batch %d at %dx%d in %.1f s", batch, width, height,
                     time.monotonic() - started)

    def load_reference(self, folder: Path, scale: float, allow_pickle: bool) -> None:
        try:
            self.reference = ReferenceAdapter.load(self.pipe, folder, scale, allow_pickle)
        except ValueError as exc:
            self.reference_problem = f"model {self.spec.name}: {exc}"
            log.warning("%s; its consistency reference renders are refused",
                        self.reference_problem)

    def shared_attention(self) -> SharedAttention:
        """Consistent self-attention on this model, set up on first use (ValueError: the
        model has no UNet)."""
        if self._shared is None:
            self._shared = SharedAttention(self.pipe)
        return self._shared

    def token_count(self, model: str | None = None) -> Callable[[str], int] | None:
        return self._count

    def counting_tokenizer(self) -> str | None:
        return self._tokenizer

    # The ImageBackend interface of one model alone (the daemon serves its models through
    # images/pool.py).
    def tokenizers(self) -> dict[str, str | None]:
        return {self.spec.name: self._tokenizer}

    def loaded(self) -> tuple[str, ...]:
        return (self.spec.name,)

    def prepare(self, job: RenderJob, on_state: StateCallback) -> None:
        pass

    def render(self, jobs: Sequence[RenderJob], on_step: StepCallback) -> list[Image.Image]:
        import torch

        first = jobs[0]
        # Both raise ValueError for what this model cannot do: the request is refused (422).
        self.pipe.scheduler = self.schedulers.get(first.scheduler)
        self.adapters.activate(first.loras)
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
        if first.consistency == "reference" and self.reference is None:
            raise ValueError(self.reference_problem)
        if self.reference is not None:
            kwargs.update(self.reference.call_kwargs(jobs))
        shared = None
        if first.consistency == "attention":
            if "callback_on_step_end" not in self._accepts:
                raise ValueError(f"model {self.spec.name}: its pipeline reports no steps; "
                                 "consistency attention is not available")
            shared = self.shared_attention()
            shared.begin(jobs, first.steps)
        if "callback_on_step_end" in self._accepts:
            def step_end(pipe: Any, step: int, timestep: Any, tensors: dict) -> dict:
                if shared is not None:
                    shared.step_done()
                on_step(step + 1, getattr(pipe, "num_timesteps", None) or first.steps)
                return tensors

            kwargs["callback_on_step_end"] = step_end
        finished = False
        try:
            with torch.inference_mode():
                images = list(self.pipe(**kwargs).images)
            finished = True
        finally:
            if shared is not None:
                shared.end(finished)
        return images

    def made_identities(self, job: RenderJob) -> dict[str, bytes]:
        if self._shared is None:
            return {}
        made = self._shared.made
        return {key: made[key] for key, data in job.identities if data is None and key in made}

    def provenance(self, job: RenderJob) -> dict[str, Any]:
        return describe(self.identity, job, loras.used(self.spec.loras, job.loras),
                        job.scheduler)
