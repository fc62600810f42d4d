"""Samplers by the names users know from A1111, ComfyUI and Forge, built from the model's own
scheduler configuration (its beta schedule, prediction type, timestep spacing) so that only
the sampling method changes.

The names (storyboard_contract.config.SCHEDULER_NAMES) follow diffusers' own table of A1111
equivalents: DPM++ 2M Karras is the multistep DPM-Solver++ on Karras sigmas, DPM++ SDE Karras
the single-step one, "Euler a" the ancestral Euler. ``default`` is the scheduler the model
came with. SD 3.x and FLUX are flow-matching models: they sample with their own
flow-matching Euler (``default``, also called ``euler``) and refuse the others.

Each scheduler is made once per pipeline and swapped in before a call; one call runs at a
time (batching.py), and a call sets its timesteps afresh.
"""

from __future__ import annotations

from typing import Any

from storyboard_contract.config import SCHEDULER_NAMES

# name -> (diffusers class, settings over the model's scheduler config)
SCHEDULERS: dict[str, tuple[str, dict[str, Any]]] = {
    "dpmpp_2m_karras": ("DPMSolverMultistepScheduler",
                        {"algorithm_type": "dpmsolver++", "use_karras_sigmas": True}),
    "dpmpp_sde_karras": ("DPMSolverSinglestepScheduler", {"use_karras_sigmas": True}),
    "euler_a": ("EulerAncestralDiscreteScheduler", {}),
    "euler": ("EulerDiscreteScheduler", {}),
    "ddim": ("DDIMScheduler", {}),
    "unipc": ("UniPCMultistepScheduler", {}),
    "lcm": ("LCMScheduler", {}),
}
FLOW_MATCHING_NAMES = ("default", "euler")


def is_flow_matching(scheduler: Any) -> bool:
    return type(scheduler).__name__.startswith("FlowMatch")


def supported(default: Any) -> tuple[str, ...]:
    """The names a pipeline whose own scheduler is `default` can sample with."""
    return FLOW_MATCHING_NAMES if is_flow_matching(default) else SCHEDULER_NAMES


def unknown_message(name: str, names: tuple[str, ...]) -> str:
    if name in SCHEDULER_NAMES:
        return (f"scheduler {name!r} is not for this model (a flow-matching model: "
                f"{', '.join(names)})")
    return f"unknown scheduler {name!r}; known: {', '.join(names)}"


class Schedulers:
    """The schedulers of one pipeline, by name, each made on first use."""

    def __init__(self, default: Any) -> None:
        self.default = default
        self.names = supported(default)
        self._made: dict[str, Any] = {"default": default}
        if is_flow_matching(default):
            self._made["euler"] = default

    def get(self, name: str) -> Any:
        """The scheduler called `name`; ValueError (a request the daemon refuses) otherwise."""
        name = name or "default"
        if name not in self._made:
            if name not in self.names:
                raise ValueError(unknown_message(name, self.names))
            import diffusers

            class_name, settings = SCHEDULERS[name]
            self._made[name] = getattr(diffusers, class_name).from_config(
                self.default.config, **settings)
        return self._made[name]
