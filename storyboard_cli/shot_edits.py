"""The edits a writer makes to a storyboard, each a function over a store Board (inside one
write transaction, store/edits.py) that returns what it did for the history.

- set_fields: a shot's fields (storyboard_cli/shot_fields.py). A new action or shot size
  rewrites the content prompt the way the planners write it (the size's words, then what we
  see) unless a prompt is given with it;
- split: one shot becomes two at a place in its story text (`--at TEXT`, else the sentence
  boundary nearest its middle): the story text, the action and the dialogue lines are shared
  out, and the duration in proportion;
- merge: two neighbouring shots become one (texts joined, dialogue and cast in order,
  durations added); move, insert, delete; a note; approval.

Every structural edit keeps the shots numbered 1..n in order, and a screenplay's shots 1..k
within their scenes (3.1, 3.2, ...): a split's second shot and an inserted one belong to the
scene of the shot before them, a moved shot keeps its scene. What changes a panel marks it
stale (its image no longer shows its shot) and a split's or an insert's new shot has no
image yet: `generate --stale` renders those. An approved panel is left alone by re-plans,
retries and `generate --stale`; split and merge make new panels, so they clear approval. A
shot a task is rendering cannot be deleted, merged away or approved until that render ends.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

from storyboard_cli.shot_fields import BY_NAME, shown_values
from storyboard_cli.store.edits import Board, Outcome
from storyboard_contract.cjk import CJK, PUNCTUATION
from storyboard_contract.errors import UsageError
from storyboard_contract.wire import SEEDS, SHOT_PHRASES

# Where a text may be split, best first: after a sentence, after a clause, between words.
_CUTS = (re.compile(r"[.!?…。！？]+[”’\"')）」』]*\s*"), re.compile(r"[,;:，；：、]\s*"),
         re.compile(r"\s+"))
DEFAULT_CAMERA = "medium"
# What a split's second shot has of the shot it comes from, besides its share of the text: its
# size and move, and in a screenplay its scene.
_KEPT_BY_A_SPLIT = ("camera", "move", "negative_prompt", "scene", "scene_heading")
DEFAULT_DURATION_S = 3.0
_MIN_SPLIT_S = 0.5


# --- fields --------------------------------------------------------------------------------------


def set_fields(board: Board, number: int, values: dict[str, Any], prompt_limit: int
               ) -> Outcome:
    """Give shot `number` the checked `values` (name -> value)."""
    row = board.numbered(number)
    current = shown_values(row)
    new = {name: value for name, value in values.items() if value != current[name]}
    if "prompt" not in values:
        prompt = followed_prompt(current, new, prompt_limit)
        if prompt is not None and prompt != current["prompt"]:
            new["prompt"] = prompt
    if not new:
        raise UsageError(f"nothing to change: shot {number} has these values already")
    board.update(row["id"], {BY_NAME[n].column: BY_NAME[n].stored(v) for n, v in new.items()},
                 redraw=any(BY_NAME[n].redraw for n in new))
    changes = [{"shot": number, "field": n, "before": current[n], "after": v}
               for n, v in new.items()]
    return Outcome(f"edited shot {number}: {', '.join(new)}", changes, [row["id"]])


def followed_prompt(current: dict[str, Any], new: dict[str, Any], limit: int) -> str | None:
    """The content prompt after a new action or shot size, as the planners write it: the
    size's words, then what we see. A new size alone only swaps the opening words, and only
    when the prompt opens with the old size's (a prompt of the writer's own stays). None:
    nothing to follow."""
    camera = new.get("camera", current["camera"]) or DEFAULT_CAMERA
    if "action" in new:
        return content_prompt(camera, new["action"], limit)
    old_words = SHOT_PHRASES.get(current["camera"] or "")
    if "camera" in new and old_words and current["prompt"].startswith(old_words):
        return SHOT_PHRASES[camera] + current["prompt"][len(old_words):]
    return None


def content_prompt(camera: str, subject: str, limit: int) -> str:
    """The size's words, then the subject, cut at a word boundary to `limit` characters (the
    daemon fits it to CLIP's tokens when it renders)."""
    prompt = ", ".join(p for p in (SHOT_PHRASES.get(camera, ""), subject.strip()) if p)
    if len(prompt) <= limit:
        return prompt
    cut = prompt[:limit]
    return cut[:cut.rfind(" ")] if " " in cut else cut


def subject(action: str, dialogue: list[dict[str, Any]], description: str) -> str:
    """What a panel shows: the action, else the people speaking, else the story text (the
    planners' rule)."""
    speakers = list(dict.fromkeys(d["speaker"] for d in dialogue if d["speaker"]))
    return action or (" and ".join(speakers) + " speaking" if speakers else description)


# --- split and merge -----------------------------------------------------------------------------


