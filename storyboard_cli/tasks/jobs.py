"""The RQ jobs workers run, and the helpers the CLI uses to submit and retry tasks.

A storyboard task is a plan job (job id = task id) that stores the shot list and fans out one
render job per window of shots (job id = ``<task id>-shot-<shot id>`` of the window's first
shot; enqueue_windows); a shot_generation task is one render job (job id = task id). Jobs
carry ids only and read everything else from the store when they run, so a job that runs again
(worker killed, retry, duplicate) sees the current state: a stored plan is not planned again,
a done render is not rendered again, and writes are keyed by task and shot ids. A task's
progress and outcome are derived from its renders rows.

Windows: the plan job claims the task's shots for their windows' jobs as it queues them, up
to the daemon's max_batch each (Store.claim_windows); a render job claims, in one store
transaction, its shot, those claimed for it, and (a job queued some other way: a retry, a
stale render) the task's next waiting shots up to max_batch (Store.start_window), and sends
them in one /v1/renders request, so the daemon renders them in one pipeline call. A shot's
own job, where one runs (delivered twice, queued again by a retry), finds its shot done or
claimed, and finishes at once. The claiming job answers for its window: the shots that come
back rendered are recorded together (render_window); a shot the daemon refused fails at once;
if any failed in a way worth retrying, the job fails and its RQ retries (or the reaper, when its
worker died) run it again for the window's unfinished shots, which it claimed for good.

Cancelling (`storyboard cancel`) marks the task and its unfinished renders cancelled in the
store and takes its waiting jobs off the queues. A job that runs anyway does nothing; a render
in progress notices at its next progress event (StepWriter) and closes its daemon request,
which stops the render at the daemon.

Each worker process holds one WorkerClients (store, daemon client, Redis) for all its jobs.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from storyboard_cli.store.status import LIVE, RenderStatus, TaskStatus, TaskType
from storyboard_contract.config import redact_url
from storyboard_contract.errors import NotFound, ServiceUnavailable, UsageError

if TYPE_CHECKING:
    from redis import Redis
    from redis.retry import Retry
    from rq.job import Job

    from storyboard_cli.store import Store
    from storyboard_cli.store.renders import Finished
    from storyboard_cli.tasks.daemon_client import DaemonClient
    from storyboard_contract.config import Config, QueueConfig
    from storyboard_contract.wire import (
        Character,
        PlannedShot,
        ProgressEvent,
        RenderRequest,
        RenderResponse,
        RenderSettings,
        ShotOutcome,
        UserCast,
    )

# Diffusion steps can come every few milliseconds: write a shot's step at most this often.
STEP_WRITE_INTERVAL = 0.25
# A task's jobs in these RQ states will still run; retry leaves them alone.
ACTIVE = ("queued", "started", "scheduled", "deferred")


# --- per-process clients ---------------------------------------------------------------------


@dataclass
class WorkerClients:
    """The configuration and the clients jobs use, created once per worker process (never
    carried across a fork).

    There is no S3 client here: the daemon uploads and presigns; the host re-signs links
    with `storyboard links`.
    """

    config: Config
    store: Store
    daemon: DaemonClient
    redis: Redis
    pid: int = field(default_factory=os.getpid)

    @classmethod
    def create(cls, config: Config, redis: Redis | None = None) -> WorkerClients:
        from storyboard_cli.store import Store
        from storyboard_cli.tasks.daemon_client import DaemonClient

        return cls(
            config=config,
            store=Store(config.store_path),
            daemon=DaemonClient(config.daemon),
            redis=redis if redis is not None else worker_redis(config.redis.url),
        )

    def close(self) -> None:
        self.daemon.close()
        self.store.close()

    def follow_store(self) -> None:
        """Open the store again if it was removed or replaced on disk since it was opened:
        a long-lived worker would otherwise go on reading, and writing, a file nobody else
        sees (`rm storyboard.db` and a new project: its tasks would never progress)."""
        from storyboard_cli.store import Store

        if self.store.replaced():
            self.store.close()
            self.store = Store(self.config.store_path)


_clients: WorkerClients | None = None


def install(clients: WorkerClients) -> None:
    global _clients
    _clients = clients


def worker_clients() -> WorkerClients:
    """This process's clients; built from the default configuration when a job runs under a
    plain `rq worker`, and rebuilt in a forked child instead of reusing the parent's."""
    global _clients
    if _clients is None or _clients.pid != os.getpid():
        from storyboard_contract.config import load_config

        _clients = WorkerClients.create(load_config())
    else:
        _clients.follow_store()  # a stat a job
    return _clients


# --- Redis -----------------------------------------------------------------------------------


