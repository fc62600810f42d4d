"""Renders: one row per (task, shot), and the windows of shots a render job claims.

A render job takes a window of its task's waiting shots (tasks/jobs.py, render_job) and
claims them in one transaction (`claim` = its RQ job id): no two jobs ever render one shot at
once, and a job that runs again finds the shots it claimed before. A plan job claims the
windows when it queues their jobs (claim_windows), so that only a window's first shot has a
job. A task's progress and
outcome are derived from these rows."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from storyboard_cli.store.base import Rows
from storyboard_cli.store.schema import now
from storyboard_cli.store.status import CLOSED, UNFINISHED, RenderStatus, TaskStatus, sql_list
from storyboard_cli.store.tasks import settle, start


class Renders(Rows):
    """Recording renders, from claimed to done or failed."""

    def add_render(self, task_id: str, shot_id: int, seed: int) -> None:
        """The one render of a shot_generation task (kept if it exists)."""
        with self._write() as c:
            c.execute(
                f"""insert into renders (task_id, shot_id, status, step, steps, seed, updated_at)
                   values (?, ?, {RenderStatus.PENDING.sql}, 0, 0, ?, ?)
                   on conflict do nothing""",
                [task_id, shot_id, seed, now()],
            )

    def add_renders(self, task_id: str, shot_ids: list[int]) -> None:
        """Pending renders of these shots at their own seeds (generate --stale)."""
        with self._write() as c:
            c.executemany(
                f"""insert into renders (task_id, shot_id, status, step, steps, seed, updated_at)
                   select ?, id, {RenderStatus.PENDING.sql}, 0, 0, seed, ? from shots
                   where id = ? on conflict do nothing""",
                [(task_id, now(), shot_id) for shot_id in shot_ids])

    def withdraw_renders(self, task_id: str, shot_ids: list[int]) -> str:
        """Take unfinished renders out of a task (approved panels a retry must not render);
        returns the task's status after it."""
        with self._write() as c:
            c.executemany(
                f"""delete from renders where task_id = ? and shot_id = ?
                   and status != {RenderStatus.DONE.sql}""",
                [(task_id, shot_id) for shot_id in shot_ids])
            return settle(c, task_id)

    def get_render(self, task_id: str, shot_id: int) -> dict[str, Any] | None:
        return self._one(
            "select * from renders where task_id = ? and shot_id = ?", [task_id, shot_id]
        )

    def image_recorded(self, key: str) -> bool:
        """Whether a render or a shot of this store has (or had) an image under `key`, or a
        character has it as its reference: the objects `storyboard serve` may stream from the
        bucket."""
        return self._one("select 1 where exists (select 1 from renders where image_key = ?1) "
                         "or exists (select 1 from shots where image_key = ?1) "
                         "or exists (select 1 from characters where reference_key = ?1)",
                         [key]) is not None

    def task_renders(self, task_id: str) -> list[dict[str, Any]]:
        """A task's renders in shot order, with the shot's index and characters (JSON)."""
        return self._query(
            """select r.*, s.idx, s.characters from renders r join shots s on s.id = r.shot_id
               where r.task_id = ? order by s.idx""",
            [task_id],
        )

    def start_window(self, task_id: str, shot_id: int, job_id: str, size: int
                     ) -> tuple[str, list[int]]:
        """A render job (job_id, of shot_id) began: claim what it renders now, in one
        transaction, so that no two jobs claim one shot. That is its own shot unless done,
        cancelled or claimed by another job (which answers for it), and the shots it claimed
        before and did not finish (it is a retry, or a rerun after its worker died). A job
        that starts afresh also claims the task's next waiting unclaimed shots, up to `size`
        in all, those that show a character of its own shot first (a window grouped by
        character: the daemon's consistency modes share a character's identity within a
        call); a retry keeps to its window, so no shot joins it with fewer retries left.
        Returns the task's status (a job of a cancelled task does nothing) and the claimed
        shots in order."""
        stamp = now()
        with self._write() as c:
            status = start(c, task_id, stamp)
            if status == TaskStatus.CANCELLED:
                return status, []
            own = c.execute("select status, claim from renders where task_id = ? and shot_id = ?",
                            [task_id, shot_id]).fetchone()
            # A render another job claimed is that job's to answer for, failed or not: a
            # shot refused or out of retries in a window is not rendered again by its own job
            # (`storyboard retry` clears the claims of what it queues again).
            mine = own is not None and own[0] not in CLOSED and own[1] in (None, job_id)
            if mine:
                c.execute("update renders set claim = ? where task_id = ? and shot_id = ?",
                          [job_id, task_id, shot_id])
            if mine and own[0] in (RenderStatus.PENDING, RenderStatus.FAILED):
                # Up to `size` in all, with the shots claimed for it when it was queued
                # (claim_windows).
                c.execute(
                    f"""update renders set claim = ?1 where rowid in (
                         select r.rowid from renders r join shots s on s.id = r.shot_id
                         where r.task_id = ?2 and r.status = {RenderStatus.PENDING.sql}
                           and r.claim is null
                         order by exists (
                           select 1 from json_each(s.characters) theirs
                           join json_each((select characters from shots where id = ?4)) ours
                             on theirs.value = ours.value) desc, s.idx
                         limit ?3 - 1 - (
                           select count(*) from renders where task_id = ?2 and claim = ?1
                             and shot_id != ?4 and status in {sql_list(UNFINISHED)}))""",
                    [job_id, task_id, size, shot_id],
                )
            # The render draws the shot as it is now: its edit count, which the image is
            # recorded at (store/edits.py: stale panels).
            c.execute(
                f"""update renders set status = {RenderStatus.RUNNING.sql}, step = 0,
                     updated_at = ?,
                     edited = (select edited from shots s where s.id = renders.shot_id)
                   where task_id = ? and claim = ? and (status in {sql_list(UNFINISHED)}
                     or (status = {RenderStatus.FAILED.sql} and shot_id = ?))""",
                [stamp, task_id, job_id, shot_id],
            )
            claimed = [r[0] for r in c.execute(
                f"""select r.shot_id from renders r join shots s on s.id = r.shot_id
                   where r.task_id = ? and r.claim = ? and r.status = {RenderStatus.RUNNING.sql}
                   order by s.idx""", [task_id, job_id])]
        return status, claimed

    def claim_windows(self, task_id: str, windows: dict[str, list[int]]) -> None:
        """Claim each window's shots for its render job (job id -> shots), in one transaction,
        before the jobs are queued: only a window's first shot then needs a job (plan_job).
        A shot that is no longer pending, or that another job claimed meanwhile, is left."""
        with self._write() as c:
            c.executemany(
                f"""update renders set claim = ? where task_id = ? and shot_id = ?
                   and status = {RenderStatus.PENDING.sql} and claim is null""",
                [(job_id, task_id, shot_id) for job_id, shots in windows.items()
                 for shot_id in shots])

    def job_renders(self, task_id: str, shot_id: int, job_id: str) -> list[int]:
        """The unfinished renders a render job answers for: those it claimed, and its own
        shot while nobody has claimed it (the job failed before it could)."""
        return [r["shot_id"] for r in self._query(
            f"""select shot_id from renders where task_id = ? and status in {sql_list(UNFINISHED)}
               and (claim = ? or (shot_id = ? and claim is null))""",
            [task_id, job_id, shot_id])]

    def render_step(self, task_id: str, shot_id: int, step: int, steps: int) -> bool:
        """Record a running render's step; False when the render was cancelled meanwhile
        (the worker then stops it)."""
        return self.render_steps(task_id, {shot_id: (step, steps)})

    def render_steps(self, task_id: str, steps: dict[int, tuple[int, int]]) -> bool:
        """Record running renders' steps (shot id -> (step, steps)) in one transaction, as a
        window's shots report them together; False when any was cancelled meanwhile."""
        stamp = now()
        with self._write() as c:
            going = True
            for shot_id, (step, total) in steps.items():
                updated = c.execute(
                    f"""update renders set step = ?, steps = ?, state = null, updated_at = ?
                       where task_id = ? and shot_id = ?
                         and status = {RenderStatus.RUNNING.sql}""",
                    [step, total, stamp, task_id, shot_id],
                ).rowcount
                going = going and (updated > 0 or _not_cancelled(c, task_id, shot_id))
            return going

    def render_state(self, task_id: str, shot_id: int, state: str) -> bool:
        """Record what a running render does before its steps ("loading model sdxl"); False
        when the render was cancelled meanwhile, as render_step."""
        with self._write() as c:
            updated = c.execute(
                f"""update renders set state = ?, updated_at = ?
                   where task_id = ? and shot_id = ? and status = {RenderStatus.RUNNING.sql}""",
                [state, now(), task_id, shot_id],
            ).rowcount
            return updated > 0 or _not_cancelled(c, task_id, shot_id)

    def render_retrying(self, task_id: str, shot_id: int, error: str) -> None:
        with self._write() as c:
            _mark(c, task_id, shot_id, RenderStatus.RETRYING, error)

    def fail_render(self, task_id: str, shot_id: int, error: str) -> str:
        """A render that will not be tried again; returns the task's status after it."""
        with self._write() as c:
            _mark(c, task_id, shot_id, RenderStatus.FAILED, error)
            return settle(c, task_id)

    def finish_render(
        self,
        task_id: str,
        shot_id: int,
        image_key: str,
        image_url: str,
        url_expires_at: str,
        seed: int,
        prompt: str | None = None,
        image_prompt: str | None = None,
        size: tuple[int, int] | None = None,
        provenance: dict[str, Any] | None = None,
    ) -> str:
        """Record a rendered image (of `size`, rendered from `image_prompt`, made as
        `provenance` says; `prompt`: a regen-shot's new content prompt); returns the task's
        status after it.

        The shot shows the newest task's image: a late duplicate of an older render never
        replaces the image of a newer regen-shot.
        """
        return self.finish_renders(task_id, [Finished(
            shot_id, image_key, image_url, url_expires_at, seed, prompt, image_prompt, size,
            provenance)])

    def finish_renders(self, task_id: str, finished: list[Finished]) -> str:
        """Record rendered images of a task in one transaction (a window's shots, which a
        batch finishes together), each as finish_render does; returns the task's status
        after them."""
        stamp = now()
        with self._write() as c:
            for f in finished:
                width, height = f.size or (None, None)
                made = None if f.provenance is None else json.dumps(f.provenance,
                                                                    ensure_ascii=False)
                c.execute(
                    f"""update renders set status = {RenderStatus.DONE.sql},
                         step = max(step, steps), seed = ?, image_key = ?, error = null,
                         state = null, provenance = ?, updated_at = ?
                       where task_id = ? and shot_id = ?""",
                    [f.seed, f.image_key, made, stamp, task_id, f.shot_id],
                )
                c.execute(
                    f"""update shots set image_key = ?, image_url = ?, url_expires_at = ?,
                         seed = ?, prompt = coalesce(?, prompt), image_prompt = ?, width = ?,
                         height = ?, provenance = ?, updated_at = ?,
                         drawn = coalesce((select r.edited from renders r
                                           where r.task_id = ? and r.shot_id = shots.id), drawn)
                       where id = ? and not exists (
                         select 1 from renders r join tasks t on t.id = r.task_id
                         where r.shot_id = ? and r.status = {RenderStatus.DONE.sql}
                           and r.task_id != ?
                           and (t.created_at, t.rowid)
                               > (select created_at, rowid from tasks where id = ?))""",
                    [f.image_key, f.image_url, f.url_expires_at, f.seed, f.prompt,
                     f.image_prompt, width, height, made, stamp, task_id, f.shot_id, f.shot_id,
                     task_id, task_id],
                )
            return settle(c, task_id)


@dataclass(frozen=True)
class Finished:
    """A rendered image to record (Renders.finish_render's arguments)."""

    shot_id: int
    image_key: str
    image_url: str
    url_expires_at: str
    seed: int
    prompt: str | None = None
    image_prompt: str | None = None
    size: tuple[int, int] | None = None
    provenance: dict[str, Any] | None = None


def _not_cancelled(c: sqlite3.Connection, task_id: str, shot_id: int) -> bool:
    row = c.execute("select status from renders where task_id = ? and shot_id = ?",
                    [task_id, shot_id]).fetchone()
    return row is None or row[0] != RenderStatus.CANCELLED


def _mark(c: sqlite3.Connection, task_id: str, shot_id: int, status: RenderStatus, error: str
          ) -> None:
    """A render attempt failed (a done or cancelled render keeps its outcome)."""
    c.execute(
        f"""update renders set status = ?, error = ?, updated_at = ?
           where task_id = ? and shot_id = ? and status not in {sql_list(CLOSED)}""",
        [status.value, error, now(), task_id, shot_id],
    )