def split(board: Board, number: int, at: str | None, prompt_limit: int) -> Outcome:
    """Shot `number` becomes two: the second from `at` in its story text on (module
    docstring)."""
    row = board.numbered(number)
    fields = shown_values(row)
    description = row["description"]
    if at is None:
        at = middle_cut(description)
        if at is None:
            raise UsageError(f"shot {number} has too little text to split; give "
                             "--at TEXT (words its second shot starts with)")
    where = find(description, at)
    if where is None:
        where_in_action = find(fields["action"], at)
        if where_in_action is None:
            raise UsageError(f"--at {at!r} is not in shot {number}'s story text or action "
                             f"(see `storyboard shot {board.project_id}/{number}`)")
        description_parts = (description, fields["action"][where_in_action:])
    else:
        description_parts = (description[:where].rstrip(), description[where:].lstrip())
    if not description_parts[0] or not description_parts[1]:
        raise UsageError(f"--at {at!r} starts or ends shot {number}: one of the two shots "
                         "would be empty")
    cut_action = find(fields["action"], at)
    actions = (fields["action"], "") if cut_action is None else \
        (fields["action"][:cut_action].rstrip(), fields["action"][cut_action:].lstrip())
    lines = ([], [])  # type: tuple[list[dict[str, Any]], list[dict[str, Any]]]
    for line in fields["dialogue"]:
        lines[1 if find(description_parts[1], line["line"]) is not None else 0].append(line)
    durations = shared_duration(fields["duration"], [len(t) for t in description_parts])
    halves = []
    for k in (0, 1):
        text, action, said = description_parts[k], actions[k], lines[k]
        cast = [name for name in fields["characters"]
                if name.casefold() in text.casefold() or any(d["speaker"] == name for d in said)]
        halves.append({
            "description": text, "action": action,
            "dialogue": BY_NAME["dialogue"].stored(said),
            "characters": BY_NAME["characters"].stored(cast or fields["characters"]),
            "duration": durations[k],
            "prompt": content_prompt(fields["camera"] or DEFAULT_CAMERA,
                                     subject(action, said, text), prompt_limit),
        })
    board.update(row["id"], {**halves[0], "approved": 0}, redraw=True)
    second = board.insert(number, {
        **halves[1], **{k: row[k] for k in _KEPT_BY_A_SPLIT}, "seed": new_seed()})
    return Outcome(f"split shot {number} into shots {number} and {number + 1}",
                   [{"shot": number, "field": "split", "before": description,
                     "after": list(description_parts)}], [row["id"], second])


def merge(board: Board, first: int, second: int, prompt_limit: int) -> Outcome:
    """Two neighbouring shots become one, in the first's place."""
    if first == second:
        raise UsageError(f"merge takes two shots; {first} and {second} are the same one")
    if abs(first - second) != 1:
        raise UsageError(f"shots {first} and {second} are not next to each other; merge takes "
                         f"neighbours (move one first: storyboard shots {board.project_id} "
                         f"move {max(first, second)} --to {min(first, second) + 1})")
    first, second = sorted((first, second))
    a, b = board.numbered(first), board.numbered(second)
    not_rendering(board, b, second, "merge it")
    fa, fb = shown_values(a), shown_values(b)
    action = joined(fa["action"], fb["action"])
    dialogue = fa["dialogue"] + fb["dialogue"]
    description = joined(a["description"], b["description"])
    board.update(a["id"], {
        "description": description, "action": action,
        "dialogue": BY_NAME["dialogue"].stored(dialogue),
        "characters": BY_NAME["characters"].stored(
            list(dict.fromkeys(fa["characters"] + fb["characters"]))),
        "duration": fa["duration"] + fb["duration"],
        "prompt": content_prompt(fa["camera"] or DEFAULT_CAMERA,
                                 subject(action, dialogue, description), prompt_limit),
        "notes": "\n".join(n for n in (a["notes"], b["notes"]) if n), "approved": 0,
    }, redraw=True)
    board.delete(b["id"])
    return Outcome(f"merged shots {first} and {second} into shot {first}",
                   [{"shot": first, "field": "merge",
                     "before": [a["description"], b["description"]], "after": description}],
                   [a["id"]])


