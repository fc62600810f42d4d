"""A small OpenAI-compatible LLM server for the tests: it stands for the external service.

``llm_server`` speaks POST /v1/chat/completions on a free loopback port, in a thread.
Tests script its answers in order (``server.answer(...)``) and read back what it received
(``server.requests``: headers and JSON bodies), so they see exactly what the planner sent.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


@dataclass
class Answer:
    """One scripted reply: message content with 200, or an HTTP error with a body; `raw`: a
    body sent as it is (an HTML page, prose) with `content_type`, whatever the status."""

    content: str | None = None
    status: int = 200
    body: Any = None
    delay_s: float = 0.0
    raw: str | None = None
    content_type: str = "text/html; charset=utf-8"


@dataclass
class Received:
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class LLMServer:
    port: int = 0
    answers: deque[Answer] = field(default_factory=deque)
    # What GET /v1/models lists (ids); None: the route answers 404, as on some services.
    models: list[str] | None = None
    requests: list[Received] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def answer(self, *answers: str | Answer) -> None:
        for a in answers:
            self.answers.append(a if isinstance(a, Answer) else Answer(content=a))


def _completion(model: str, content: str | None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": content},
            "finish_reason": "stop",
        }],
        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
    }


def _handler(server: LLMServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path != "/v1/models" or server.models is None:
                return self._send(404, {"error": {"message": f"no route {self.path}"}})
            self._send(200, {"object": "list",
                             "data": [{"id": m, "object": "model"} for m in server.models]})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            body = json.loads(self.rfile.read(length) or b"{}")
            server.requests.append(Received(dict(self.headers.items()), body))
            if self.path != "/v1/chat/completions":
                return self._send(404, {"error": {"message": f"no route {self.path}"}})
            if not server.answers:
                return self._send(500, {"error": {"message": "no scripted answer left"}})
            answer = server.answers.popleft()
            time.sleep(answer.delay_s)
            if answer.raw is not None:
                return self._send(answer.status, answer.raw.encode(), answer.content_type)
            if answer.status != 200:
                return self._send(answer.status, answer.body)
            self._send(200, _completion(body.get("model", ""), answer.content))

        def _send(self, status: int, payload: Any,
                  content_type: str = "application/json") -> None:
            data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up waiting (timeout tests)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextlib.contextmanager
def serving_llm() -> Iterator[LLMServer]:
    """An LLMServer for as long as the block runs (for fixtures of any scope)."""
    server = LLMServer()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(server))
    httpd.daemon_threads = True
    server.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), name="llm-server",
                              daemon=True)
    thread.start()
    try:
        yield server
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture
def llm_server() -> Iterator[LLMServer]:
    with serving_llm() as server:
        yield server
