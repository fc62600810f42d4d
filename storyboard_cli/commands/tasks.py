"""generate, regen-shot, status, tasks, links, retry, cancel, worker: tasks through Redis/RQ
workers."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from storyboard_cli import output
from storyboard_cli.commands.common import (
    PROJECT,
    SHOT,
    TASK_ID,
    Command,
    ConfigAndService,
    argument,
    command,
    common_options,
    print_newest,
    service_options,
)
from storyboard_contract.errors import EXIT_TASK_FAILED

if TYPE_CHECKING:
    from storyboard_cli.service import Service

no_wait_option = click.option(
    "--no-wait", is_flag=True, help="Queue the task and return at once with its id."
)
timeout_option = click.option(
    "--timeout", type=click.FloatRange(min=0),
    help="Stop waiting after this many seconds (exit 4; the task keeps running).",
)


def _queued(service: Service, answer: dict[str, Any], no_wait: bool, timeout: float | None,
            json_out: bool) -> None:
    """After queueing: print the queued answer, or follow the task to its end."""
    if not service.workers_listening():
        output.info("[yellow]Note:[/] no worker is listening for tasks yet; start one with: "
                    "storyboard worker")
    task_id = answer["task_id"]
    if no_wait:
        if json_out:
            output.print_json(answer)
        else:
            print(task_id)
            output.info(f"Queued. Follow it: storyboard status {task_id} --watch")
        return
    _follow(service, task_id, timeout, json_out)


def _follow(service: Service, task: str, timeout: float | None, json_out: bool) -> None:
    from storyboard_cli.tasks.progress import follow, interrupted

    task_id = service.resolve_task(task)
    try:
        follow(service.watch(task_id), timeout)
        view = service.task(task_id)
    except KeyboardInterrupt:
        raise interrupted(task_id) from None
    _print_outcome(view, json_out)


def _print_outcome(view: dict[str, Any], json_out: bool, links: bool = True) -> None:
    """The task object (or a table of its shots, and unless not `links` their links); exit 1
    if the task failed or was cancelled."""
    from storyboard_cli.store.status import TaskStatus

    if json_out:
        output.print_json(view)
    else:
        _print_task(view, links)
    if view["status"] == TaskStatus.FAILED:
        output.error(f"task {view['id']} failed: {view['error']}")
        output.info(f"Run again what failed: storyboard retry {view['id']}")
        raise click.exceptions.Exit(EXIT_TASK_FAILED)
    if view["status"] == TaskStatus.CANCELLED:
        output.error(f"task {view['id']} was cancelled")
        output.info(f"Resume it: storyboard retry {view['id']}")
        raise click.exceptions.Exit(EXIT_TASK_FAILED)


def _print_task(view: dict[str, Any], links: bool = True) -> None:
    from storyboard_cli.commands.text import print_links, print_warnings, shots_table, task_line

    output.stdout.print(f"Task {view['id']} ({view['type']}, project {view['project_id']}): "
                        f"{task_line(view)}", markup=False, soft_wrap=True)
    if view["error"]:
        output.stdout.print(f"error: {output.visible(view['error'])}", markup=False,
                            soft_wrap=True)
    print_warnings(view)
    if view["shots"]:
        output.stdout.print(shots_table(view["shots"]))
        if links:
            print_links(view["shots"], view["project_id"], current=False)


@click.command("generate", cls=Command)
@argument("project", "Project id or exact title.", type=PROJECT)
@click.option("--style", help="Style for this run [default: the project's].")
@click.option("--no-images", is_flag=True, help="Plan the shot list only, render nothing.")
@click.option("--stale", is_flag=True, help="Plan nothing: render only the stale panels of "
              "the storyboard `show` lists (edited since rendered; approved ones aside).")
@no_wait_option
@timeout_option
@service_options
@command
def generate(
    project: str, style: str | None, no_images: bool, stale: bool, no_wait: bool,
    timeout: float | None, config: Path | None, json_out: bool, debug: bool,
) -> None:
    """Plan a project's shot list and render one image per shot on the GPU daemon. Approved
    panels of the storyboard before are kept as they are (matched by their text).

    Waits with progress bars and prints the shots with links, unless --no-wait.

    \b
    Example: storyboard generate 1 --no-wait --json | jq -r .task_id
             storyboard generate lighthouse --stale   # after edits
    """
    service = ConfigAndService(config).service
    _queued(service, service.generate(project, style, no_images, stale=stale), no_wait,
            timeout, json_out)


@click.command("regen-shot", cls=Command)
@argument("shot", "PROJECT/NUMBER (project id or title, the shot number `storyboard show` "
          "prints) or a shot id.", type=SHOT)
@click.option("--prompt", help="New prompt [default: the shot's stored prompt].")
@click.option("--style", help="Style [default: the project's].")
@click.option("--seed", type=int, help="Seed [default: a fresh random one, recorded].")
@click.option("--keep-seed", is_flag=True,
              help="The seed of the shot's image: with nothing else changed, the same image.")
@no_wait_option
@timeout_option
@service_options
@command
def regen_shot(
    shot: str, prompt: str | None, style: str | None, seed: int | None, keep_seed: bool,
    no_wait: bool, timeout: float | None, config: Path | None, json_out: bool, debug: bool,
) -> None:
    """Render one shot again (a shot_generation task); only that shot's image changes.

    The shot is one of the storyboard `storyboard show PROJECT` lists; a shot of an older
    (superseded) or a cancelled storyboard is refused. It renders with the project's
    settings (`storyboard settings`) as they are now.

    \b
    Example: storyboard regen-shot lighthouse/3 --prompt "the keeper at dawn, wide shot"
             storyboard regen-shot 1/3 --seed 42
             storyboard regen-shot 1/3 --keep-seed    # the same image again
    """
    service = ConfigAndService(config).service
    _queued(service, service.regen_shot(shot, prompt, style, seed, keep_seed), no_wait,
            timeout, json_out)


TASK_HELP = "Task id, or its first 8 characters or more (as progress lines print it)."


@click.command("status", cls=Command)
@argument("task_id", TASK_HELP, type=TASK_ID)
@click.option("--watch", is_flag=True, help="Follow the task until it ends; exit 1 if it "
              "failed or was cancelled. With --json, print the final task object once.")
@timeout_option
@service_options
@command
def status(
    task_id: str, watch: bool, timeout: float | None, config: Path | None, json_out: bool,
    debug: bool,
) -> None:
    """Show one task: status, progress, error and its shots with links.

    \b
    Example: storyboard status "$TASK" --watch --json | jq -e '.status == "succeeded"'
             storyboard status 6be56089
    """
    service = ConfigAndService(config).service
    if watch:
        _follow(service, task_id, timeout, json_out)
        return
    view = service.task(task_id)
    if json_out:
        output.print_json(view)
    else:
        _print_task(view)


task_option = click.option(
    "--task", metavar="TASK_ID",
    help="A storyboard task of the project (see `storyboard tasks PROJECT`) [default: the "
    "storyboard `show` lists].",
)


@click.command("links", cls=Command)
@argument("project", "Project id or exact title.", type=PROJECT)
@click.option("--expires", type=int,
              help="Link lifetime in seconds, at most 604800 [default: s3.link_expiry].")
@task_option
@service_options
@command
def links(
    project: str, expires: int | None, task: str | None, config: Path | None, json_out: bool,
    debug: bool,
) -> None:
    """Fresh presigned links for every shot image and the shot-list script of the storyboard
    `show` lists (nothing is rendered again); with --json, the project object with the new
    links.

    \b
    Example: storyboard links 1 --expires 3600 --json | jq -r '.shots[].image_url'
    """
    view = ConfigAndService(config).service.links(project, expires, task)
    if json_out:
        output.print_json(view)
        return
    from storyboard_cli.commands.text import print_links, shots_table

    shots = view["shots"]
    pid = view["id"]
    if not any(s["image_key"] for s in shots):
        output.info(f"No images in this storyboard yet: storyboard generate {pid}")
    else:
        output.stdout.print(shots_table(shots))
        print_links(shots, pid, current=task is None)
    if view["frames_task"]:
        output.info(f"The latest frames are task {view['frames_task']['id']}'s: "
                    f"storyboard links {pid} --task {view['frames_task']['id'][:8]}")
    if view["script_url"]:
        output.stdout.print(f"\nShot list: {output.visible(view['script_url'])}", markup=False,
                            soft_wrap=True)


@click.command("retry", cls=Command)
@argument("task_id", "A failed or cancelled task's id (or its first 8 characters or more).",
          type=TASK_ID)
@no_wait_option
@timeout_option
@service_options
@command
def retry(
    task_id: str, no_wait: bool, timeout: float | None, config: Path | None, json_out: bool,
    debug: bool,
) -> None:
    """Run again only what failed or was cancelled: the planning, or the shots not done;
    done shots stay.

    \b
    Example: storyboard retry 3f2a9c1e --no-wait --json
    """
    service = ConfigAndService(config).service
    answer = service.retry(task_id)
    if not json_out:
        again = answer["retried"]
        what = "the planning" if again["planning"] else f"{len(again['shots'])} shot(s)"
        output.info(f"Retrying {what} of task {answer['task_id']}.")
    _queued(service, answer, no_wait, timeout, json_out)


@click.command("cancel", cls=Command)
@argument("task_id", TASK_HELP, type=TASK_ID)
@service_options
@command
def cancel(task_id: str, config: Path | None, json_out: bool, debug: bool) -> None:
    """Cancel a pending or running task: its queued jobs leave the queue, a render in
    progress stops at its next step, and the task is marked cancelled. Shots already
    rendered keep their images; `storyboard retry` resumes the rest.

    \b
    Example: storyboard cancel 6be56089 && storyboard retry 6be56089
    """
    view = ConfigAndService(config).service.cancel(task_id)
    if json_out:
        output.print_json(view)
        return
    jobs, p = view["jobs"], view["progress"]
    stopping = f", {jobs['stopping']} running job(s) stop at their next step" \
        if jobs["stopping"] else ""
    output.stdout.print(f"Cancelled task {view['id']} ({p['done']}/{p['total']} shots rendered; "
                        f"{jobs['removed']} queued job(s) removed{stopping}).", markup=False,
                        soft_wrap=True)
    output.info(f"Resume it: storyboard retry {view['id']}")


@click.command("tasks", cls=Command)
@argument("project", "Project id or exact title [default: every project].", required=False,
          type=PROJECT)
@click.option("--limit", type=click.IntRange(min=0), default=20, show_default=True, metavar="N",
              help="Show this many, newest first (0: all).")
@service_options
@command
def tasks(project: str | None, limit: int, config: Path | None, json_out: bool,
          debug: bool) -> None:
    """List tasks, newest first, with their status and progress (--json: task objects
    without their shots).

    \b
    Example: storyboard tasks lighthouse
             storyboard tasks --json | jq -r '.[] | select(.status == "failed") | .id'
    """
    from storyboard_cli.commands.text import print_tasks

    print_newest(ConfigAndService(config).service.tasks(project, limit or None), json_out,
                 limit, "No tasks yet: storyboard generate PROJECT", print_tasks)


@click.command("worker", cls=Command)
@click.option("--burst", is_flag=True, help="Quit when no work is left (none queued, "
              "scheduled for retry or running elsewhere).")
@click.option("--queues", "-q", multiple=True,
              help="Queues to take jobs from (repeat or comma-separate; `plan` and `render` "
              "name the configured ones) [default: both].")
@click.option("--max-jobs", type=click.IntRange(min=1), help="Quit after this many jobs.")
@click.option("--name", help="Worker name [default: host.pid.random].")
@common_options
@command
def worker(
    burst: bool, queues: tuple[str, ...], max_jobs: int | None, name: str | None,
    config: Path | None, json_out: bool, debug: bool,
) -> None:
    """Run an RQ worker for this system's queues (plan and render jobs); logs on stderr.

    \b
    Example: storyboard worker --burst
    """
    import logging

    from storyboard_cli.tasks.worker import run_worker

    logging.basicConfig(level=logging.DEBUG if debug else logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    worked = run_worker(ConfigAndService(config).config, list(queues), burst, max_jobs, name)
    if json_out:
        output.print_json({"worked": worked})


def register(group: click.Group) -> None:
    for cmd in (generate, regen_shot, status, tasks, links, retry, cancel, worker):
        group.add_command(cmd)
