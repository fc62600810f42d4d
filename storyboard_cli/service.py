"""The operations of the system, in one place: both the CLI commands and `storyboard serve`
call these, so no rule is written twice.

`Service` is the interface a command talks to. `LocalService` implements it over this
machine's SQLite store and Redis; a remote implementation (the CLI with ``--server``) speaks
the HTTP API that `storyboard serve` puts in front of a LocalService. Every method takes and
returns plain JSON-shaped data: the project object, the task object and the queued answer of
DESIGN.md ("Command-line contract"), so both implementations give the same answers.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Protocol

from storyboard_cli import control_chars
from storyboard_cli.errors import UsageError

if TYPE_CHECKING:
    from redis import Redis

    from storyboard_cli.config import Config
    from storyboard_cli.store import Store
    from storyboard_cli.tasks.progress import Snapshot

QUEUED = "Task queued successfully"


def queued_answer(task_id: str) -> dict[str, Any]:
    """What queueing a task answers (the original system's HTTP API shape)."""
    return {"message": QUEUED, "task_id": task_id, "status": "pending"}


class Service(Protocol):
    """What the commands can ask for; see LocalService for what each does."""

    def create_project(self, title: str, story_text: str, style: str) -> dict[str, Any]: ...
    def list_projects(self) -> list[dict[str, Any]]: ...
    def project(self, ref: str) -> dict[str, Any]: ...
    def generate(self, project: str, style: str | None = None,
                 no_images: bool = False) -> dict[str, Any]: ...
    def regen_shot(self, shot_id: int, prompt: str | None = None, style: str | None = None,
                   seed: int | None = None) -> dict[str, Any]: ...
    def task(self, task_id: str) -> dict[str, Any]: ...
    def watch(self, task_id: str) -> Iterator[Snapshot]: ...
    def retry(self, task_id: str) -> dict[str, Any]: ...
    def links(self, project: str, expires: int | None = None) -> list[dict[str, Any]]: ...
    def workers_listening(self) -> bool: ...
    def close(self) -> None: ...


def check_line(text: str, what: str) -> str:
    """A one-line field (title, style, prompt): no newline, ESC or other control character,
    which would break every render (the sketch cannot measure a multi-line style) or the
    terminal that shows it."""
    problem = control_chars.problem(text, what)
    if problem:
        raise UsageError(problem)
    return text


def check_title(title: str) -> str:
    title = title.strip()
    if not title:
        raise UsageError("the title must not be empty")
    return check_line(title, "the title")


class LocalService:
    """The operations over this machine's store and Redis.

    The store and the Redis connection are opened on first use: a command that only reads
    the store never connects to Redis, and one given a bad id in a fresh directory leaves
    no store file behind (only create_project creates it, with create_store=True).
    """

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

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
        if self._redis is not None:
            self._redis.close()

    # --- projects ----------------------------------------------------------------------------

    def create_project(self, title: str, story_text: str, style: str) -> dict[str, Any]:
        """A new project; the project object."""
        limit = self.config.limits.max_story_bytes
        size = len(story_text.encode("utf-8"))
        if size > limit:
            raise UsageError(f"the story is {size:,} bytes; the limit is {limit:,} "
                             "(limits.max_story_bytes)")
        if not story_text.strip():
            raise UsageError("the story is empty; write the story first")
        project = self.store.create_project(check_title(title), story_text,
                                            check_line(style.strip(), "the style") or "movie")
        return self.store.project_view(project["id"])

    def list_projects(self) -> list[dict[str, Any]]:
        return self.store.list_projects()

    def project(self, ref: str) -> dict[str, Any]:
        """The project object: the project, its latest storyboard task and its shots."""
        return self.store.project_view(self.store.find_project(ref)["id"])

    # --- tasks -------------------------------------------------------------------------------

    def generate(self, project: str, style: str | None = None,
                 no_images: bool = False) -> dict[str, Any]:
        """Queue a storyboard task for a project; the queued answer."""
        from storyboard_cli.tasks.jobs import submit_storyboard

        project_id = self.store.find_project(project)["id"]
        task = submit_storyboard(self.store, self.redis, self.config, project_id,
                                 check_line(style.strip(), "the style") if style else None,
                                 no_images)
        return queued_answer(task["id"])

    def regen_shot(self, shot_id: int, prompt: str | None = None, style: str | None = None,
                   seed: int | None = None) -> dict[str, Any]:
        """Queue a shot_generation task; the queued answer."""
        from storyboard_cli.tasks.jobs import submit_regen

        if prompt is not None:
            check_line(prompt, "the prompt")
        task = submit_regen(self.store, self.redis, self.config, shot_id, prompt,
                            check_line(style.strip(), "the style") if style else None, seed)
        return queued_answer(task["id"])

    def task(self, task_id: str) -> dict[str, Any]:
        """The task object."""
        return self.store.task_view(task_id)

    def watch(self, task_id: str) -> Iterator[Snapshot]:
        """The task's progress, one snapshot per poll of the store, ending with a finished
        one. The caller decides when to stop waiting."""
        from storyboard_cli.tasks.progress import poll

        return poll(self.store, task_id)

    def retry(self, task_id: str) -> dict[str, Any]:
        """Queue again what failed; the queued answer plus what was retried."""
        from storyboard_cli.tasks.jobs import retry_task

        again = retry_task(self.store, self.redis, self.config, task_id)
        return {**queued_answer(task_id),
                "retried": {"planning": again["planning"], "shots": again["shots"]}}

    def links(self, project: str, expires: int | None = None) -> list[dict[str, Any]]:
        """Fresh presigned links for every shot image of a project; the shots."""
        from storyboard_cli.links import resign_project

        project_id = self.store.find_project(project)["id"]
        return resign_project(self.store, self.config.s3, project_id,
                              self.config.s3.link_expiry if expires is None else expires)

    def workers_listening(self) -> bool:
        """Whether any worker takes jobs from the plan queue (queued tasks would wait)."""
        from rq import Queue, Worker

        queue = Queue(self.config.queue.plan_queue, connection=self.redis)
        return bool(Worker.count(connection=self.redis, queue=queue))
