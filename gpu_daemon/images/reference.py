"""Consistency "reference": IP-Adapter with the shot's characters' reference images.

The adapter (``[images] ip_adapter``: a weight file and its CLIP vision encoder in
image_encoder/) is loaded once into each model it fits, with diffusers' ``load_ip_adapter``
from the local folder (never the network). Once loaded, every call of that model passes image
embeddings: a call of reference jobs their references' (each job its own, row by row), any
other call zeros at scale 0, which adds nothing.

A shot with several characters gets one reference per character and an IP-Adapter mask per
reference (diffusers' IPAdapterMaskProcessor): the frame split into vertical strips, the
first character on the left, so that each reference steers only its own strip. The jobs of a
call have as many references each (RenderJob.batch_key), so they share the masks.
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gpu_daemon.images.consistency import IMAGE_ENCODER, ip_adapter_files

if TYPE_CHECKING:
    from gpu_daemon.images import RenderJob

log = logging.getLogger("gpu_daemon.diffusers")


class ReferenceAdapter:
    """The IP-Adapter loaded into one pipeline; what each call passes to it.

    diffusers' SD pipelines give every prompt of a call the same image embeddings (they
    repeat one set per prompt), while each shot has its own references: a pre-hook on the
    UNet hands it the call's embeddings row by row instead (the unconditioned rows, when the
    call is guided, get zeros, as diffusers' encode_image gives for an IP-Adapter)."""

    def __init__(self, pipe: Any, scale: float) -> None:
        self.pipe = pipe
        self.scale = scale
        self._rows: Any = None  # (jobs, references, width): the running call's embeddings
        pipe.unet.register_forward_pre_hook(self._hand_rows, with_kwargs=True)

    @classmethod
    def load(cls, pipe: Any, folder: Path, scale: float, allow_pickle: bool
             ) -> ReferenceAdapter:
        """Loads the adapter and its image encoder from `folder`; ValueError when this model
        cannot take it (no IP-Adapter support, another architecture's adapter)."""
        weights = ip_adapter_files(folder, allow_pickle)
        if not hasattr(pipe, "load_ip_adapter") or getattr(pipe, "unet", None) is None:
            raise ValueError(f"this pipeline ({type(pipe).__name__}) takes no IP-Adapter")
        try:
            pipe.load_ip_adapter(str(folder), subfolder="", weight_name=weights.name,
                                 image_encoder_folder=IMAGE_ENCODER, local_files_only=True)
        except Exception as exc:  # noqa: BLE001 - whatever diffusers raises: it does not fit
            # What loaded before the failure (the image encoder) goes again.
            with contextlib.suppress(Exception):
                pipe.unload_ip_adapter()
            # diffusers' first sentence says what did not match; the rest is its advice on
            # loading random weights instead.
            first = (str(exc).strip().splitlines() or [""])[0].split(". ")[0]
            raise ValueError(f"the IP-Adapter {weights.name} does not fit this model (one "
                             f"for another architecture?): {type(exc).__name__}: "
                             f"{first}") from None
        log.info("loaded IP-Adapter %s (scale %.2f)", weights.name, scale)
        return cls(pipe, scale)

    def call_kwargs(self, jobs: Sequence[RenderJob]) -> dict[str, Any]:
        """The pipeline arguments of a call of `jobs`; the embeddings wait for the UNet."""
        import torch

        count = len(jobs[0].references)
        encoder = self.pipe.image_encoder
        width = encoder.config.projection_dim
        if count == 0:
            self.pipe.set_ip_adapter_scale(0.0)
            self._rows = torch.zeros(len(jobs), 1, width, device=encoder.device,
                                     dtype=encoder.dtype)
            kwargs: dict[str, Any] = {}
        else:
            self.pipe.set_ip_adapter_scale(self.scale)
            self._rows = torch.stack([self._embed(job.references) for job in jobs])
            kwargs = ({"cross_attention_kwargs": {"ip_adapter_masks": [self.masks(
                count, jobs[0].width, jobs[0].height)]}} if count > 1 else {})
        # What the pipeline needs to see to run its IP-Adapter path (its unconditioned and
        # conditioned halves); the hook replaces it.
        placeholder = torch.zeros(2, 1, width, device=encoder.device, dtype=encoder.dtype)
        return {**kwargs, "ip_adapter_image_embeds": [placeholder]}

    def _hand_rows(self, unet: Any, args: tuple, kwargs: dict) -> tuple[tuple, dict] | None:
        import torch

        if self._rows is None:
            return None
        sample = args[0] if args else kwargs["sample"]
        rows = self._rows.to(sample.device)
        if sample.shape[0] == 2 * rows.shape[0]:
            rows = torch.cat([torch.zeros_like(rows), rows])
        added = {**(kwargs.get("added_cond_kwargs") or {}), "image_embeds": [rows]}
        return args, {**kwargs, "added_cond_kwargs": added}

    def _embed(self, references: Sequence[bytes]) -> Any:
        """(references, width) image embeddings, in the shot's order."""
        import torch
        from PIL import Image

        images = [Image.open(io.BytesIO(data)).convert("RGB") for data in references]
        pixels = self.pipe.feature_extractor(images, return_tensors="pt").pixel_values
        encoder = self.pipe.image_encoder
        with torch.inference_mode():
            return encoder(pixels.to(encoder.device, encoder.dtype)).image_embeds

    @staticmethod
    def masks(count: int, width: int, height: int) -> Any:
        """(1, count, height, width) masks: `count` vertical strips, left to right."""
        from diffusers.image_processor import IPAdapterMaskProcessor
        from PIL import Image, ImageDraw

        strips = []
        for i in range(count):
            mask = Image.new("L", (width, height), 0)
            ImageDraw.Draw(mask).rectangle(
                (i * width // count, 0, (i + 1) * width // count - 1, height - 1), fill=255)
            strips.append(mask)
        processed = IPAdapterMaskProcessor().preprocess(strips, height=height, width=width)
        return processed.reshape(1, count, height, width)
