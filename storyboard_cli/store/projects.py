"""Projects and their cast: the story, its style and frame aspect, and the characters met in
its plans (or described by the user)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from typing import Any

from storyboard_cli import ids
from storyboard_cli.store.base import Rows
from storyboard_cli.store.revisions import add_revision
from storyboard_cli.store.schema import now
from storyboard_cli.store.status import TaskStatus, TaskType
from storyboard_contract.errors import NotFound, UsageError
from storyboard_contract.frames import DEFAULT_ASPECT


class ProjectNotFound(NotFound):
    """No project has this id or title. removed_on: the day the project with that id was
    removed, when one was (the message says so)."""

    def __init__(self, message: str, removed_on: str | None) -> None:
        super().__init__(message + (f" (it was removed on {removed_on})" if removed_on else ""))
        self.removed_on = removed_on


class TitleShared(UsageError):
    """A title that several projects have names none of them; ids: theirs."""

    def __init__(self, title: str, project_ids: list[int]) -> None:
        super().__init__(f"{len(project_ids)} projects are titled {title!r}: ids "
                         f"{', '.join(map(str, project_ids))}; name one by its id")
        self.project_ids = project_ids


class Projects(Rows):
    """Projects, their removal, and their cast."""

    def create_project(
        self, title: str, story: str, style: str, aspect: str = DEFAULT_ASPECT,
        story_format: str = "prose", screenplay: str | None = None, by: str | None = None,
        settings: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """A new project; its story is its revision 1. A screenplay's story (story_format
        fountain or fdx) comes with its parsed form as JSON. settings: its render settings
        (RENDER_SETTINGS, checked)."""
        with self._write() as c:
            # The next id after every one given so far, removed projects' included.
            (project_id,) = c.execute(
                """select max(coalesce((select max(id) from projects), 0),
                              coalesce((select max(id) from removed_projects), 0)) + 1"""
            ).fetchone()
            stamp = now()
            c.execute(
                """insert into projects (id, title, story, style, aspect, created_at)
                   values (?, ?, ?, ?, ?, ?)""",
                [project_id, title, story, style, aspect, stamp],
            )
            add_revision(c, project_id, story, by, stamp, story_format, screenplay)
            _write_settings(c, project_id, settings or {})
        return self.get_project(project_id)

    def set_settings(self, project_id: int, settings: dict[str, Any]) -> None:
        """Change some of a project's render settings (a None value: back to the default)."""
        with self._write() as c:
            _write_settings(c, project_id, settings)

    def settings(self, project_id: int) -> dict[str, Any]:
        """A project's render settings (RENDER_SETTINGS; None: the model's default)."""
        return render_settings(self.get_project(project_id))

    def get_project(self, project_id: int) -> dict[str, Any]:
        row = self._one("select * from projects where id = ?", [project_id]) \
            if ids.in_range(project_id) else None
        if row is None:
            raise ProjectNotFound(f"no project with id {project_id}",
                                  self._removed_on(project_id))
        return row

    def _removed_on(self, project_id: int | None) -> str | None:
        """The day (YYYY-MM-DD) the project with this id was removed; None if it was not."""
        row = None if project_id is None or not ids.in_range(project_id) else self._one(
            "select removed_at from removed_projects where id = ?", [project_id])
        return row["removed_at"][:10] if row else None

    def find_project(self, ref: str) -> dict[str, Any]:
        """A project by integer id or exact title; a title several projects have is an error
        naming their ids."""
        project_id = ids.as_row_id(ref)
        if project_id is not None:
            row = self._one("select * from projects where id = ?", [project_id])
            if row:
                return row
        rows = self._query("select * from projects where title = ? order by id", [ref])
        if not rows:
            raise ProjectNotFound(f"no project with id or title {ref!r}",
                                  self._removed_on(project_id))
        if len(rows) > 1:
            raise TitleShared(ref, [r["id"] for r in rows])
        return rows[0]

    def rename_project(self, project_id: int, title: str) -> None:
        with self._write() as c:
            c.execute("update projects set title = ? where id = ?", [title, project_id])

    def project_object_keys(self, project_id: int) -> list[str]:
        """Every bucket object the store knows the project made: each render's image and each
        storyboard task's shot-list script."""
        rows = self.conn.execute(
            """select r.image_key from renders r join tasks t on t.id = r.task_id
                 where t.project_id = ?1 and r.image_key is not null
               union select image_key from shots where project_id = ?1 and image_key is not null
               union select script_key from tasks where project_id = ?1 and script_key is not null
               order by 1""",
            [project_id],
        )
        return [key for (key,) in rows]

    def remove_project(self, project_id: int, objects: str) -> dict[str, int]:
        """Delete a project's rows (renders, shots, tasks, cast, project) and remember its id
        and title; objects ("deleted" or "kept") records what became of its bucket objects.
        Returns how many tasks and shots went."""
        project = self.get_project(project_id)
        with self._write() as c:
            counts = {
                "tasks": c.execute("select count(*) from tasks where project_id = ?",
                                   [project_id]).fetchone()[0],
                "shots": c.execute("select count(*) from shots where project_id = ?",
                                   [project_id]).fetchone()[0],
            }
            c.execute("""delete from renders where task_id in
                           (select id from tasks where project_id = ?)""", [project_id])
            for table in ("edits", "shots", "tasks", "characters", "story_revisions"):
                c.execute(f"delete from {table} where project_id = ?", [project_id])
            c.execute("delete from projects where id = ?", [project_id])
            c.execute("insert into removed_projects (id, title, removed_at, objects) "
                      "values (?, ?, ?, ?)", [project_id, project["title"], now(), objects])
        return counts

    def list_projects(self) -> list[dict[str, Any]]:
        """Every project with its story's length, the number of shots of the storyboard it
        shows and the status of its newest task."""
        return self._query(
            f"""
            select p.id, p.title, p.style, p.aspect, p.format, p.created_at,
              length(p.story) as story_chars,
              (select count(*) from shots s where s.task_id = (
                 select t.id from tasks t where t.project_id = p.id
                   and t.type = {TaskType.STORYBOARD.sql}
                   and t.status != {TaskStatus.CANCELLED.sql}
                   and exists (select 1 from shots s2 where s2.task_id = t.id)
                 order by t.created_at desc, t.rowid desc limit 1)) as shots,
              (select t.status from tasks t where t.project_id = p.id
                 order by t.created_at desc, t.rowid desc limit 1) as last_task_status
            from projects p order by p.id
            """
        )

    # --- the cast ----------------------------------------------------------------------------

    def cast(self, project_id: int) -> list[dict[str, Any]]:
        """A project's characters in the order they were first met: name, description, source,
        aliases (other names), reference_key, lora ({"name", "scale"}) and trigger."""
        rows = self._query(
            """select name, description, source, aliases, reference_key, lora, trigger
               from characters where project_id = ? order by position, name""",
            [project_id],
        )
        for row in rows:
            row["aliases"] = json.loads(row["aliases"])
            row["lora"] = row["lora"] and json.loads(row["lora"])
        return rows

    def not_characters(self, project_id: int) -> list[str]:
        """The names the project never casts (`cast --remove`)."""
        return json.loads(self.get_project(project_id)["not_characters"])

    def set_cast(
        self, project_id: int, descriptions: dict[str, str], remove: Iterable[str] = (),
        aliases: dict[str, list[str]] | None = None,
        identity: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        """The user's word on the cast, at once: descriptions (new names are added at the
        end), removals, other names (a character's whole list; a cast member named as
        another's leaves the cast) and identity ({name: {"reference_key", "lora", "trigger"},
        any of them}). A removed name and its other names join the names the project never
        casts; a name the user describes or gives as someone's leaves that list."""
        stamp = now()
        aliases, identity = aliases or {}, identity or {}
        with self._write() as c:
            known = {r[0]: json.loads(r[1]) for r in c.execute(
                "select name, aliases from characters where project_id = ?", [project_id])}
            (nots,) = c.execute("select not_characters from projects where id = ?",
                                [project_id]).fetchone()
            never = json.loads(nots) + [f for name in remove for f in (name, *known[name])]
            c.executemany("delete from characters where project_id = ? and name = ?",
                          [(project_id, name) for name in remove])
            add_characters(c, project_id, descriptions.items(), "user", stamp)
            for name, forms in aliases.items():
                c.execute("update characters set aliases = ?, updated_at = ? "
                          "where project_id = ? and name = ?",
                          [json.dumps(forms, ensure_ascii=False), stamp, project_id, name])
                c.executemany("delete from characters where project_id = ? and name = ?",
                              [(project_id, form) for form in forms if form != name])
            for name, values in identity.items():
                for column, value in values.items():
                    if column not in IDENTITY:
                        raise ValueError(f"not an identity field: {column}")
                    if column == "lora" and value is not None:
                        value = json.dumps(value, ensure_ascii=False)
                    c.execute(f"update characters set {column} = ?, updated_at = ? "
                              "where project_id = ? and name = ?",
                              [value, stamp, project_id, name])
            named = {folded(n) for n in [*descriptions, *aliases,
                                         *(f for forms in aliases.values() for f in forms)]}
            kept = list(dict.fromkeys(n for n in never if folded(n) not in named))
            c.execute("update projects set not_characters = ? where id = ?",
                      [json.dumps(kept, ensure_ascii=False), project_id])

    def shot_cast(self, shot: dict[str, Any], cast: list[dict[str, Any]] | None = None
                  ) -> list[dict[str, Any]]:
        """The characters a shot shows, in the shot's order, with their current descriptions
        (a name no longer in the cast is left out); `cast`: its project's, read already."""
        by_name = {c["name"]: c
                   for c in (self.cast(shot["project_id"]) if cast is None else cast)}
        return [by_name[name] for name in json.loads(shot["characters"]) if name in by_name]


# A character's identity beyond its description (the consistency modes).
IDENTITY = ("reference_key", "lora", "trigger")


def folded(name: str) -> str:
    """A name as names are compared: white space collapsed, case folded."""
    return " ".join(name.split()).casefold()


# How a project's images are made; None (an empty list for loras): the model's default.
RENDER_SETTINGS = ("model", "loras", "scheduler", "steps", "cfg", "negative_prompt",
                   "consistency")


def render_settings(project: dict[str, Any]) -> dict[str, Any]:
    """The render settings of a project row, loras as [{"name", "scale"}]."""
    return {key: json.loads(project["loras"] or "[]") if key == "loras" else project[key]
            for key in RENDER_SETTINGS}


def _write_settings(c: sqlite3.Connection, project_id: int, settings: dict[str, Any]) -> None:
    for key, value in settings.items():
        if key not in RENDER_SETTINGS:
            raise ValueError(f"not a render setting: {key}")
        if key == "loras":
            value = json.dumps(value or [], ensure_ascii=False)
        c.execute(f"update projects set {key} = ? where id = ?", [value, project_id])


def add_characters(
    c: sqlite3.Connection, project_id: int, described: Iterable[tuple[str, str]], source: str,
    stamp: str,
) -> None:
    """(name, description) pairs join the project's cast after the characters it has. A name
    already there keeps its description, unless the user gives one (source "user")."""
    (last,) = c.execute(
        "select coalesce(max(position), -1) from characters where project_id = ?", [project_id]
    ).fetchone()
    conflict = ("do update set description = excluded.description, source = 'user', "
                "updated_at = excluded.updated_at" if source == "user" else "do nothing")
    c.executemany(
        f"""insert into characters (project_id, name, description, source, position, updated_at)
            values (?, ?, ?, ?, ?, ?) on conflict (project_id, name) {conflict}""",
        [(project_id, name, text, source, last + 1 + k, stamp)
         for k, (name, text) in enumerate(described)],
    )
