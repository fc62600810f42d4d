"""Edits of a storyboard and their history: every change a writer makes to the shots `show`
lists (fields, split, merge, move, insert, delete, notes, approval) runs in one write
transaction through a Board, which remembers the rows it touches as they were; the edit is
recorded in `edits` with the values each row had before and after it. `undo` puts those
values back (and is recorded in its turn), so it is exact: rows created are deleted, rows
deleted come back with their renders, changed columns get their old values, positions
included.

A panel is stale while its shot's `edited` count is above the `drawn` count its image was
rendered at (Board.update with redraw=True raises the count; a render records the count it
was claimed at, store/renders.py). Undo never lowers a count: it gives the restored content
a new one, counted as drawn only when the image shows exactly that content.

What the service layer computes from the rows (new texts, merged dialogue) stays there
(storyboard_cli/shot_edits.py); the Board only reads and writes rows.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from storyboard_cli.store.base import Rows
from storyboard_cli.store.schema import now
from storyboard_cli.store.status import LIVE, UNFINISHED, sql_list
from storyboard_cli.store.tasks import replanning, shown_storyboard
from storyboard_contract.errors import NotFound, UsageError

# Columns whose change the history does not record: when, not what.
_UNRECORDED = {"updated_at"}
# Where a shot stands: its position, and in a screenplay its place in its scene (Board.place).
_POSITIONS = ("idx", "scene_shot")
UNDO = "undo"
# A story revision in the log: its storyboard is a new one, so it is not undone.
UPDATE = "update"


class ShotNumberNotFound(NotFound):
    """No shot with this number on the storyboard; count: how many it has."""

    def __init__(self, project_id: int, number: int, count: int) -> None:
        super().__init__(f"project {project_id}'s storyboard has {count} shots; no shot "
                         f"{number}")
        self.project_id, self.number, self.count = project_id, number, count


class BoardMoved(UsageError):
    """The storyboard shown changed between looking it up and editing it."""


@dataclass
class Outcome:
    """What an edit did, for people: a one-line summary, the fields before and after
    ([{"shot", "field", "before", "after"}], `shot` a number) and the shots it leaves to
    show (ids)."""

    summary: str
    changes: list[dict[str, Any]] = field(default_factory=list)
    shots: list[int] = field(default_factory=list)


class Board:
    """One storyboard's shots inside a write transaction: what an edit reads and changes.
    Positions stay 0..n-1 in order after every change (exports and `show` number by them),
    and a screenplay's shots 1..k within each scene in that order (its labels, 3.2)."""

    def __init__(self, c: sqlite3.Connection, project_id: int, task_id: str) -> None:
        self.c, self.project_id, self.task_id = c, project_id, task_id
        self.before: dict[int, dict[str, Any] | None] = {}  # None: created by this edit
        self.dropped_renders: list[dict[str, Any]] = []

    # --- reading ------------------------------------------------------------------------------

    def _rows(self, sql: str, params: list[Any]) -> list[dict[str, Any]]:
        cursor = self.c.execute(sql, params)
        keys = [d[0] for d in cursor.description]
        return [dict(zip(keys, row, strict=True)) for row in cursor]

    def rows(self) -> list[dict[str, Any]]:
        """The shots in order."""
        return self._rows("select * from shots where task_id = ? order by idx", [self.task_id])

    def ids(self) -> list[int]:
        """The shots' ids in order."""
        return [shot_id for (shot_id,) in self.c.execute(
            "select id from shots where task_id = ? order by idx", [self.task_id])]

    def row(self, shot_id: int) -> dict[str, Any] | None:
        found = self._rows("select * from shots where id = ?", [shot_id])
        return found[0] if found else None

    def count(self) -> int:
        return self.c.execute("select count(*) from shots where task_id = ?",
                              [self.task_id]).fetchone()[0]

    def numbered(self, number: int) -> dict[str, Any]:
        """Shot `number` (from 1)."""
        found = self._rows("select * from shots where task_id = ? and idx = ?",
                           [self.task_id, number - 1]) if number >= 1 else []
        if not found:
            raise ShotNumberNotFound(self.project_id, number, self.count())
        return found[0]

    def rendering(self, shot_id: int) -> str | None:
        """The live task with a render of this shot still to finish, if any."""
        row = self.c.execute(
            f"""select r.task_id from renders r join tasks t on t.id = r.task_id
               where r.shot_id = ? and r.status in {sql_list(UNFINISHED)}
                 and t.status in {sql_list(LIVE)} limit 1""", [shot_id]).fetchone()
        return row[0] if row else None

    # --- changing -----------------------------------------------------------------------------

    def _remember(self, shot_id: int) -> None:
        if shot_id not in self.before:
            self.before[shot_id] = self.row(shot_id)

    def _remember_many(self, shot_ids: list[int]) -> None:
        """As _remember, for many shots of the board at once (one read of the board)."""
        missing = [shot_id for shot_id in shot_ids if shot_id not in self.before]
        if len(missing) > 1:
            rows = {r["id"]: r for r in self.rows()}
            self.before.update((shot_id, rows[shot_id]) for shot_id in missing)
        elif missing:
            self._remember(missing[0])

    def update(self, shot_id: int, values: dict[str, Any], redraw: bool = False) -> None:
        """Set columns of a shot; redraw: the change alters what its panel shows (stale)."""
        self._remember(shot_id)
        if redraw:
            values = {**values, "edited": self._edited(shot_id) + 1}
        if values:
            columns = ", ".join(f"{name} = ?" for name in values)
            self.c.execute(f"update shots set {columns}, updated_at = ? where id = ?",
                           [*values.values(), now(), shot_id])

    def _edited(self, shot_id: int) -> int:
        return self.c.execute("select edited from shots where id = ?", [shot_id]).fetchone()[0]

    def insert(self, position: int, values: dict[str, Any]) -> int:
        """A new shot at `position` (0: first); the ones from there move down. Its panel is
        stale (it has none yet) unless values say otherwise. Returns its id."""
        row = {"edited": 1, **values, "project_id": self.project_id, "task_id": self.task_id,
               "idx": self.count(), "updated_at": now()}
        cursor = self.c.execute(
            f"insert into shots ({', '.join(row)}) values ({', '.join('?' * len(row))})",
            list(row.values()))
        shot_id = int(cursor.lastrowid or 0)
        self.before[shot_id] = None
        order = [i for i in self.ids() if i != shot_id]
        order.insert(position, shot_id)
        self.place(order)
        return shot_id

    def delete(self, shot_id: int) -> None:
        """Remove a shot and its renders; the ones after it move up."""
        self._drop(shot_id)
        self.place(self.ids())

    def _drop(self, shot_id: int) -> None:
        self._remember(shot_id)
        self.dropped_renders += self._rows("select * from renders where shot_id = ?", [shot_id])
        self.c.execute("delete from renders where shot_id = ?", [shot_id])
        self.c.execute("delete from shots where id = ?", [shot_id])

    def move(self, shot_id: int, position: int) -> None:
        order = [i for i in self.ids() if i != shot_id]
        order.insert(position, shot_id)
        self.place(order)

    def place(self, order: list[int]) -> None:
        """Give the shots in `order` the positions 0, 1, ... and each shot of a screenplay its
        place among its scene's shots in that order (`scene_shot`: 3.1, 3.2, ..., so labels
        follow the order as numbers do; a shot keeps its scene wherever it goes). Only what
        changes is written; a shot that moves is parked first at -id, so no two ever share a
        position."""
        at = {r["id"]: r for r in self._rows(
            "select id, idx, scene, scene_shot from shots where task_id = ?", [self.task_id])}
        moving = [(shot_id, k) for k, shot_id in enumerate(order) if at[shot_id]["idx"] != k]
        in_scene: Counter[str] = Counter()
        relabelled = []
        for shot_id in order:
            scene = at[shot_id]["scene"]
            if scene is not None:
                in_scene[scene] += 1
                if at[shot_id]["scene_shot"] != in_scene[scene]:
                    relabelled.append((in_scene[scene], shot_id))
        self._remember_many(list(dict.fromkeys(
            [shot_id for shot_id, _ in moving] + [shot_id for _, shot_id in relabelled])))
        self.c.executemany("update shots set idx = ? where id = ?",
                           [(-shot_id, shot_id) for shot_id, _ in moving])
        self.c.executemany("update shots set idx = ? where id = ?",
                           [(k, shot_id) for shot_id, k in moving])
        self.c.executemany("update shots set scene_shot = ? where id = ?", relabelled)

    # --- the record ---------------------------------------------------------------------------

    def record(self) -> dict[str, list[dict[str, Any]]]:
        """The rows this edit changed: each shot's values before and after (whole rows for
        those created or removed, the changed columns of the others), and the renders it
        removed."""
        shots = []
        now_rows = {r["id"]: r for r in self.rows()} if len(self.before) > 1 else {}
        for shot_id, before in self.before.items():
            after = now_rows.get(shot_id) if now_rows else self.row(shot_id)
            if before is None or after is None:
                if before is not None or after is not None:
                    shots.append({"id": shot_id, "before": before, "after": after})
                continue
            changed = [k for k in before if k not in _UNRECORDED and before[k] != after[k]]
            if changed:
                shots.append({"id": shot_id, "before": {k: before[k] for k in changed},
                              "after": {k: after[k] for k in changed}})
        return {"shots": shots, "renders": self.dropped_renders}

    def revert(self, rows: dict[str, list[dict[str, Any]]]) -> list[int]:
        """Put back the rows an edit changed (its record); returns the ids of the shots that
        exist again or were changed back."""
        shots = rows["shots"]
        for entry in shots:
            if entry["before"] is None:
                self._drop(entry["id"])
        changed = [e for e in shots if e["before"] is not None and e["after"] is not None]
        moved = [e["id"] for e in changed if "idx" in e["before"]]
        self._remember_many([e["id"] for e in changed if set(e["before"]) & set(_POSITIONS)])
        self.c.executemany("update shots set idx = ? where id = ?",
                           [(-shot_id, shot_id) for shot_id in moved])
        for entry in shots:
            if entry["after"] is None:
                row = entry["before"]
                self.before[row["id"]] = None
                self.c.execute(
                    f"insert into shots ({', '.join(row)}) values ({', '.join('?' * len(row))})",
                    list(row.values()))
        # Positions alone (most rows of a reorder) in a statement a column; other changes one by
        # one.
        placed = [e for e in changed if set(e["before"]) <= set(_POSITIONS)]
        for column in _POSITIONS:
            self.c.executemany(f"update shots set {column} = ? where id = ?",
                               [(e["before"][column], e["id"]) for e in placed
                                if column in e["before"]])
        placed_ids = {e["id"] for e in placed}
        for entry in changed:
            values = dict(entry["before"])
            if entry["id"] in placed_ids:
                continue
            if "edited" in values:
                values.update(self._restored_version(entry["id"], values["edited"]))
            self.update(entry["id"], values)
        for render in rows["renders"]:
            self.c.execute(f"insert into renders ({', '.join(render)}) "
                           f"values ({', '.join('?' * len(render))})", list(render.values()))
        return [e["id"] for e in shots if e["after"] is None or e["before"] is not None]

    def _restored_version(self, shot_id: int, edited_before: int) -> dict[str, int]:
        """The counts of a shot whose content an undo puts back: a new `edited` (counts never
        go down, so a render of the undone content still in flight counts as stale), drawn
        too when its image was rendered from exactly the content put back."""
        edited, drawn = self.c.execute("select edited, drawn from shots where id = ?",
                                       [shot_id]).fetchone()
        version = edited + 1
        return {"edited": version, "drawn": version if drawn == edited_before else drawn}


