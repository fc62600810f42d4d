"""Consistency "attention": consistent self-attention across the images that show a character
(after StoryDiffusion), training-free, with the character's features kept per project.

The self-attention layers of the UNet's up blocks get a processor that, in a call of
attention jobs, lets each image attend, besides its own tokens, to a character bank per
character it shows: at each step and layer, BANK_TOKENS hidden-state tokens sampled from the
images of that character. Images that share no character do not see each other; a job with
no character attends to itself alone, as the plain layer does.

A character's bank is made live in the first call that shows it (sampled from that call's
images of the character: each image then depends on the others of its window), and from
then on it is read, never made again: the daemon keeps it in the bucket under
keys.identity_key (per project, character and model), and later windows and a shot's regen
attend to the same tokens, so a regen with nothing changed renders the same image. The bank
is rounded to float16 when it is made, as it is stored, so that reading it back gives the
same numbers the first call used. A call with another number of steps reads the kept steps
in proportion.

Size: at SD 1.5 (nine up-block self-attention layers of 1280, 640 and 320 channels) a bank
is 2 x 64 x 6720 float16 numbers a step with classifier-free guidance, 1.7 MB; 34 MB at 20
steps.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gpu_daemon.images import RenderJob

BANK_TOKENS = 64  # tokens a character's bank holds per step and layer


@dataclass
class Bank:
    """A character's sampled tokens: per layer, (steps, halves, tokens, channels)."""

    layers: dict[int, Any] = field(default_factory=dict)
    steps: int = 0
    making: bool = False  # made by the running call, step by step
    _rows: dict[int, list[Any]] = field(default_factory=dict, repr=False)

    def to_bytes(self) -> bytes:
        import torch

        buffer = io.BytesIO()
        torch.save({"steps": self.steps, "layers": self.layers}, buffer)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> Bank:
        import torch

        saved = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        return cls(layers=saved["layers"], steps=saved["steps"])

    def tokens(self, layer: int, step: int, total: int, half: int, halves: int) -> Any:
        """The (tokens, channels) of `layer` at `step` of `total` for row half `half`."""
        if self.making:
            kept = self._rows[layer][step]
        else:
            kept = self.layers[layer][round(step * (self.steps - 1) / max(total - 1, 1))]
        # A bank made without guidance serves both halves; one made with it, its own.
        return kept[half] if kept.shape[0] == halves else kept[-1]

    def record(self, layer: int, step: int, tokens: Any) -> None:
        rows = self._rows.setdefault(layer, [])
        if len(rows) == step:
            rows.append(tokens)

    def finish(self, steps: int) -> None:
        import torch

        self.layers = {layer: torch.stack(rows).cpu() for layer, rows in self._rows.items()}
        self.steps, self.making, self._rows = steps, False, {}


class CallPlan:
    """One pipeline call of attention jobs: which rows show which characters, their banks,
    and the step the UNet is at."""

    def __init__(self, jobs: Sequence[RenderJob], banks: dict[str, Bank], steps: int) -> None:
        self.shows = [tuple(key for key, _ in job.identities) for job in jobs]
        self.banks = banks
        self.steps = steps
        self.step = 0

    def attend(self, layer: int, attn: Any, hidden: Any) -> Any:
        import torch

        jobs = len(self.shows)
        halves = hidden.shape[0] // jobs
        for key, bank in self.banks.items():
            if bank.making:
                rows = [h * jobs + j for h in range(halves)
                        for j, shows in enumerate(self.shows) if key in shows]
                bank.record(layer, self.step, self._sample(hidden, rows, halves, layer))
        # Rows that see the same banks are computed together (a window that shows one
        # character is one batch per guidance half).
        groups: dict[tuple[int, tuple[str, ...]], list[int]] = {}
        for row in range(hidden.shape[0]):
            half, job = divmod(row, jobs)
            groups.setdefault((half, self.shows[job]), []).append(row)
        out = torch.empty_like(hidden)
        for (half, shown), rows in groups.items():
            own = hidden[rows]
            extra = [self.banks[key].tokens(layer, self.step, self.steps, half, halves)
                     .to(own.device, own.dtype).expand(len(rows), -1, -1) for key in shown]
            out[rows] = _attention(attn, own, torch.cat([own, *extra], dim=1) if extra else own)
        return out

    def _sample(self, hidden: Any, rows: list[int], halves: int, layer: int) -> Any:
        """(halves, BANK_TOKENS, channels): tokens of the character's rows, per half, drawn
        the same way each time, rounded as they are stored."""
        import torch

        per_half = len(rows) // halves
        generator = torch.Generator().manual_seed(self.step * 1000 + layer)
        picked = []
        for h in range(halves):
            pool = hidden[rows[h * per_half:(h + 1) * per_half]].reshape(-1, hidden.shape[-1])
            index = torch.randperm(pool.shape[0], generator=generator)[:BANK_TOKENS]
            picked.append(pool[index.to(pool.device)])
        return torch.stack(picked).to(torch.float16)


