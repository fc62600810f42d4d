"""The offline planner for screenplays: shots that follow the scenes (PlanRequest.screenplay).

A parsed screenplay (storyboard_contract/screenplay.py) says what each paragraph is, so nothing
is guessed about who speaks: the cue says it. Steps, each deterministic:

1. Scenes: a scene with a heading or with something to film gets shots, numbered as
   Screenplay.numbered_scenes says (the script's own numbers, else 1, 2, ...).
2. Beats, per scene in reading order:
   - the heading: an establishing shot of the location at its time of day, the scene's first;
   - an action paragraph: a shot per sentence, a short one joined to a neighbour (as prose is
     cut, rules.beats);
   - a speech: one shot of its speaker (the cue's name, without V.O., CONT'D or ^) with its
     parentheticals and its line; a speech longer than SPEECH_CHARS, a shot per part. A voice
     not seen (V.O., O.S., O.C.) speaks over the shot before it instead;
   - a dual dialogue: one shot of both speakers and both lines;
   - lyrics: a shot of the singing; the writer's own shot ("CLOSE ON THE KEYS"): a shot of
     the size it names; centered text (THE END): a title card;
   - transitions, notes, sections and synopses: no shot. A cue or a heading is never a shot
     of its own.
3. The budget: with more beats than max_shots, each scene keeps its establishing shot and a
   share of the rest in proportion to its beats, adjacent beats merged; a screenplay with more
   scenes than max_shots is refused, saying what to change.
4. The cast: every character with a cue, named as the cue names them, described by the action
   that introduces them ("TOM, seventy, weathered, climbs ..." -> "seventy years old,
   weathered"). A shot shows its speakers, the characters its parentheticals name and the
   ones its action names.
5. Shot sizes: extreme wide to establish an exterior, wide an interior; full on the people
   after it; close-ups for emotional beats; medium and over-the-shoulder in turn as the
   speaker changes; a two-shot (medium) for dual dialogue; never the same size three times in
   a row (rules.varied). Moves from the camera language of the beat (moves.camera_move).
6. Prompts: the shot size, the place and the time of day, then the subject ("medium shot,
   lighthouse lamp room, interior, night, MARA speaking, breathless"); a time of day such as
   CONTINUOUS or LATER is the scene before's.
7. Numbering: each shot carries its scene's number and heading and its place in the scene
   (PlannedShot.label: shot 3.2 is scene 3's second).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field, replace

from gpu_daemon import prompts
from gpu_daemon.planner import PlannerError
from gpu_daemon.planner.cast import fit_cast, fit_lines
from gpu_daemon.planner.moves import camera_move
from gpu_daemon.planner.people import english_number
from gpu_daemon.planner.rules import beats, duration, even_groups, is_emotional, varied
from storyboard_contract.screenplay import (
    Action,
    Dialogue,
    Lyrics,
    Scene,
    Screenplay,
    Shot,
    Transition,
)
from storyboard_contract.wire import (
    MAX_CHARACTER_NAME_CHARS,
    SHOT_PHRASES,
    Character,
    DialogueLine,
    Plan,
    PlannedShot,
    ShotSize,
)

# A speech longer than this (about a minute spoken) is cut into shots at sentence ends.
SPEECH_CHARS = 900
# PlannedShot.description's limit, and DialogueLine's.
_MAX_TEXT = 4000
# Times of day that carry on the scene before's.
_CONTINUING = frozenset({"CONTINUOUS", "LATER", "MOMENTS", "SAME"})
_TIME_WORDS = {"DAY": "daytime", "NIGHT": "night"}
_INSIDE = {"INT": "interior", "EXT": "exterior", "EST": "exterior"}
# The size a writer's own shot names, by its first words.
_WRITERS_SIZES: list[tuple[re.Pattern[str], ShotSize]] = [
    (re.compile(p, re.IGNORECASE), size) for p, size in (
        (r"extreme close|ecu\b|macro", "extreme close-up"),
        (r"insert\b", "insert"),
        (r"close|cu\b|tight on", "close-up"),
        (r"over the shoulder|ots\b", "over-the-shoulder"),
        (r"extreme wide|establishing|aerial", "extreme wide"),
        (r"wide|long shot|ws\b", "wide"),
        (r"full shot", "full"),
    )
]
# Cue extensions of a voice whose speaker is not in the picture.
_UNSEEN = frozenset({"V.O.", "VO", "O.S.", "OS", "O.C.", "OC", "OFF", "VOICE OVER", "V/O"})
# "TOM (40s), ..." and "MARA, twelve, waits ...": what follows a name where it is introduced.
_APPOSITIVE_END = re.compile(r"[.!?;:\n]")


@dataclass
class _Place:
    """Where and when a scene happens: its number and heading, and the words for a prompt."""

    number: str
    heading: str | None
    words: str


@dataclass
class _Beat:
    """What becomes (part of) one shot."""

    text: str  # the script's words it covers (PlannedShot.description)
    action: str = ""
    dialogue: list[DialogueLine] = field(default_factory=list)
    people: list[str] = field(default_factory=list)  # cue names: speakers first
    camera: ShotSize | None = None  # fixed by the script: establishing, the writer's shot
    establishing: bool = False
    dual: bool = False
    title: bool = False  # a title card: no place in its picture


def min_shots(screenplay: Screenplay) -> int:
    """How many shots the screenplay needs at least: one a scene that has something to film."""
    return sum(1 for scene in screenplay.scenes if _films(scene))


def plan_screenplay(screenplay: Screenplay, max_shots: int) -> Plan:
    """At most `max_shots` shots following the scenes, and the cast of every cue."""
    # 1-2. scenes and their beats
    scenes = [(place, _scene_beats(scene)) for place, scene in _places(screenplay)]
    scenes = [(place, scene_beats) for place, scene_beats in scenes if scene_beats]
    if not scenes:
        raise PlannerError("the screenplay has nothing to film: no heading, action or "
                           "dialogue")
    # 3. the budget
    scenes = _within(scenes, max_shots)
    # 4. the cast
    cast, names = _cast(screenplay)
    for _, scene_beats in scenes:
        for beat in scene_beats:
            beat.people = _shown(beat, names)
    flat = [(place, k, beat) for place, scene_beats in scenes
            for k, beat in enumerate(scene_beats, start=1)]
    # Within the schema's limits, those most shots show first.
    shown, cast = fit_cast([beat.people for _, _, beat in flat], cast,
                           Counter(name for _, _, beat in flat for name in beat.people))
    # 5-7. sizes, moves, prompts, numbers
    sizes: list[ShotSize] = []
    shots = []
    for index, ((place, k, beat), people) in enumerate(zip(flat, shown, strict=True)):
        previous = flat[index - 1][2] if index and flat[index - 1][0] is place else None
        sizes.append(_size(beat, previous, sizes))
        if len(beat.text) > _MAX_TEXT:
            raise PlannerError(
                f"the screenplay is too long for {max_shots} shots (shot {place.number}."
                f"{k} would cover {len(beat.text)} characters, the limit is {_MAX_TEXT}); "
                "allow more shots ([planner] max_shots)")
        shots.append(_shot(index, place, k, beat, people, sizes[-1]))
    return Plan(shots=shots, characters=cast)


def _shot(index: int, place: _Place, k: int, beat: _Beat, people: list[str],
          size: ShotSize) -> PlannedShot:
    where = "" if beat.title else place.words
    return PlannedShot(
        index=index, description=beat.text, action=beat.action,
        prompt=prompts.fit(prompts.join(SHOT_PHRASES[size], where, _subject(beat))),
        camera=size, dialogue=fit_lines(beat.dialogue), characters=people,
        duration=duration(beat.text, beat.establishing),
        move="static" if beat.establishing else camera_move(beat.text),
        scene=place.number, scene_heading=place.heading, scene_shot=k,
    )


# --- 1. scenes ---------------------------------------------------------------------------------


def _films(scene: Scene) -> bool:
    """Whether a scene has something to film: a place to establish, or more than
    transitions."""
    return bool(scene.heading) or any(
        not isinstance(element, Transition) for element in scene.elements)


def _places(screenplay: Screenplay) -> list[tuple[_Place, Scene]]:
    """The scenes that have something to film, with their numbers and prompt words."""
    places: list[tuple[_Place, Scene]] = []
    time_of_day: str | None = None
    for number, scene in screenplay.numbered_scenes():
        if not _films(scene):
            continue
        when = scene.time_of_day
        if when and when.split()[0].rstrip(".,").upper() in _CONTINUING:
            when = time_of_day
        time_of_day = when or time_of_day
        words = prompts.join(
            (scene.location or "").lower(), _INSIDE.get(scene.int_ext or "", ""),
            _TIME_WORDS.get((when or "").upper(), (when or "").lower()))
        places.append((_Place(number, scene.heading, words), scene))
    return places


# --- 2. beats ----------------------------------------------------------------------------------


def _scene_beats(scene: Scene) -> list[_Beat]:
    """A scene's beats in reading order: its establishing shot, then one per element (step 2)."""
    found: list[_Beat] = []
    if scene.heading:
        camera: ShotSize = "extreme wide" if scene.int_ext in ("EXT", "EST") else "wide"
        found.append(_Beat(text=scene.heading, camera=camera, establishing=True))
    for element in scene.elements:
        if isinstance(element, Dialogue):
            speech = _speech(element)
            unseen = {e.upper() for e in element.extensions} & _UNSEEN
            if unseen and found and not found[-1].title:
                for part in speech:  # the voice over the picture before it
                    found[-1] = _merged(found[-1], replace(part, people=[]))
            elif element.dual == "right" and found and found[-1].dialogue and \
                    not found[-1].dual and len(speech) == 1:
                found[-1] = _merged(found[-1], speech[0])
                found[-1].dual = True
            else:
                found += speech
        elif isinstance(element, Action):
            if element.centered:
                found.append(_Beat(text=element.text, action=f"title card: {element.text}",
                                   camera="insert", title=True))
            else:
                found += [_Beat(text=beat, action=beat) for beat in beats(element.text)]
        elif isinstance(element, Shot):
            found.append(_Beat(text=element.text, action=element.text,
                               camera=_writers_size(element.text)))
        elif isinstance(element, Lyrics):
            found.append(_Beat(text=element.text, dialogue=[DialogueLine(
                line=element.text[:_MAX_TEXT])]))
        # Transitions are the editor's, not a picture.
    return found


