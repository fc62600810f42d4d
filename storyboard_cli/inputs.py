"""Every check of what a user gives, in one place (as diffusers' `check_inputs`): titles,
styles, stories and their formats, prompts, seeds, characters, aspects, render settings
(model, LoRAs, scheduler, steps, CFG, negative prompt), link lifetimes, export options, and a
shot's fields, notes and positions.

The service calls these before it touches the store, Redis or the bucket, so the CLI, the
HTTP API and the CLI through ``--server`` refuse the same input with the same line: a
UsageError (exit 2, HTTP 422) that names the field and its limit. The limits are the host's
([limits] in storyboard.toml: story and screenplay bytes, prompt length) and, for character names,
descriptions and seeds, the caps of the GPU daemon's schemas (storyboard_contract/wire.py),
which the daemon enforces on its side.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from storyboard_contract import control_chars
from storyboard_contract.errors import UsageError

if TYPE_CHECKING:
    from storyboard_cli.board.options import ExportOptions
    from storyboard_contract.config import ImagesConfig, LimitsConfig

# A shot's action and each line of its dialogue, a shot's lines, its duration (the planners'
# bounds, storyboard_contract/wire.py), and a note.
MAX_SHOT_TEXT_CHARS = 4000
MAX_DIALOGUE_LINES = 50
MAX_DURATION_S = 600.0
MAX_NOTE_CHARS = 4000


def check_one_line(text: str, what: str) -> str:
    """A one-line field (title, style, prompt): no newline, ESC or other control character,
    which would break every render (the sketch cannot measure a multi-line style) or the
    terminal that shows it."""
    problem = control_chars.problem(text, what)
    if problem:
        raise UsageError(problem)
    return text


def check_title(title: str) -> str:
    """A project title as stored: stripped, not empty, one line."""
    title = title.strip()
    if not title:
        raise UsageError("the title must not be empty")
    return check_one_line(title, "the title")


def check_style(style: str | None) -> str | None:
    """A style as stored, stripped; None when none is given (the project's, or "movie")."""
    return check_one_line(style.strip(), "the style") if style else None


def check_aspect(aspect: str) -> str:
    """A frame aspect by its name (16:9, 2.39:1, ...), however it was written."""
    from storyboard_contract.frames import normalise_aspect

    try:
        return normalise_aspect(aspect)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def check_story_bytes(data: bytes, limit: int, name: str = "the story",
                      setting: str = "limits.max_story_bytes") -> bytes:
    """A story's bytes (a file's as read, or the text's in UTF-8): within `limit` ([limits]
    max_story_bytes, or max_screenplay_bytes for a screenplay: `setting` names it), and not
    only white space."""
    if len(data) > limit:
        raise UsageError(f"{name} is {len(data):,} bytes; the limit is {limit:,} ({setting})")
    if not data.strip():
        raise UsageError(f"{name} is empty; write the story first")
    return data


def check_story(text: str, limits: LimitsConfig, story_format: str = "prose") -> str:
    """A story as stored, not empty and within its format's limit in UTF-8: [limits]
    max_story_bytes for prose, max_screenplay_bytes for a Fountain or FDX screenplay; plain
    text (control_chars.text_problem: no NUL, ESC, BEL, lone surrogate)."""
    problem = control_chars.text_problem(text, "the story")
    if problem:  # first: a lone surrogate cannot even be measured in UTF-8
        raise UsageError(problem)
    if story_format == "prose":
        check_story_bytes(text.encode("utf-8"), limits.max_story_bytes)
    else:
        check_story_bytes(text.encode("utf-8"), limits.max_screenplay_bytes,
                          "the screenplay", "limits.max_screenplay_bytes")
    if not text.strip():  # white space beyond ASCII's (an ideographic space) is empty too
        raise UsageError("the story is empty; write the story first")
    return text


def check_story_format(story_format: str | None) -> str | None:
    """A story's format as given (prose, fountain, fdx; any case); None: to be detected."""
    from storyboard_cli.screenplay import FORMATS

    if story_format is None or not story_format.strip():
        return None
    name = story_format.strip().lower()
    if name not in FORMATS:
        raise UsageError(f"unknown story format {story_format!r}; use one of "
                         f"{', '.join(FORMATS)}")
    return name


def check_prompt(prompt: str | None, limit: int) -> str | None:
    """A shot's new prompt: one line, not empty, at most [limits] max_prompt_chars; None keeps
    the stored one."""
    if prompt is None:
        return None
    check_one_line(prompt, "the prompt")
    if not prompt.strip():
        raise UsageError("--prompt must not be empty")
    if len(prompt) > limit:
        raise UsageError(f"--prompt has {len(prompt)} characters; the limit is {limit}")
    return prompt


def check_seed(seed: int | None) -> int | None:
    """A shot's seed, as the daemon takes it; None: a fresh random one."""
    if seed is None:
        return None
    from storyboard_contract.wire import SEEDS

    if not 0 <= seed < SEEDS:
        raise UsageError(f"--seed must be between 0 and {SEEDS - 1}")
    return seed


def check_character_name(name: str) -> str:
    """A character's name (or another name of one) as stored: one line, white space folded."""
    from storyboard_contract.wire import MAX_CHARACTER_NAME_CHARS

    name = check_one_line(" ".join(name.split()), "the character name")
    if not name or "=" in name or "," in name or len(name) > MAX_CHARACTER_NAME_CHARS:
        raise UsageError(f"character name {name!r}: 1 to {MAX_CHARACTER_NAME_CHARS} "
                         "characters, no '=' or ','")
    return name


def check_aliases(name: str, others: str | list[str]) -> list[str]:
    """A character's other names, "林,Lyn" or a list ("" or []: none), each once and none
    the character's own name."""
    from storyboard_contract.wire import MAX_ALIASES

    items = others.split(",") if isinstance(others, str) else others
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        raise UsageError(f"the other names of {name}: write them with commas between them, "
                         '"A,B"')
    forms = [check_character_name(item) for item in items if item.strip()]
    folded = [f.casefold() for f in forms]
    if name.casefold() in folded or len(set(folded)) != len(folded):
        raise UsageError(f"the other names of {name}: each once, and not {name} itself")
    if len(forms) > MAX_ALIASES:
        raise UsageError(f"{name} has at most {MAX_ALIASES} other names")
    return forms


def check_reference_image(data: bytes, what: str) -> str:
    """A reference image as uploaded: a whole PNG or JPEG (its header, its size in pixels and
    its end are read; no image library on the host), within MAX_REFERENCE_BYTES and
    MAX_REFERENCE_SIDE. Its file suffix, .png or .jpg."""
    import struct

    from storyboard_contract.wire import MAX_REFERENCE_BYTES, MAX_REFERENCE_SIDE

    if len(data) > MAX_REFERENCE_BYTES:
        raise UsageError(f"{what} is {len(data)} bytes; a reference image is at most "
                         f"{MAX_REFERENCE_BYTES // (1024 * 1024)} MiB")
    size = None
    if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR" and data.endswith(
            b"IEND\xaeB`\x82"):
        size, suffix = struct.unpack(">II", data[16:24]), ".png"
    elif data[:3] == b"\xff\xd8\xff" and data.rstrip(b"\0").endswith(b"\xff\xd9"):
        size, suffix = _jpeg_size(data), ".jpg"
    if not size or not all(1 <= side <= MAX_REFERENCE_SIDE for side in size):
        raise UsageError(f"{what} is not a whole PNG or JPEG image of at most "
                         f"{MAX_REFERENCE_SIDE}x{MAX_REFERENCE_SIDE} pixels")
    return suffix