def connect_redis(url: str, retry: Retry | None = None) -> Redis:
    """A Redis client. Without a retry policy it gives up at once, so the CLI reports an
    unreachable Redis without delay; a worker passes one that waits out any outage
    (tasks/outage.py)."""
    from redis import Redis
    from redis.backoff import NoBackoff
    from redis.exceptions import ConnectionError, TimeoutError
    from redis.retry import Retry

    return Redis.from_url(
        url,
        socket_connect_timeout=2,
        socket_keepalive=True,
        health_check_interval=30,
        retry=retry or Retry(NoBackoff(), 0),
        retry_on_error=[ConnectionError, TimeoutError],
    )


def worker_redis(url: str) -> Redis:
    """A worker's client: each command waits out a Redis outage (tasks/outage.py)."""
    from storyboard_cli.tasks.outage import RedisOutage, WaitForRedis

    return connect_redis(url, WaitForRedis(RedisOutage(redact_url(url))))


def check_redis(redis: Redis, url: str) -> None:
    from redis.exceptions import ConnectionError, TimeoutError

    try:
        redis.ping()
    except (ConnectionError, TimeoutError) as exc:
        reason = "connection refused" if "refused" in str(exc) else str(exc)
        raise ServiceUnavailable(
            f"cannot reach Redis at {redact_url(url)} ({reason}); start it "
            "(queue/redis.conf) or set [redis].url / STORYBOARD_REDIS_URL"
        ) from None


# --- job ids, seeds, options -----------------------------------------------------------------


def render_job_id(task: dict[str, Any], shot_id: int) -> str:
    if task["type"] == TaskType.SHOT_GENERATION:
        return task["id"]
    return f"{task['id']}-shot-{shot_id}"


def system_queues(redis: Redis, cfg: QueueConfig) -> tuple[Any, Any]:
    """This system's two RQ queues: (plan, render)."""
    from rq import Queue

    return Queue(cfg.plan_queue, connection=redis), Queue(cfg.render_queue, connection=redis)


def retry_waits(cfg: QueueConfig) -> list[int]:
    """The wait before each retry: [queue].backoff with its last value repeated up to
    `retries` (given a shorter list, RQ would repeat the first one)."""
    waits = list(cfg.backoff) or [0]
    return (waits + waits[-1:] * cfg.retries)[: cfg.retries]


def _options(cfg: QueueConfig) -> dict[str, Any]:
    from rq import Callback, Retry

    return {
        "timeout": cfg.job_timeout,
        "result_ttl": cfg.result_ttl,
        "retry": Retry(max=cfg.retries, interval=retry_waits(cfg)) if cfg.retries else None,
        "on_failure": Callback(on_failure),
    }


def _enqueue(redis: Redis, queue: Any, cfg: QueueConfig, specs: list[dict[str, Any]]) -> list[str]:
    """Enqueue jobs by id unless a job with that id is still going to run.

    A finished or failed job with the same id is deleted first, so the new one starts with
    fresh retries and RQ's registries list each id once.
    """
    from rq import Queue
    from rq.job import Job

    existing = Job.fetch_many([s["job_id"] for s in specs], connection=redis)
    fresh = [s for s, job in zip(specs, existing, strict=True)
             if job is None or job.get_status(refresh=False) not in ACTIVE]
    if not fresh:
        return []
    with redis.pipeline() as pipe:
        for old in existing:
            if old is not None and old.id in {s["job_id"] for s in fresh}:
                old.delete(pipeline=pipe)
        queue.enqueue_many(
            [Queue.prepare_data(s["func"], args=s["args"], job_id=s["job_id"],
                                meta={**s["meta"], "retries": cfg.retries}, **_options(cfg))
             for s in fresh],
            pipeline=pipe,
        )
        pipe.execute()
    return [s["job_id"] for s in fresh]


def enqueue_plan(redis: Redis, cfg: QueueConfig, task_id: str) -> list[str]:
    plan_q, _ = system_queues(redis, cfg)
    spec = {"func": plan_job, "args": (task_id,), "job_id": task_id,
            "meta": {"kind": "plan", "task_id": task_id}}
    return _enqueue(redis, plan_q, cfg, [spec])


def enqueue_renders(
    redis: Redis, cfg: QueueConfig, task: dict[str, Any], shot_ids: list[int]
) -> list[str]:
    _, render_q = system_queues(redis, cfg)
    specs = [{"func": render_job, "args": (task["id"], shot_id),
              "job_id": render_job_id(task, shot_id),
              "meta": {"kind": "render", "task_id": task["id"], "shot_id": shot_id}}
             for shot_id in shot_ids]
    return _enqueue(redis, render_q, cfg, specs)


