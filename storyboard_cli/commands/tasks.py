"""generate, regen-shot, status, links, retry, worker: tasks through Redis/RQ workers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from storyboard_cli import output
from storyboard_cli.commands.common import ConfigOpt, Context, DebugOpt, JsonOpt, command
from storyboard_cli.errors import EXIT_TASK_FAILED

if TYPE_CHECKING:
    from redis import Redis

NoWaitOpt = Annotated[
    bool, typer.Option("--no-wait", help="Queue the task and return at once with its id.")
]
TimeoutOpt = Annotated[
    float | None,
    typer.Option(help="Stop waiting after this many seconds (exit 4; the task keeps running).",
                 min=0, show_default=False),
]
QUEUED = "Task queued successfully"


def _redis(ctx: Context) -> Redis:
    from storyboard_cli.jobs import connect_redis

    return connect_redis(ctx.config.redis.url)


def _queued(
    ctx: Context, redis: Redis, task_id: str, no_wait: bool, timeout: float | None,
    json_out: bool, extra: dict[str, Any] | None = None,
) -> None:
    """After queueing: print the queued answer, or follow the task to its end."""
    _warn_without_workers(ctx, redis)
    if no_wait:
        if json_out:
            output.print_json({"message": QUEUED, "task_id": task_id, "status": "pending",
                               **(extra or {})})
        else:
            print(task_id)
            output.info(f"Queued. Follow it: storyboard status {task_id} --watch")
        return
    from storyboard_cli.progress import follow

    _print_outcome(follow(ctx.store, task_id, timeout), json_out)


def _warn_without_workers(ctx: Context, redis: Redis) -> None:
    from rq import Queue, Worker

    name = ctx.config.queue.plan_queue
    if not Worker.count(connection=redis, queue=Queue(name, connection=redis)):
        output.info(f"[yellow]Note:[/] no worker is listening on {output.escape(name)} yet; "
                    "start one with: storyboard worker")


def _print_outcome(view: dict[str, Any], json_out: bool) -> None:
    """The task object (or a table of its shots); exit 1 if the task failed."""
    if json_out:
        output.print_json(view)
    else:
        _print_task(view)
    if view["status"] == "failed":
        output.error(f"task {view['id']} failed: {view['error']}")
        output.info(f"Run again what failed: storyboard retry {view['id']}")
        raise typer.Exit(EXIT_TASK_FAILED)


def _print_task(view: dict[str, Any]) -> None:
    from storyboard_cli.render_text import shots_table

    p = view["progress"]
    output.stdout.print(
        f"Task {view['id']} ({view['type']}, project {view['project_id']}): {view['status']}, "
        f"{p['done']}/{p['total']} shots rendered", markup=False,
    )
    if view["error"]:
        output.stdout.print(f"error: {view['error']}", markup=False)
    if view["shots"]:
        output.stdout.print(shots_table(view["shots"]))
        _print_links(view["shots"], view["project_id"])


def _print_links(shots: list[dict[str, Any]], project_id: int) -> None:
    """Whole links, one per line: the table cuts long URLs to its width."""
    linked = [s for s in shots if s["image_url"]]
    if not linked:
        return
    output.stdout.print(f"\nImage links (renew with: storyboard links {project_id}):")
    for s in linked:
        output.stdout.print(f"  shot {s['index'] + 1}: {s['image_url']}", markup=False,
                            soft_wrap=True)


@command
def generate(
    project: Annotated[str, typer.Argument(help="Project id or exact title.")],
    style: Annotated[
        str | None, typer.Option(help="Style for this run [default: the project's].")
    ] = None,
    no_images: Annotated[
        bool, typer.Option("--no-images", help="Plan the shot list only, render nothing.")
    ] = False,
    no_wait: NoWaitOpt = False,
    timeout: TimeoutOpt = None,
    config: ConfigOpt = None,
    json_out: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Plan a project's shot list and render one image per shot on the GPU daemon.

    Waits with progress bars and prints the shots with links, unless --no-wait.

    Example: storyboard generate 1 --no-wait --json | jq -r .task_id
    """
    from storyboard_cli.jobs import submit_storyboard

    ctx = Context(config)
    project_id = ctx.store.find_project(project)["id"]
    redis = _redis(ctx)
    task = submit_storyboard(ctx.store, redis, ctx.config, project_id,
                             style.strip() if style else None, no_images)
    _queued(ctx, redis, task["id"], no_wait, timeout, json_out)