def check_identity(name: str, fields: dict[str, Any]) -> dict[str, Any]:
    """A character's identity as given ({"image": bytes, "lora": "FILE[:SCALE]", "trigger":
    "WORD"}, any of them; "" takes a LoRA or trigger away), as stored: image as (bytes,
    suffix), lora as {"name", "scale"} or None, trigger as the word or None."""
    unknown = set(fields) - {"image", "lora", "trigger"}
    if unknown:
        raise UsageError(f"{name}: no identity field {sorted(unknown)[0]!r} (image, lora, "
                         "trigger)")
    checked: dict[str, Any] = {}
    if "image" in fields:
        data = fields["image"]
        checked["image"] = (data, check_reference_image(data, f"the image of {name}"))
    if "lora" in fields:
        checked["lora"] = _check_loras([fields["lora"]])[0] if fields["lora"] else None
    if "trigger" in fields:
        word = check_one_line(" ".join((fields["trigger"] or "").split()), "--trigger")
        if len(word) > 80:
            raise UsageError(f"--trigger {word[:20]!r}...: at most 80 characters")
        checked["trigger"] = word or None
    return checked


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a JPEG's frame header (a SOFn segment), walking its segments."""
    import struct

    at = 2
    while at + 9 <= len(data) and data[at] == 0xFF:
        marker = data[at + 1]
        (length,) = struct.unpack(">H", data[at + 2:at + 4])
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", data[at + 5:at + 9])
            return width, height
        at += 2 + length
    return None