def job_states(redis: Redis, job_ids: list[str]) -> dict[str, str | None]:
    """RQ status of each job id (None: no such job)."""
    from rq.job import Job

    jobs = Job.fetch_many(job_ids, connection=redis)
    return {jid: (job.get_status(refresh=False) if job else None)
            for jid, job in zip(job_ids, jobs, strict=True)}


# --- submitting and retrying (the CLI side) ----------------------------------------------------


def submit_storyboard(
    store: Store, redis: Redis, config: Config, project_id: int, style: str | None,
    no_images: bool, revision: int | None = None, keep_unchanged: bool = False,
) -> dict[str, Any]:
    """Record a storyboard task planning revision `revision` of the project's story (None:
    its newest) and queue its plan job; returns the task row. keep_unchanged (a story
    revision): the shots whose text is unchanged keep their panels (Store.save_plan)."""
    check_redis(redis, config.redis.url)
    params = {"style": style, "no_images": no_images, "keep": keep_unchanged,
              "revision": revision or store.current_revision(project_id)}
    task = store.create_task(TaskType.STORYBOARD, project_id,
                             params={**{k: v for k, v in params.items() if v},
                                     "render": store.settings(project_id)})
    _queue_or_fail(store, config, task, enqueue_plan, redis, config.queue, task["id"])
    return task


def submit_stale(
    store: Store, redis: Redis, config: Config, project_id: int, board_id: str,
    shot_ids: list[int], style: str | None,
) -> dict[str, Any]:
    """Record a storyboard task that renders these (stale) shots of storyboard board_id, and
    queue their render jobs; it plans nothing. Returns the task row."""
    check_redis(redis, config.redis.url)
    params = {k: v for k, v in {"stale": True, "board": board_id, "style": style}.items() if v}
    task = store.create_task(TaskType.STORYBOARD, project_id,
                             params={**params, "render": store.settings(project_id)})
    store.add_renders(task["id"], shot_ids)
    _queue_or_fail(store, config, task, enqueue_renders, redis, config.queue, task, shot_ids)
    return task


def submit_regen(
    store: Store, redis: Redis, config: Config, shot_id: int, prompt: str | None,
    style: str | None, seed: int | None,
) -> dict[str, Any]:
    """Record a shot_generation task (its seed chosen now and recorded) and queue it. The
    prompt, style and seed are checked already (storyboard_cli/inputs.py)."""
    shot = store.get_shot(shot_id)
    check_redis(redis, config.redis.url)
    seed = secrets.randbelow(2**32) if seed is None else seed
    params = {"prompt": prompt, "style": style, "seed": seed,
              "render": store.settings(shot["project_id"])}
    task = store.create_task(
        TaskType.SHOT_GENERATION, shot["project_id"], shot_id=shot_id,
        params={k: v for k, v in params.items() if v is not None},
    )
    store.add_render(task["id"], shot_id, seed)
    _queue_or_fail(store, config, task, enqueue_renders, redis, config.queue, task, [shot_id])
    return task


def _queue_or_fail(
    store: Store, config: Config, task: dict[str, Any], enqueue: Callable[..., Any], *args: Any
) -> None:
    """Enqueue a just-recorded task; if Redis went away meanwhile, the task is failed (and
    retryable), not left pending forever."""
    from redis.exceptions import ConnectionError, TimeoutError

    try:
        enqueue(*args)
    except (ConnectionError, TimeoutError):
        message = f"could not queue the task: Redis at {redact_url(config.redis.url)} went away"
        store.fail_task(task["id"], message)
        raise ServiceUnavailable(message + f"; run `storyboard retry {task['id']}`") from None


