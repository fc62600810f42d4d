"""The wire format between workers and the GPU daemon: the one place each schema is defined.

The daemon validates requests with these models; the worker's client (storyboard_cli) builds
requests and reads answers with the same models. Only pydantic is imported here, so the
host side can use this module without fastapi, torch or boto3.

Endpoints (all but /healthz need ``Authorization: Bearer <STORYBOARD_DAEMON_TOKEN>``):

  GET  /healthz      liveness, no auth                     -> {"ok": true}
  GET  /v1/status    backends, device, model, load          -> DaemonStatus
       ?check=bucket  ... and the daemon's own bucket check (DaemonStatus.bucket)
  POST /v1/plan      story or screenplay -> shot list      -> PlanResponse
                     (+ script upload)
  POST /v1/render    one shot -> PNG in the bucket          -> RenderResponse
  POST /v1/renders   several shots, each on its own         -> RendersResponse

Streaming: with ``Accept: application/x-ndjson`` the POST endpoints answer 200 with one JSON
object per line: any number of ProgressEvent (and, from /v1/renders, one ShotEvent per shot as
it finishes), then exactly one ResultEvent or ErrorEvent. Without it they answer plain JSON
(errors as HTTP status + {"detail": "..."}).

/v1/renders submits all its shots to the render queue at once, so that shots with the same
settings share pipeline calls (up to the daemon's max_batch, DaemonStatus.max_batch). Each
shot is independent: one shot's failure is its ShotEvent's error and fails no other shot.
"""

from __future__ import annotations

import hashlib
import re
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    Field,
    computed_field,
    model_validator,
)

from storyboard_contract import control_chars, frames
from storyboard_contract.config import CONSISTENCY_MODES, MODEL_NAME, SCHEDULER_NAMES
from storyboard_contract.numbering import shot_label
from storyboard_contract.screenplay import Screenplay

NDJSON = "application/x-ndjson"
# How the daemon's 503 for a planner service that may heal (unreachable, 429, 5xx) begins:
# workers retry it and say "planning: retrying (planner unreachable, attempt N/M)".
PLANNER_UNREACHABLE = "planner unreachable"

# Bounds every side agrees on. The daemon also enforces a body-size limit.
MAX_STORY_CHARS = 200_000
MAX_PROMPT_CHARS = 1_000
MAX_SHOTS = 200
MIN_SIDE = frames.MIN_SIDE
MAX_SIDE = frames.MAX_SIDE
MAX_STEPS = 150
MAX_CHARACTERS = 50
MAX_SHOT_CHARACTERS = 10
MAX_SHOT_LINES = 50  # dialogue lines in one shot
MAX_LINE_CHARS = 4000
MAX_DESCRIPTION_CHARS = 200
MAX_CHARACTER_NAME_CHARS = 40
MAX_ALIASES = 8  # other names of one character (`cast --alias`)
MAX_NOT_CHARACTERS = 200  # names a project's cast never takes (`cast --remove`)
# A character's reference image (`cast --image`): a PNG or JPEG within these bounds.
MAX_REFERENCE_BYTES = 8 * 1024 * 1024
MAX_REFERENCE_SIDE = 4096
SEEDS = 2**32  # a seed is 0 to SEEDS - 1 (32 bits)
# Shots in one /v1/renders request (a worker's window: the daemon's max_batch, bounded).
MAX_WINDOW = 16
MAX_LORAS = 8
MAX_GUIDANCE = 30.0

ShotSize = Literal["extreme wide", "wide", "full", "medium", "medium close-up", "close-up",
                   "extreme close-up", "over-the-shoulder", "insert"]
# How the camera moves over a shot: the animatic plays it over the shot's duration and the PDF
# draws it as an arrow on the panel.
CameraMove = Literal["static", "push in", "pull out", "pan left", "pan right", "tilt up",
                     "tilt down"]
