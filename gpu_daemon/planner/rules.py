"""The offline planner: a story becomes shots by sentence, the way a storyboard artist cuts.

Steps, each deterministic:

1. Paragraphs: blank lines separate them; a text without blank lines (common in Chinese,
   one paragraph per line) breaks at line ends that close a sentence. Each paragraph is a
   scene.
2. Sentences: Chinese 。！？… and English .!? end a sentence, together with the closing
   quotes and brackets after them. Not inside an open quote, not after abbreviations
   (Mr. Dr. e.g.), initials or inside decimals, not before a lower-case word, and not
   before a speech tag (“……！”她喊道。 and “Coming?” Mara asked. stay one sentence).
3. Very short sentences (under ~1.5 s of reading) join a neighbour in their scene; a scene
   that is only one short line (a heading) joins the next scene.
4. More units than ``max_shots``: adjacent units are merged into ``max_shots`` groups of
   even length. No text is ever dropped.
5. Shot sizes: wide (extreme wide for the very first) at the start of each scene, close-up
   on emotional beats (emotion words, exclamations), medium / over-the-shoulder alternating
   for dialogue, full right after an establishing shot, medium otherwise; never the same
   size three times in a row.
6. People (gpu_daemon.planner.people): the cast (as the user's edits say), who speaks each
   quote, who is in each shot; a shot's action is its text without the spoken lines, and its
   prompt the shot size and the action.
7. Camera moves: what the text says the camera does (gpu_daemon.planner.moves), else static.
8. Within the schema's limits: at most MAX_CHARACTERS in the cast and MAX_SHOT_CHARACTERS in
   a shot, those the story mentions most, and at most MAX_SHOT_LINES lines of dialogue in a
   shot (gpu_daemon.planner.cast).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gpu_daemon import prompts
from gpu_daemon.planner import PlannerError
from gpu_daemon.planner.cast import fit_cast, fit_lines
from gpu_daemon.planner.moves import camera_move
from gpu_daemon.planner.people import NO_EDITS, CastEdits, Casting, ShotPeople
from storyboard_contract.cjk import CJK, CJK_CHAR, PUNCTUATION
from storyboard_contract.wire import (
    SHOT_PHRASES,
    DialogueLine,
    Plan,
    PlannedShot,
    PlannerCheck,
    ShotSize,
)

if TYPE_CHECKING:
    from storyboard_contract.screenplay import Screenplay

# Characters around which no space is written: ideographs, kana, hangul, CJK punctuation
# and full-width forms (curly quotes are shared with English and left out).
_WIDE = CJK + PUNCTUATION
_WIDE_CHAR = re.compile(f"[{_WIDE}]")
_SPACE_BETWEEN_WIDE = re.compile(rf"(?<=[{_WIDE}])\s+(?=[{_WIDE}])")

_CJK_ENDS = "。！？…｡．"
_ENDS = _CJK_ENDS + ".!?"
_CLOSERS = "”’」』）)》】\"'"
_QUOTE_PAIRS = {"“": "”", "「": "」", "『": "』"}
_QUOTE_CLOSE = {v: k for k, v in _QUOTE_PAIRS.items()}

# A period after these never ends a sentence: a name or an example always follows.
_ABBREVIATIONS = {
    "mr", "mrs", "ms", "dr", "st", "prof", "sr", "jr", "mt", "capt", "gen", "col", "lt", "sgt",
    "rev", "hon", "e.g", "i.e", "vs", "cf", "fig", "approx",
}
_WORD_BEFORE = re.compile(r"([A-Za-z][A-Za-z.]*)$")
# A Chinese speech tag right after a closing quote: “……”她喊道。 / “……”小雨说。
_SPEECH_TAG = re.compile(r"[^，,。！？!?“”「」]{0,8}?(?:说|道|问|喊|叫|答|嚷|吼|叹|笑)")
# And an English one after a quoted question or exclamation: “Coming?” Mara asked.
_SPEECH_TAG_EN = re.compile(
    r"\s+(?:[A-Z][\w'-]*\s+){0,3}(?:said|asked|cried|shouted|called|yelled|screamed|"
    r"whispered|murmured|replied|answered|added|begged|pleaded|gasped)\b"
)

_EMOTION_EN = re.compile(
    r"\b(?:afraid|fear\w*|terrif\w*|scream\w*|cr(?:y|ies|ied|ying)|tears?|weep\w*|wept|sob\w*"
    r"|smil\w*|laugh\w*|grin\w*|ang(?:er|ry|rily)|rage|furious|shock\w*|gasp\w*|trembl\w*"
    r"|shiver\w*|horr\w*|panic\w*|despair\w*|grief|griev\w*|sorrow\w*|joy\w*|delight\w*"
    r"|love[ds]?|hate[ds]?|heartbr\w*|desperate\w*|relie[fv]\w*|stunned|froze|frozen)\b",
    re.IGNORECASE,
)
_EMOTION_ZH = re.compile(
    r"哭|泪|笑|怕|恐|惊|吓|怒|愤|颤|抖|绝望|悲|伤心|难过|喜|欢|激动|紧张|慌|哀|痛|爱|恨|愣|呆|叹"
)
_EXCLAIM = re.compile(r"[!！]")

_EN_WORD = re.compile(r"[A-Za-z0-9']+")

# Reading pace for durations and for "very short": ~150 words or ~240 characters a minute.
_EN_WORDS_PER_S = 2.5
_CJK_CHARS_PER_S = 4.0
SHORT_SECONDS = 1.5
# Seconds a shot holds beyond its reading time, and extra for an establishing shot.
_HOLD_S = 1.0
_ESTABLISH_S = 1.0
_MIN_DURATION_S = 2.0
_MAX_DURATION_S = 600.0

# The neighbouring size used instead of a third identical one in a row.
VARIATION: dict[str, ShotSize] = {
    "extreme wide": "wide", "wide": "full", "full": "medium", "medium": "medium close-up",
    "medium close-up": "medium", "close-up": "medium close-up", "extreme close-up": "close-up",
    "over-the-shoulder": "medium", "insert": "close-up",
}

# PlannedShot.description's limit: a story too long for max_shots cannot be merged further.
_MAX_DESCRIPTION: int = next(
    m.max_length for m in PlannedShot.model_fields["description"].metadata
    if hasattr(m, "max_length")
)


@dataclass(frozen=True)
class _Unit:
    """A run of story text that becomes (part of) one shot."""

    text: str
    sep: str  # the whitespace written before it when it follows another unit
    scene_start: bool


def _is_wide(char: str) -> bool:
    return bool(_WIDE_CHAR.match(char))


def _normalise(text: str) -> str:
    return _SPACE_BETWEEN_WIDE.sub("", " ".join(text.split()))


def paragraphs(story: str) -> list[str]:
    """The story's paragraphs, whitespace normalised, empty ones dropped."""
    text = story.replace("\r\n", "\n").replace("\r", "\n")
    if re.search(r"\n[^\S\n]*\n", text):
        blocks = re.split(r"\n\s*\n", text)
    else:
        blocks, current = [], []
        for line in text.split("\n"):
            current.append(line)
            if line.strip() and line.strip()[-1] in _ENDS + _CLOSERS:
                blocks.append("\n".join(current))
                current = []
        blocks.append("\n".join(current))
    return [p for p in (_normalise(b) for b in blocks) if p]


