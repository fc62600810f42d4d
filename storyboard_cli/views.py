"""The objects the CLI prints and the HTTP API answers (README, "The project object"), made
from the store's rows: the project object, the task object and its summary, the shot and
character objects. Plain functions over the store's public methods; the store itself only
holds rows."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import lru_cache
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from storyboard_cli.store.projects import render_settings
from storyboard_cli.store.revisions import task_revision
from storyboard_cli.store.status import TaskType
from storyboard_cli.store.tasks import shown_storyboard
from storyboard_contract.config import ImagesConfig
from storyboard_contract.errors import UsageError
from storyboard_contract.numbering import scene_numbers, shot_label

if TYPE_CHECKING:
    from storyboard_cli.store import Store

# (width, height) of a frame at an aspect for a model (None: the default one): the project
# object reports its frame size.
FrameSize = Callable[[str, "str | None"], tuple[int, int]]


class NotAStoryboardTask(UsageError):
    """`show --task`/`links --task` named a task that is not a storyboard task of the
    project."""

    def __init__(self, task_id: str, project_id: int) -> None:
        super().__init__(f"task {task_id} is not a storyboard task of project {project_id}")
        self.project_id = project_id


def project_view(store: Store, project_id: int, task_id: str | None = None,
                 frame_size: FrameSize | None = None) -> dict[str, Any]:
    """The project object: the project, its frame and cast; its newest storyboard task
    (`task`: what is happening now); the storyboard it shows (`shots_task`, its shots and
    shot-list script): the newest one with a plan that was not cancelled; and, when those
    shots have no frames yet, the newest other storyboard that has some (`frames_task`).

    With task_id, that storyboard task is both `task` and `shots_task`. frame_size: the
    frame size of an aspect (the configured [images] budget; the defaults' without one).
    """
    project = store.get_project(project_id)
    boards = store.storyboards(project_id)
    if task_id is not None:
        chosen = [b for b in boards if b["id"] == task_id]
        if not chosen:
            raise NotAStoryboardTask(task_id, project_id)
        newest = shown = chosen[0]
        frames = None
    else:
        newest = boards[0] if boards else None
        shown = shown_storyboard(boards)
        frames = None if shown is not None and shown["framed"] else next(
            (b for b in boards if b["framed"] and b is not shown), None)
    width, height = (frame_size or ImagesConfig().frame_size)(project["aspect"],
                                                              project["model"])
    shots = [] if shown is None else task_shots(store, shown)
    progress: dict[str, dict[str, int]] = {}

    def summary(task: dict[str, Any] | None) -> dict[str, Any] | None:
        if task is None:
            return None
        if task["id"] not in progress:
            progress[task["id"]] = store.progress(task["id"])
        return task_summary(task, progress[task["id"]])

    return {
        "id": project["id"],
        "title": project["title"],
        "story_text": project["story"],
        "format": project["format"],
        "scenes": scene_list(project["screenplay"]),
        "style": project["style"],
        "aspect": project["aspect"],
        "width": width,
        "height": height,
        "created_at": project["created_at"],
        "settings": render_settings(project),
        "cast": cast_view(store.cast(project_id), shots),
        "script_key": shown and shown["script_key"],
        "script_url": shown and shown["script_url"],
        "script_url_expires_at": shown and shown["script_url_expires_at"],
        "task": summary(newest),
        "shots_task": summary(shown),
        "frames_task": summary(frames),
        "revision": shown and task_revision(shown),
        "revisions": store.current_revision(project_id),
        "shots": shots,
    }


def scene_list(screenplay: str | None) -> list[dict[str, Any]]:
    """A screenplay project's scenes as the project object lists them (number, heading, where
    and when); [] for prose."""
    if not screenplay:
        return []
    scenes = json.loads(screenplay)["scenes"]
    numbers = scene_numbers((scene.get("number"), scene.get("heading")) for scene in scenes)
    return [{"number": number, **{key: scene.get(key) for key in
                                  ("heading", "int_ext", "location", "time_of_day")}}
            for number, scene in zip(numbers, scenes, strict=True)]


def task_view(store: Store, task_id: str) -> dict[str, Any]:
    """The task object (README, "The project object": a task summary plus its `shots`)."""
    task = store.get_task(task_id)
    return {**task_summary(task, store.progress(task_id)), "shots": task_shots(store, task)}


def task_summaries(store: Store, project_id: int | None = None, limit: int | None = None
                   ) -> list[dict[str, Any]]:
    """Task summaries (the task object without its shots), newest first."""
    return [task_summary(r, {"done": r["done"], "total": r["total"]})
            for r in store.list_tasks(project_id, limit)]


def task_summary(task: dict[str, Any], progress: dict[str, int]) -> dict[str, Any]:
    """The task object without its shots, plus whether it renders no images (a storyboard
    task of `generate --no-images`), only stale panels (`generate --stale`), and the story
    revision a storyboard task planned: `storyboard tasks` and the project object's
    tasks."""
    params = task["params"] if isinstance(task["params"], dict) else \
        json.loads(task["params"] or "{}")
    return {
        "id": task["id"],
        "type": task["type"],
        "status": task["status"],
        "project_id": task["project_id"],
        "shot_id": task["shot_id"],
        "progress": progress,
        "error": task["error"],
        "created_at": task["created_at"],
        "started_at": task["started_at"],
        "finished_at": task["finished_at"],
        "no_images": bool(params.get("no_images")),
        "stale": bool(params.get("stale")),
        "revision": task_revision(task) if task["type"] == TaskType.STORYBOARD else None,
        "warnings": _json_list(task.get("warnings")),
        "state": task.get("state"),
    }


def task_shots(store: Store, task: dict[str, Any]) -> list[dict[str, Any]]:
    """The shot objects of a task: the shots it planned, or the one it re-renders."""
    return [_shot(*values) for values in store.task_shot_values(task, SHOT_COLUMNS)]


def cast_view(cast: list[dict[str, Any]], shots: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The character objects: name, description, source (planner | user) and the numbers of
    the shots (of the storyboard shown) where the character appears."""
    appears: dict[str, list[int]] = {c["name"]: [] for c in cast}
    for shot in shots:
        for name in shot["characters"]:
            appears.get(name, []).append(shot["number"])
    return [{**c, "shots": appears[c["name"]]} for c in cast]