MOVES: tuple[str, ...] = get_args(CameraMove)
# What models and people write for a move beyond its own name: the LLM planner's answers and
# `storyboard shot --move` read moves through move_name.
MOVE_ALIASES: dict[str, str] = {
    "none": "static", "still": "static", "locked off": "static", "locked": "static",
    "fixed": "static", "hold": "static", "no move": "static", "": "static",
    "push": "push in", "dolly in": "push in", "zoom in": "push in", "push-in": "push in",
    "pull back": "pull out", "pull": "pull out", "dolly out": "pull out",
    "zoom out": "pull out", "pull-out": "pull out",
    "pan l": "pan left", "pan r": "pan right", "tilt u": "tilt up", "tilt d": "tilt down",
}
# A screenplay's scene number as the script writes it: 12, 12A, A12.
SceneNumber = Annotated[str, Field(min_length=1, max_length=16)]
# The words a content prompt opens with for each shot size: the planners write them, and the
# host rewrites them when a writer changes a shot's size or action (`storyboard shot`).
SHOT_PHRASES: dict[str, str] = {
    "extreme wide": "extreme wide establishing shot",
    "wide": "wide shot",
    "full": "full shot",
    "medium": "medium shot",
    "medium close-up": "medium close-up",
    "close-up": "close-up",
    "extreme close-up": "extreme close-up",
    "over-the-shoulder": "over-the-shoulder shot",
    "insert": "insert shot",
}

Aspect = Literal[frames.ASPECTS]  # type: ignore[valid-type]
Id = Annotated[int, Field(ge=0)]
TaskId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9-]+$")]
Side = Annotated[int | None, Field(ge=MIN_SIDE, le=MAX_SIDE, multiple_of=8)]
Seed = Annotated[int, Field(ge=0, lt=SEEDS)]
# `storyboard cast --set NAME=DESCRIPTION` splits at the first "=": a name holds none.
CharacterName = Annotated[str, Field(min_length=1, max_length=MAX_CHARACTER_NAME_CHARS,
                                     pattern=r"^[^=\n\r\t]+$")]


def move_name(value: str) -> str:
    """A move as written ("Dolly In", "push_in", "PAN-LEFT", "none") in the schema's words;
    what is no move's name comes back as written, for the schema (or the caller) to refuse."""
    name = " ".join(value.lower().replace("_", " ").split())
    name = MOVE_ALIASES.get(name, name).replace("-", " ")
    return MOVE_ALIASES.get(name, name)