def retry_task(store: Store, redis: Redis, config: Config, task_id: str) -> dict[str, Any]:
    """Run again only what failed: the planning, or the renders that are neither done nor
    still queued/running. Done renders are kept."""
    task = store.get_task(task_id)
    if task["status"] == TaskStatus.SUCCEEDED:
        raise UsageError(f"task {task_id} already succeeded; nothing to retry")
    check_redis(redis, config.redis.url)
    if plans(task) and not store.plan_stored(task_id):
        if job_states(redis, [task_id])[task_id] in ACTIVE:
            raise UsageError(f"task {task_id} is still being planned; nothing to retry")
        store.reopen_task(task_id)
        enqueue_plan(redis, config.queue, task_id)
        return {"task_id": task_id, "planning": True, "shots": []}
    unfinished = [r for r in store.task_renders(task_id) if r["status"] != RenderStatus.DONE]
    if task["type"] == TaskType.STORYBOARD:
        # An approved panel is rendered again only by an explicit regen-shot.
        approved = [r["shot_id"] for r in unfinished if store.get_shot(r["shot_id"])["approved"]]
        if approved:
            store.withdraw_renders(task_id, approved)
            unfinished = [r for r in unfinished if r["shot_id"] not in approved]
    # A shot is still going to run while its own job or the job whose window claimed it is.
    jobs_of = {r["shot_id"]: {render_job_id(task, r["shot_id"]), r["claim"] or ""}
               for r in unfinished}
    states = job_states(redis, [j for ids in jobs_of.values() for j in ids if j])
    rerun = [s for s, ids in jobs_of.items() if not any(states.get(j) in ACTIVE for j in ids)]
    if task["status"] == TaskStatus.CANCELLED and len(rerun) < len(unfinished):
        raise UsageError(f"task {task_id} is still stopping (a render of it is ending); "
                         "try again in a moment")
    if task["status"] in (TaskStatus.CANCELLED, TaskStatus.FAILED) and not unfinished:
        # Nothing left to render (planned --no-images, its last render finished before it
        # could stop, or what failed has been approved since): it is done.
        store.reopen_task(task_id)
        store.succeed_task(task_id)
        return {"task_id": task_id, "planning": False, "shots": []}
    if not rerun:
        raise UsageError(
            f"task {task_id} is {task['status']} with {len(unfinished)} shot(s) still queued "
            "or rendering; nothing to retry"
        )
    store.reopen_task(task_id, rerun)
    enqueue_renders(redis, config.queue, task, rerun)
    return {"task_id": task_id, "planning": False, "shots": rerun}


def task_job_ids(store: Store, task: dict[str, Any]) -> tuple[list[str], dict[int, str]]:
    """A task's job ids that may still run while it is unfinished (each unfinished shot's
    own job and the job whose window claimed it, and its plan job), and its unfinished shots
    with the job that answers for each."""
    unfinished = [r for r in store.task_renders(task["id"]) if r["status"] != RenderStatus.DONE]
    shots = {r["shot_id"]: r["claim"] or render_job_id(task, r["shot_id"])
             for r in unfinished}
    ids = [render_job_id(task, s) for s in shots]
    ids += [j for j in dict.fromkeys(shots.values()) if j not in ids]
    if plans(task):
        ids.append(task["id"])
    return ids, shots


def plans(task: dict[str, Any]) -> bool:
    """A task with a plan job: a storyboard task, but for one rendering stale panels."""
    from storyboard_cli.store.tasks import renders_only

    return task["type"] == TaskType.STORYBOARD and not renders_only(task)


def cancel_task(store: Store, redis: Redis, config: Config, task_id: str) -> dict[str, int]:
    """Cancel a pending or running task: the store first (a job that starts from now on does
    nothing), then its waiting jobs off the queues; a job already running stops by itself
    (module docstring). Returns how many jobs were taken off and how many are stopping."""
    from rq.job import Job

    task = store.get_task(task_id)
    if task["status"] not in LIVE:
        done, hint = {
            TaskStatus.FAILED: ("has failed", f"; run it again: storyboard retry {task_id}"),
            TaskStatus.CANCELLED: ("was cancelled", f"; resume it: storyboard retry {task_id}"),
        }.get(task["status"], (f"has {task['status']}", ""))
        raise UsageError(f"task {task_id} {done} already; nothing to cancel{hint}")
    check_redis(redis, config.redis.url)
    job_ids, _ = task_job_ids(store, task)
    store.cancel_task(task_id)
    removed = stopping = 0
    for job in Job.fetch_many(job_ids, connection=redis):
        status = job.get_status(refresh=False) if job is not None else None
        if status in ("queued", "scheduled", "deferred"):
            job.cancel()
            removed += 1
        elif status == "started":
            stopping += 1
    return {"removed": removed, "stopping": stopping}


# --- the jobs ----------------------------------------------------------------------------------

# RQ pickles what a job returns: a status goes in as its plain string (.value), so that a
# stored result never names the module an enum lives in.


