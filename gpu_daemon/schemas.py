"""The wire format between workers and the GPU daemon: the one place each schema is defined.

The daemon validates requests with these models; the worker's client (storyboard_cli) builds
requests and reads answers with the same models. Only pydantic is imported here, so the
host side can use this module without fastapi, torch or boto3.

Endpoints (all but /healthz need ``Authorization: Bearer <STORYBOARD_DAEMON_TOKEN>``):

  GET  /healthz      liveness, no auth                     -> {"ok": true}
  GET  /v1/status    backends, device, model, load          -> DaemonStatus
  POST /v1/plan      story -> shot list (+ script upload)   -> PlanResponse
  POST /v1/render    one shot -> PNG in the bucket          -> RenderResponse

Streaming: with ``Accept: application/x-ndjson`` /v1/plan and /v1/render answer 200 with one
JSON object per line: any number of ProgressEvent, then exactly one ResultEvent or ErrorEvent.
Without it they answer plain JSON (errors as HTTP status + {"detail": "..."}).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, Field

from storyboard_cli import control_chars

NDJSON = "application/x-ndjson"

# Bounds every side agrees on. The daemon also enforces a body-size limit.
MAX_STORY_CHARS = 200_000
MAX_PROMPT_CHARS = 1_000
MAX_SHOTS = 200
MAX_SIDE = 2048
MAX_STEPS = 150

ShotSize = Literal["extreme wide", "wide", "full", "medium", "medium close-up", "close-up",
                   "extreme close-up", "over-the-shoulder", "insert"]

Id = Annotated[int, Field(ge=0)]
TaskId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9-]+$")]


def _one_line(what: str) -> AfterValidator:
    """Refuses control characters (storyboard_cli/control_chars.py) in a request: a newline in
    a style made every render fail, as a daemon error that looked worth retrying."""

    def check(text: str) -> str:
        problem = control_chars.problem(text, what)
        if problem:
            raise ValueError(problem)
        return text

    return AfterValidator(check)


def _flattened(value: Any) -> Any:
    return control_chars.flatten(value) if isinstance(value, str) else value


Style = Annotated[str, Field(max_length=200), _one_line("style")]
Prompt = Annotated[str, Field(min_length=1, max_length=MAX_PROMPT_CHARS), _one_line("prompt")]
NegativePrompt = Annotated[str, Field(max_length=MAX_PROMPT_CHARS), _one_line("negative prompt")]
# A planner's prompts (an LLM's included) become render requests: put on one line.
PlannedPrompt = Annotated[str, BeforeValidator(_flattened)]


class PlanRequest(BaseModel):
    project_id: Id
    task_id: TaskId
    story: Annotated[str, Field(min_length=1, max_length=MAX_STORY_CHARS)]
    style: Style = "movie"
    max_shots: Annotated[int | None, Field(ge=1, le=MAX_SHOTS)] = None
    upload_script: bool = True


class PlannedShot(BaseModel):
    index: Annotated[int, Field(ge=0)]
    description: Annotated[str, Field(min_length=1, max_length=4000)]
    prompt: Annotated[PlannedPrompt, Field(min_length=1, max_length=MAX_PROMPT_CHARS)]
    negative_prompt: Annotated[PlannedPrompt, Field(max_length=MAX_PROMPT_CHARS)] = ""
    camera: ShotSize = "medium"
    dialogue: Annotated[str | None, Field(max_length=4000)] = None
    duration: Annotated[float, Field(gt=0, le=600)] = 3.0


class PlanResponse(BaseModel):
    shots: list[PlannedShot]
    planner: str
    script_key: str | None = None
    script_url: str | None = None
    url_expires_at: str | None = None


class RenderRequest(BaseModel):
    project_id: Id
    shot_id: Id
    task_id: TaskId
    index: Annotated[int, Field(ge=0)] = 0
    prompt: Prompt
    negative_prompt: NegativePrompt = ""
    description: Annotated[str, Field(max_length=4000)] = ""
    camera: ShotSize = "medium"
    style: Style = "movie"
    seed: Annotated[int, Field(ge=0, lt=2**32)]
    width: Annotated[int | None, Field(ge=64, le=MAX_SIDE, multiple_of=8)] = None
    height: Annotated[int | None, Field(ge=64, le=MAX_SIDE, multiple_of=8)] = None
    steps: Annotated[int | None, Field(ge=1, le=MAX_STEPS)] = None


class RenderResponse(BaseModel):
    image_key: str
    image_url: str
    url_expires_at: str
    seed: int
    width: int
    height: int
    backend: str
    render_ms: float
    batch_size: int = 1


class ProgressEvent(BaseModel):
    event: Literal["progress"] = "progress"
    shot_id: int | None = None
    step: int
    total: int


class ResultEvent(BaseModel):
    event: Literal["result"] = "result"
    result: dict


class ErrorEvent(BaseModel):
    event: Literal["error"] = "error"
    status: int
    error: str


class DaemonStatus(BaseModel):
    version: str
    planner: str
    image_backend: str
    model: str | None
    model_loaded: bool
    device: str
    busy: bool
    waiting: int
    # Cumulative seconds the render backend spent rendering, and the daemon's uptime:
    # the benchmarks derive the GPU duty cycle from these.
    render_busy_s: float
    renders: int
    pipeline_calls: int
    uptime_s: float