def _ends_sentence(par: str, start: int, end: int, run_end: int, closed: bool) -> bool:
    """Whether the terminator run par[start:end] (closers up to run_end) ends a sentence."""
    rest = par[run_end:]
    after = rest.lstrip()
    if not after:
        return True
    run = par[start:end]
    if any(c in _CJK_ENDS for c in run):
        # “快跑！”他喊道。 is one sentence; 。 anywhere else ends one.
        return not (closed and not rest[0].isspace() and _SPEECH_TAG.match(rest))
    if rest[0].isspace():
        if after[0].islower() or (closed and run != "." and _SPEECH_TAG_EN.match(rest)):
            return False
        if run == ".":
            # The word before the period, from a bounded window: abbreviations are short,
            # and a search over the whole prefix is quadratic in a long paragraph.
            word = _WORD_BEFORE.search(par, max(0, start - 40), start)
            if word:
                w = word.group(1)
                if w.lower() in _ABBREVIATIONS or (len(w) == 1 and w.isupper()):
                    return False
        return True
    # No space after an English terminator: only a Chinese character or an opening quote
    # can start the next sentence there (3.14, e.g., example.com are not sentence ends).
    return _is_wide(rest[0]) or rest[0] in _QUOTE_PAIRS


def sentences(par: str) -> list[str]:
    """A paragraph cut into sentences; concatenated they give the paragraph back."""
    cuts = _sentence_cuts(par, track_quotes=True)
    if cuts is None:  # an unbalanced quote: fall back to ignoring quotes
        cuts = _sentence_cuts(par, track_quotes=False) or []
    bounds = [0, *cuts, len(par)]
    return [par[a:b] for a, b in zip(bounds, bounds[1:], strict=False) if par[a:b].strip()]


