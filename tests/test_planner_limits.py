"""A planner bug is not an outage: the planners never emit what the daemon's schema refuses,
and a daemon that fails planning with its own error fails the task at once, with the reason.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from fixtures_queue import QueueStack

from gpu_daemon.planner.rules import RulesPlanner
from storyboard_contract.wire import MAX_SHOT_LINES, NDJSON, PlannedShot

# A shouting match: more lines in each shot than a shot may hold, when squeezed into few shots.
SHOUTS = " ".join(f"“Row {i}!” Mara shouted." for i in range(60))
INTERNAL = ("internal error of the planner rules: ValidationError: 1 validation error for "
            "PlannedShot dialogue List should have at most 50 items")


def test_a_shot_of_more_lines_than_the_schema_holds_keeps_every_word_in_its_last_line() -> None:
    (shot,) = RulesPlanner().plan(SHOUTS, "movie", 1).shots

    assert len(shot.dialogue) == MAX_SHOT_LINES
    assert [line.line for line in shot.dialogue[:3]] == ["Row 0!", "Row 1!", "Row 2!"]
    last = shot.dialogue[-1]
    assert last.speaker is None and last.line.startswith("Mara: Row 49! Mara: Row 50!")
    assert last.line.endswith("Mara: Row 59!")
    PlannedShot.model_validate(shot.model_dump())  # what the daemon sends, as the worker reads it


def test_the_daemon_plans_a_story_whose_shots_would_hold_too_many_lines(stack: QueueStack
                                                                        ) -> None:
    # 24 shots (the daemon's [planner] max_shots) of 54 or 55 lines each.
    story = " ".join(f"“Row {i}!” Mara shouted." for i in range(1300))
    task_id = stack.submit(story)
    stack.start_worker()
    stack.wait_for(lambda: stack.view(task_id)["progress"]["total"] == 24
                   or stack.view(task_id)["status"] == "failed", timeout=30, what="the plan")
    task = stack.view(task_id)
    assert task["error"] is None and task["progress"]["total"] == 24, task
    assert max(len(s["dialogue"]) for s in task["shots"]) == MAX_SHOT_LINES


@pytest.fixture()
def failing_daemon() -> Iterator[tuple[str, list[str]]]:
    """An HTTP server playing a daemon whose planner fails with its own error (500), as the
    daemon answers it in its progress stream; records the paths it was asked."""
    asked: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._send(404, b'{"detail": "not here"}', "application/json")

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            asked.append(self.path)
            events = [{"event": "progress", "step": 0, "total": 2},
                      {"event": "error", "status": 500, "error": INTERNAL}]
            self._send(200, "".join(json.dumps(e) + "\n" for e in events).encode(), NDJSON)

        def _send(self, status: int, data: bytes, kind: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", asked
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_an_internal_error_of_the_daemon_fails_the_task_at_once_with_its_reason(
        make_stack: Callable[..., QueueStack], failing_daemon: tuple[str, list[str]]) -> None:
    url, asked = failing_daemon
    stack = make_stack(daemon_url=url, queue={"retries": 8, "backoff": [1]})
    task_id = stack.submit("The storm broke over the bay.")
    started = time.monotonic()
    stack.start_worker()
    stack.wait_for(lambda: stack.view(task_id)["status"] == "failed", timeout=20,
                   what="the task to fail")

    assert time.monotonic() - started < 8
    assert asked == ["/v1/plan"]  # asked once: the same request fails the same way
    error = stack.view(task_id)["error"]
    assert error.startswith("planning failed: ") and INTERNAL in error
    shown = stack.run("status", task_id)
    assert "failed" in shown.stdout and INTERNAL in shown.stdout
