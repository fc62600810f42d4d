"""The operations of the system, in one place: both the CLI commands and `storyboard serve`
call these, so no rule is written twice.

`Service` is the interface a command talks to. `LocalService` implements it over this
machine's SQLite store and Redis; a remote implementation (the CLI with ``--server``) speaks
the HTTP API that `storyboard serve` puts in front of a LocalService. Every method takes and
returns plain JSON-shaped data: the project object, the task object and the queued answer
(README, "The project object" and "HTTP API"), so both implementations give the same answers.
The project, task, shot and character objects are built in one place: storyboard_cli/views.py.
What a user names is looked up through storyboard_cli/resolve.py, whose errors say which
command to run next.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from storyboard_cli import ids, resolve, views
from storyboard_cli.inputs import (
    check_aspect,
    check_character,
    check_expires,
    check_export,
    check_prompt,
    check_seed,
    check_settings,
    check_story,
    check_style,
    check_title,
)
from storyboard_cli.store.status import LIVE, TaskStatus
from storyboard_contract.errors import (
    ConfigError,
    NotFound,
    ServiceUnavailable,
    StoryboardError,
    UsageError,
)

if TYPE_CHECKING:
    from redis import Redis

    from storyboard_cli.board.options import ExportOptions
    from storyboard_cli.store import Store
    from storyboard_cli.tasks.progress import Snapshot
    from storyboard_contract.config import Config

QUEUED = "Task queued successfully"


def queued_answer(task_id: str) -> dict[str, Any]:
    """What queueing a task answers (the original system's HTTP API shape)."""
    return {"message": QUEUED, "task_id": task_id, "status": TaskStatus.PENDING}


class Service(Protocol):
    """What the commands can ask for; see LocalService for what each does."""

    # What export's progress counts: "frames" read, or "bytes" downloaded.
    export_progress_unit: str

    def create_project(self, title: str, story_text: str, style: str,
                       aspect: str | None = None,
                       settings: dict[str, Any] | None = None) -> dict[str, Any]: ...
    def project_settings(self, project: str, changes: dict[str, Any] | None = None
                         ) -> dict[str, Any]: ...
    def list_projects(self) -> list[dict[str, Any]]: ...
    def project(self, ref: str, task: str | None = None) -> dict[str, Any]: ...
    def rename_project(self, project: str, title: str) -> dict[str, Any]: ...
    def remove_project(self, project: str, keep_objects: bool = False) -> dict[str, Any]: ...
    def cast(self, project: str) -> list[dict[str, Any]]: ...
    def set_cast(self, project: str, descriptions: dict[str, str],
                 remove: list[str] | None = None) -> list[dict[str, Any]]: ...
    def generate(self, project: str, style: str | None = None, no_images: bool = False,
                 story_text: str | None = None) -> dict[str, Any]: ...
    def regen_shot(self, shot: str | int, prompt: str | None = None, style: str | None = None,
                   seed: int | None = None, keep_seed: bool = False) -> dict[str, Any]: ...
    def resolve_shot(self, ref: str | int) -> int: ...
    def resolve_task(self, ref: str) -> str: ...
    def task(self, task_id: str) -> dict[str, Any]: ...
    def tasks(self, project: str | None = None, limit: int | None = None
              ) -> list[dict[str, Any]]: ...
    def watch(self, task_id: str) -> Iterator[Snapshot]: ...
    def retry(self, task_id: str) -> dict[str, Any]: ...
    def cancel(self, task_id: str) -> dict[str, Any]: ...
    def links(self, project: str, expires: int | None = None,
              task: str | None = None) -> dict[str, Any]: ...
    def export(self, project: str, fmt: str, out: Path | None = None,
               options: ExportOptions | None = None, *, force: bool = False,
               upload: bool = False,
               progress: Callable[[int, int], None] | None = None) -> dict[str, Any]: ...
    def workers_listening(self) -> bool: ...
    def close(self) -> None: ...


def unreachable_service(exc: Exception) -> ServiceUnavailable | None:
    """A connection failure of the libraries the service talks through (Redis, httpx), as the
    ServiceUnavailable the CLI and the server report (exit 3, HTTP 503); None for any other
    exception."""
    import redis.exceptions

    if isinstance(exc, redis.exceptions.ConnectionError | redis.exceptions.TimeoutError):
        return ServiceUnavailable(f"cannot reach Redis: {exc}")
    try:
        import httpx
    except ImportError:  # pragma: no cover
        return None
    if isinstance(exc, httpx.TransportError):
        return ServiceUnavailable(f"cannot reach the GPU daemon: {exc}")
    return None


class LocalService:
    """The operations over this machine's store and Redis.

    The store and the Redis connection are opened on first use: a command that only reads
    the store never connects to Redis, and one given a bad id in a fresh directory leaves
    no store file behind (only create_project creates it, with create_store=True).
    """

    export_progress_unit = "frames"

    def __init__(self, config: Config, create_store: bool = False) -> None:
        self.config = config
        self.create_store = create_store
        self._store: Store | None = None
        self._redis: Redis | None = None

    @property
    def store(self) -> Store:
        if self._store is None:
            from storyboard_cli.store import Store

            self._store = Store(self.config.store_path, create=self.create_store)
        return self._store

    @property
    def redis(self) -> Redis:
        if self._redis is None:
            from storyboard_cli.tasks.jobs import connect_redis

            self._redis = connect_redis(self.config.redis.url)
        return self._redis

    def _view(self, project_id: int, task_id: str | None = None) -> dict[str, Any]:
        """The project object, its frame size the configured one ([images])."""
        return resolve.project_view(self.store, project_id, task_id,
                                    self.config.images.frame_size)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
        if self._redis is not None:
            self._redis.close()

    # --- projects ----------------------------------------------------------------------------

    def create_project(self, title: str, story_text: str, style: str,
                       aspect: str | None = None,
                       settings: dict[str, Any] | None = None) -> dict[str, Any]:
        """A new project (its frame aspect: [images] aspect unless given; its render
        settings: model, loras, scheduler, steps, cfg, negative_prompt, each the model's
        default unless given); the project object."""
        check_story(story_text, self.config.limits.max_story_bytes)
        aspect = check_aspect(self.config.images.aspect if aspect is None else aspect)
        checked = self._check_settings(settings or {})
        project = self.store.create_project(check_title(title), story_text,
                                            check_style(style) or "movie", aspect, checked)
        return self._view(project["id"])

    def _check_settings(self, settings: dict[str, Any]) -> dict[str, Any]:
        return check_settings(settings, self.config.images, self.config.limits.max_prompt_chars)

    def project_settings(self, project: str, changes: dict[str, Any] | None = None
                         ) -> dict[str, Any]:
        """A project's render settings (the project object's `settings`), after `changes`
        (a None value: back to the model's default) when given. Tasks queued from now on
        render with them; a task already queued keeps the ones it was queued with."""
        project_id = resolve.project(self.store, project)["id"]
        if changes:
            self.store.set_settings(project_id, self._check_settings(changes))
        return self.store.settings(project_id)

    def list_projects(self) -> list[dict[str, Any]]:
        return self.store.list_projects()

    def project(self, ref: str, task: str | None = None) -> dict[str, Any]:
        """The project object: the project, its cast, its newest storyboard task and the
        storyboard it shows (views.project_view), with a working link to the
        shot-list script and its shots' images (links about to expire are renewed). With
        `task`, that storyboard task's shots instead."""
        from storyboard_cli.links import renew_expiring

        project_id = resolve.project(self.store, ref)["id"]
        view = self._view(project_id, None if task is None else self.resolve_task(task))
        # Without S3 credentials on this machine the project is shown all the same.
        with contextlib.suppress(StoryboardError):
            renew_expiring(self.store, self.config.s3, view, self.config.s3.link_expiry)
        return view

    def rename_project(self, project: str, title: str) -> dict[str, Any]:
        """Give a project a new title (not one another project has); its bucket objects stay
        where they are (their keys name the project's id). The project object."""
        row = resolve.project(self.store, project)
        title = check_title(title)
        taken = [p["id"] for p in self.store.list_projects()
                 if p["title"] == title and p["id"] != row["id"]]
        if taken:
            raise UsageError(f"project {taken[0]} is titled {title!r} already; choose another "
                             "title")
        self.store.rename_project(row["id"], title)
        return self._view(row["id"])

    def remove_project(self, project: str, keep_objects: bool = False) -> dict[str, Any]:
        """Remove a project: its tasks, shots and cast from the store and, unless
        keep_objects, its objects in the bucket: those under `<[s3] prefix>/<project id>/`
        that its tasks made (its images and shot-list scripts) and its uploaded exports; their
        links stop working.
        Refused while a task of it is unfinished. The bucket goes first: if it cannot be
        reached, nothing is removed. Its id is never given to another project."""
        from datetime import datetime, timezone

        from storyboard_contract.keys import project_prefixes
        from storyboard_contract.s3 import BucketProblem, delete_project_objects

        row = resolve.project(self.store, project)
        project_id = row["id"]
        tasks = self.store.list_tasks(project_id)
        live = [t["id"] for t in tasks if t["status"] in LIVE]
        if live:
            raise UsageError(f"project {project_id} has {len(live)} unfinished task(s); cancel "
                             f"them first: storyboard cancel {live[0]}")
        objects: dict[str, Any] = {"bucket": self.config.s3.bucket, "prefixes": [],
                                   "deleted": 0, "kept": keep_objects}
        if not keep_objects:
            objects["prefixes"] = project_prefixes(
                self.config.s3.prefix, project_id, self.store.project_object_keys(project_id))
            keep = "nothing was removed; to remove only its records: --keep-objects"
            try:
                since = datetime.fromisoformat(row["created_at"]).astimezone(timezone.utc)
                objects["deleted"] = delete_project_objects(
                    self.config.s3, objects["prefixes"], {t["id"] for t in tasks}, since)
            except BucketProblem as exc:
                raise ServiceUnavailable(f"cannot delete the project's objects: {exc} "
                                         f"({exc.hint}); {keep}") from None
            except ConfigError as exc:
                raise ConfigError(f"{exc}; {keep}") from None
        removed = self.store.remove_project(project_id, "kept" if keep_objects else "deleted")
        return {"id": project_id, "title": row["title"], **removed, "objects": objects}

    # --- the cast ----------------------------------------------------------------------------

    def cast(self, project: str) -> list[dict[str, Any]]:
        """The project's characters (the character objects of the project object)."""
        return self._view(resolve.project(self.store, project)["id"])["cast"]

    def set_cast(self, project: str, descriptions: dict[str, str],
                 remove: list[str] | None = None) -> list[dict[str, Any]]:
        """Describe characters (new names join the cast) and remove others, all or nothing;
        later renders and regen-shot use the new descriptions. The cast after it."""
        project_id = resolve.project(self.store, project)["id"]
        known = {c["name"].casefold(): c["name"] for c in self.store.cast(project_id)}
        changes: dict[str, str] = {}
        for raw_name, raw_description in descriptions.items():
            name, description = check_character(raw_name, raw_description)
            changes[known.get(name.casefold(), name)] = description
        dropped = []
        for raw_name in remove or []:
            name = known.get(" ".join(raw_name.split()).casefold())
            if name is None:
                raise NotFound(f"project {project_id} has no character {raw_name!r} "
                               f"(see `storyboard cast {project_id}`)")
            if name in changes:
                raise UsageError(f"{name} is both described and removed; choose one")
            dropped.append(name)
        if not changes and not dropped:
            raise UsageError('nothing to change: give --set "NAME=DESCRIPTION" or --remove NAME')
        self.store.set_cast(project_id, changes, dropped)
        return self.cast(str(project_id))

    # --- tasks -------------------------------------------------------------------------------

    def generate(self, project: str, style: str | None = None, no_images: bool = False,
                 story_text: str | None = None) -> dict[str, Any]:
        """Queue a storyboard task for a project; the queued answer. With story_text, the
        project's story is replaced by it first (the original API's generate-storyboard)."""
        from storyboard_cli.tasks.jobs import check_redis, submit_storyboard

        project_id = resolve.project(self.store, project)["id"]
        style = check_style(style)
        if story_text:
            check_story(story_text, self.config.limits.max_story_bytes)
            check_redis(self.redis, self.config.redis.url)  # Redis down: the story stays
            self.store.set_story(project_id, story_text)
        task = submit_storyboard(self.store, self.redis, self.config, project_id, style,
                                 no_images)
        return queued_answer(task["id"])

    def regen_shot(self, shot: str | int, prompt: str | None = None, style: str | None = None,
                   seed: int | None = None, keep_seed: bool = False) -> dict[str, Any]:
        """Queue a shot_generation task for a shot of the storyboard `show` lists (by id or
        PROJECT/NUMBER, see resolve_shot); the queued answer. keep_seed: the seed of the
        shot's image (with nothing else changed, the same image again)."""
        from storyboard_cli.tasks.jobs import submit_regen

        prompt = check_prompt(prompt, self.config.limits.max_prompt_chars)
        style, seed = check_style(style), check_seed(seed)
        shot_id = self.resolve_shot(shot)
        if keep_seed:
            if seed is not None:
                raise UsageError("give --seed or --keep-seed, not both")
            seed = self.store.get_shot(shot_id)["seed"]
        task = submit_regen(self.store, self.redis, self.config, shot_id, prompt, style, seed)
        return queued_answer(task["id"])

    def resolve_shot(self, ref: str | int) -> int:
        """The id of the shot `ref` names: a shot id or PROJECT/NUMBER (project id or title,
        the shot's number in the storyboard `show` lists). A shot of another storyboard of
        its project (superseded, or cancelled) is refused."""
        return resolve.shot(self.store, ids.shot_ref(str(ref)))["id"]

    def resolve_task(self, ref: str) -> str:
        """The whole id of the task `ref` names: its id or a unique prefix of at least
        ids.MIN_TASK_PREFIX characters; an ambiguous prefix is an error listing the ids."""
        return self.store.find_task(ids.task_id(ref))

    def task(self, task_id: str) -> dict[str, Any]:
        """The task object."""
        return views.task_view(self.store, self.resolve_task(task_id))

    def tasks(self, project: str | None = None, limit: int | None = None
              ) -> list[dict[str, Any]]:
        """Task summaries (the task object without `shots`), newest first: every project's,
        or one project's."""
        project_id = None if project is None else resolve.project(self.store, project)["id"]
        return views.task_summaries(self.store, project_id, limit)

    def watch(self, task_id: str) -> Iterator[Snapshot]:
        """The task's progress, one snapshot per poll of the store, ending with a finished
        one. The caller decides when to stop waiting."""
        from storyboard_cli.tasks.progress import poll

        return poll(self.store, self.resolve_task(task_id))

    def retry(self, task_id: str) -> dict[str, Any]:
        """Queue again what failed or was cancelled; the queued answer plus what was
        retried."""
        from storyboard_cli.tasks.jobs import retry_task

        task_id = self.resolve_task(task_id)
        again = retry_task(self.store, self.redis, self.config, task_id)
        return {**queued_answer(task_id),
                "retried": {"planning": again["planning"], "shots": again["shots"]}}

    def cancel(self, task_id: str) -> dict[str, Any]:
        """Cancel a pending or running task: it is marked cancelled, its queued jobs leave the
        queues, and a render in progress stops at its next step. `retry` resumes it. The task
        object, plus `jobs`: how many were taken off the queues (`removed`) and how many were
        running and stop by themselves (`stopping`)."""
        from storyboard_cli.tasks.jobs import cancel_task

        task_id = self.resolve_task(task_id)
        jobs = cancel_task(self.store, self.redis, self.config, task_id)
        return {**views.task_view(self.store, task_id), "jobs": jobs}

    def links(self, project: str, expires: int | None = None,
              task: str | None = None) -> dict[str, Any]:
        """Fresh presigned links for every shot image and the shot-list script of the
        storyboard a project shows (or of storyboard task `task`); the project object with
        them."""
        from storyboard_cli.links import resign_project

        expires = check_expires(self.config.s3.link_expiry if expires is None else expires)
        project_id = resolve.project(self.store, project)["id"]
        task_id = None if task is None else self.resolve_task(task)
        return resign_project(self.store, self.config.s3, self._view(project_id, task_id),
                              expires)

    # --- exports -----------------------------------------------------------------------------

    def export(self, project: str, fmt: str, out: Path | None = None,
               options: ExportOptions | None = None, *, force: bool = False,
               upload: bool = False,
               progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
        """Write the project's board as `fmt` (html, pdf, mp4, storyboarder, zip), laid out
        by `options` (default: ExportOptions' defaults), to `out`
        (default: a file named after the project in the current folder), its frames read from
        the bucket by their keys; with `upload`, also put it in the bucket. `progress` is told
        (frames read, frames to read) as the frames arrive. The export object: format, path,
        files, bytes, shots, frames, the empty frames with why, and with `upload` the key and
        a presigned link."""
        from storyboard_cli.board import export as board
        from storyboard_cli.board.panels import bucket_fetch, missing_reasons, read_panels
        from storyboard_contract.s3 import client_from_config

        options = check_export(fmt, options)
        view = self._view(resolve.project(self.store, project)["id"])
        if not view["shots"]:
            raise UsageError(f"project {view['id']} has no shots to export yet: "
                             f"storyboard generate {view['id']}")
        board.check_installed(fmt)
        path = board.destination(view, fmt, out, force)
        # Only frames to read, or an upload, need the bucket (and its credentials).
        needs_bucket = upload or any(s["image_key"] for s in view["shots"])
        s3 = client_from_config(self.config.s3) if needs_bucket else None
        panels = read_panels(view["shots"], bucket_fetch(s3, self.config.s3),
                             missing_reasons(self.store.task_renders(view["shots_task"]["id"])),
                             progress)
        done = board.write(view, fmt, path, panels, options)
        answer: dict[str, Any] = {
            "project_id": view["id"], "format": fmt, "path": str(path),
            "files": [str(f) for f in done.files],
            "bytes": sum(size_on_disk(f) for f in done.files),
            "shots": len(view["shots"]), "frames": done.frames, "empty": done.empty,
        }
        if upload:
            answer.update(board.upload(s3, self.config.s3, view, path,
                                       self.config.s3.link_expiry))
        return answer

    def board_page(self, project: str) -> Iterator[str]:
        """The project's board as the page of `export --format html` (one template), its
        frames links (renewed when about to expire) instead of embedded images: the web
        board of `storyboard serve`, in pieces."""
        from storyboard_cli.board.html import page
        from storyboard_cli.board.panels import link_panels, missing_reasons
        from storyboard_cli.board.sheet import sheet

        view = self.project(project)
        shown = view["shots_task"]
        reasons = missing_reasons(self.store.task_renders(shown["id"])) if shown else {}
        return page(sheet(view), view["cast"], link_panels(view["shots"], reasons),
                    "storyboard serve")

    def workers_listening(self) -> bool:
        """Whether any worker takes jobs from the plan queue (queued tasks would wait)."""
        from rq import Queue, Worker

        queue = Queue(self.config.queue.plan_queue, connection=self.redis)
        return bool(Worker.count(connection=self.redis, queue=queue))


def size_on_disk(path: Path) -> int:
    """The size of an exported file, or of a folder's files."""
    if path.is_dir():
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return path.stat().st_size
