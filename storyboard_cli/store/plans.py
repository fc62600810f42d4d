"""Shots: the shot list a storyboard task planned, saved once with its cast and its pending
renders, and the links to its images and its shot-list script."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from storyboard_cli import ids
from storyboard_cli.matching import match, matched_text
from storyboard_cli.store.base import Rows
from storyboard_cli.store.projects import add_characters, folded
from storyboard_cli.store.schema import now
from storyboard_cli.store.status import RenderStatus, TaskStatus, TaskType
from storyboard_cli.store.tasks import renders_only, shown_storyboard
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
        keep_unchanged: bool = False,
    ) -> None:
        """Store a planned shot list (and a pending render per shot to render) in one
        transaction, with the characters it met (added to the project's cast; known names
        keep their description; names the user removed stay out) and the uploaded script's
        key and link ({"key", "url", "expires_at"}).

        The new shots are matched by content to the storyboard shown until now
        (storyboard_cli/matching.py, matched_rows): approved panels are kept, never rendered
        again; with keep_unchanged (a story revision, `storyboard update`) so are the shots
        whose text is unchanged. Saving a plan again does nothing.
        """
        stamp = now()
        with self._write() as c:
            if c.execute("select 1 from shots where task_id = ? limit 1", [task_id]).fetchone():
                return
            shown = shown_storyboard(self.storyboards(project_id))  # type: ignore[attr-defined]
            base = [] if shown is None else self._query(
                "select * from shots where task_id = ? order by idx", [shown["id"]])
            rows = matched_rows(base, shots, keep_unchanged)
            for row, _ in rows:
                c.execute(f"insert into shots ({', '.join(row)}, project_id, task_id, updated_at) "
                          f"values ({', '.join('?' * len(row))}, ?, ?, ?)",
                          [*row.values(), project_id, task_id, stamp])
            (nots,) = c.execute("select not_characters from projects where id = ?",
                                [project_id]).fetchone()
            never = {folded(n) for n in json.loads(nots)}
            add_characters(c, project_id, [(ch["name"], ch["description"]) for ch in characters
                                           if folded(ch["name"]) not in never], "planner", stamp)
            c.execute("update tasks set state = null where id = ?", [task_id])  # planned
            if script is not None:
                c.execute(
                    """update tasks set script_key = ?, script_url = ?,
                         script_url_expires_at = ? where id = ?""",
                    [script["key"], script["url"], script["expires_at"], task_id],
                )
            if with_renders:
                # A task cancelled while it was being planned keeps its plan, not to run.
                c.executemany(
                    f"""insert into renders (task_id, shot_id, status, step, steps, seed,
                         updated_at)
                       select task_id, id,
                         iif((select status from tasks where id = ?2)
                             = {TaskStatus.CANCELLED.sql},
                             {RenderStatus.CANCELLED.sql}, {RenderStatus.PENDING.sql}),
                         0, 0, seed, ?1
                       from shots where task_id = ?2 and idx = ?3
                       on conflict do nothing""",
                    [(stamp, task_id, row["idx"]) for row, render in rows if render],
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
        """The rows of the shots a task is about: the ones it planned, in order, the ones it
        renders of a storyboard planned before (generate --stale), or the one it
        re-renders."""
        return self._query(*_task_shots_query(task, "s.*"))

    def task_shot_values(self, task: dict[str, Any], columns: Sequence[str]
                         ) -> list[tuple[Any, ...]]:
        """task_shot_rows as tuples of `columns`: a row without a dict of all the columns
        (`show` of 10,000 shots builds its shot objects from these)."""
        sql, params = _task_shots_query(task, ", ".join(f"s.{c}" for c in columns))
        return self.conn.execute(sql, params).fetchall()

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

    def stale_shots(self, task_id: str) -> list[dict[str, Any]]:
        """The shots of a storyboard whose panels are stale (edited since their image was
        rendered), approved ones aside, in order."""
        return self._query("""select * from shots where task_id = ? and edited > drawn
                              and not approved order by idx""", [task_id])

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


def _task_shots_query(task: dict[str, Any], columns: str) -> tuple[str, list[Any]]:
    """(SQL, parameters) selecting `columns` of table `s` (shots) for task_shot_rows."""
    if task["type"] == TaskType.SHOT_GENERATION:
        return f"select {columns} from shots s where s.id = ?", [task["shot_id"]]
    if renders_only(task):
        return (f"""select {columns} from renders r join shots s on s.id = r.shot_id
                    where r.task_id = ? order by s.idx""", [task["id"]])
    return f"select {columns} from shots s where s.task_id = ? order by s.idx", [task["id"]]


# What a kept panel brings from the storyboard before: its image, seed, notes and approval.
_PANEL = ("seed", "image_key", "image_url", "url_expires_at", "image_prompt", "width", "height",
          "notes", "approved")
# What a planned shot says (the rest of a kept shot's row comes with it too).
_PLANNED = ("idx", "description", "action", "prompt", "negative_prompt", "camera", "move",
            "dialogue", "characters", "duration", "seed", "scene", "scene_heading",
            "scene_shot")
# Where a shot stands, which a kept shot takes from the new plan: its position, and in a
# screenplay its scene's number and its place in the scene (a scene added before renumbers).
_POSITION = ("idx", "scene", "scene_shot")


def matched_rows(base: list[dict[str, Any]], planned: list[dict[str, Any]],
                 keep_unchanged: bool) -> list[tuple[dict[str, Any], bool]]:
    """The rows of a new plan's shots, each with whether to render it, matched by content to
    the shots of the storyboard before (`base`, in order):

    - the same text, and kept (keep_unchanged, or the panel approved): the old shot whole,
      its edits, image, seed, notes and approval; not rendered;
    - changed text of an approved panel: the new shot with the old panel (image, seed, notes,
      approval), stale; not rendered (an approved panel is rendered only by regen-shot);
    - otherwise the new shot, rendered, with the old one's notes; a changed shot of a
      revision keeps its old seed, so that it looks like what it revises.

    `revised` marks the new and changed shots of a plan that had one before it."""
    found = match([matched_text(b) for b in base], [matched_text(p) for p in planned])
    rows = []
    for shot, old_k, mark in zip(planned, found.old, found.marks, strict=True):
        row = {k: shot[k] for k in _PLANNED if k in shot}
        row.update({"action": shot.get("action", ""), "revised": mark if base else None,
                    "dialogue": json.dumps(shot.get("dialogue") or [], ensure_ascii=False),
                    "characters": json.dumps(shot.get("characters") or [], ensure_ascii=False)})
        old = None if old_k is None else base[old_k]
        if old is not None and mark is None and (keep_unchanged or old["approved"]):
            kept = {k: v for k, v in old.items()
                    if k not in ("id", "project_id", "task_id", "updated_at")}
            rows.append(({**kept, **{k: shot.get(k) for k in _POSITION}, "revised": None},
                         False))
        elif old is not None and old["approved"]:
            rows.append(({**row, **{k: old[k] for k in _PANEL}, "edited": 1, "drawn": 0},
                         False))
        else:
            if old is not None:
                row["notes"] = old["notes"]
                if keep_unchanged:
                    row["seed"] = old["seed"]
            rows.append((row, True))
    return rows