@command
def regen_shot(
    shot_id: Annotated[int, typer.Argument(help="Shot id (see `storyboard show PROJECT`).")],
    prompt: Annotated[
        str | None, typer.Option(help="New prompt [default: the shot's stored prompt].")
    ] = None,
    style: Annotated[str | None, typer.Option(help="Style [default: the project's].")] = None,
    seed: Annotated[
        int | None, typer.Option(help="Seed [default: a fresh random one, recorded].")
    ] = None,
    no_wait: NoWaitOpt = False,
    timeout: TimeoutOpt = None,
    config: ConfigOpt = None,
    json_out: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Render one shot again (a shot_generation task); only that shot's image changes.

    Example: storyboard regen-shot 7 --prompt "the keeper at dawn, wide shot" --seed 42
    """
    from storyboard_cli.jobs import submit_regen

    ctx = Context(config)
    redis = _redis(ctx)
    task = submit_regen(ctx.store, redis, ctx.config, shot_id, prompt,
                        style.strip() if style else None, seed)
    _queued(ctx, redis, task["id"], no_wait, timeout, json_out)


@command
def status(
    task_id: Annotated[str, typer.Argument(help="Task id (printed by generate/regen-shot).")],
    watch: Annotated[
        bool,
        typer.Option("--watch", help="Follow the task until it ends; exit 1 if it failed. "
                     "With --json, print the final task object once."),
    ] = False,
    timeout: TimeoutOpt = None,
    config: ConfigOpt = None,
    json_out: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Show one task: status, progress, error and its shots with links.

    Example: storyboard status "$TASK" --watch --json | jq -e '.status == "succeeded"'
    """
    ctx = Context(config)
    if watch:
        from storyboard_cli.progress import follow

        _print_outcome(follow(ctx.store, task_id, timeout), json_out)
        return
    view = ctx.store.task_view(task_id)
    if json_out:
        output.print_json(view)
    else:
        _print_task(view)


@command
def links(
    project: Annotated[str, typer.Argument(help="Project id or exact title.")],
    expires: Annotated[
        int | None,
        typer.Option(help="Link lifetime in seconds, at most 604800 [default: s3.link_expiry].",
                     show_default=False),
    ] = None,
    config: ConfigOpt = None,
    json_out: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Fresh presigned links for every shot image of a project (nothing is rendered again).

    Example: storyboard links 1 --expires 3600 --json | jq -r '.[].image_url'
    """
    from storyboard_cli.links import resign_project

    ctx = Context(config)
    project_id = ctx.store.find_project(project)["id"]
    shots = resign_project(ctx.store, ctx.config.s3, project_id,
                           expires or ctx.config.s3.link_expiry)
    if json_out:
        output.print_json(shots)
        return
    if not any(s["image_key"] for s in shots):
        output.info(f"No images yet: storyboard generate {project_id}")
        return
    from storyboard_cli.render_text import shots_table

    output.stdout.print(shots_table(shots))
    _print_links(shots, project_id)


@command
def retry(
    task_id: Annotated[str, typer.Argument(help="A failed task's id.")],
    no_wait: NoWaitOpt = False,
    timeout: TimeoutOpt = None,
    config: ConfigOpt = None,
    json_out: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Run again only what failed: the planning, or the shots that failed; done shots stay.

    Example: storyboard retry 3f2a9c1e-... --no-wait --json
    """
    from storyboard_cli.jobs import retry_task

    ctx = Context(config)
    redis = _redis(ctx)
    again = retry_task(ctx.store, redis, ctx.config, task_id)
    if not json_out:
        what = "the planning" if again["planning"] else f"{len(again['shots'])} shot(s)"
        output.info(f"Retrying {what} of task {task_id}.")
    _queued(ctx, redis, task_id, no_wait, timeout, json_out,
            {"retried": {"planning": again["planning"], "shots": again["shots"]}})


@command
def worker(
    burst: Annotated[
        bool, typer.Option("--burst", help="Quit when no work is left (none queued, "
                           "scheduled for retry or running elsewhere).")
    ] = False,
    queues: Annotated[
        list[str] | None,
        typer.Option("--queues", "-q", help="Queues to take jobs from (repeat or comma-separate; "
                     "`plan` and `render` name the configured ones) [default: both].",
                     show_default=False),
    ] = None,
    max_jobs: Annotated[
        int | None, typer.Option(help="Quit after this many jobs.", min=1, show_default=False)
    ] = None,
    name: Annotated[
        str | None, typer.Option(help="Worker name [default: host.pid.random].")
    ] = None,
    config: ConfigOpt = None,
    json_out: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Run an RQ worker for this system's queues (plan and render jobs); logs on stderr.

    Example: storyboard worker --burst
    """
    import logging

    from storyboard_cli.worker import run_worker

    logging.basicConfig(level=logging.DEBUG if debug else logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    worked = run_worker(Context(config).config, queues or [], burst, max_jobs, name)
    if json_out:
        output.print_json({"worked": worked})


def register(app: typer.Typer) -> None:
    app.command()(generate)
    app.command("regen-shot")(regen_shot)
    app.command()(status)
    app.command()(links)
    app.command()(retry)
    app.command()(worker)
