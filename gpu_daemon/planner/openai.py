"""A planner backed by any OpenAI-compatible /v1/chat/completions service.

vLLM, llama.cpp, Ollama, OpenAI, DeepSeek and Ark all speak this protocol. The model is
asked for a JSON object in JSON mode at temperature 0: the cast (name + visual description)
and the shots; the answer is validated against storyboard_contract.wire.Plan. A screenplay is
sent as its parsed scenes (screenplay_digest), never as the file's text: the model is told
what each paragraph is, answers with each shot's scene, and its speakers and cast are held to
the script's cues. Its image prompts are written in [planner] prompt_language (English by
default: the text encoders of SD 1.x/2.x/SDXL, SD 3 and FLUX read English only), its action
and dialogue in the story's language; with English asked for, a prompt in Chinese is sent
back like any other invalid answer. Models slip (a fence
around the JSON, a made-up shot size, dialogue as a plain string, a character missing from
the cast), so what can be read unambiguously is normalised, and an invalid answer is sent
back once with what was wrong; a second invalid answer is an error. The API key goes only
into the Authorization header and is scrubbed from errors.

Failures are sorted for the retry policy (the daemon answers 503 for PlannerUnavailable, which
workers retry with backoff): a service that cannot be reached, times out or answers 408, 429
or 5xx may heal; any other answer (a refused key, 402 for an empty balance, a page that is not
JSON, a reply that is not a chat completion) fails the same way every time, so it is a
PlannerError at once, quoting what came back.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, get_args

import httpx
from pydantic import TypeAdapter, ValidationError

from gpu_daemon import prompts
from gpu_daemon.planner import PlannerError, PlannerUnavailable
from gpu_daemon.planner.cast import fit_cast, fit_lines
from storyboard_contract.cjk import CJK_CHAR
from storyboard_contract.config import redact_url
from storyboard_contract.screenplay import Action, Dialogue, Lyrics, Screenplay, Shot, Transition
from storyboard_contract.wire import (
    MOVES,
    Character,
    CharacterName,
    DialogueLine,
    Plan,
    PlannedShot,
    PlannerCheck,
    ShotSize,
    move_name,
)

# `doctor`'s question to the service waits at most this long, each of its two requests.
CHECK_TIMEOUT_S = 5.0

if TYPE_CHECKING:
    from storyboard_contract.config import PlannerConfig

SHOT_SIZES: tuple[str, ...] = get_args(ShotSize)
# A shot's names are checked one by one; how many a shot keeps is fit_cast's to decide.
_SHOT_NAMES = TypeAdapter(list[CharacterName])
# A shot's lines are checked before they are fitted within the schema's count (fit_lines).
_SHOT_LINES = TypeAdapter(list[DialogueLine])

# [planner] prompt_language: the language the image prompts (and the characters' looks, which
# join them) are written in. English for the English-only text encoders (CLIP, T5).
PROMPT_LANGUAGES = {"en": "English", "zh": "Simplified Chinese", "ja": "Japanese",
                    "ko": "Korean", "story": "the story's own language"}

SYSTEM_PROMPT = f"""You are a storyboard artist. Split the user's story into shots, in story \
order, covering every sentence of the story, and list its characters.
Answer with one JSON object and nothing else, of this form:
{{"characters": [{{"name": "Lin", "description": "young woman, long black hair, red wool \
scarf"}}], "shots": [{{"description": "...", "action": "...", "prompt": "...", "camera": \
"wide", "move": "static", "characters": ["Lin"], "dialogue": [{{"speaker": "Lin", "line": \
"..."}}], "duration": 4.0}}]}}
characters: every person who appears more than once or speaks, listed once:
- name: as the story calls them.
- description: how they look, in {{language}}, at most 15 words (age, build, hair, \
clothing); one look for the whole story.
Fields of each shot:
- description: the story text the shot covers, in the story's own language and words.
- action: what we see in the shot, one short sentence, in the story's language.
- prompt: an image prompt in {{language}} for a text-to-image model (whatever the story's \
language): the subject first, then setting, action, lighting; at most 50 words; no style \
words and no character descriptions (both are added later).
- camera: the shot size, one of: {", ".join(SHOT_SIZES)}. Open each scene wide, use medium \
shots for dialogue and close-ups for emotional beats.
- move: how the camera moves during the shot, one of: {", ".join(MOVES)}; static unless the \
story calls for a move.
- characters: the names (from "characters") of the people we see in the shot.
- dialogue: the lines spoken in the shot, each {{"speaker": a name or null, "line": the \
words}}; [] when nobody speaks.
- duration: seconds on screen, a number."""

SCREENPLAY_PROMPT = SYSTEM_PROMPT + """
The story is a screenplay, given as its scenes in JSON: each scene has its "scene" number, \
heading, location, time_of_day and its elements in order: {"action": ...}, a speech \
{"speaker": the character cue, "parenthetical": how it is said, "line": the words, "dual": \
true when spoken at the same time as the speech before}, {"lyrics": ...}, {"shot": the \
writer's camera direction}, {"transition": ...}.
For a screenplay:
- open each scene with an establishing shot of its location at its time of day;
- never make a shot of a heading, a character cue or a transition;
- each shot has "scene": the number of its scene; keep the scenes in order;
- dialogue lines are {"speaker": the cue's name as written, "parenthetical": how it is said \
or null, "line": the words};
- characters: every speaker, named exactly as the cues name them, described from the action \
that introduces them;
- every prompt names the location and the time of day."""

# What models write for a shot size, mapped onto the schema's names.
_CAMERA_ALIASES = {
    "establishing": "extreme wide", "ews": "extreme wide", "els": "extreme wide",
    "ws": "wide", "ls": "wide", "long": "wide", "fs": "full", "ms": "medium",
    "mcu": "medium close-up", "cu": "close-up", "closeup": "close-up",
    "ecu": "extreme close-up", "extreme closeup": "extreme close-up",
    "ots": "over-the-shoulder", "over the shoulder": "over-the-shoulder",
}
_FENCED = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL | re.IGNORECASE)


class InvalidAnswer(ValueError):
    """The model answered, but not with a valid shot list."""


def system_prompt(prompt_language: str, screenplay: bool = False) -> str:
    """The instructions (a story's, or a screenplay's), image prompts in `prompt_language` (a
    PROMPT_LANGUAGES key); action, dialogue and the story text stay in the story's
    language."""
    prompt = SCREENPLAY_PROMPT if screenplay else SYSTEM_PROMPT
    return prompt.replace("{language}", PROMPT_LANGUAGES[prompt_language])


def _check_english(plan: Plan) -> None:
    """English was asked for: an image prompt or a look in Chinese (or Japanese, Korean) is
    sent back, since an English-only text encoder cannot read it."""
    for shot in plan.shots:
        if CJK_CHAR.search(shot.prompt):
            raise InvalidAnswer(f"shot {shot.index}: prompt: write it in English, not in the "
                                "story's language")
    for character in plan.characters:
        if CJK_CHAR.search(character.description):
            raise InvalidAnswer(f"character {character.name}: description: write it in "
                                "English")


def _camera(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    name = " ".join(value.lower().replace("_", " ").split()).removesuffix(" shot")
    name = name.replace("close up", "close-up")
    return _CAMERA_ALIASES.get(name, name)


def _describe(exc: ValidationError, what: str) -> str:
    problems = [
        f"{'.'.join(str(p) for p in err['loc']) or what.split()[0]}: {err['msg']}"
        for err in exc.errors()[:3]
    ]
    return f"{what}: " + "; ".join(problems)


def _dialogue(value: Any) -> Any:
    """A plain string or a list of strings is dialogue without a known speaker."""
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        return value
    lines = []
    for item in value:
        if isinstance(item, str):
            item = {"speaker": None, "line": item}
        if isinstance(item, dict) and isinstance(item.get("line"), str):
            if not item["line"].strip():
                continue
            item = {**item, "line": item["line"].strip()}
            if not (isinstance(item.get("parenthetical"), str)
                    and item["parenthetical"].strip(" ()")):
                item["parenthetical"] = None
        lines.append(item)
    return lines


def _names(value: Any) -> Any:
    if not isinstance(value, list):
        return value
    names = [(v.get("name") if isinstance(v, dict) else v) for v in value]
    names = [" ".join(n.split()) if isinstance(n, str) else n for n in names]
    return list(dict.fromkeys(n for n in names if n))


def _cast(value: Any) -> list[Character]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidAnswer('"characters" must be a list of {"name", "description"}')
    cast: dict[str, Character] = {}
    for k, item in enumerate(value):
        if not isinstance(item, dict):
            raise InvalidAnswer(f"character {k}: expected an object, got {type(item).__name__}")
        name = " ".join(str(item.get("name") or "").split())
        description = " ".join(str(item.get("description") or "").split())
        try:
            character = Character(name=name, description=prompts.fit_description(description))
        except ValidationError as exc:
            raise InvalidAnswer(_describe(exc, f"character {k}")) from None
        cast.setdefault(character.name, character)
    return list(cast.values())


@dataclass
class ScriptFrame:
    """What a screenplay's plan is held to: its scenes' numbers and headings, and its cues."""

    headings: dict[str, str | None]
    cues: list[str]

    @classmethod
    def of(cls, screenplay: Screenplay) -> ScriptFrame:
        return cls({number: scene.heading for number, scene in screenplay.numbered_scenes()},
                   screenplay.characters)

    def cue(self, name: Any) -> Any:
        """A name as the script's cue spells it ("Mara" -> "MARA"), else as given."""
        if not isinstance(name, str):
            return name
        return next((cue for cue in self.cues if cue.casefold() == name.casefold()), name)


def screenplay_digest(screenplay: Screenplay) -> dict[str, Any]:
    """The screenplay as the model reads it: each scene's number, place and time, synopsis and
    elements (notes, sections and boneyard left out)."""
    scenes = []
    for number, scene in screenplay.numbered_scenes():
        synopsis = " ".join(m.text for m in scene.metadata if m.kind == "synopsis")
        scenes.append({k: v for k, v in {
            "scene": number, "heading": scene.heading, "location": scene.location,
            "time_of_day": scene.time_of_day, "synopsis": synopsis or None,
            "elements": [_element(e) for e in scene.elements],
        }.items() if v is not None})
    return {"title": screenplay.title, "scenes": scenes}


def _element(element: Any) -> dict[str, Any]:
    if isinstance(element, Dialogue):
        speech = {"speaker": element.character,
                  "parenthetical": "; ".join(element.parentheticals) or None,
                  "line": element.line, "dual": True if element.dual == "right" else None}
        return {k: v for k, v in speech.items() if v is not None}
    kind = {Action: "action", Transition: "transition", Shot: "shot", Lyrics: "lyrics"}
    return {kind[type(element)]: element.text}


def parse_plan(content: str | None, max_shots: int, script: ScriptFrame | None = None,
               prompt_language: str = "story") -> Plan:
    """The model's message content as a validated plan of at most `max_shots` shots; for a
    screenplay (`script`), each shot in one of its scenes and its names the cues'; with
    prompt_language "en", its image prompts and looks in English."""
    if not content or not content.strip():
        raise InvalidAnswer("the answer was empty")
    fenced = _FENCED.search(content)
    text = fenced.group(1) if fenced else content
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidAnswer(f"the answer is not JSON ({exc.msg} at line {exc.lineno})") from None
    items = data.get("shots") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise InvalidAnswer('expected a JSON object {"shots": [...]}')
    if not items:
        raise InvalidAnswer("the shot list is empty")
    cast = _cast(data.get("characters") if isinstance(data, dict) else None)
    if script is not None:
        cast = _script_cast(cast, script)
    shots = []
    shown: list[list[str]] = []  # each shot's names, capped once all are known
    in_scene: Counter[str] = Counter()
    for index, item in enumerate(items[:max_shots]):
        if not isinstance(item, dict):
            raise InvalidAnswer(f"shot {index}: expected an object, got {type(item).__name__}")
        fields = {k: v for k, v in item.items()
                  if k not in ("index", "number", "label", "negative_prompt", "seed",
                               "scene", "scene_heading", "scene_shot")}
        if "camera" in fields:
            fields["camera"] = _camera(fields["camera"])
        if isinstance(fields.get("move"), str):
            fields["move"] = move_name(fields["move"])
        if isinstance(fields.get("prompt"), str):
            fields["prompt"] = prompts.fit(" ".join(fields["prompt"].split()))
        fields["dialogue"] = _dialogue(fields.get("dialogue"))
        names = _names(fields.pop("characters", []))
        if script is not None:
            fields.update(_scene_of(item.get("scene"), index, script, in_scene))
            names = [script.cue(n) for n in names]
            for line in fields["dialogue"]:
                if isinstance(line, dict):
                    line["speaker"] = script.cue(line.get("speaker"))
        try:
            if isinstance(fields["dialogue"], list):
                lines = _SHOT_LINES.validate_python(fields["dialogue"])
                fields["dialogue"] = [line.model_dump() for line in fit_lines(lines)]
            shot = PlannedShot.model_validate({**fields, "index": index})
            names = _SHOT_NAMES.validate_python(names)
        except ValidationError as exc:
            raise InvalidAnswer(_describe(exc, f"shot {index}")) from None
        # Someone seen in a shot but left out of the cast joins it, not yet described.
        known = {c.name for c in cast}
        cast += [Character(name=n) for n in dict.fromkeys(names) if n not in known]
        shots.append(shot)
        shown.append(names)
    # Within the schema's limits: the cast and each shot keep those most shots show.
    weight = Counter(n for names in shown for n in names)
    shown, cast = fit_cast(shown, cast, weight)
    shots = [shot.model_copy(update={"characters": names})
             for shot, names in zip(shots, shown, strict=True)]
    try:
        plan = Plan(shots=shots, characters=cast)
    except ValidationError as exc:
        raise InvalidAnswer(_describe(exc, "characters")) from None
    if prompt_language == "en":
        _check_english(plan)
    return plan


def _scene_of(value: Any, index: int, script: ScriptFrame, in_scene: Counter[str]
              ) -> dict[str, Any]:
    """A shot's scene fields from the scene number the model gave it."""
    number = str(value).strip() if isinstance(value, str | int) else ""
    if number not in script.headings:
        known = ", ".join(list(script.headings)[:12])
        raise InvalidAnswer(f"shot {index}: scene: {value!r} is not a scene of the screenplay "
                            f"(its scenes: {known})")
    in_scene[number] += 1
    return {"scene": number, "scene_heading": script.headings[number],
            "scene_shot": in_scene[number]}


def _script_cast(cast: list[Character], script: ScriptFrame) -> list[Character]:
    """The model's cast held to the script: every cue, spelled as the cue, with the model's
    description; then anyone else the model listed."""
    described = {c.name.casefold(): c.description for c in cast}
    held = []
    for cue in script.cues:
        try:
            held.append(Character(name=cue, description=described.get(cue.casefold(), "")))
        except ValidationError:
            continue  # a cue no cast name can hold ("=" in it, too long): a speaker only
    named = {c.name.casefold() for c in held}
    return held + [c for c in cast if c.name.casefold() not in named]


class OpenAIPlanner:
    name = "openai"

    def __init__(self, cfg: PlannerConfig) -> None:
        self.url = cfg.base_url.rstrip("/") + "/chat/completions"
        self.shown_url = redact_url(self.url)  # for messages: no credentials in them
        self.model = cfg.model
        self.timeout = cfg.timeout
        self.prompt_language = cfg.prompt_language
        self._api_key = cfg.api_key

    def plan(self, story: str, style: str, max_shots: int) -> Plan:
        return self._plan(system_prompt(self.prompt_language),
                          f"Style: {style}\nAt most {max_shots} shots.\n\n"
                                         f"Story:\n{story}", max_shots, None)

    def plan_screenplay(self, screenplay: Screenplay, style: str, max_shots: int) -> Plan:
        scenes = json.dumps(screenplay_digest(screenplay), ensure_ascii=False)
        return self._plan(system_prompt(self.prompt_language, screenplay=True),
                          f"Style: {style}\nAt most {max_shots} shots.\n\n"
                          f"Screenplay (its scenes in JSON):\n{scenes}",
                          max_shots, ScriptFrame.of(screenplay))

    def _plan(self, system: str, user: str, max_shots: int, script: ScriptFrame | None) -> Plan:
        """Ask, and once more with what was wrong when the answer is invalid."""
        messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
        with httpx.Client(timeout=self.timeout) as client:
            content = self._ask(client, messages)
            try:
                return parse_plan(content, max_shots, script, self.prompt_language)
            except InvalidAnswer as exc:
                messages += [
                    {"role": "assistant", "content": content or ""},
                    {
                        "role": "user",
                        "content": f"That answer was invalid: {exc}. Answer again with only "
                                   'the JSON object {"characters": [...], "shots": [...]} '
                                   "described above.",
                    },
                ]
            content = self._ask(client, messages)
            try:
                return parse_plan(content, max_shots, script, self.prompt_language)
            except InvalidAnswer as exc:
                raise PlannerError(
                    f"model {self.model} at {self.shown_url} gave an invalid shot list twice: {exc}"
                ) from None

    def check(self) -> PlannerCheck:
        """Ask the service: its models list naming the model, else a one-token completion
        (services that list no models, or list them under other names)."""
        base = self.url.removesuffix("/chat/completions")
        try:
            with httpx.Client(timeout=min(self.timeout, CHECK_TIMEOUT_S)) as client:
                if self._listed(client, base):
                    return PlannerCheck(ok=True, detail=f"{redact_url(base)}: model "
                                                        f"{self.model} is listed")
                self._post(client, {"model": self.model, "max_tokens": 1, "messages": [
                    {"role": "user", "content": "Answer with one word: ready?"}]})
        except PlannerUnavailable as exc:
            return PlannerCheck(ok=False, detail=str(exc), hint=(
                "is the service up, and reachable from the GPU box? ([planner] base_url or "
                "preset)"))
        except PlannerError as exc:
            return PlannerCheck(ok=False, detail=str(exc), hint=(
                "check STORYBOARD_PLANNER_API_KEY and [planner] model (or preset) on the GPU "
                "box"))
        return PlannerCheck(ok=True, detail=f"{redact_url(base)}: model {self.model} "
                                            "answered a one-token completion")

    def _listed(self, client: httpx.Client, base: str) -> bool:
        """Whether GET /models names the model (False for any other answer, or none)."""
        try:
            data = client.get(base + "/models", headers=self._headers()).json()
            return self.model in {m.get("id") for m in data["data"] if isinstance(m, dict)}
        except (httpx.HTTPError, ValueError, KeyError, TypeError, AttributeError):
            return False

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}

    def _ask(self, client: httpx.Client, messages: list[dict[str, str]]) -> str | None:
        return self._post(client, {
            "model": self.model,
            "messages": messages,
            "response_format": {"type": "json_object"},
            "temperature": 0,
        })

    def _post(self, client: httpx.Client, body: dict[str, Any]) -> str | None:
        """The content of the completion `body` asks for; failures sorted (module doc)."""
        try:
            response = client.post(self.url, json=body, headers=self._headers())
        except httpx.TimeoutException:
            raise PlannerUnavailable(
                f"the LLM at {self.shown_url} did not answer within {self.timeout} s"
            ) from None
        except httpx.HTTPError as exc:
            raise PlannerUnavailable(
                f"cannot reach the LLM at {self.shown_url}: {self._scrub(str(exc))}"
            ) from None
        if response.status_code >= 400:
            status = response.status_code
            heals = status >= 500 or status in (408, 429)
            raise (PlannerUnavailable if heals else PlannerError)(
                f"the LLM at {self.shown_url} answered HTTP {status}: "
                f"{self._scrub(_error_message(response))}"
            )
        try:
            data = response.json()
        except ValueError:
            raise PlannerError(
                f"the answer from {self.shown_url} is not JSON (is planner.base_url the "
                f"service's OpenAI-compatible /v1 address?): {self._quote(response)}"
            ) from None
        try:
            return data["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise PlannerError(
                f"the answer from {self.shown_url} is not an OpenAI chat completion (is "
                f"planner.base_url the service's OpenAI-compatible /v1 address?): "
                f"{self._quote(response)}"
            ) from None

    def _quote(self, response: httpx.Response) -> str:
        """The first 200 characters of an answer, quoted, without the key."""
        return repr(self._scrub(response.text)[:200])

    def _scrub(self, text: str) -> str:
        return text.replace(self._api_key, "***") if self._api_key else text


def _error_message(response: httpx.Response) -> str:
    try:
        error = response.json().get("error")
        message = error.get("message") if isinstance(error, dict) else error
    except (ValueError, AttributeError):
        message = None
    text = str(message) if message else response.text
    return " ".join(text.split())[:300] or response.reason_phrase
