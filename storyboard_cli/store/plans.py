"""Shots: the shot list a storyboard task planned, saved once with its cast and its pending
renders, and the links to its images and its shot-list script."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from storyboard_cli import ids
from storyboard_cli.store.base import Rows
from storyboard_cli.store.projects import add_characters
from storyboard_cli.store.schema import now
from storyboard_cli.store.status import RenderStatus, TaskStatus, TaskType
from storyboard_contract.errors import NotFound


class Plans(Rows):
    """The shots of storyboard tasks: saving a plan, reading its shots, renewing links."""

    def save_plan(
        self,
        task_id: str,
        project_id: int,
        shots: list[dict[str, Any]],
        with_renders: bool,
        characters: Iterable[dict[str, Any]] = (),
        script: dict[str, Any] | None = None,
    ) -> None:
        """Store a planned shot list (and a pending render per shot) in one transaction, with
        the characters it met (added to the project's cast; known names keep their
        description) and the uploaded script's key and link ({"key", "url", "expires_at"}).

        Rows are keyed by (task, index): saving the same plan again adds nothing.
        """
        stamp = now()
        with self._write() as c:
            c.executemany(
                """insert into shots (project_id, task_id, idx, description, action, prompt,
                     negative_prompt, camera, move, dialogue, characters, duration, seed,
                     scene, scene_heading, scene_shot, updated_at)
                   values (:project_id, :task_id, :idx, :description, :action, :prompt,
                     :negative_prompt, :camera, :move, :dialogue, :characters, :duration,
                     :seed, :scene, :scene_heading, :scene_shot, :updated_at)
                   on conflict (task_id, idx) do nothing""",
                [{"action": "", "move": "static", "scene": None, "scene_heading": None,
                  "scene_shot": None, **s, "project_id": project_id, "task_id": task_id,
                  "dialogue": json.dumps(s.get("dialogue") or [], ensure_ascii=False),
                  "characters": json.dumps(s.get("characters") or [], ensure_ascii=False),
                  "updated_at": stamp}
                 for s in shots],
            )
            add_characters(c, project_id,
                           [(ch["name"], ch["description"]) for ch in characters], "planner",
                           stamp)
            if script is not None:
                c.execute(
                    """update tasks set script_key = ?, script_url = ?,
                         script_url_expires_at = ? where id = ?""",
                    [script["key"], script["url"], script["expires_at"], task_id],
                )
            if with_renders:
                # A task cancelled while it was being planned keeps its plan, not to run.
                c.execute(
                    f"""insert into renders (task_id, shot_id, status, step, steps, seed,
                         updated_at)
                       select task_id, id,
                         iif((select status from tasks where id = ?2)
                             = {TaskStatus.CANCELLED.sql},
                             {RenderStatus.CANCELLED.sql}, {RenderStatus.PENDING.sql}),
                         0, 0, seed, ?1
                       from shots where task_id = ?2
                       on conflict do nothing""",
                    [stamp, task_id],
                )

    def plan_stored(self, task_id: str) -> bool:
        row = self._one("select 1 as x from shots where task_id = ? limit 1", [task_id])
        return row is not None

    def get_shot(self, shot_id: int) -> dict[str, Any]:
        row = self._one("select * from shots where id = ?", [shot_id]) \
            if ids.in_range(shot_id) else None
        if row is None:
            raise NotFound(f"no shot with id {shot_id}")
        return row

    def task_shot_rows(self, task: dict[str, Any]) -> list[dict[str, Any]]:
        """The rows of the shots a task is about: the ones it planned, in order, or the one
        it re-renders."""
        if task["type"] == TaskType.SHOT_GENERATION:
            return self._query("select * from shots where id = ?", [task["shot_id"]])
        return self._query("select * from shots where task_id = ? order by idx", [task["id"]])

    def numbered_shot(self, task_id: str, number: int) -> dict[str, Any] | None:
        """Shot `number` (from 1) of a storyboard task's plan, if it has that many."""
        return self._one("select * from shots where task_id = ? and idx = ?",
                         [task_id, number - 1])

    def labelled_shot(self, task_id: str, scene: str, scene_shot: int) -> dict[str, Any] | None:
        """Shot `scene_shot` of scene `scene` in a storyboard task's plan (shot 3.2)."""
        return self._one("select * from shots where task_id = ? and scene = ? and scene_shot = ?",
                         [task_id, scene, scene_shot])

    def shot_count(self, task_id: str) -> int:
        (count,) = self.conn.execute("select count(*) from shots where task_id = ?",
                                     [task_id]).fetchone()
        return count

    def set_shot_link(self, shot_id: int, image_url: str, url_expires_at: str) -> None:
        with self._write() as c:
            c.execute(
                "update shots set image_url = ?, url_expires_at = ? where id = ?",
                [image_url, url_expires_at, shot_id],
            )

    def set_script_link(self, task_id: str, url: str, url_expires_at: str) -> None:
        with self._write() as c:
            c.execute(
                "update tasks set script_url = ?, script_url_expires_at = ? where id = ?",
                [url, url_expires_at, task_id],
            )