def _attention(attn: Any, own: Any, context: Any) -> Any:
    """diffusers' self-attention of images' tokens (`own`, (images, tokens, channels)) over
    `context` (images, more tokens, channels), as AttnProcessor2_0 computes it for a
    transformer block's attn1."""
    import torch.nn.functional as F

    images = own.shape[0]
    query = attn.to_q(own)
    key, value = attn.to_k(context), attn.to_v(context)
    heads = attn.heads
    head_dim = key.shape[-1] // heads

    def split(t: Any) -> Any:
        return t.view(images, -1, heads, head_dim).transpose(1, 2)

    query, key, value = split(query), split(key), split(value)
    if attn.norm_q is not None:
        query = attn.norm_q(query)
    if attn.norm_k is not None:
        key = attn.norm_k(key)
    hidden = F.scaled_dot_product_attention(query, key, value)
    hidden = hidden.transpose(1, 2).reshape(images, -1, heads * head_dim).to(query.dtype)
    hidden = attn.to_out[1](attn.to_out[0](hidden))
    if attn.residual_connection:
        hidden = hidden + own
    return hidden / attn.rescale_output_factor


class SharedSelfAttention:
    """The processor of one up-block self-attention layer: the plain one (`inner`) unless a
    call of attention jobs runs."""

    def __init__(self, state: SharedAttention, layer: int, inner: Any) -> None:
        self.state, self.layer, self.inner = state, layer, inner

    def __call__(self, attn: Any, hidden_states: Any, encoder_hidden_states: Any = None,
                 attention_mask: Any = None, temb: Any = None, *args: Any, **kwargs: Any
                 ) -> Any:
        plan = self.state.plan
        if (plan is None or encoder_hidden_states is not None or attention_mask is not None
                or hidden_states.ndim != 3 or attn.group_norm is not None
                or attn.spatial_norm is not None):
            return self.inner(attn, hidden_states, encoder_hidden_states, attention_mask,
                              temb, *args, **kwargs)
        return plan.attend(self.layer, attn, hidden_states)


class SharedAttention:
    """Consistent self-attention on one pipeline: its processors (installed on the first
    attention call) and the banks it made or read, the most recent kept in memory."""

    KEEP = 32  # banks kept in memory (a window's characters, across a few projects)

    def __init__(self, pipe: Any) -> None:
        unet = getattr(pipe, "unet", None)
        if unet is None or not hasattr(unet, "set_attn_processor"):
            raise ValueError(f"this pipeline ({type(pipe).__name__}) has no UNet: consistency "
                             "attention needs an SD 1.x/2.x or SDXL model")
        self.unet = unet
        self.plan: CallPlan | None = None
        self.installed = False
        self.banks: dict[str, Bank] = {}
        self.made: dict[str, bytes] = {}  # by the last call, for the daemon to keep

    def install(self) -> None:
        processors = dict(self.unet.attn_processors)
        layer = 0
        for name in processors:
            if name.startswith("up_blocks") and name.endswith("attn1.processor"):
                processors[name] = SharedSelfAttention(self, layer, processors[name])
                layer += 1
        self.unet.set_attn_processor(processors)
        self.installed = True

    def begin(self, jobs: Sequence[RenderJob], steps: int) -> None:
        """Readies a call of `jobs`: each character's bank read from the job, else kept from
        an earlier call, else made by this one."""
        if not self.installed:
            self.install()
        banks: dict[str, Bank] = {}
        for job in jobs:
            for key, data in job.identities:
                if key in banks:
                    continue
                if data is not None:
                    banks[key] = Bank.from_bytes(data)
                elif key in self.banks:
                    banks[key] = self.banks[key]
                else:
                    banks[key] = Bank(making=True)
        self.made = {}
        self.plan = CallPlan(jobs, banks, steps)

    def step_done(self) -> None:
        if self.plan is not None:
            self.plan.step += 1

    def end(self, finished: bool) -> None:
        """After the call: the banks it made kept (only when it finished)."""
        plan, self.plan = self.plan, None
        if plan is None or not finished:
            return
        for key, bank in plan.banks.items():
            if bank.making:
                bank.finish(plan.step)
                self.made[key] = bank.to_bytes()
            self.banks.pop(key, None)
            self.banks[key] = bank
        while len(self.banks) > self.KEEP:
            self.banks.pop(next(iter(self.banks)))