# The columns of a shots row that make its shot object, in the order _shot() takes them.
SHOT_COLUMNS = ("id", "idx", "scene", "scene_heading", "scene_shot", "camera", "move", "action",
                "dialogue", "characters", "duration", "description", "prompt", "image_prompt",
                "seed", "width", "height", "image_key", "image_url", "url_expires_at", "notes",
                "approved", "edited", "drawn", "revised", "provenance")
_shot_values = itemgetter(*SHOT_COLUMNS)


def shot_view(row: dict[str, Any]) -> dict[str, Any]:
    """The shot object of a shots row: what a storyboard artist works with (its number, and
    a screenplay shot's scene and label), its latest image, the writer's notes and approval,
    whether the image is stale (the shot was edited since it was rendered: store/edits.py)
    and whether a revision's plan made it new or changed it."""
    return _shot(*_shot_values(row))


def _shot(id: int, idx: int, scene: str | None, scene_heading: str | None,
          scene_shot: int | None, camera: str | None, move: str, action: str,
          dialogue: str | None, characters: str, duration: float | None, description: str,
          prompt: str, image_prompt: str | None, seed: int | None, width: int | None,
          height: int | None, image_key: str | None, image_url: str | None,
          url_expires_at: str | None, notes: str, approved: int, edited: int, drawn: int,
          revised: str | None, provenance: str | None) -> dict[str, Any]:
    # From the row's values rather than a dict of them: `show` of 10,000 shots makes one
    # object a shot, not two.
    number = idx + 1
    return {
        "id": id,
        "index": idx,
        "number": number,
        "label": shot_label(number, scene, scene_shot),
        "scene": scene,
        "scene_heading": scene_heading,
        "scene_shot": scene_shot,
        "camera": camera,
        "move": move,
        "action": action,
        "dialogue": _json_list(dialogue),
        "characters": list(_names(characters)),
        "duration": duration,
        "description": description,
        "prompt": prompt,
        "image_prompt": image_prompt,
        "seed": seed,
        "width": width,
        "height": height,
        "image_key": image_key,
        "image_url": image_url,
        "url_expires_at": url_expires_at,
        "notes": notes,
        "approved": bool(approved),
        "stale": edited > drawn,
        "revised": revised,
        "provenance": json.loads(provenance) if provenance else None,
    }


def _json_list(text: str | None) -> list[Any]:
    # Most shots have no dialogue: `show` of 10,000 shots skips the decoder for them.
    return [] if not text or text == "[]" else json.loads(text)


@lru_cache(maxsize=1024)
def _names(text: str | None) -> tuple[str, ...]:
    """A shot's characters; the same few lists repeat from shot to shot."""
    return tuple(_json_list(text))