def plan_job(task_id: str) -> dict[str, Any]:
    """Plan a storyboard task's shots (once) and queue a render job per window of the shots
    not yet done (enqueue_windows)."""
    from storyboard_contract.screenplay import Screenplay
    from storyboard_contract.wire import PlanRequest

    clients = worker_clients()
    store = clients.store
    task = store.get_task(task_id)
    if task["status"] == TaskStatus.SUCCEEDED:
        return {"task_status": TaskStatus.SUCCEEDED.value}
    if store.start_task(task_id) == TaskStatus.CANCELLED:
        return {"task_status": TaskStatus.CANCELLED.value}
    with_images = not task["params"].get("no_images")
    if not store.plan_stored(task_id):
        project = store.get_project(task["project_id"])
        settings = task_settings(store, task)
        width, height = clients.config.images.frame_size(project["aspect"], settings["model"])
        # A screenplay goes as its parsed scenes, prose as its text.
        screenplay = project["screenplay"] and Screenplay.model_validate_json(
            project["screenplay"])
        plan = clients.daemon.plan(PlanRequest(
            project_id=project["id"], task_id=task_id,
            story=None if screenplay else project["story"], screenplay=screenplay or None,
            style=task["params"].get("style") or project["style"],
            aspect=project["aspect"], width=width, height=height,
            render=wire_settings(settings), cast=user_cast(store, project["id"]),
        ))
        if plan.warnings:
            store.add_warnings(task_id, plan.warnings)
        if not plan.shots:
            store.fail_task(task_id, f"the planner ({plan.planner}) returned no shots")
            return {"task_status": TaskStatus.FAILED.value}
        script = None if plan.script_key is None else {
            "key": plan.script_key, "url": plan.script_url, "expires_at": plan.url_expires_at}
        store.save_plan(task_id, project["id"], [planned_row(task_id, s) for s in plan.shots],
                        with_renders=with_images,
                        characters=[c.model_dump() for c in plan.characters], script=script,
                        keep_unchanged=bool(task["params"].get("keep")))
        if store.get_task(task_id)["status"] == TaskStatus.CANCELLED:  # while it planned
            return {"task_status": TaskStatus.CANCELLED.value}
    renders = store.task_renders(task_id)
    if not with_images or not renders:  # plan only, or every panel kept from before
        store.succeed_task(task_id)
        return {"task_status": TaskStatus.SUCCEEDED.value}
    queued = enqueue_windows(clients, task, renders)
    return {"task_status": store.settle_task(task_id), "render_jobs": queued}


def enqueue_windows(clients: WorkerClients, task: dict[str, Any], renders: list[dict[str, Any]]
                    ) -> list[str]:
    """Queue the render jobs of a task's renders not done yet (the plan job's fan-out): its
    pending unclaimed shots in windows of window_size, each window claimed for the job of its
    first shot (Store.claim_windows), so one job is queued per window instead of one per
    shot; a shot claimed before (this plan job runs again) has the job that claimed it
    queued again, any other its own. A job that is still going to run is left as it is."""
    size = window_size(clients, task)
    waiting = [r for r in renders if r["status"] != RenderStatus.DONE]
    pending = [r for r in waiting if r["status"] == RenderStatus.PENDING and r["claim"] is None]
    free = [r["shot_id"] for r in pending]
    windows = {render_job_id(task, shots[0]): shots for shots in character_windows(
        [(r["shot_id"], set(json.loads(r["characters"] or "[]"))) for r in pending], size)}
    clients.store.claim_windows(task["id"], windows)
    heads = [shots[0] for shots in windows.values()]
    heads += [claimed_shot(r["claim"]) if r["claim"] else r["shot_id"]
              for r in waiting if r["shot_id"] not in free]
    return enqueue_renders(clients.redis, clients.config.queue, task,
                           list(dict.fromkeys(heads)))


def character_windows(shots: list[tuple[int, set[str]]], size: int) -> list[list[int]]:
    """Shots (id, characters, in story order) in windows of `size`: each window is the first
    shot left, then the shots left that show one of its characters, then the next ones (the
    daemon's consistency modes share a character's identity within one pipeline call; the
    store's start_window orders the shots it adds the same way). Each character's shots are
    looked up, not searched for: a plan of 10,000 shots is windowed in milliseconds."""
    import heapq

    showing: dict[str, list[int]] = {}  # character -> positions of its shots, in order
    for position, (_, characters) in enumerate(shots):
        for name in characters:
            showing.setdefault(name, []).append(position)
    taken = [False] * len(shots)
    seen = dict.fromkeys(showing, 0)  # where each character's untaken shots may begin

    def untaken(name: str) -> Iterator[int]:
        positions = showing[name]
        while seen[name] < len(positions) and taken[positions[seen[name]]]:
            seen[name] += 1
        return (positions[i] for i in range(seen[name], len(positions))
                if not taken[positions[i]])

    windows = []
    for head, (_, characters) in enumerate(shots):
        if taken[head]:
            continue
        window = [head]
        taken[head] = True
        for position in heapq.merge(*(untaken(name) for name in characters)):
            if len(window) == size:
                break
            if not taken[position]:  # a shot of two of its characters comes twice
                taken[position] = True
                window.append(position)
        # Too few sharing a character: the next shots left, which share none.
        following = head + 1
        while len(window) < size and following < len(shots):
            if not taken[following]:
                taken[following] = True
                window.append(following)
            following += 1
        windows.append([shots[p][0] for p in window])
    return windows


def claimed_shot(job_id: str) -> int:
    """The shot whose render job is job_id (render_job_id of a storyboard task)."""
    return int(job_id.rpartition("-shot-")[2])