def check_character(name: str, description: str) -> tuple[str, str]:
    """A character's name and description as stored, each on one line with its white space
    folded.

    The description goes whole into every prompt of a shot showing the character, so it may
    take at most DESCRIPTION_TOKENS of CLIP's 77 (by the conservative estimate)."""
    from storyboard_contract.tokens import DESCRIPTION_TOKENS, estimate_tokens
    from storyboard_contract.wire import MAX_DESCRIPTION_CHARS

    name = check_character_name(name)
    description = check_one_line(" ".join(description.split()), f"the description of {name}")
    if not description:
        raise UsageError(f"the description of {name} is empty (to drop {name}, use --remove)")
    tokens = estimate_tokens(description)
    if tokens > DESCRIPTION_TOKENS or len(description) > MAX_DESCRIPTION_CHARS:
        raise UsageError(
            f"the description of {name} is about {tokens} CLIP tokens; at most "
            f"{DESCRIPTION_TOKENS} fit beside the shot in every prompt: shorten it"
        )
    return name, description


def check_expires(expires: int) -> int:
    """A presigned link's lifetime in seconds."""
    # Here, not at the top: the CLI's start-up imports this module (the shot fields' options),
    # and the configuration module is not light.
    from storyboard_contract.config import MAX_LINK_EXPIRY_S

    if not 1 <= expires <= MAX_LINK_EXPIRY_S:
        raise UsageError(f"--expires must be between 1 and {MAX_LINK_EXPIRY_S} seconds "
                         "(7 days)")
    return expires


def check_export(fmt: str, options: ExportOptions | None = None) -> ExportOptions:
    """The options of an export as `fmt` (None: the defaults): known paper and orientation
    (any case), the layout as COLUMNSxROWS of 1 to MAX_GRID each (2×4 and 2X4 too)."""
    from storyboard_cli.board import FORMATS, TIMELINES
    from storyboard_cli.board.options import MAX_GRID, ORIENTATIONS, PAPERS, ExportOptions

    options = options or ExportOptions()
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    if options.links and fmt not in TIMELINES:
        raise UsageError(f"--links is for the timelines ({', '.join(TIMELINES)}), not {fmt}")
    paper, orientation = options.paper.strip().lower(), options.orientation.strip().lower()
    if paper not in PAPERS:
        raise UsageError(f"unknown paper {paper!r}; use {' or '.join(PAPERS)}")
    if orientation not in ORIENTATIONS:
        raise UsageError(f"unknown orientation {orientation!r}; use {' or '.join(ORIENTATIONS)}")
    columns, sep, rows = options.layout.strip().lower().replace("×", "x").partition("x")
    if not (sep and columns.isdecimal() and rows.isdecimal()
            and all(1 <= int(n) <= MAX_GRID for n in (columns, rows))):
        raise UsageError(f"--layout {options.layout!r}: write it as COLUMNSxROWS, e.g. 3x2 "
                         f"(1 to {MAX_GRID} each)")
    return ExportOptions(paper, orientation, f"{int(columns)}x{int(rows)}", options.links)