def _speech(dialogue: Dialogue) -> list[_Beat]:
    """A speech as shots: one, or one per part of a long one (the parenthetical on the
    first)."""
    how = "; ".join(dialogue.parentheticals) or None
    parts = _parts(dialogue.line) if dialogue.line.strip() else [""]
    found = []
    for k, part in enumerate(parts):
        said = how if k == 0 else None
        cue = dialogue.character + (f" ({said})" if said else "")
        if part:
            found.append(_Beat(text=f"{cue}: {part}", people=[dialogue.character], dialogue=[
                DialogueLine(speaker=dialogue.character[:80], line=part, parenthetical=said)]))
        else:  # a speech without words ("(nods)"): what the speaker does
            found.append(_Beat(text=cue, action=f"{dialogue.character} {how or ''}".strip(),
                               people=[dialogue.character]))
    return found


def _parts(line: str) -> list[str]:
    """A spoken line in parts of at most SPEECH_CHARS, cut at sentence ends."""
    if len(line) <= SPEECH_CHARS:
        return [line]
    parts: list[str] = []
    for sentence in beats(line):
        while len(sentence) > SPEECH_CHARS:  # a sentence longer than a part: cut at a space
            cut = sentence.rfind(" ", 0, SPEECH_CHARS)
            cut = cut if cut > 0 else SPEECH_CHARS
            parts.append(sentence[:cut])
            sentence = sentence[cut:].lstrip()
        if parts and len(parts[-1]) + 1 + len(sentence) <= SPEECH_CHARS:
            parts[-1] += " " + sentence
        elif sentence:
            parts.append(sentence)
    return parts