def shot_seed(task_id: str, index: int) -> int:
    """The seed of a planned shot: fixed by task and index, so a re-run renders the same.

    The daemon writes it into the plan (and the uploaded script); the worker stores it.
    """
    digest = hashlib.sha256(f"{task_id}:{index}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def _one_line(what: str) -> AfterValidator:
    """Refuses control characters (storyboard_contract/control_chars.py) in a request: a newline in
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


def _known_scheduler(name: str) -> str:
    if name not in SCHEDULER_NAMES:
        raise ValueError(f"unknown scheduler {name!r}; known: {', '.join(SCHEDULER_NAMES)}")
    return name


SchedulerName = Annotated[str, Field(max_length=40), AfterValidator(_known_scheduler)]


# LoRA scales outside this range are almost certainly a typo (a LoRA at 10 is noise).
MAX_LORA_SCALE = 4.0
_SCALE = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")


def split_lora(text: str) -> tuple[str, float]:
    """``FILE`` or ``FILE:SCALE`` as written in storyboard.toml and on the command line: a
    trailing ``:number`` is the scale (1.0 without one; a Windows drive's colon is not)."""
    file, sep, tail = text.rpartition(":")
    if sep and _SCALE.fullmatch(tail.strip()):
        return file, float(tail)
    return text, 1.0


class LoraRef(BaseModel):
    """A LoRA for one render: a .safetensors file inside the daemon's images.lora_dir (a
    relative path), at a scale (1.0 = as trained)."""

    name: Annotated[str, Field(min_length=1, max_length=300), _one_line("LoRA name")]
    scale: Annotated[float, Field(ge=-MAX_LORA_SCALE, le=MAX_LORA_SCALE)] = 1.0


ModelName = Annotated[str, Field(max_length=40, pattern=MODEL_NAME.pattern)]


# How a character's identity is carried from shot to shot (`[images] consistency`,
# `new --consistency`): its description in every prompt (text), its reference image through
# IP-Adapter (reference), features shared across a window's images and kept per project
# (attention), or its own LoRA and trigger word (lora): config.CONSISTENCY_MODES, re-exported.
Consistency = Literal["text", "reference", "attention", "lora"]
assert get_args(Consistency) == CONSISTENCY_MODES


class RenderSettings(BaseModel):
    """How a project's images are made (`storyboard new --model/--lora/--scheduler/--steps/
    --cfg/--negative`): None or empty means the model's default, from the daemon's
    configuration ([images.models.NAME], else [images])."""

    model: ModelName | None = None  # a name of the daemon's models; None: its default
    # On top of the model's own LoRAs (a file in both: this scale wins).
    loras: Annotated[list[LoraRef], Field(max_length=MAX_LORAS)] = []
    scheduler: SchedulerName | None = None
    steps: Annotated[int | None, Field(ge=1, le=MAX_STEPS)] = None
    guidance_scale: Annotated[float | None, Field(ge=0.0, le=MAX_GUIDANCE)] = None
    # Empty: the planner's for the shot, else the model's default, else the style's.
    negative_prompt: NegativePrompt = ""
    consistency: Consistency | None = None  # None: the daemon's [images] consistency


class PlanRequest(BaseModel):
    """A story to plan: prose (`story`) or a parsed screenplay (`screenplay`), one of them."""

    project_id: Id
    task_id: TaskId
    story: Annotated[str | None, Field(min_length=1, max_length=MAX_STORY_CHARS)] = None
    screenplay: Screenplay | None = None
    style: Style = "movie"
    max_shots: Annotated[int | None, Field(ge=1, le=MAX_SHOTS)] = None
    upload_script: bool = True
    # The project's frame, written into the uploaded script (planning does not depend on it).
    aspect: Aspect = frames.DEFAULT_ASPECT
    width: Side = None
    height: Side = None
    # How the shots will be rendered: which model reads the prompts (a warning when it cannot
    # read their language), and each shot's provenance in the uploaded script.
    render: RenderSettings = RenderSettings()
    # The user's word on the cast (`storyboard cast`), which every plan keeps (UserCast is
    # defined below, beside Character: a factory, so it is looked up when a request is made).
    cast: UserCast = Field(default_factory=lambda: UserCast())

    @model_validator(mode="after")
    def _story_or_screenplay(self) -> PlanRequest:
        if (self.story is None) == (self.screenplay is None):
            raise ValueError("give the story or the screenplay, one of them")
        return self


TriggerWord = Annotated[str, Field(min_length=1, max_length=80), _one_line("trigger word")]


class Character(BaseModel):
    """A member of the cast. Its description goes, word for word, into the prompt of every
    shot that shows the character (gpu_daemon.styles.compose)."""

    name: CharacterName
    description: Annotated[str, Field(max_length=MAX_DESCRIPTION_CHARS)] = ""
    # Identity beyond words, used by the consistency modes of the same name: the character's
    # reference image in the bucket (keys.cast_key), and its own LoRA with the word it was
    # trained on, applied only to the shots that show the character.
    reference_key: Annotated[str | None, Field(max_length=1024)] = None
    lora: LoraRef | None = None
    trigger: TriggerWord | None = None


class UserCast(BaseModel):
    """The user's word on a project's cast (`storyboard cast`), sent with every plan so that a
    re-plan keeps it: the characters the user described (cast under their names with their
    descriptions, shown in every shot whose narration names them or an alias), other names
    of the same person (Lin -> [林]), and names that are not people (`cast --remove`: a
    place, a boat), never cast and never a speaker."""

    characters: Annotated[list[Character], Field(max_length=MAX_CHARACTERS)] = []
    aliases: Annotated[dict[CharacterName, Annotated[list[CharacterName], Field(
        max_length=MAX_ALIASES)]], Field(max_length=MAX_CHARACTERS)] = {}
    not_characters: Annotated[list[CharacterName], Field(max_length=MAX_NOT_CHARACTERS)] = []


class DialogueLine(BaseModel):
    speaker: Annotated[str | None, Field(max_length=80)] = None  # None: not known
    line: Annotated[str, Field(min_length=1, max_length=MAX_LINE_CHARS)]
    # How it is said, from the screenplay's parentheticals ("breathless"); None: not given.
    parenthetical: Annotated[str | None, Field(max_length=200)] = None


class PlannedShot(BaseModel):
    index: Annotated[int, Field(ge=0)]
    # The story text the shot covers, in the story's own words.
    description: Annotated[str, Field(min_length=1, max_length=4000)]
    # What we see; empty when the shot is only its dialogue.
    action: Annotated[str, Field(max_length=4000)] = ""
    # The content prompt (shot size + subject); style and cast are added at render time.
    prompt: Annotated[PlannedPrompt, Field(min_length=1, max_length=MAX_PROMPT_CHARS)]
    negative_prompt: Annotated[PlannedPrompt, Field(max_length=MAX_PROMPT_CHARS)] = ""
    camera: ShotSize = "medium"
    dialogue: Annotated[list[DialogueLine], Field(max_length=MAX_SHOT_LINES)] = []
    # Names from the plan's characters, in the order they matter in the shot.
    characters: Annotated[list[CharacterName], Field(max_length=MAX_SHOT_CHARACTERS)] = []
    duration: Annotated[float, Field(gt=0, le=600)] = 3.0
    move: CameraMove = "static"
    # A screenplay's shot: its scene's number and heading, and which shot of the scene it is
    # (1, 2, ...). None for a story in prose.
    scene: SceneNumber | None = None
    scene_heading: Annotated[str | None, Field(max_length=200)] = None
    scene_shot: Annotated[int | None, Field(ge=1)] = None
    seed: Seed | None = None  # set by the daemon: shot_seed(task id, index)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def number(self) -> int:
        """The running shot number (1, 2, ...): PROJECT/NUMBER names a shot by it."""
        return self.index + 1

    @computed_field  # type: ignore[prop-decorator]
    @property
    def label(self) -> str:
        """The number on the panel (shot_label): 3.2 in a screenplay, the running one in
        prose."""
        return shot_label(self.number, self.scene, self.scene_shot)


class Plan(BaseModel):
    """What a planner makes of a story: the shots, and the cast they show."""

    shots: list[PlannedShot]
    characters: Annotated[list[Character], Field(max_length=MAX_CHARACTERS)] = []

    @model_validator(mode="after")
    def _cast_is_consistent(self) -> Plan:
        names = [c.name for c in self.characters]
        if len(set(names)) != len(names):
            raise ValueError("characters: every name must be listed once")
        for shot in self.shots:
            unknown = [n for n in shot.characters if n not in names]
            if unknown:
                raise ValueError(f"shot {shot.index} shows {unknown[0]!r}, who is not in "
                                 "the characters")
        return self


class PlanResponse(Plan):
    planner: str
    script_key: str | None = None
    script_url: str | None = None
    url_expires_at: str | None = None
    # What the user should know about the plan, each said once (a language the model cannot
    # read, with the fix).
    warnings: list[str] = []


class RenderRequest(RenderSettings):
    project_id: Id
    shot_id: Id
    task_id: TaskId
    index: Annotated[int, Field(ge=0)] = 0
    prompt: Prompt
    description: Annotated[str, Field(max_length=4000)] = ""
    camera: ShotSize = "medium"
    # The cast members the shot shows, with their current descriptions.
    characters: Annotated[list[Character], Field(max_length=MAX_SHOT_CHARACTERS)] = []
    style: Style = "movie"
    seed: Seed
    width: Side = None
    height: Side = None


class LoraUsed(BaseModel):
    name: str  # the file's name
    hash: str  # the first 10 hex digits of its sha256
    scale: float


class Provenance(BaseModel):
    """What made an image (gpu_daemon/models/provenance.py): the same values on the same
    hardware render the same image again."""

    backend: str
    model_name: str | None = None  # the daemon's name for it (projects pick it by this)
    model: str | None = None  # as the daemon's configuration names it
    model_hash: str | None = None  # the first 10 hex digits of its file's sha256
    vae: str | None = None
    vae_hash: str | None = None
    loras: list[LoraUsed] = []
    scheduler: str = "default"
    steps: int
    guidance_scale: float
    seed: int
    width: int
    height: int
    consistency: str = "text"  # how the characters' identity was carried (CONSISTENCY_MODES)


class RenderResponse(BaseModel):
    image_key: str
    image_url: str
    url_expires_at: str
    # The positive prompt the image was rendered from: style, content and cast, fitted.
    prompt: str = ""
    seed: int
    width: int
    height: int
    backend: str
    render_ms: float
    batch_size: int = 1
    # Rendered by an earlier request whose upload failed: this one only uploaded it.
    reused: bool = False
    provenance: Provenance | None = None
    # As PlanResponse.warnings: said once per task by the worker.
    warnings: list[str] = []


class RendersRequest(BaseModel):
    shots: Annotated[list[RenderRequest], Field(min_length=1, max_length=MAX_WINDOW)]

    @model_validator(mode="after")
    def _each_shot_once(self) -> RendersRequest:
        # Outcomes name their shot by shot_id alone.
        keys = [s.shot_id for s in self.shots]
        if len(set(keys)) != len(keys):
            raise ValueError("shots: each shot_id may appear once")
        return self


class ShotOutcome(BaseModel):
    """One shot of a /v1/renders request: its result, or why it failed (status as the
    single-shot endpoint would answer it: 4xx refused, 5xx worth retrying)."""

    shot_id: int
    result: RenderResponse | None = None
    status: int = 200
    error: str | None = None


class RendersResponse(BaseModel):
    shots: list[ShotOutcome]


class ProgressEvent(BaseModel):
    event: Literal["progress"] = "progress"
    shot_id: int | None = None
    step: int
    total: int
    # What happens before the steps start, e.g. "loading model sdxl" (step and total 0).
    state: str | None = None


class ShotEvent(BaseModel):
    event: Literal["shot"] = "shot"
    outcome: ShotOutcome


class ResultEvent(BaseModel):
    event: Literal["result"] = "result"
    result: dict


class ErrorEvent(BaseModel):
    event: Literal["error"] = "error"
    status: int
    error: str


# A stream's line, told apart by its "event" field; and each kind by that field's value (a
# reader skips kinds it does not know: a newer daemon may send more).
StreamEvent = Annotated[ProgressEvent | ShotEvent | ResultEvent | ErrorEvent,
                        Field(discriminator="event")]
EVENT_KINDS: dict[str, type[BaseModel]] = {
    kind.model_fields["event"].default: kind
    for kind in (ProgressEvent, ShotEvent, ResultEvent, ErrorEvent)}


class BucketCheck(BaseModel):
    """The bucket as the daemon sees it: its settings may differ from the host's."""

    ok: bool
    endpoint: str  # "" = AWS S3
    bucket: str
    detail: str
    hint: str = ""


class PlannerCheck(BaseModel):
    """The planner's service as the daemon reaches it: the key and the way out are the GPU
    box's, so only the daemon can tell whether the LLM answers."""

    ok: bool
    detail: str
    hint: str = ""


class ModelStatus(BaseModel):
    """One of the daemon's models ([images.models.NAME]; [images] model is "default")."""

    name: str
    source: str  # the file, folder or hub id, as configured
    kind: str  # checkpoint, diffusers folder, Hugging Face id
    architecture: str | None = None  # SD 1.x, SDXL, ... (the pipeline class when unknown)
    text_encoder: str | None = None  # CLIP, CLIP + T5, ChatGLM3, ...
    reads_chinese: bool = False
    default: bool = False
    loaded: bool = False


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
    # Shots that share one pipeline call at most: a worker sends this many at once.
    max_batch: int = 1
    # Rendered images whose upload failed, kept for the retry ([daemon] keep_images_*), and
    # how many retries only uploaded one instead of rendering again.
    kept_images: int = 0
    kept_reused: int = 0
    # Only with ?check=bucket: a write/read/delete round trip from the GPU box.
    bucket: BucketCheck | None = None
    # Only with ?check=planner: the planner's service asked (its models, or one token).
    planner_check: PlannerCheck | None = None
    # Every model it serves, the default first, and how many stay loaded at once.
    models: list[ModelStatus] = []
    max_loaded: int = 1
    # The language the LLM planner writes image prompts in ([planner] prompt_language).
    prompt_language: str = "en"
