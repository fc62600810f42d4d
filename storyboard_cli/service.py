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
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from storyboard_cli import ids, references, resolve, views
from storyboard_cli.inputs import (
    ShotContext,
    check_aliases,
    check_aspect,
    check_character,
    check_character_name,
    check_expires,
    check_export,
    check_identity,
    check_limit,
    check_note,
    check_number,
    check_prompt,
    check_seed,
    check_settings,
    check_split_at,
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
    from storyboard_cli.board.panels import Panel
    from storyboard_cli.cast_links import CastWord
    from storyboard_cli.store import Store
    from storyboard_cli.store.edits import Board, Outcome
    from storyboard_cli.tasks.progress import Snapshot
    from storyboard_contract.config import Config

QUEUED = "Task queued successfully"
# A streamed frame leaves in pieces of this size.
FRAME_CHUNK_BYTES = 64 * 1024


@dataclass(frozen=True)
class OpenFrame:
    """A shot's image opened in the bucket: its bytes as they arrive, how many, their type,
    and how to let the connection go (once sent, or when the client leaves)."""

    chunks: Iterator[bytes]
    size: int
    content_type: str
    close: Callable[[], None]


def queued_answer(task_id: str) -> dict[str, Any]:
    """What queueing a task answers (the original system's HTTP API shape)."""
    return {"message": QUEUED, "task_id": task_id, "status": TaskStatus.PENDING}


class Service(Protocol):
    """What the commands can ask for; see LocalService for what each does."""

    # What export's progress counts: "frames" read, or "bytes" downloaded.
    export_progress_unit: str

    def create_project(self, title: str | None, story_text: str, style: str,
                       aspect: str | None = None, story_format: str | None = None,
                       file_name: str | None = None,
                       settings: dict[str, Any] | None = None) -> dict[str, Any]: ...
    def project_settings(self, project: str, changes: dict[str, Any] | None = None
                         ) -> dict[str, Any]: ...
    def list_projects(self) -> list[dict[str, Any]]: ...
    def project(self, ref: str, task: str | None = None,
                revision: int | None = None) -> dict[str, Any]: ...
    def rename_project(self, project: str, title: str) -> dict[str, Any]: ...
    def remove_project(self, project: str, keep_objects: bool = False) -> dict[str, Any]: ...
    def cast(self, project: str) -> list[dict[str, Any]]: ...
    def set_cast(self, project: str, descriptions: dict[str, str],
                 remove: list[str] | None = None,
                 aliases: dict[str, str | list[str]] | None = None,
                 identity: dict[str, dict[str, Any]] | None = None) -> list[dict[str, Any]]: ...
    def portraits(self, project: str, names: list[str] | None = None
                  ) -> list[dict[str, Any]]: ...
    def generate(self, project: str, style: str | None = None, no_images: bool = False,
                 story_text: str | None = None, story_format: str | None = None,
                 stale: bool = False) -> dict[str, Any]: ...
    def regen_shot(self, shot: str | int, prompt: str | None = None, style: str | None = None,
                   seed: int | None = None, keep_seed: bool = False) -> dict[str, Any]: ...
    def resolve_shot(self, ref: str | int) -> int: ...
    def shot(self, ref: str | int) -> dict[str, Any]: ...
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
    # Editing the storyboard `show` lists (storyboard_cli/shot_edits.py); each answers
    # {"edit": history entry, "shots": the shot objects it leaves to show}.
    def edit_shot(self, shot: str | int, fields: dict[str, Any]) -> dict[str, Any]: ...
    def split_shot(self, project: str, number: int, at: str | None = None
                   ) -> dict[str, Any]: ...
    def merge_shots(self, project: str, first: int, second: int) -> dict[str, Any]: ...
    def move_shot(self, project: str, number: int, to: int) -> dict[str, Any]: ...
    def insert_shot(self, project: str, after: int, fields: dict[str, Any]
                    ) -> dict[str, Any]: ...
    def delete_shot(self, project: str, number: int) -> dict[str, Any]: ...
    def note_shot(self, shot: str | int, text: str) -> dict[str, Any]: ...
    def approve_shot(self, shot: str | int, approved: bool = True) -> dict[str, Any]: ...
    def history(self, project: str, limit: int | None = None) -> list[dict[str, Any]]: ...
    def undo(self, project: str) -> dict[str, Any]: ...
    # Story revisions.
    def update_story(self, project: str, story_text: str, story_format: str | None = None,
                     file_name: str | None = None) -> dict[str, Any]: ...
    def revisions(self, project: str) -> list[dict[str, Any]]: ...
    def diff(self, project: str, from_revision: int | None = None,
             to_revision: int | None = None) -> dict[str, Any]: ...


def portraits_read(fetch: Callable[[str], bytes | None]) -> Callable[[dict[str, Any]], Any]:
    """How an export shows a cast member: with its reference image read from the bucket (none
    when it has none, or the object is gone)."""
    from storyboard_cli.board.sheet import Portrait

    def portray(character: dict[str, Any]) -> Portrait:
        key = character["reference_key"]
        return Portrait(character["name"], character["description"],
                        image=fetch(key) if key else None, suffix=Path(key or ".png").suffix)

    return portray


def local_user() -> str:
    """The name of the user running this process, as the history records it."""
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a bare container)
        return "unknown"


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

    def __init__(self, config: Config, create_store: bool = False, user: str | None = None
                 ) -> None:
        self.config = config
        self.create_store = create_store
        # Who the history names for an edit: this machine's user, or whom a request names.
        self.user = user or local_user()
        self._store: Store | None = None
        self._redis: Redis | None = None
        self._s3: Any = None  # a boto3 client, made on first use

    @property
    def store(self) -> Store:
        if self._store is None:
            from storyboard_cli.store import Store

            self._store = Store(self.config.store_path, create=self.create_store)
        return self._store

    def store_replaced(self) -> bool:
        """The store this service opened was removed or replaced on disk since."""
        return self._store is not None and self._store.replaced()

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

    def create_project(self, title: str | None, story_text: str, style: str,
                       aspect: str | None = None, story_format: str | None = None,
                       file_name: str | None = None,
                       settings: dict[str, Any] | None = None) -> dict[str, Any]:
        """A new project from a story in prose or a screenplay (its format as given, else by
        the extension of `file_name`, else by its content); its frame aspect [images] aspect
        unless given; its title as given, else a screenplay's own, else the file's name; its
        render settings (model, loras, scheduler, steps, cfg, negative_prompt) each the
        model's default unless given. The project object."""
        from storyboard_cli.stories import read_story, screenplay_json

        story_format, screenplay = read_story(story_text, self.config.limits, story_format,
                                              file_name or "")
        aspect = check_aspect(self.config.images.aspect if aspect is None else aspect)
        style = check_style(style) or "movie"
        checked = self._check_settings(settings or {})
        if not (title and title.strip()):
            title = (screenplay and screenplay.title) or (file_name and Path(file_name).stem)
            if not title:
                raise UsageError("the project needs a title and the story has none: give one "
                                 "(--title)")
        project = self.store.create_project(
            check_title(title), story_text, style, aspect, story_format,
            screenplay_json(screenplay), self.user, checked)
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

    def project(self, ref: str, task: str | None = None,
                revision: int | None = None) -> dict[str, Any]:
        """The project object: the project, its cast, its newest storyboard task and the
        storyboard it shows (views.project_view), with a working link to the
        shot-list script and its shots' images (links about to expire are renewed). With
        `task`, that storyboard task's shots instead; with `revision`, the storyboard of that
        revision of the story (resolve.revision)."""
        from storyboard_cli.links import renew_expiring

        project_id = resolve.project(self.store, ref)["id"]
        if task is not None and revision is not None:
            raise UsageError("give --task or --revision, not both")
        if revision is not None:
            task = resolve.revision(self.store, project_id,
                                    check_number(revision, "--revision"))["id"]
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
                 remove: list[str] | None = None,
                 aliases: dict[str, str | list[str]] | None = None,
                 identity: dict[str, dict[str, Any]] | None = None) -> list[dict[str, Any]]:
        """The user's word on the cast, all or nothing: describe characters (new names join
        the cast), remove others (never cast again, by any plan), give a character its other
        names (Lin -> 林; a cast member named so joins that character), its identity
        ({"image": PNG or JPEG bytes, "lora": "FILE[:SCALE]", "trigger": "WORD"}; "" takes
        a LoRA or trigger away). At once, the storyboard shown links each character described
        or given names to every shot whose narration names it (storyboard_cli/cast_links.py),
        as one edit. Later renders, regen-shot and re-plans use all of it. The cast after
        it."""
        from storyboard_cli.cast_links import CastWord
        from storyboard_cli.store.projects import folded

        project_id = resolve.project(self.store, project)["id"]
        cast = {c["name"]: c for c in self.store.cast(project_id)}
        known = {folded(name): name for name in cast}
        # A character is described, or given its identity, by any of its names.
        by_any_name = {folded(other): name for name, c in cast.items() for other in c["aliases"]}
        by_any_name.update(known)
        changes: dict[str, str] = {}
        for raw_name, raw_description in descriptions.items():
            name, description = check_character(raw_name, raw_description)
            name = by_any_name.get(folded(name), name)
            if any(folded(n) == folded(name) for n in changes):
                raise UsageError(f"{raw_name} is described twice in this change; describe a "
                                 "character once")
            changes[name] = description
        dropped = []
        for raw_name in remove or []:
            name = known.get(folded(raw_name))
            if name is None:
                raise NotFound(f"project {project_id} has no character {raw_name!r} "
                               f"(see `storyboard cast {project_id}`)")
            if name in changes:
                raise UsageError(f"{name} is both described and removed; choose one")
            dropped.append(name)
        others: dict[str, list[str]] = {}
        for raw_name, raw_forms in (aliases or {}).items():
            name = check_character_name(raw_name)
            name = known.get(folded(name)) or next(
                (n for n in changes if folded(n) == folded(name)), None)
            if name is None:
                raise NotFound(f"project {project_id} has no character {raw_name!r}: describe "
                               f'them first (storyboard cast {project_id} --set "NAME=...")')
            others[name] = check_aliases(name, raw_forms)
        taken = {folded(n) for n in [*changes, *dropped, *others]}
        for name, forms in others.items():
            clash = next((f for f in forms if folded(f) in taken), None)
            if clash is not None:
                raise UsageError(f"{clash} is a name of its own in this change; it cannot be "
                                 f"another name of {name} too")
        given: dict[str, dict[str, Any]] = {}
        for raw_name, fields in (identity or {}).items():
            name = check_character_name(raw_name)
            name = by_any_name.get(folded(name)) or next(
                (n for n in changes if folded(n) == folded(name)), None)
            if name is None or name in dropped:
                raise NotFound(f"project {project_id} has no character {raw_name!r}: describe "
                               f'them first (storyboard cast {project_id} --set "NAME=...")')
            given[name] = check_identity(name, fields)
        if not changes and not dropped and not others and not given:
            raise UsageError('nothing to change: give --set "NAME=DESCRIPTION", --remove NAME, '
                             '--alias "NAME=OTHER,OTHER", --image, --lora or --trigger')
        for name, fields in given.items():
            if "image" in fields:
                data, suffix = fields.pop("image")
                fields["reference_key"] = references.upload(self.s3, self.config, project_id,
                                                            name, data, suffix)
        self.store.set_cast(project_id, changes, dropped, others, given)
        linked = {name: others.get(name, cast.get(name, {}).get("aliases", []))
                  for name in [*changes, *others]}
        renamed = {known[folded(f)]: name for name, forms in others.items() for f in forms
                   if folded(f) in known}
        self._link_cast(project_id, CastWord(linked, dropped, renamed))
        return self.cast(str(project_id))

    def portraits(self, project: str, names: list[str] | None = None) -> list[dict[str, Any]]:
        """Render a neutral portrait of each character (or of those named) from its
        description, through the daemon's ordinary render with the project's style and
        render settings, and make it the character's reference image (a new one each time:
        keep it or redo it). The cast after it."""
        from storyboard_cli.store.projects import folded
        from storyboard_cli.tasks.daemon_client import DaemonClient
        from storyboard_cli.tasks.jobs import wire_settings

        project_id = resolve.project(self.store, project)["id"]
        row = self.store.get_project(project_id)
        cast = self.store.cast(project_id)
        if names:
            by_name = {folded(c["name"]): c for c in cast}
            missing = [n for n in names if folded(n) not in by_name]
            if missing:
                raise NotFound(f"project {project_id} has no character {missing[0]!r} "
                               f"(see `storyboard cast {project_id}`)")
            cast = [by_name[folded(n)] for n in dict.fromkeys(names)]
        if not cast:
            raise UsageError(f"project {project_id} has no characters to portray yet: "
                             f"storyboard generate {project_id} finds them, or add one: "
                             f'storyboard cast {project_id} --set "NAME=DESCRIPTION"')
        settings = wire_settings(self.store.settings(project_id))
        size = self.config.images.frame_size("1:1", settings.model)
        daemon = DaemonClient(self.config.daemon)
        try:
            for character in cast:
                made = daemon.render(references.portrait_request(row, character, settings,
                                                                 size))
                key = references.keep_portrait(self.s3, self.config, project_id,
                                               character["name"], made.image_key)
                self.store.set_cast(project_id, {}, identity={
                    character["name"]: {"reference_key": key}})
        finally:
            daemon.close()
        return self.cast(str(project_id))

    @property
    def s3(self) -> Any:
        """The bucket's client, made on first use."""
        from storyboard_contract.s3 import client_from_config

        if self._s3 is None:
            self._s3 = client_from_config(self.config.s3)
        return self._s3

    def _link_cast(self, project_id: int, word: CastWord) -> None:
        """Link the storyboard shown's shots to the cast as the user's word says, when it
        changes any (one edit); a storyboard being planned again gets the word from its
        plan instead (PlanRequest.cast)."""
        from storyboard_cli import cast_links
        from storyboard_cli.store.tasks import replanning, shown_storyboard

        boards = self.store.storyboards(project_id)
        shown = shown_storyboard(boards)
        if shown is None or replanning(boards) is not None:
            return
        if cast_links.changed(self.store.task_shot_rows(shown), word):
            self.store.edit_board(project_id, shown["id"], self.user, "cast",
                                  lambda board: cast_links.link(board, word))

    # --- tasks -------------------------------------------------------------------------------

    def generate(self, project: str, style: str | None = None, no_images: bool = False,
                 story_text: str | None = None, story_format: str | None = None,
                 stale: bool = False) -> dict[str, Any]:
        """Queue a storyboard task for a project; the queued answer. With story_text, the
        project's story is replaced by it first (a new revision when it or its format differs;
        the original API's generate-storyboard), its format as given or read from its
        content. The new plan keeps the approved panels of the storyboard before it
        (store/plans.py). With stale, no plan: a task that renders the stale panels of the
        storyboard `show` lists (approved ones aside)."""
        from storyboard_cli.stories import read_story, same_story, screenplay_json
        from storyboard_cli.tasks.jobs import check_redis, submit_stale, submit_storyboard

        project_id = resolve.project(self.store, project)["id"]
        style = check_style(style)
        if stale:
            if no_images or story_text:
                raise UsageError("--stale renders the stale panels of the storyboard there is; "
                                 "it takes neither --no-images nor a new story")
            board = resolve.board(self.store, project_id)
            shots = [r["id"] for r in self.store.stale_shots(board["id"])]
            if not shots:
                raise UsageError(f"project {project_id}'s storyboard has no stale panels (an edit "
                                 "that changes what a panel shows makes it stale; approved "
                                 f"panels are left alone): storyboard show {project_id}")
            task = submit_stale(self.store, self.redis, self.config, project_id, board["id"],
                                shots, style)
            return queued_answer(task["id"])
        revision = None
        if story_text:
            story_format, screenplay = read_story(story_text, self.config.limits, story_format)
            check_redis(self.redis, self.config.redis.url)  # Redis down: the story stays
            if not same_story(self.store.get_project(project_id), story_text, story_format):
                revision = self.store.revise_story(project_id, story_text, self.user,
                                                   story_format, screenplay_json(screenplay))
        task = submit_storyboard(self.store, self.redis, self.config, project_id, style,
                                 no_images, revision)
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

    def shot(self, ref: str | int) -> dict[str, Any]:
        """The shot object of the shot `ref` names (as resolve_shot finds it)."""
        return views.shot_view(resolve.shot(self.store, ids.shot_ref(str(ref))))

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
        limit = check_limit(limit)
        project_id = None if project is None else resolve.project(self.store, project)["id"]
        return views.task_summaries(self.store, project_id, limit)

    def watch(self, task_id: str) -> Iterator[Snapshot]:
        """The task's progress, one snapshot per poll of the store, ending with a finished
        one. The caller decides when to stop waiting."""
        from storyboard_cli.tasks.progress import poll

        return poll(self.store, self.resolve_task(task_id))

    def snapshot(self, task_id: str) -> Snapshot:
        """The task's progress now (`task_id`: a whole id): one poll of what watch gives."""
        from storyboard_cli.tasks.progress import snapshot

        return snapshot(self.store, task_id)

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

    # --- editing the storyboard --------------------------------------------------------------

    def _edit(self, project: str, op: str, change: Callable[[Board, int], Outcome]
              ) -> dict[str, Any]:
        """Run an edit (storyboard_cli/shot_edits.py; `change` is given the board and the
        prompt limit) on the storyboard the project shows, in one transaction recorded in its
        history; the edit answer."""
        from storyboard_cli.store.edits import ShotNumberNotFound

        project_id = resolve.project(self.store, project)["id"]
        board = resolve.board(self.store, project_id)
        limit = self.config.limits.max_prompt_chars
        try:
            entry, outcome = self.store.edit_board(project_id, board["id"], self.user, op,
                                                   lambda b: change(b, limit))
        except ShotNumberNotFound as exc:
            raise resolve.no_shot(exc.project_id, exc.count, exc.number) from None
        return self._edit_answer(entry, outcome)

    def _edit_answer(self, entry: dict[str, Any], outcome: Outcome) -> dict[str, Any]:
        return {"edit": entry,
                "shots": [views.shot_view(self.store.get_shot(s)) for s in outcome.shots]}

    def _shot_context(self, project_id: int) -> ShotContext:
        cast = self.store.cast(project_id)
        return ShotContext(project_id, self.config.limits.max_prompt_chars,
                           tuple(c["name"] for c in cast),
                           tuple((other, c["name"]) for c in cast for other in c["aliases"]))

    def _shot_number(self, shot: str | int) -> tuple[int, Callable[[Board], int]]:
        """The project of the shot a reference names (in the storyboard `show` lists), and
        how to find its number inside an edit's transaction (by its id, so an edit made
        meanwhile cannot send this one to another shot)."""
        row = resolve.shot(self.store, ids.shot_ref(str(shot)))
        resolve.board(self.store, row["project_id"])

        def number(board: Board) -> int:
            found = board.row(row["id"])
            if found is None or found["task_id"] != board.task_id:
                raise UsageError(f"shot {row['id']} was removed meanwhile; look again: "
                                 f"storyboard show {row['project_id']}")
            return found["idx"] + 1

        return row["project_id"], number

    def edit_shot(self, shot: str | int, fields: dict[str, Any]) -> dict[str, Any]:
        """Change a shot's fields (storyboard_cli/shot_fields.py: camera, action, dialogue,
        characters, duration, prompt); a change to what the panel shows makes it stale."""
        from storyboard_cli import shot_edits, shot_fields

        project_id, number = self._shot_number(shot)
        values = shot_fields.checked(fields, self._shot_context(project_id))
        if not values:
            raise UsageError("nothing to change: give a field to set, e.g. --camera close-up "
                             f"({', '.join('--' + f.name for f in shot_fields.FIELDS)})")
        return self._edit(str(project_id), "shot", lambda board, limit: shot_edits.set_fields(
            board, number(board), values, limit))

    def split_shot(self, project: str, number: int, at: str | None = None) -> dict[str, Any]:
        """Split shot `number` in two where `at` starts in its text (else near its middle)."""
        from storyboard_cli import shot_edits

        number, at = check_number(number, "the shot"), check_split_at(at)
        return self._edit(project, "split", lambda board, limit: shot_edits.split(
            board, number, at, limit))

    def merge_shots(self, project: str, first: int, second: int) -> dict[str, Any]:
        """Merge two neighbouring shots into one."""
        from storyboard_cli import shot_edits

        first, second = check_number(first, "the shot"), check_number(second, "the shot")
        return self._edit(project, "merge", lambda board, limit: shot_edits.merge(
            board, first, second, limit))

    def move_shot(self, project: str, number: int, to: int) -> dict[str, Any]:
        """Move shot `number` to position `to` (1 = first)."""
        from storyboard_cli import shot_edits

        number, to = check_number(number, "the shot"), check_number(to, "--to")
        return self._edit(project, "move",
                          lambda board, _: shot_edits.move(board, number, to))

    def insert_shot(self, project: str, after: int, fields: dict[str, Any]) -> dict[str, Any]:
        """A new shot after shot `after` (0: first), from its fields; it needs an action."""
        from storyboard_cli import shot_edits, shot_fields

        project_id = resolve.project(self.store, project)["id"]
        after = check_number(after, "--after")
        values = shot_fields.checked(fields, self._shot_context(project_id))
        return self._edit(str(project_id), "insert", lambda board, limit: shot_edits.insert(
            board, after, values, limit))

    def delete_shot(self, project: str, number: int) -> dict[str, Any]:
        """Remove shot `number`; the ones after it move up."""
        from storyboard_cli import shot_edits

        number = check_number(number, "the shot")
        return self._edit(project, "delete", lambda board, _: shot_edits.delete(board, number))

    def note_shot(self, shot: str | int, text: str) -> dict[str, Any]:
        """A note on a shot's panel ("" clears it)."""
        from storyboard_cli import shot_edits

        text = check_note(text)
        project_id, number = self._shot_number(shot)
        return self._edit(str(project_id), "note",
                          lambda board, _: shot_edits.note(board, number(board), text))

    def approve_shot(self, shot: str | int, approved: bool = True) -> dict[str, Any]:
        """Approve a shot's panel (only an explicit regen-shot renders it again) or take the
        approval back."""
        from storyboard_cli import shot_edits

        project_id, number = self._shot_number(shot)
        return self._edit(str(project_id), "approve" if approved else "unapprove",
                          lambda board, _: shot_edits.approve(board, number(board), approved))

    def history(self, project: str, limit: int | None = None) -> list[dict[str, Any]]:
        """The project's edits, newest first: who, when, what, the fields before and after."""
        limit = check_limit(limit)
        project_id = resolve.project(self.store, project)["id"]
        return self.store.history(project_id, limit)

    def undo(self, project: str) -> dict[str, Any]:
        """Undo the newest edit of the storyboard `show` lists not undone yet (exactly: its
        rows as they were); the undo is in the history too."""
        project_id = resolve.project(self.store, project)["id"]
        board = resolve.board(self.store, project_id)
        entry, outcome = self.store.undo_edit(project_id, board["id"], self.user)
        return self._edit_answer(entry, outcome)

    # --- story revisions ---------------------------------------------------------------------

    def update_story(self, project: str, story_text: str, story_format: str | None = None,
                     file_name: str | None = None) -> dict[str, Any]:
        """Store `story_text` as a new revision of the project's story and plan it (a
        storyboard task): the shots whose text is unchanged keep their panels, images,
        seeds, notes and approval, and are not rendered; new and changed shots render
        (store/plans.py). A screenplay is parsed again (its format as given, else by
        `file_name`'s extension, else by its content). The queued answer plus the revision's
        number."""
        from storyboard_cli.stories import read_story, same_story, screenplay_json
        from storyboard_cli.tasks.jobs import check_redis, submit_storyboard

        project_id = resolve.project(self.store, project)["id"]
        story_format, screenplay = read_story(story_text, self.config.limits, story_format,
                                              file_name or "")
        current = self.store.current_revision(project_id)
        if same_story(self.store.get_project(project_id), story_text, story_format):
            raise UsageError(f"the story is revision {current} of project {project_id} already; "
                             f"nothing to update (plan it again: storyboard generate "
                             f"{project_id})")
        check_redis(self.redis, self.config.redis.url)  # Redis down: nothing is stored
        revision = self.store.revise_story(project_id, story_text, self.user, story_format,
                                           screenplay_json(screenplay))
        task = submit_storyboard(self.store, self.redis, self.config, project_id, None, False,
                                 revision, keep_unchanged=True)
        self.store.log_update(project_id, task["id"], self.user,
                              f"revision {revision} of the story ({len(story_text):,} "
                              f"characters), planned by task {task['id'][:8]}")
        return {**queued_answer(task["id"]), "revision": revision}

    def revisions(self, project: str) -> list[dict[str, Any]]:
        """The revisions of a project's story, oldest first, each with the storyboard task
        planned from it (`task_id`, null when none has a plan)."""
        from storyboard_cli.store.revisions import revision_board

        project_id = resolve.project(self.store, project)["id"]
        boards = self.store.storyboards(project_id)
        return [{**r, "task_id": (revision_board(boards, r["number"]) or {}).get("id")}
                for r in self.store.revisions(project_id)]

    def diff(self, project: str, from_revision: int | None = None,
             to_revision: int | None = None) -> dict[str, Any]:
        """The shots added, removed and changed between the storyboards of two revisions of
        the story (default: the newest with a storyboard and the one before it), matched by
        content as a revision's plan is (storyboard_cli/matching.py)."""
        from storyboard_cli.matching import diff_boards

        project_id = resolve.project(self.store, project)["id"]
        revisions = self.revisions(str(project_id))
        planned = [r["number"] for r in revisions if r["task_id"]]
        to = planned[-1] if to_revision is None and planned else to_revision
        if to is None:
            raise UsageError(f"project {project_id} has no storyboard yet: storyboard generate "
                             f"{project_id}")
        to = check_number(to, "--to")
        if from_revision is None:
            earlier = [n for n in planned if n < to]
            if not earlier:
                raise UsageError(f"no revision before {to} of project {project_id}'s story has a "
                                 f"storyboard to compare with (storyboard update {project_id} "
                                 "FILE makes a new revision)")
            from_revision = earlier[-1]
        start = check_number(from_revision, "--from")
        boards = [resolve.revision(self.store, project_id, n) for n in (start, to)]
        rows = [self.store.task_shot_rows(b) for b in boards]
        return {"project_id": project_id,
                "from": {"revision": start, "task_id": boards[0]["id"]},
                "to": {"revision": to, "task_id": boards[1]["id"]},
                **diff_boards([views.shot_view(r) for r in rows[0]],
                              [views.shot_view(r) for r in rows[1]])}

    # --- exports -----------------------------------------------------------------------------

    def export(self, project: str, fmt: str, out: Path | None = None,
               options: ExportOptions | None = None, *, force: bool = False,
               upload: bool = False, kept: bool = True,
               progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
        """Write the project's board as `fmt` (html, pdf, mp4, storyboarder, zip), laid out
        by `options` (default: ExportOptions' defaults), to `out`
        (default: a file named after the project in the current folder), its frames read from
        the bucket by their keys; with `upload`, also put it in the bucket. `progress` is told
        (frames read, frames to read) as the frames arrive. The export object: format, path,
        files, bytes, shots, frames, the empty frames with why, and with `upload` the key and
        a presigned link. An upload that fails says where the export is written, or with
        `kept` False (the API's temporary folder, gone with the answer) that nothing is kept."""
        from storyboard_cli.board import export as board
        from storyboard_cli.board.panels import (
            bucket_fetch,
            link_panels,
            missing_reasons,
            read_panels,
        )
        from storyboard_cli.board.sheet import unseen
        from storyboard_cli.links import resign_project
        from storyboard_contract.s3 import client_from_config

        options = check_export(fmt, options)
        view = self._view(resolve.project(self.store, project)["id"])
        if not view["shots"]:
            raise UsageError(f"project {view['id']} has no shots to export yet: "
                             f"storyboard generate {view['id']}")
        board.check_installed(fmt)
        path = board.destination(view, fmt, out, force, options)
        reasons = missing_reasons(self.store.task_renders(view["shots_task"]["id"]))
        rendered = any(s["image_key"] for s in view["shots"])
        if fmt == "csv" or options.links:
            # Links, not frames: signed afresh for their whole lifetime, nothing read.
            if rendered:
                view = resign_project(self.store, self.config.s3, view,
                                      self.config.s3.link_expiry)
            panels: Iterable[Panel] = link_panels(view["shots"], reasons)
        else:
            panels = read_panels(view["shots"], bucket_fetch(
                client_from_config(self.config.s3) if rendered else None, self.config.s3),
                reasons, progress)
        portray = unseen
        if fmt in board.PORTRAYING and any(c["reference_key"] for c in view["cast"]):
            portray = portraits_read(bucket_fetch(self.s3, self.config.s3))
        done = board.write(view, fmt, path, panels, options, portray=portray)
        answer: dict[str, Any] = {
            "project_id": view["id"], "format": fmt, "path": str(path),
            "files": [str(f) for f in done.files],
            "bytes": sum(size_on_disk(f) for f in done.files),
            "shots": len(view["shots"]), "frames": done.frames, "empty": done.empty,
        }
        if upload:
            try:
                answer.update(board.upload(client_from_config(self.config.s3), self.config.s3,
                                           view, path, self.config.s3.link_expiry))
            except StoryboardError as exc:  # the export is done: say where it is
                where = f"the export is written: {path}" if kept else \
                    "the export is not kept: ask again without upload to download it"
                raise type(exc)(f"{exc}; {where}") from None
        return answer

    def board_page(self, project: str,
                   frame_url: Callable[[dict[str, Any]], str | None] | None = None
                   ) -> Iterator[str]:
        """The project's board as the page of `export --format html` (one template), its
        frames links instead of embedded images: the web board of `storyboard serve`, in
        pieces. The links are `frame_url(shot)`, by default the shots' presigned links
        (renewed when about to expire)."""
        from storyboard_cli.board.html import page
        from storyboard_cli.board.panels import link_panels, missing_reasons
        from storyboard_cli.board.sheet import Portrait, sheet

        view = self.project(project)
        shown = view["shots_task"]
        reasons = missing_reasons(self.store.task_renders(shown["id"])) if shown else {}

        def linked(character: dict[str, Any]) -> Portrait:
            key = character["reference_key"]
            url = key and (frame_url({"image_key": key}) if frame_url else self._signed(key))
            return Portrait(character["name"], character["description"], url=url,
                            suffix=Path(key or ".png").suffix)

        return page(sheet(view, portray=linked),
                    link_panels(view["shots"], reasons, frame_url), "storyboard serve")

    def _signed(self, key: str) -> str:
        """A presigned link to an object of the bucket."""
        from storyboard_contract.s3 import presign_get

        return presign_get(self.s3, self.config.s3.bucket, key, self.config.s3.link_expiry)[0]

    def frame(self, key: str) -> OpenFrame:
        """A shot's image by its key, opened in the bucket to be streamed (the web board's
        frames, through `storyboard serve`). Only a key the store recorded for a shot or a
        render is read: the bucket's other objects stay out of reach."""
        from storyboard_contract.s3 import open_object

        if not self.store.image_recorded(key):
            raise NotFound(f"no shot of this store has an image with the key {key!r}")
        answer = open_object(self.s3, self.config.s3, key, f"reading {key}")
        if answer is None:
            raise NotFound(f"the image {key!r} is gone from the bucket; render the shot "
                           "again (regen-shot)")
        body = answer["Body"]
        return OpenFrame(body.iter_chunks(FRAME_CHUNK_BYTES), answer["ContentLength"],
                         answer.get("ContentType") or "image/png", body.close)

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
