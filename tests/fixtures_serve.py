"""`storyboard serve` fixtures: the real command in its own process, on a free port, over the
session's real Redis, SeaweedFS and sketch GPU daemon, with a real `storyboard worker`.

- ``served``: one server for the session (API token set), its stack and an httpx client.
- ``read_events``: a task's Server-Sent Events read to the end, as (event, data) pairs.
- ``log_in``: a web board login as a browser makes it (the form's POST, with its Origin),
  for httpx clients.
- ``PortForward``: a port forwarded to another, as `ssh -L` does for a laptop.
- ``PrefixProxy``: a reverse proxy serving a server under a path prefix, stripped (nginx).
"""

from __future__ import annotations

import json
import secrets
import socket
import threading
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


class PortForward:
    """What `ssh -L PORT:127.0.0.1:TARGET host` gives a laptop: a local port whose connections
    carry their bytes, both ways, to another port."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.open: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                near, _ = self.listener.accept()
            except OSError:  # closed
                return
            far = socket.create_connection(("127.0.0.1", self.target))
            self.open += [near, far]
            for source, sink in ((near, far), (far, near)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
            sink.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def close(self) -> None:
        self.listener.close()
        for conn in self.open:
            conn.close()


HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "upgrade", "te", "trailer"}
# What the proxy's own server adds to every answer.
ANSWERED = {"date", "server"}


class PrefixProxy:
    """A reverse proxy serving `upstream` under `prefix`, the prefix stripped, as the README's
    nginx does (`location /storyboard/ { proxy_pass http://127.0.0.1:8080/; proxy_set_header
    Host $host; proxy_buffering off; }`): the browser's Host passed on, X-Forwarded-For added,
    answers streamed (Server-Sent Events arrive as they are sent)."""

    def __init__(self, prefix: str, upstream: str) -> None:
        import uvicorn

        self.prefix, self.upstream = prefix.rstrip("/"), upstream
        self.port = processes.free_port()
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, lifespan="off",
                                interface="asgi3",
                                log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        assert processes.wait_until(lambda: self.server.started, 10)

    async def app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        path = scope["path"]
        if not path.startswith(self.prefix + "/"):
            await send({"type": "http.response.start", "status": 404, "headers": []})
            await send({"type": "http.response.body", "body": b"not under the prefix"})
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        query = scope["query_string"].decode()
        target = path[len(self.prefix):] + (f"?{query}" if query else "")
        headers = [(k.decode(), v.decode()) for k, v in scope["headers"]
                   if k.decode().lower() not in HOP_BY_HOP]
        headers.append(("x-forwarded-for", scope["client"][0]))
        async with httpx.AsyncClient(base_url=self.upstream, timeout=None) as client:
            request = client.build_request(scope["method"], target, headers=headers,
                                           content=body)
            answer = await client.send(request, stream=True)
            try:
                await send({"type": "http.response.start", "status": answer.status_code,
                            "headers": [(k.encode(), v.encode())
                                        for k, v in answer.headers.multi_items()
                                        if k.lower() not in HOP_BY_HOP | ANSWERED]})
                async for chunk in answer.aiter_raw():
                    await send({"type": "http.response.body", "body": chunk,
                                "more_body": True})
                await send({"type": "http.response.body", "body": b""})
            finally:
                await answer.aclose()

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