def _writers_size(text: str) -> ShotSize:
    return next((size for pattern, size in _WRITERS_SIZES if pattern.search(text)), "medium")


def _merged(a: _Beat, b: _Beat) -> _Beat:
    """Two adjacent beats as one shot: the first one's framing, both ones' words and people."""
    return replace(
        a, text=f"{a.text}\n{b.text}",
        action=" ".join(part for part in (a.action, b.action) if part),
        dialogue=[*a.dialogue, *b.dialogue],
        people=list(dict.fromkeys([*a.people, *b.people])),
    )


# --- 3. the budget -----------------------------------------------------------------------------


def _within(scenes: list[tuple[_Place, list[_Beat]]], max_shots: int
            ) -> list[tuple[_Place, list[_Beat]]]:
    """The scenes' beats merged to at most `max_shots` shots, each scene keeping at least one."""
    sizes = [len(scene_beats) for _, scene_beats in scenes]
    if sum(sizes) <= max_shots:
        return scenes
    if len(scenes) > max_shots:
        raise PlannerError(
            f"the screenplay has {len(scenes)} scenes to film and a scene needs a shot at "
            f"least, but at most {max_shots} shots were allowed; allow more shots "
            "([planner] max_shots, up to [limits] max_shots) or split the screenplay")
    # Each scene's share: one shot, and of the rest in proportion to its other beats, the
    # largest remainders rounding up.
    spare = max_shots - len(scenes)
    extra = sum(sizes) - len(scenes)
    shares = [spare * (size - 1) / extra for size in sizes]
    counts = [1 + int(share) for share in shares]
    for k in sorted(range(len(scenes)), key=lambda j: int(shares[j]) - shares[j]):
        if sum(counts) == max_shots:
            break
        counts[k] += 1
    return [(place, _grouped(scene_beats, count))
            for (place, scene_beats), count in zip(scenes, counts, strict=True)]


