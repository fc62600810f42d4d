"""Queue-tier fixtures: a storyboard config wired to the session's real Redis, SeaweedFS and
GPU daemon, and `storyboard worker` processes started as subprocesses and stopped by pid.

- ``stack``: a QueueStack for the test (fresh Redis database and store, sketch daemon).
- ``make_stack``: the same against another daemon URL/token or other [queue] settings.
- ``stored_storyboard``: a planned (and rendered) storyboard task written straight to a store.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from storyboard_cli import views
from storyboard_cli.stack import processes
from storyboard_cli.store import Store
from storyboard_cli.tasks.jobs import connect_redis, planned_row, submit_storyboard
from storyboard_contract.config import Config, load_config
from storyboard_contract.wire import PlannedShot

# Short heartbeats and backoffs keep recovery tests fast; the mechanisms are the same.
QUEUE_SETTINGS = {"heartbeat_s": 1, "retries": 2, "backoff": [1, 1], "job_timeout": 60}
# Small frames keep renders cheap: 16:9 frames of 344 x 192 (the workers size every frame).
IMAGE_SETTINGS = {"width": 256, "height": 256}


def storyboard_argv() -> list[str]:
    script = processes.find_binary("storyboard")
    return [script] if script else [sys.executable, "-m", "storyboard_cli.cli"]


def toml_value(value: Any) -> str:
    return json.dumps(value)  # JSON scalars and integer lists are valid TOML


@dataclass
class QueueStack:
    """A config file + environment for CLI and worker processes of one test."""

    root: Path
    config_path: Path
    env: dict[str, str]
    redis_url: str
    workers: list[processes.Process] = field(default_factory=list)

    def store(self) -> Store:
        return Store(self.root / "storyboard.db")

    def config(self) -> Config:
        return load_config(self.config_path, environ=self.env)

    def submit(self, story: str) -> str:
        """A project and a queued storyboard task, made in-process (the CLI has its own
        tests); returns the task id."""
        config, store = self.config(), self.store()
        try:
            project = store.create_project("story", story, "movie")
            task = submit_storyboard(store, connect_redis(config.redis.url), config,
                                     project["id"], None, False)
        finally:
            store.close()
        return task["id"]

    def view(self, task_id: str) -> dict[str, Any]:
        store = self.store()
        try:
            return views.task_view(store, task_id)
        finally:
            store.close()

    def run(self, *args: str, timeout: float = 60, env: dict[str, str] | None = None
            ) -> subprocess.CompletedProcess[str]:
        """`storyboard ARGS` as a subprocess, as a user runs it."""
        return subprocess.run(
            [*storyboard_argv(), *args], env={**self.env, **(env or {})}, cwd=self.root,
            capture_output=True, text=True, timeout=timeout,
        )

    def json(self, *args: str, timeout: float = 60) -> Any:
        done = self.run(*args, "--json", timeout=timeout)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    def start_worker(self, *args: str, env: dict[str, str] | None = None,
                     argv: list[str] | None = None) -> processes.Process:
        """A long-running `storyboard worker`, stopped by pid when the test ends; argv: what
        runs the `storyboard` command instead of its console script."""
        n = len(self.workers)
        proc = processes.Process(
            f"worker-{n}", [*(argv or storyboard_argv()), "worker", *args],
            self.root / f"worker-{n}.log",
            env={**self.env, **(env or {})}, cwd=self.root,
        ).start()
        self.workers.append(proc)
        return proc

    def burst(self, *args: str, timeout: float = 60, env: dict[str, str] | None = None
              ) -> subprocess.CompletedProcess[str]:
        """`storyboard worker --burst`: runs until no work is left."""
        return subprocess.run(
            [*storyboard_argv(), "worker", "--burst", *args], env={**self.env, **(env or {})},
            cwd=self.root, capture_output=True, text=True, timeout=timeout,
        )

    def wait_for(self, check: Callable[[], bool], timeout: float = 30, what: str = "") -> None:
        if not processes.wait_until(check, timeout, interval=0.05):
            logs = "\n".join(f"--- {w.name}\n{w.log_tail(30)}" for w in self.workers)
            raise AssertionError(f"timed out waiting for {what or check}\n{logs}")

    def stop_workers(self) -> None:
        # Signal all first: each worker takes about a second to leave (RQ's pubsub thread).
        for proc in self.workers:
            if proc.alive():
                os.kill(proc.pid, signal.SIGTERM)
        for proc in self.workers:
            proc.stop()
        self.workers.clear()


def write_stack(
    root: Path, redis_url: str, s3_server: Any, daemon_url: str, daemon_token: str,
    queue: dict[str, Any] | None = None, images: dict[str, Any] | None = None,
    models: dict[str, dict[str, Any]] | None = None,
) -> QueueStack:
    """models: [images.models.NAME] tables (the host checks projects' model names there)."""
    root.mkdir(parents=True, exist_ok=True)
    sections = {
        "store": {"path": "storyboard.db"},
        "redis": {"url": redis_url},
        "queue": {**QUEUE_SETTINGS, **(queue or {})},
        "images": {**IMAGE_SETTINGS, **(images or {})},
        **{f"images.models.{name}": table for name, table in (models or {}).items()},
        "daemon": {"url": daemon_url, "connect_timeout": 2.0, "read_timeout": 30.0},
        "s3": {"addressing_style": "path", "link_expiry": 3600},
    }
    lines = []
    for name, values in sections.items():
        lines.append(f"[{name}]")
        lines += [f"{k} = {toml_value(v)}" for k, v in values.items()]
    config_path = root / "storyboard.toml"
    config_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    env = {**os.environ, **s3_server.env(), "STORYBOARD_CONFIG": str(config_path),
           "STORYBOARD_DAEMON_TOKEN": daemon_token, "NO_COLOR": "1"}
    return QueueStack(root, config_path, env, redis_url)


@pytest.fixture()
def make_stack(tmp_path: Path, redis_url: str, s3_server: Any, sketch_daemon: Any
               ) -> Iterator[Callable[..., QueueStack]]:
    made: list[QueueStack] = []

    def make(daemon: Any = None, daemon_url: str | None = None, name: str = "stack",
             queue: dict[str, Any] | None = None, images: dict[str, Any] | None = None,
             models: dict[str, dict[str, Any]] | None = None) -> QueueStack:
        d = daemon or sketch_daemon
        stack = write_stack(tmp_path / name, redis_url, s3_server, daemon_url or d.url, d.token,
                            queue, images, models)
        made.append(stack)
        return stack

    yield make
    for stack in made:
        stack.stop_workers()


@pytest.fixture()
def stack(make_stack: Callable[..., QueueStack]) -> QueueStack:
    return make_stack()


def wait_status(stack: QueueStack, task_id: str, statuses: tuple[str, ...],
                timeout: float = 30) -> dict[str, Any]:
    store = stack.store()
    try:
        stack.wait_for(lambda: store.get_task(task_id)["status"] in statuses, timeout,
                       f"task {task_id} to be {'/'.join(statuses)}")
        return views.task_view(store, task_id)
    finally:
        store.close()


def renders(stack: QueueStack, task_id: str) -> list[dict[str, Any]]:
    store = stack.store()
    try:
        return store.task_renders(task_id)
    finally:
        store.close()


def assert_each_shot_once_and_done(stack: QueueStack, task_id: str, planned: int
                                   ) -> dict[str, Any]:
    view = stack.view(task_id)
    store = stack.store()
    idx = [r["idx"] for r in store.db.query("select idx from shots where task_id = ?",
                                            [task_id])]
    store.close()
    assert view["status"] == "succeeded", view["error"]
    assert sorted(idx) == list(range(planned))
    assert view["progress"] == {"done": planned, "total": planned}
    assert all(s["image_key"] and task_id in s["image_key"] for s in view["shots"])
    return view


def planned_rows(task_id: str, shots: int) -> list[dict[str, Any]]:
    return [planned_row(task_id, PlannedShot(index=k, description=f"Shot {k}.",
                                             prompt=f"shot {k}")) for k in range(shots)]


def stored_storyboard(store: Store, project_id: int, shots: int, task_id: str | None = None,
                      rendered: bool = True, no_images: bool = False,
                      script: dict[str, Any] | None = None,
                      url: str = "https://bucket.example/") -> str:
    """A storyboard task of `shots` planned shots written straight to a store: rendered
    (links `url` + shot id), planned only with its renders pending, or a --no-images plan."""
    task = store.create_task("storyboard", project_id, task_id=task_id,
                             params={"no_images": True} if no_images else None)
    store.save_plan(task["id"], project_id, planned_rows(task["id"], shots),
                    with_renders=not no_images, script=script)
    for render in store.task_renders(task["id"]) if rendered else []:
        store.finish_render(task["id"], render["shot_id"], f"k/{render['shot_id']}.png",
                            f"{url}{render['shot_id']}", "2030-01-01T00:00:00+00:00", 1)
    if no_images:
        store.succeed_task(task["id"])
    return task["id"]