class Edits(Rows):
    """Editing the storyboard a project shows, its history and undo."""

    def edit_board(self, project_id: int, task_id: str, by: str, op: str,
                   change: Callable[[Board], Outcome]) -> tuple[dict[str, Any], Outcome]:
        """Run `change` on storyboard task_id's shots in one write transaction and record it;
        the history entry and what the change said. Refused (BoardMoved) when task_id is no
        longer the storyboard shown, or a new plan is being made; an edit that changes
        nothing is refused too (UsageError) and recorded nowhere."""
        with self._write() as c:
            self._check_board(project_id, task_id)
            board = Board(c, project_id, task_id)
            outcome = change(board)
            rows = board.record()
            if not rows["shots"]:
                raise UsageError(f"nothing to change: {outcome.summary} already")
            entry = _record(c, project_id, task_id, by, op, outcome, rows)
        return entry, outcome

    def undo_edit(self, project_id: int, task_id: str, by: str
                  ) -> tuple[dict[str, Any], Outcome]:
        """Undo the newest edit of storyboard task_id not undone yet: its rows as they were
        before it. Recorded as an edit of its own (op "undo")."""
        with self._write() as c:
            self._check_board(project_id, task_id)
            last = self._one(
                f"""select * from edits where project_id = ? and task_id = ? and undone_by is null
                   and op not in ('{UNDO}', '{UPDATE}') order by id desc limit 1""",
                [project_id, task_id])
            if last is None:
                raise NothingToUndo(project_id, task_id)
            board = Board(c, project_id, task_id)
            rows = json.loads(last["rows"])
            for entry in rows["shots"]:
                busy = entry["before"] is None and board.rendering(entry["id"])
                if busy:
                    raise UsageError(f"edit #{last['id']} made a shot that task {busy} is "
                                     f"rendering now; undo it once that ends (or cancel it: "
                                     f"storyboard cancel {busy})")
            shots = board.revert(rows)
            outcome = Outcome(f"undid #{last['id']} ({last['summary']})",
                              [{**ch, "before": ch["after"], "after": ch["before"]}
                               for ch in json.loads(last["changes"])],
                              [s for s in shots if board.row(s) is not None])
            entry = _record(c, project_id, task_id, by, UNDO, outcome, board.record(),
                            undoes=last["id"])
            c.execute("update edits set undone_by = ? where id = ?", [entry["id"], last["id"]])
        return entry, outcome

    def log_update(self, project_id: int, task_id: str, by: str, summary: str) -> None:
        """A story revision in the history (its plan is a new storyboard; not undone)."""
        with self._write() as c:
            _record(c, project_id, task_id, by, UPDATE, Outcome(summary), {})

    def history(self, project_id: int, limit: int | None = None) -> list[dict[str, Any]]:
        """The project's edits, newest first (without their rows)."""
        rows = self._query(
            """select id, project_id, task_id, at, by, op, summary, changes, undoes, undone_by
               from edits where project_id = ? order by id desc limit ?""",
            [project_id, -1 if limit is None else limit])
        for row in rows:
            row["changes"] = json.loads(row["changes"])
        return rows

    def _check_board(self, project_id: int, task_id: str) -> None:
        boards = self.storyboards(project_id)  # type: ignore[attr-defined]
        shown, busy = shown_storyboard(boards), replanning(boards)
        if shown is None or shown["id"] != task_id or busy is not None:
            raise BoardMoved(f"project {project_id}'s storyboard changed meanwhile (a new plan "
                             "was saved or is being made); look again: "
                             f"storyboard show {project_id}")


class NothingToUndo(UsageError):
    def __init__(self, project_id: int, task_id: str) -> None:
        super().__init__(f"nothing to undo: the storyboard project {project_id} shows (task "
                         f"{task_id[:8]}) has no edits left to undo (see `storyboard log "
                         f"{project_id}`)")


def _record(c: sqlite3.Connection, project_id: int, task_id: str, by: str, op: str,
            outcome: Outcome, rows: dict[str, Any], undoes: int | None = None
            ) -> dict[str, Any]:
    stamp = now()
    cursor = c.execute(
        """insert into edits (project_id, task_id, at, by, op, summary, changes, rows, undoes)
           values (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
        [project_id, task_id, stamp, by, op, outcome.summary,
         json.dumps(outcome.changes, ensure_ascii=False), json.dumps(rows, ensure_ascii=False),
         undoes])
    return {"id": cursor.lastrowid, "project_id": project_id, "task_id": task_id, "at": stamp,
            "by": by, "op": op, "summary": outcome.summary, "changes": outcome.changes,
            "undoes": undoes, "undone_by": None}