def _grouped(scene_beats: list[_Beat], count: int) -> list[_Beat]:
    """A scene's beats merged into `count` shots of about equal length; its establishing shot
    stays one of them unless the scene has only one."""
    if len(scene_beats) <= count:
        return scene_beats
    head = scene_beats[:1] if scene_beats[0].establishing and count > 1 else []
    rest = scene_beats[len(head):]
    merged = []
    for a, b in even_groups([len(beat.text) + 1.0 for beat in rest], count - len(head)):
        group = rest[a]
        for beat in rest[a + 1: b]:
            group = _merged(group, beat)
        merged.append(group)
    return head + merged


# --- 4. the cast -------------------------------------------------------------------------------


def _cast(screenplay: Screenplay) -> tuple[list[Character], list[str]]:
    """Every character with a cue (a name the schema takes), described by their introduction;
    and every cue name, for finding people in the shots."""
    actions = [element.text for scene in screenplay.scenes for element in scene.elements
               if isinstance(element, Action)]
    cast = []
    names = screenplay.characters
    for name in names:
        if "=" in name or len(name) > MAX_CHARACTER_NAME_CHARS or "\n" in name:
            continue  # shown as a speaker, but no cast name can hold it
        cast.append(Character(name=name, description=prompts.fit_description(
            introduction(name, actions))))
    return cast, names


def introduction(name: str, actions: list[str]) -> str:
    """What the action that introduces `name` says of them: the words set off by commas (or
    in brackets) right after the name, where the script first writes it in capitals ("TOM,
    seventy, weathered, climbs" -> "seventy years old, weathered"); "" when it says nothing."""
    for exact in (True, False):
        pattern = re.compile(rf"(?<!\w){re.escape(name)}(?!\w)", 0 if exact else re.IGNORECASE)
        for text in actions:
            match = pattern.search(text)
            if match:
                return _appositive(text[match.end():])
    return ""


def _appositive(after: str) -> str:
    end = _APPOSITIVE_END.search(after)
    clause = after[: end.start()] if end else after
    words: list[str] = []
    bracket = re.match(r"\s*\(([^()]*)\)", clause)
    if bracket:
        words.append(bracket[1].strip())
        clause = clause[bracket.end():]
    if clause.lstrip().startswith(","):
        segments = [s.strip() for s in clause.lstrip()[1:].split(",")]
        # The last segment is what the person does ("climbs toward ..."), unless it is all.
        words += segments[:-1] if len(segments) > 1 else segments
    described = []
    for word in filter(None, words):
        age = english_number(word.removesuffix("s") if word[:-1].isdigit() else word)
        described.append(f"{word} years old" if age is not None and not word.endswith("s")
                         else word)
    return ", ".join(described)


def _shown(beat: _Beat, names: list[str]) -> list[str]:
    """The cue names a beat shows: its speakers, then the ones its words name."""
    seen = list(beat.people)
    words = " ".join([beat.action, *(line.parenthetical or "" for line in beat.dialogue)])
    for name in names:
        if name not in seen and re.search(rf"(?<!\w){re.escape(name)}(?!\w)", words,
                                          re.IGNORECASE):
            seen.append(name)
    return seen


# --- 5-6. sizes and prompts --------------------------------------------------------------------


def _size(beat: _Beat, previous: _Beat | None, sizes: list[ShotSize]) -> ShotSize:
    if beat.camera is not None:
        return beat.camera
    size: ShotSize
    if beat.dual:
        size = "medium"  # a two-shot of both speakers
    elif beat.dialogue:
        if is_emotional(beat.text):
            size = "close-up"
        elif previous is not None and previous.dialogue and previous.people != beat.people:
            size = "over-the-shoulder" if sizes[-1] == "medium" else "medium"
        else:
            size = "medium"
    elif previous is not None and previous.establishing:
        size = "full"
    elif is_emotional(beat.text):
        size = "close-up"
    else:
        size = "medium"
    return varied(sizes, size)


def _subject(beat: _Beat) -> str:
    """What the image shows: the action, and the people speaking and how."""
    speaking = [line for line in beat.dialogue if line.speaker in beat.people]
    if not speaking:
        return beat.action or ("singing" if beat.dialogue else "")
    how = [line.parenthetical for line in speaking if line.parenthetical]
    who = " and ".join(dict.fromkeys(line.speaker or "" for line in speaking))
    return prompts.join(beat.action, f"{who} speaking", *how)