def check_settings(given: dict[str, Any], images: ImagesConfig, prompt_limit: int
                   ) -> dict[str, Any]:
    """A project's render settings as stored (model, loras, scheduler, steps, cfg,
    negative_prompt, consistency), each given one checked; a None value returns it to the model's
    default. What the host can know is checked here: model names from storyboard.toml's
    [images] (the GPU box's file should list the same), scheduler names, ranges, LoRA names
    (a .safetensors file inside the daemon's images.lora_dir, given as FILE or FILE:SCALE).
    Whether the daemon has the file and it fits the model, it says when it renders: a refusal
    that fails the shot at once, with its reason."""
    if not given:  # `new` without settings: no need for the wire's pydantic models (~130 ms)
        return {}
    from storyboard_contract.config import SCHEDULER_NAMES
    from storyboard_contract.wire import CONSISTENCY_MODES, MAX_GUIDANCE, MAX_STEPS

    checks = {
        "model": lambda v: _check_model(v, images),
        "loras": _check_loras,
        "scheduler": lambda v: _choice(v, SCHEDULER_NAMES, "--scheduler"),
        "steps": lambda v: _within(v, 1, MAX_STEPS, "--steps", int),
        "cfg": lambda v: _within(v, 0.0, MAX_GUIDANCE, "--cfg", float),
        "negative_prompt": lambda v: _check_negative(v, prompt_limit),
        "consistency": lambda v: _choice(v, CONSISTENCY_MODES, "--consistency"),
    }
    unknown = [k for k in given if k not in checks]
    if unknown:
        raise UsageError(f"unknown setting {unknown[0]!r}; the settings are "
                         f"{', '.join(checks)}")
    return {key: None if value is None else checks[key](value) for key, value in given.items()}


def _check_model(name: str, images: ImagesConfig) -> str:
    models = list(images.model_table())
    if name in models:
        return name
    if not models:
        raise UsageError(f"--model {name!r}: this host's storyboard.toml names no models; list "
                         "them there as the GPU box's does ([images] model, "
                         "[images.models.NAME] tables)")
    raise UsageError(f"unknown model {name!r}; storyboard.toml names {', '.join(models)}")


def _check_loras(texts: list[str]) -> list[dict[str, Any]]:
    from pathlib import PurePosixPath, PureWindowsPath

    from storyboard_contract.wire import MAX_LORA_SCALE, MAX_LORAS, split_lora

    if len(texts) > MAX_LORAS:
        raise UsageError(f"at most {MAX_LORAS} LoRAs a project (--lora), not {len(texts)}")
    loras: dict[str, float] = {}
    for text in texts:
        name, scale = split_lora(check_one_line(text.strip(), "--lora"))
        path = PurePosixPath(name.replace("\\", "/"))
        if not name or path.is_absolute() or PureWindowsPath(name).drive or ".." in path.parts:
            raise UsageError(f"--lora {text!r}: name a file inside the GPU daemon's "
                             "images.lora_dir, as a relative path (FILE or FILE:SCALE)")
        if path.suffix.lower() not in (".safetensors", ".sft"):
            if PurePosixPath(name.rpartition(":")[0]).suffix.lower() in (".safetensors", ".sft"):
                # FILE:SCALE whose scale split_lora did not read as a number.
                raise UsageError(f"--lora {text!r}: the scale after ':' must be a number "
                                 f"between -{MAX_LORA_SCALE:g} and {MAX_LORA_SCALE:g}")
            raise UsageError(f"--lora {text!r}: LoRAs are .safetensors files")
        if abs(scale) > MAX_LORA_SCALE:
            raise UsageError(f"--lora {text!r}: the scale must be between -{MAX_LORA_SCALE:g} "
                             f"and {MAX_LORA_SCALE:g} (1 = as trained)")
        loras[path.as_posix()] = scale
    return [{"name": name, "scale": scale} for name, scale in loras.items()]


def _choice(value: str, choices: tuple[str, ...], what: str) -> str:
    if value not in choices:
        raise UsageError(f"unknown {what.strip('-')} {value!r}; use one of {', '.join(choices)}")
    return value