def window_size(clients: WorkerClients, task: dict[str, Any]) -> int:
    """How many shots a render job of the task renders at once: what the daemon renders in
    one call (its max_batch, at most MAX_WINDOW); one for a regen-shot."""
    from storyboard_contract.wire import MAX_WINDOW

    if task["type"] == TaskType.SHOT_GENERATION:
        return 1
    return min(clients.daemon.max_batch(), MAX_WINDOW)


def planned_row(task_id: str, shot: PlannedShot) -> dict[str, Any]:
    from storyboard_contract.wire import shot_seed

    return {
        "idx": shot.index, "description": shot.description, "action": shot.action,
        "prompt": shot.prompt, "negative_prompt": shot.negative_prompt, "camera": shot.camera,
        "move": shot.move,
        # A parenthetical only where the script gives one: {"speaker", "line"} otherwise.
        "dialogue": [line.model_dump(exclude={"parenthetical"} if line.parenthetical is None
                                     else None) for line in shot.dialogue],
        "characters": shot.characters, "duration": shot.duration,
        "seed": shot_seed(task_id, shot.index), "scene": shot.scene,
        "scene_heading": shot.scene_heading, "scene_shot": shot.scene_shot,
    }


def user_cast(store: Store, project_id: int) -> UserCast:
    """The user's word on a project's cast, as the planner keeps it: the characters the user
    described, every character's other names, and the names never to cast (the newest, within
    the wire's bound)."""
    from storyboard_contract.wire import MAX_NOT_CHARACTERS, Character, UserCast

    cast = store.cast(project_id)
    return UserCast(
        characters=[Character(name=c["name"], description=c["description"])
                    for c in cast if c["source"] == "user"],
        aliases={c["name"]: c["aliases"] for c in cast if c["aliases"]},
        not_characters=store.not_characters(project_id)[-MAX_NOT_CHARACTERS:])


def task_settings(store: Store, task: dict[str, Any]) -> dict[str, Any]:
    """The render settings a task renders with: the project's when it was queued (a task
    queued before projects had settings: the project's now)."""
    return task["params"].get("render") or store.settings(task["project_id"])


def wire_settings(settings: dict[str, Any]) -> RenderSettings:
    """A project's stored render settings as the daemon takes them."""
    from storyboard_contract.wire import LoraRef, RenderSettings

    return RenderSettings(
        model=settings["model"], loras=[LoraRef(**lora) for lora in settings["loras"]],
        scheduler=settings["scheduler"], steps=settings["steps"],
        guidance_scale=settings["cfg"], negative_prompt=settings["negative_prompt"] or "",
        # A task queued before projects had a consistency: the daemon's.
        consistency=settings.get("consistency"))


def wire_character(character: dict[str, Any]) -> Character:
    """A cast member as the daemon takes it: its description and its identity (reference
    image's key, LoRA and trigger word), which the project's consistency mode uses."""
    from storyboard_contract.wire import Character, LoraRef

    return Character(name=character["name"], description=character["description"],
                     reference_key=character["reference_key"],
                     lora=character["lora"] and LoraRef(**character["lora"]),
                     trigger=character["trigger"])


def render_request(
    store: Store, config: Config, task: dict[str, Any], shot_id: int, seed: int
) -> RenderRequest:
    """What the daemon is asked to render for a shot of a task: its prompt (or a regen's),
    the project's style (or the task's), frame size and render settings (the task's, so
    that every shot of a task, and so every window, renders alike), the current
    descriptions and identities of the characters it shows, and the render's seed."""
    return render_requests(store, config, task, {shot_id: seed})[0]


def render_requests(store: Store, config: Config, task: dict[str, Any], seeds: dict[int, int]
                    ) -> list[RenderRequest]:
    """render_request of each shot (shot id -> seed) of a window, in that order: the
    project, its settings and its cast read once for all."""
    from storyboard_contract.wire import RenderRequest

    shots = [store.get_shot(shot_id) for shot_id in seeds]
    project = store.get_project(shots[0]["project_id"])
    cast = store.cast(project["id"])
    params = task["params"]
    settings = wire_settings(task_settings(store, task))
    width, height = config.images.frame_size(project["aspect"], settings.model)
    return [RenderRequest(
        **settings.model_dump(exclude={"negative_prompt"}),
        project_id=project["id"], shot_id=shot["id"], task_id=task["id"], index=shot["idx"],
        prompt=params.get("prompt") or shot["prompt"],
        negative_prompt=settings.negative_prompt or shot["negative_prompt"] or "",
        description=shot["description"], camera=shot["camera"] or "medium",
        characters=[wire_character(c) for c in store.shot_cast(shot, cast)],
        style=params.get("style") or project["style"], seed=seeds[shot["id"]], width=width,
        height=height,
    ) for shot in shots]


