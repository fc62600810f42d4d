"""`storyboard serve` fixtures: the real command in its own process, on a free port, over the
session's real Redis, SeaweedFS and sketch GPU daemon, with a real `storyboard worker`.

- ``served``: one server for the session (API token set), its stack and an httpx client.
- ``read_events``: a task's Server-Sent Events read to the end, as (event, data) pairs.
- ``log_in``: a web board login as a browser makes it (the form's POST, with its Origin),
  for httpx clients.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fixtures_queue import QueueStack, storyboard_argv, write_stack

from storyboard_cli.stack import processes


@dataclass
class Served:
    url: str
    token: str
    stack: QueueStack
    proc: processes.Process

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def client(self, **kwargs: Any) -> httpx.Client:
        """A client of the API sending the token (headers={} to send none)."""
        kwargs.setdefault("headers", self.headers)
        return httpx.Client(base_url=self.url, timeout=30, **kwargs)

    def browser(self) -> httpx.Client:
        """A client without the token that sends what a browser on the board's page sends
        with a change: the page's Origin. Log it in with log_in."""
        return httpx.Client(base_url=self.url, timeout=30, headers={"Origin": self.url})

    @property
    def log(self) -> str:
        return self.proc.log_path.read_text(encoding="utf-8", errors="replace")

    def wait_task(self, api: httpx.Client, task_id: str, timeout: float = 60
                  ) -> dict[str, Any]:
        """GET /api/tasks/{id} until the task has finished; its task object."""
        answer: dict[str, Any] = {}

        def finished() -> bool:
            answer.update(api.get(f"/api/tasks/{task_id}").json())
            return answer["status"] in ("succeeded", "failed", "cancelled")

        self.stack.wait_for(finished, timeout, f"task {task_id} to finish")
        return answer


def start_serve(stack: QueueStack, token: str, *args: str, env: dict[str, str] | None = None
                ) -> tuple[processes.Process, str]:
    """`storyboard serve` for `stack` on a free port, ready (its /healthz answers); `env`:
    settings of its own (STORYBOARD_SERVER_SESSION_EXPIRY=...)."""
    holder: dict[str, int] = {}

    def make() -> processes.Process:
        holder["port"] = processes.free_port()
        return processes.Process(
            "serve", [*storyboard_argv(), "serve", "--port", str(holder["port"]), *args],
            stack.root / f"serve-{holder['port']}.log",
            env={**stack.env, "STORYBOARD_API_TOKEN": token, **(env or {})}, cwd=stack.root)

    proc = processes.start_with_retry(
        make, lambda p: processes.http_ok(f"http://127.0.0.1:{holder['port']}/healthz"),
        timeout=30)
    return proc, f"http://127.0.0.1:{holder['port']}"


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory, redis_server: Any, s3_server: Any,
           sketch_daemon: Any) -> Iterator[Served]:
    tag = secrets.token_hex(4)
    # Queues of its own: other tests flush and use the session's Redis database.
    stack = write_stack(tmp_path_factory.mktemp("serve"), redis_server.url, s3_server,
                        sketch_daemon.url, sketch_daemon.token,
                        queue={"plan_queue": f"plan-{tag}", "render_queue": f"render-{tag}"})
    token = secrets.token_urlsafe(24)
    proc, url = start_serve(stack, token)
    stack.start_worker()
    yield Served(url, token, stack, proc)
    proc.stop()
    stack.stop_workers()


def read_events(api: httpx.Client, task_id: str) -> list[tuple[str, Any]]:
    """The task's event stream read to its end: ("progress", snapshot), ..., ("task", task
    object); heartbeats as ("heartbeat", None)."""
    got: list[tuple[str, Any]] = []
    with api.stream("GET", f"/api/tasks/{task_id}/events") as answer:
        assert answer.status_code == 200, answer.read()
        assert answer.headers["content-type"].startswith("text/event-stream")
        block: list[str] = []
        for line in answer.iter_lines():
            if line:
                block.append(line)
                continue
            if block == [": heartbeat"]:
                got.append(("heartbeat", None))
            elif block:
                fields = dict(item.split(": ", 1) for item in block)
                got.append((fields["event"], json.loads(fields["data"])))
            block = []
    return got


def log_in(client: httpx.Client, token: str, next_path: str = "/") -> httpx.Response:
    """The login form's POST, as the browser sends it (form fields, the page's Origin); the
    answer (303 and the session cookie when the token is right). The client keeps the
    cookie."""
    origin = str(client.base_url).rstrip("/")
    return client.post("/login", data={"token": token, "next": next_path},
                       headers={"Origin": origin}, follow_redirects=False)