def _within(value: Any, low: float, high: float, what: str, kind: type) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float) or \
            (kind is int and value != int(value)) or not low <= value <= high:
        raise UsageError(f"{what} must be {'a whole number ' if kind is int else ''}"
                         f"between {low:g} and {high:g}")
    return kind(value)


def _check_negative(text: str, limit: int) -> str:
    check_one_line(text, "--negative")
    if len(text) > limit:
        raise UsageError(f"--negative has {len(text)} characters; the limit is {limit}")
    return " ".join(text.split())


# --- a shot's fields (the table of them: storyboard_cli/shot_fields.py) ------------------------


@dataclass(frozen=True)
class ShotContext:
    """What checking a shot's fields needs beside the value: the host's prompt limit and the
    project's cast (a shot shows characters of its cast)."""

    project_id: int
    max_prompt_chars: int
    cast: tuple[str, ...] = ()
    # (other name, cast name): the characters' other names (`cast --alias`).
    aliases: tuple[tuple[str, str], ...] = ()


def check_camera(value: Any, ctx: ShotContext) -> str:
    """A shot size, however it is written (`Close Up`, `close_up`, `closeup`)."""
    from storyboard_contract.wire import SHOT_PHRASES

    def folded(text: str) -> str:
        return "".join(ch for ch in text.lower() if ch.isalnum())

    sizes = {folded(size): size for size in SHOT_PHRASES}
    size = sizes.get(folded(str(value)))
    if size is None:
        raise UsageError(f"--camera {str(value)!r}: use one of {', '.join(SHOT_PHRASES)}")
    return size


def check_move(value: Any, ctx: ShotContext) -> str:
    """A camera move, however it is written (`Push In`, `dolly-in`, `pan_left`, `none`): the
    names the planners give and the aliases they read (storyboard_contract.wire.move_name)."""
    from storyboard_contract.wire import MOVES, move_name

    move = move_name(str(value))
    if move not in MOVES:
        raise UsageError(f"--move {str(value)!r}: use one of {', '.join(MOVES)}")
    return move


def check_action(value: Any, ctx: ShotContext) -> str:
    """What we see: one line, not empty."""
    action = check_one_line(str(value).strip(), "--action")
    if not action:
        raise UsageError("--action must not be empty (it is what the panel shows)")
    if len(action) > MAX_SHOT_TEXT_CHARS:
        raise UsageError(f"--action has {len(action)} characters; the limit is "
                         f"{MAX_SHOT_TEXT_CHARS}")
    return action


def check_dialogue(value: Any, ctx: ShotContext) -> list[dict[str, str | None]]:
    """Spoken lines, each "SPEAKER: line" (a line without a speaker has no colon, or starts
    with one: ": line") or {"speaker", "line"}; one empty line alone: no dialogue."""
    from storyboard_contract.wire import MAX_CHARACTER_NAME_CHARS

    given = value if isinstance(value, list | tuple) else [value]
    if len(given) == 1 and isinstance(given[0], str) and not given[0].strip():
        return []
    if len(given) > MAX_DIALOGUE_LINES:
        raise UsageError(f"--dialogue: at most {MAX_DIALOGUE_LINES} lines a shot")
    lines = []
    for item in given:
        if isinstance(item, dict):
            speaker, line = item.get("speaker"), item.get("line")
        else:
            head, colon, rest = str(item).replace("：", ":", 1).partition(":")
            named = colon and len(head.strip()) <= MAX_CHARACTER_NAME_CHARS
            speaker, line = (head, rest) if named else (None, str(item))
        speaker = check_one_line(str(speaker).strip(), "a speaker") if speaker else None
        line = check_one_line(str(line or "").strip(), "a line of --dialogue")
        if not line:
            raise UsageError('--dialogue: a line must not be empty (write "SPEAKER: line")')
        if len(line) > MAX_SHOT_TEXT_CHARS or len(speaker or "") > MAX_CHARACTER_NAME_CHARS:
            raise UsageError(f"--dialogue: a speaker has at most {MAX_CHARACTER_NAME_CHARS} "
                             f"characters and a line at most {MAX_SHOT_TEXT_CHARS}")
        lines.append({"speaker": speaker or None, "line": line})
    return lines