def render_job(task_id: str, shot_id: int) -> dict[str, Any]:
    """Render a window of the task's shots (module docstring): this one and the next waiting
    ones, recorded each once."""
    clients = worker_clients()
    store = clients.store
    task = store.get_task(task_id)
    render = store.get_render(task_id, shot_id)
    if render is None:
        raise NotFound(f"task {task_id} has no render of shot {shot_id}")
    job_id = render_job_id(task, shot_id)
    if render["status"] == RenderStatus.DONE and not store.job_renders(task_id, shot_id, job_id):
        return {"task_status": store.settle_task(task_id), "image_key": render["image_key"]}
    status, window = store.start_window(task_id, shot_id, job_id, window_size(clients, task))
    if status == TaskStatus.CANCELLED:
        return {"task_status": TaskStatus.CANCELLED.value}
    if not window:  # done, or in another job's window
        return {"task_status": store.settle_task(task_id), "window": 0}
    try:
        if len(window) == 1:
            status = render_one(clients, task, window[0])
        else:
            status = render_window(clients, task, window)
    except RenderCancelled:
        return {"task_status": TaskStatus.CANCELLED.value}
    return {"task_status": status or store.settle_task(task_id), "window": len(window)}


def render_one(clients: WorkerClients, task: dict[str, Any], shot_id: int) -> str:
    """One shot through /v1/render, exactly as before windows (a lone regen-shot); returns
    the task's status after it."""
    store = clients.store
    seed = store.get_render(task["id"], shot_id)["seed"]
    result = clients.daemon.render(render_request(store, clients.config, task, shot_id, seed),
                                   on_progress=StepWriter(store, task["id"], [shot_id]))
    if result.warnings:
        store.add_warnings(task["id"], result.warnings)
    return store.finish_renders(task["id"], [finished(task, shot_id, result)])


def render_window(clients: WorkerClients, task: dict[str, Any], window: list[int]
                  ) -> str | None:
    """Several shots in one /v1/renders request. The shots that come back rendered are
    recorded together, in one transaction, before the next progress event is handled and when
    the request ends however it ends (a batch's shots finish together: one write, not one a
    shot). Shots the daemon refused fail now; if others failed in a way worth retrying, the
    first such failure is raised, so that this job's retries take them again. Returns the
    task's status after the window's last record (None: nothing recorded)."""
    from storyboard_cli.tasks.daemon_client import DaemonRejected, failure
    from storyboard_contract.wire import RendersRequest

    store, task_id = clients.store, task["id"]
    seeds = {s: store.get_render(task_id, s)["seed"] for s in window}
    steps = StepWriter(store, task_id, window)
    retry: list[Exception] = []
    settled: set[int] = set()
    rendered: list[Finished] = []
    status: list[str] = []  # the task's, after each record of the window

    def record() -> None:
        if rendered:
            status.append(store.finish_renders(task_id, rendered))
            rendered.clear()

    def on_shot(outcome: ShotOutcome) -> None:
        settled.add(outcome.shot_id)
        steps.settled(outcome.shot_id)
        if outcome.result is not None:
            if outcome.result.warnings:
                store.add_warnings(task_id, outcome.result.warnings)
            rendered.append(finished(task, outcome.shot_id, outcome.result))
            return
        exc = failure(outcome.status, outcome.error or "failed", clients.daemon.where)
        if isinstance(exc, DaemonRejected):
            record()  # in order: this write settles the task too
            status.append(store.fail_render(task_id, outcome.shot_id, str(exc)))
        else:
            retry.append(exc)

    def on_progress(event: ProgressEvent) -> None:
        record()
        steps(event)

    try:
        answer = clients.daemon.render_many(
            RendersRequest(shots=render_requests(store, clients.config, task, seeds)),
            on_progress=on_progress, on_shot=on_shot)
        # The final answer holds every outcome again: one whose event went missing is
        # recorded from it, so that no shot of the window is left running.
        for outcome in answer.shots:
            if outcome.shot_id not in settled:
                on_shot(outcome)
    finally:
        # Also when the stream broke or the task was cancelled: what came back rendered is
        # kept, not rendered again.
        record()
    if retry:
        raise retry[0]
    return status[-1] if status else None


def finished(task: dict[str, Any], shot_id: int, result: RenderResponse) -> Finished:
    """What the store records of a shot's rendered image."""
    from storyboard_cli.store.renders import Finished

    return Finished(
        shot_id, result.image_key, result.image_url, result.url_expires_at, result.seed,
        prompt=task["params"].get("prompt"), image_prompt=result.prompt,
        size=(result.width, result.height),
        provenance=None if result.provenance is None else result.provenance.model_dump())