def _sentence_cuts(par: str, track_quotes: bool) -> list[int] | None:
    cuts: list[int] = []
    depth, straight_open = 0, False
    i, n = 0, len(par)
    while i < n:
        c = par[i]
        if c in _QUOTE_PAIRS:
            depth += 1
        elif c in _QUOTE_CLOSE:
            depth = max(0, depth - 1)
        elif c == '"':
            straight_open = not straight_open
        elif c in _ENDS:
            end = i
            while end < n and par[end] in _ENDS:
                end += 1
            j, closed = end, False
            while j < n and par[j] in _CLOSERS:
                if par[j] in _QUOTE_CLOSE:
                    depth = max(0, depth - 1)
                elif par[j] == '"':
                    if not straight_open:
                        break  # an opening quote of the next sentence
                    straight_open = False
                closed = True
                j += 1
            inside = track_quotes and (depth > 0 or straight_open)
            if not inside and _ends_sentence(par, i, end, j, closed) and j < n:
                cuts.append(j)
            i = j
            continue
        i += 1
    if track_quotes and (depth > 0 or straight_open):
        return None
    return cuts


def _seconds(text: str) -> float:
    words = len(_EN_WORD.findall(text))
    chars = len(CJK_CHAR.findall(text))
    return words / _EN_WORDS_PER_S + chars / _CJK_CHARS_PER_S


def _is_short(unit: _Unit) -> bool:
    return _seconds(unit.text) < SHORT_SECONDS


def _merge(a: _Unit, b: _Unit) -> _Unit:
    return _Unit(a.text + b.sep + b.text, a.sep, a.scene_start)


def beats(paragraph: str) -> list[str]:
    """A paragraph cut as a shot list cuts it: its sentences, a short one joined to a
    neighbour (the screenplay planner cuts action paragraphs with it)."""
    return [unit.text for scene in _scene_units([_normalise(paragraph)]) for unit in scene]


def _scene_units(pars: list[str]) -> list[list[_Unit]]:
    """Sentences per scene, short ones merged into a neighbour."""
    scenes: list[list[_Unit]] = []
    previous = ""
    for par in pars:
        units: list[_Unit] = []
        for k, raw in enumerate(sentences(par)):
            if k == 0:
                sep = "" if not previous or _is_wide(previous[-1]) or _is_wide(par[0]) else " "
            else:
                sep = raw[: len(raw) - len(raw.lstrip())]
            unit = _Unit(raw.strip(), sep, k == 0)
            if units and (_is_short(unit) or _is_short(units[-1])):
                units[-1] = _merge(units[-1], unit)
            else:
                units.append(unit)
        scenes.append(units)
        previous = par
    # A scene of one short line (a heading, "Silence.") joins the next scene's first shot,
    # or the previous scene's last when it is the final one.
    merged: list[list[_Unit]] = []
    carry: _Unit | None = None
    for k, units in enumerate(scenes):
        if carry is not None:
            units = [_merge(carry, units[0]), *units[1:]]
            carry = None
        if len(units) == 1 and _is_short(units[0]):
            if k < len(scenes) - 1:
                carry = units[0]
                continue
            if merged:
                merged[-1][-1] = _merge(merged[-1][-1], units[0])
                continue
        merged.append(units)
    return merged


def _even_groups(units: list[_Unit], count: int) -> list[_Unit]:
    """Adjacent units merged into `count` groups of about equal reading time."""
    groups = []
    for a, b in even_groups([_seconds(u.text) + 0.1 for u in units], count):
        group = units[a]
        for unit in units[a + 1 : b]:
            group = _merge(group, unit)
        groups.append(group)
    return groups


def even_groups(weights: list[float], count: int) -> list[tuple[int, int]]:
    """Index ranges [a, b) cutting `weights` into `count` runs (count <= len(weights)) of about
    equal total weight, none empty."""
    total = sum(weights)
    cumulative, running = [], 0.0
    for w in weights:
        running += w
        cumulative.append(running)
    cuts: list[int] = []
    for c in range(1, count):
        lowest = (cuts[-1] if cuts else 0) + 1
        highest = len(weights) - (count - c)
        target = total * c / count
        gaps = range(lowest, highest + 1)
        cuts.append(min(gaps, key=lambda g: abs(cumulative[g - 1] - target)))
    return list(zip([0, *cuts], [*cuts, len(weights)], strict=True))