def check_characters(value: Any, ctx: ShotContext) -> list[str]:
    """Names of the project's cast or their other names, "A,B" or a list (any case; "" for
    none), as the cast spells them."""
    import re

    from storyboard_contract.wire import MAX_SHOT_CHARACTERS

    if isinstance(value, str):
        names = re.split(r"[,，、]", value)
    elif isinstance(value, list | tuple) and all(isinstance(n, str) for n in value):
        names = list(value)
    else:  # JSON from the API: a null or a number is no name
        raise UsageError('--characters: names, as "A,B" or a list of names')
    names = [" ".join(n.split()) for n in names]
    if names == [""]:
        return []
    known = {other.casefold(): name for other, name in ctx.aliases}
    known.update((name.casefold(), name) for name in ctx.cast)
    shown: list[str] = []
    for name in names:
        if not name:
            raise UsageError('--characters: write the names with commas between them, "A,B"')
        if name.casefold() not in known:
            raise UsageError(f"--characters: {name!r} is not in project {ctx.project_id}'s "
                             f'cast (add them: storyboard cast {ctx.project_id} --set '
                             f'"{name}=DESCRIPTION")')
        if known[name.casefold()] not in shown:
            shown.append(known[name.casefold()])
    if len(shown) > MAX_SHOT_CHARACTERS:
        raise UsageError(f"--characters: at most {MAX_SHOT_CHARACTERS} a shot")
    return shown


def check_duration(value: Any, ctx: ShotContext) -> float:
    """Seconds on screen: more than 0, at most MAX_DURATION_S (3.5 and "3.5s" alike)."""
    text = str(value).strip().removesuffix("s").strip()
    try:
        seconds = float(text)
    except ValueError:
        seconds = float("nan")
    if not 0 < seconds <= MAX_DURATION_S:
        raise UsageError(f"--duration {str(value)!r}: seconds, more than 0 and at most "
                         f"{MAX_DURATION_S:g}")
    return seconds


def check_shot_prompt(value: Any, ctx: ShotContext) -> str:
    """A shot's content prompt (check_prompt's rules)."""
    return check_prompt(str(value), ctx.max_prompt_chars) or ""


def check_note(text: str) -> str:
    """A writer's note on a panel: plain text (new lines allowed), at most MAX_NOTE_CHARS;
    empty clears it."""
    problem = control_chars.problem(text.replace("\n", " "), "a note")
    if problem:
        raise UsageError(problem)
    note = text.strip()
    if len(note) > MAX_NOTE_CHARS:
        raise UsageError(f"the note has {len(note)} characters; the limit is {MAX_NOTE_CHARS}")
    return note


def check_split_at(text: str | None) -> str | None:
    """Where to split a shot: text it says (one line, not empty); None: near its middle."""
    if text is None:
        return None
    at = check_one_line(text.strip(), "--at")
    if not at:
        raise UsageError("--at must not be empty: give words the second shot starts with")
    return at


def check_number(value: Any, what: str) -> int:
    """A shot number, position or revision as given (1 = the first; 0 where a position
    before the first is meant), at most what SQLite can hold."""
    from storyboard_cli.ids import MAX_ID

    if isinstance(value, bool) or not (isinstance(value, int) or str(value).strip().isdecimal()) \
            or not 0 <= int(value) <= MAX_ID:
        raise UsageError(f"{what} must be a shot number (1 for the first), not {value!r}")
    return int(value)


def check_limit(limit: int | None) -> int | None:
    """How many rows a listing shows (`--limit`, `?limit=`): 0 or None for all of them."""
    from storyboard_cli.ids import MAX_ID

    if limit is not None and (isinstance(limit, bool) or not 0 <= limit <= MAX_ID):
        raise UsageError(f"--limit must be a whole number from 0 (all) to {MAX_ID}")
    return limit or None
