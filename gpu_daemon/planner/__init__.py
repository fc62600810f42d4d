"""Shot planners: a story (prose, or a parsed screenplay) + style -> a Plan: an ordered list of
PlannedShot and the cast.

Two backends, chosen by ``planner.backend``: ``rules`` (offline, deterministic) and
``openai`` (any OpenAI-compatible /v1/chat/completions service). Each shot's ``prompt`` is
the content prompt (shot size + subject); the style preset and the descriptions of the
characters the shot shows are added at render time by gpu_daemon.styles.compose.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from storyboard_contract.config import Config
    from storyboard_contract.screenplay import Screenplay
    from storyboard_contract.wire import Plan, PlannerCheck


class PlannerError(Exception):
    """Planning failed; the message says why, in one line, without secrets. Asking again
    fails the same way (a refused key, an answer that is not a shot list)."""


class PlannerUnavailable(PlannerError):
    """The planner's service could not be reached, timed out, or said it is busy or failing
    (429, 5xx): asking again later may succeed."""


class Planner(Protocol):
    name: str

    def plan(self, story: str, style: str, max_shots: int) -> Plan:
        """At most `max_shots` shots, indexed 0.. in story order, and the characters they
        show. Raises PlannerError."""

    def plan_screenplay(self, screenplay: Screenplay, style: str, max_shots: int) -> Plan:
        """The same for a parsed screenplay: at most `max_shots` shots in script order, each
        with its scene (PlannedShot.scene, scene_heading, scene_shot), and the cast of its
        cues. Raises PlannerError."""

    def check(self) -> PlannerCheck:
        """Whether the planner can plan now: an LLM's service is asked (`doctor`)."""


def make_planner(cfg: Config) -> Planner:
    """The planner configured in ``cfg.planner.backend``."""
    if cfg.planner.backend == "openai":
        from gpu_daemon.planner.openai import OpenAIPlanner

        return OpenAIPlanner(cfg.planner)
    from gpu_daemon.planner.rules import RulesPlanner

    return RulesPlanner()