def is_emotional(text: str) -> bool:
    return bool(_EXCLAIM.search(text) or _EMOTION_EN.search(text) or _EMOTION_ZH.search(text))


def _shot_sizes(units: list[_Unit], dialogues: list[list[DialogueLine]]) -> list[ShotSize]:
    sizes: list[ShotSize] = []
    for k, (unit, dialogue) in enumerate(zip(units, dialogues, strict=True)):
        size: ShotSize
        if k == 0:
            size = "extreme wide"
        elif unit.scene_start:
            size = "wide"
        elif is_emotional(unit.text):
            size = "close-up"
        elif dialogue:
            # Shot / reverse shot: consecutive dialogue alternates the angle.
            size = "over-the-shoulder" if sizes[-1] == "medium" and dialogues[k - 1] else "medium"
        elif sizes[-1] in ("extreme wide", "wide"):
            size = "full"  # after the establishing shot, move in on the people
        else:
            size = "medium"
        sizes.append(varied(sizes, size))
    return sizes


def varied(before: list[ShotSize], size: ShotSize) -> ShotSize:
    """`size`, or its neighbour (VARIATION) where it would be the third in a row."""
    return VARIATION[size] if before[-2:] == [size, size] else size


def duration(text: str, establishing: bool) -> float:
    seconds = _seconds(text) + _HOLD_S + (_ESTABLISH_S if establishing else 0.0)
    return min(_MAX_DURATION_S, max(_MIN_DURATION_S, round(seconds * 2) / 2))


def _subject(text: str, who: ShotPeople) -> str:
    """What the image shows: the action, or for a shot that is only its dialogue, the people
    speaking (the words themselves draw nothing)."""
    if who.action:
        return who.action
    if who.characters:
        return " and ".join(who.characters) + " speaking"
    return text


def content_prompt(camera: str, description: str) -> str:
    """Shot size first, then the description, within CLIP's budget by the estimate."""
    return prompts.fit(prompts.join(SHOT_PHRASES[camera], description))


class RulesPlanner:
    name = "rules"

    def plan(self, story: str, style: str, max_shots: int, edits: CastEdits = NO_EDITS) -> Plan:
        """Shots for every sentence of `story`, and its cast as `edits` say; `style` is
        applied at render time."""
        if max_shots < 1:
            raise PlannerError(f"max_shots must be at least 1, got {max_shots}")
        units = [u for scene in _scene_units(paragraphs(story)) for u in scene]
        if not units:
            raise PlannerError("the story has no text")
        if len(units) > max_shots:
            units = _even_groups(units, max_shots)
        longest = max(len(u.text) for u in units)
        if longest > _MAX_DESCRIPTION:
            raise PlannerError(
                f"the story is too long for {max_shots} shots (one shot would hold "
                f"{longest} characters, the limit is {_MAX_DESCRIPTION}); allow more shots "
                "(max_shots) or split the story"
            )
        casting = Casting(story, [sentences(p) for p in paragraphs(story)], edits)
        people = casting.shots([u.text for u in units])
        cast = [c for c in casting.characters()
                if c.name in {n for who in people for n in who.characters}
                or casting.person(c.name).given]
        # The user's characters first, then those the story mentions most.
        weight = {name: count + (len(story) if casting.person(name).given else 0)
                  for name, count in casting.mention_counts(story).items()}
        shown, cast = fit_cast([who.characters for who in people], cast, weight)
        sizes = _shot_sizes(units, [p.dialogue for p in people])
        shots = [
            PlannedShot(
                index=k,
                description=unit.text,
                action=who.action,
                prompt=content_prompt(size, _subject(unit.text, who)),
                camera=size,
                dialogue=fit_lines(who.dialogue),
                characters=names,
                duration=duration(unit.text, unit.scene_start),
                move=camera_move(unit.text),
            )
            for k, (unit, size, who, names) in enumerate(
                zip(units, sizes, people, shown, strict=True))
        ]
        return Plan(shots=shots, characters=cast)

    def check(self) -> PlannerCheck:
        return PlannerCheck(ok=True, detail="rules: offline, nothing to reach")

    def plan_screenplay(self, screenplay: Screenplay, style: str, max_shots: int) -> Plan:
        """Shots that follow the screenplay's scenes (gpu_daemon.planner.scenes)."""
        from gpu_daemon.planner.scenes import plan_screenplay

        if max_shots < 1:
            raise PlannerError(f"max_shots must be at least 1, got {max_shots}")
        return plan_screenplay(screenplay, max_shots)