def middle_cut(text: str) -> str | None:
    """The rest of `text` from the cut nearest its middle (after a sentence, else a clause,
    else between words, else between two CJK characters); None when it cannot be cut."""
    text = text.strip()
    middle = len(text) / 2
    for pattern in _CUTS:
        cuts = [m.end() for m in pattern.finditer(text) if 0 < m.end() < len(text)]
        if cuts:
            return text[min(cuts, key=lambda k: abs(k - middle)):]
    if len(text) >= 2 and re.fullmatch(f"[{CJK}{PUNCTUATION}]+", text):
        return text[len(text) // 2:]
    return None


def find(text: str, words: str) -> int | None:
    """Where `words` start in `text` (exactly, else ignoring case), or None."""
    at = text.find(words)
    if at < 0:
        at = text.casefold().find(words.casefold())
    return None if at < 0 else at


def joined(first: str, second: str) -> str:
    """Two texts as one: a space between them unless CJK text meets CJK text."""
    if not first or not second:
        return first or second
    wide = re.compile(f"[{CJK}{PUNCTUATION}]")
    glue = "" if wide.match(first[-1]) and wide.match(second[0]) else " "
    return first.rstrip() + glue + second.lstrip()


def shared_duration(seconds: float, lengths: list[int]) -> tuple[float, float]:
    """A duration shared out between two shots in proportion to their text, in half seconds
    where it allows, adding up to the whole."""
    share = seconds * lengths[0] / max(1, sum(lengths))
    first = round(share * 2) / 2
    if not _MIN_SPLIT_S <= first <= seconds - _MIN_SPLIT_S:
        first = seconds / 2
    return first, seconds - first


def new_seed() -> int:
    return secrets.randbelow(SEEDS)


# --- order ---------------------------------------------------------------------------------------


def move(board: Board, number: int, to: int) -> Outcome:
    """Shot `number` to position `to` (1 = first): the shots between shift by one."""
    row = board.numbered(number)
    count = board.count()
    if not 1 <= to <= count:
        raise UsageError(f"--to {to}: project {board.project_id}'s storyboard has {count} "
                         f"shots; move a shot to 1 to {count}")
    if to == number:
        raise UsageError(f"nothing to change: shot {number} is at {to} already")
    board.move(row["id"], to - 1)
    return Outcome(f"moved shot {number} to {to}",
                   [{"shot": to, "field": "number", "before": number, "after": to}],
                   [row["id"]])


def insert(board: Board, after: int, values: dict[str, Any], prompt_limit: int) -> Outcome:
    """A new shot after shot `after` (0: before the first), from checked field values; it
    needs an action (what the panel shows), and its prompt follows it unless given."""
    count = board.count()
    if not 0 <= after <= count:
        raise UsageError(f"--after {after}: project {board.project_id}'s storyboard has "
                         f"{count} shots; insert after 0 (first) to {count}")
    if not values.get("action"):
        raise UsageError("insert needs --action: what the new shot shows")
    camera = values.get("camera", DEFAULT_CAMERA)
    shot = {"camera": camera, "dialogue": [], "characters": [],
            "duration": DEFAULT_DURATION_S, **values}
    shot.setdefault("prompt", content_prompt(camera, values["action"], prompt_limit))
    row = {BY_NAME[name].column: BY_NAME[name].stored(value) for name, value in shot.items()}
    # In a screenplay the new shot joins the scene of the shot it follows (the first shot's,
    # before it); Board.place gives it its place in the scene.
    neighbour = board.numbered(max(after, 1))
    shot_id = board.insert(after, {**row, "description": values["action"],
                                   "negative_prompt": "", "seed": new_seed(),
                                   "scene": neighbour["scene"],
                                   "scene_heading": neighbour["scene_heading"]})
    return Outcome(f"inserted shot {after + 1}",
                   [{"shot": after + 1, "field": name, "before": None, "after": value}
                    for name, value in shot.items()], [shot_id])


def delete(board: Board, number: int) -> Outcome:
    """Remove shot `number`; the ones after it move up. A storyboard keeps one shot."""
    row = board.numbered(number)
    if board.count() == 1:
        raise UsageError(f"shot {number} is the storyboard's only shot; a storyboard keeps at "
                         "least one")
    not_rendering(board, row, number, "delete it")
    board.delete(row["id"])
    return Outcome(f"deleted shot {number}",
                   [{"shot": number, "field": "shot", "before": row["description"],
                     "after": None}], [])


# --- notes and approval --------------------------------------------------------------------------


def note(board: Board, number: int, text: str) -> Outcome:
    """A writer's note on shot `number` ("" clears it)."""
    row = board.numbered(number)
    if text == row["notes"]:
        raise UsageError(f"nothing to change: shot {number} has this note already")
    board.update(row["id"], {"notes": text})
    return Outcome(f"{'noted' if text else 'cleared the note of'} shot {number}",
                   [{"shot": number, "field": "notes", "before": row["notes"], "after": text}],
                   [row["id"]])


def approve(board: Board, number: int, approved: bool) -> Outcome:
    """Approve shot `number`'s panel (re-plans, retries and generate --stale leave it alone)
    or take the approval back."""
    row = board.numbered(number)
    if bool(row["approved"]) == approved:
        raise UsageError(f"nothing to change: shot {number} is "
                         f"{'approved' if approved else 'not approved'} already")
    if approved:
        not_rendering(board, row, number, "approve it")
    board.update(row["id"], {"approved": int(approved)})
    return Outcome(f"{'approved' if approved else 'unapproved'} shot {number}",
                   [{"shot": number, "field": "approved", "before": not approved,
                     "after": approved}], [row["id"]])


def not_rendering(board: Board, row: dict[str, Any], number: int, then: str) -> None:
    task = board.rendering(row["id"])
    if task is not None:
        raise UsageError(f"shot {number} is being rendered by task {task[:8]}; {then} once "
                         f"that ends (or stop it: storyboard cancel {task[:8]})")