class RenderCancelled(Exception):
    """Raised from the progress callback: leaving the daemon's stream closes the request,
    and the daemon stops the render at its next step."""


class StepWriter:
    """Records the diffusion steps of a job's shots from the daemon's progress events (a state
    before the steps, such as a model loading, at once), and stops the render
    (RenderCancelled) once its task is cancelled.

    Throttled: at most every STEP_WRITE_INTERVAL, in one transaction for the shots of the
    window, written once each of them has reported since the last write (a batch's shots
    report each step together) or one reports again."""

    def __init__(self, store: Store, task_id: str, shots: list[int]) -> None:
        self.store, self.task_id, self.first = store, task_id, shots[0]
        self.shots = set(shots)
        self.pending: dict[int, tuple[int, int]] = {}
        self.last = float("-inf")

    def __call__(self, event: ProgressEvent) -> None:
        shot_id = self.first if event.shot_id is None else event.shot_id
        if event.state is not None:
            if not self.store.render_state(self.task_id, shot_id, event.state):
                raise RenderCancelled
            return
        again = shot_id in self.pending
        self.pending[shot_id] = (event.step, event.total)
        moment = time.monotonic()
        if (again or self.shots <= self.pending.keys()) and \
                moment - self.last >= STEP_WRITE_INTERVAL:
            self.last = moment
            steps, self.pending = self.pending, {}
            if not self.store.render_steps(self.task_id, steps):
                raise RenderCancelled

    def settled(self, shot_id: int) -> None:
        """The shot's outcome came: it reports no more steps."""
        self.shots.discard(shot_id)
        self.pending.pop(shot_id, None)


# --- failures ------------------------------------------------------------------------------------


def retryable(exc: BaseException) -> bool:
    """Unreachable services, timeouts and lost workers are worth another try; a request the
    daemon refused, a missing record or invalid data are not."""
    from pydantic import ValidationError

    return not isinstance(exc, UsageError | ValidationError)


def describe(exc: BaseException, job: Job) -> str:
    from pydantic import ValidationError
    from rq.exceptions import AbandonedJobError
    from rq.timeouts import JobTimeoutException

    if isinstance(exc, ValidationError):
        # A stored value the daemon would refuse (e.g. a style saved before it was checked).
        return f"invalid {exc.title}: " + "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors())
    if isinstance(exc, JobTimeoutException):
        return f"the job ran longer than queue.job_timeout ({job.timeout} s)"
    if isinstance(exc, AbandonedJobError):
        return "the worker running the job stopped"
    if isinstance(exc, UsageError | ServiceUnavailable):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def on_failure(job: Job, connection: Redis, exc_type: type, exc: BaseException, tb: Any) -> None:
    """RQ calls this after every failed attempt, before it decides about retrying."""
    from storyboard_cli.tasks.rq_adapter import failed_attempt, stop_retrying

    attempt = failed_attempt(job)
    if not retryable(exc):
        stop_retrying(job)
    message = describe(exc, job)
    if job.retries_left:
        wait = job.get_retry_interval()
        if job.meta.get("kind") == "plan":
            # What `status` and the web board say while the task waits for its next attempt.
            what = getattr(exc, "what", None) or type(exc).__name__
            worker_clients().store.plan_retrying(
                job.meta["task_id"],
                f"planning: retrying ({what}, attempt {attempt}/{job.meta.get('retries', 0)}): "
                f"{message}; next try in {wait} s")
        else:
            record_retry(job, f"{message} (attempt {attempt} failed; retrying in {wait} s)")
    else:
        record_failure(job, message if attempt == 1 else f"{message} (after {attempt} attempts)")


def failure_reason(job: Job) -> str:
    """Why a job failed, as RQ recorded it in Redis: the last line of its failure (the
    exception, or the reaper's message)."""
    from rq.results import Result

    result = job.latest_result()
    text = result.exc_string if result is not None and result.type == Result.Type.FAILED else ""
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1] if lines else "its job failed in Redis without a recorded reason"


def record_retry(job: Job, message: str) -> None:
    store = worker_clients().store
    meta = job.meta
    if meta.get("kind") == "render":
        for shot_id in store.job_renders(meta["task_id"], meta["shot_id"], job.id):
            store.render_retrying(meta["task_id"], shot_id, message)


def record_failure(job: Job, message: str, store: Store | None = None) -> None:
    """A job that will not run again: the renders it answers for (its window), or for
    planning its task, have failed."""
    store = store or worker_clients().store
    meta = job.meta
    if meta.get("kind") == "render":
        for shot_id in store.job_renders(meta["task_id"], meta["shot_id"], job.id):
            store.fail_render(meta["task_id"], shot_id, message)
    elif meta.get("kind") == "plan":
        store.fail_task(meta["task_id"], f"planning failed: {message}")
