"""An LLM planner that fails, as a user meets it: through a real daemon and a real worker.

A local HTTP server plays the endpoint (fixtures_llm): an answer that cannot heal (402, an HTML
page, prose, a wrong schema) fails the task at once, with the reason in the task object and in
`status`, after at most the one repair request; one that can (429, 5xx, a dropped connection)
is retried with the queue's backoff while the task says so.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fixtures_daemon import DaemonHandle, start_daemon
from fixtures_llm import Answer, LLMServer, serving_llm
from fixtures_queue import QueueStack

from gpu_daemon.planner import PlannerError, PlannerUnavailable
from gpu_daemon.planner.openai import OpenAIPlanner
from storyboard_cli.stack import processes
from storyboard_cli.stack.doctor import Check, Doctor, _run
from storyboard_contract.config import Config

STORY = "The storm broke over the bay. Mara climbed the lighthouse stairs in the dark."
PLAN = {"characters": [{"name": "Mara", "description": "young woman, yellow raincoat"}],
        "shots": [{"description": "The storm broke over the bay.", "camera": "wide",
                   "prompt": "stormy bay at night"},
                  {"description": "Mara climbed the lighthouse stairs in the dark.",
                   "camera": "medium", "prompt": "a woman climbing stairs",
                   "characters": ["Mara"]}]}
HTML = ("<!DOCTYPE html>\n<html><head><title>Sign in</title></head><body>"
        + "<div class=\"login\">Please sign in to continue</div>" * 20 + "</body></html>")
# The queue's policy as shipped, with short waits: 8 retries.
QUEUE = {"retries": 8, "backoff": [1]}


@pytest.fixture(scope="module")
def llm() -> Iterator[LLMServer]:
    with serving_llm() as server:
        yield server


@pytest.fixture(scope="module")
def llm_daemon(tmp_path_factory: pytest.TempPathFactory, s3_server: Any,
               llm: LLMServer) -> Iterator[DaemonHandle]:
    handle = start_daemon(
        tmp_path_factory.mktemp("llm-daemon"), s3_server, "sketch",
        images={"width": 256, "height": 256},
        sections={"planner": {"backend": "openai", "base_url": llm.base_url,
                              "model": "story-model", "timeout": 5.0}})
    yield handle
    handle.stop()


@pytest.fixture()
def planning(make_stack: Callable[..., QueueStack], llm: LLMServer,
             llm_daemon: DaemonHandle) -> Iterator[QueueStack]:
    llm.answers.clear()
    llm.requests.clear()
    stack = make_stack(daemon=llm_daemon, queue=QUEUE)
    stack.start_worker()
    yield stack
    stack.stop_workers()


def follow(stack: QueueStack, task_id: str, timeout: float) -> tuple[dict[str, Any], list[str]]:
    """The task once it has ended, and every distinct state it showed while running."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        view = stack.view(task_id)
        if view.get("state") and view["state"] not in seen:
            seen.append(view["state"])
        if view["status"] in ("succeeded", "failed", "cancelled"):
            return view, seen
        time.sleep(0.05)
    logs = "\n".join(w.log_tail(30) for w in stack.workers)
    raise AssertionError(f"task {task_id} still {stack.view(task_id)['status']}\n{logs}")


@pytest.mark.parametrize(("answers", "requests", "reason"), [
    pytest.param([Answer(status=402, body={"error": {"message": "Insufficient balance"}})], 1,
                 ["answered HTTP 402: Insufficient balance"], id="402"),
    pytest.param([Answer(raw=HTML)], 1,
                 ["is not JSON", "planner.base_url", repr(HTML[:200])], id="html"),
    pytest.param([Answer(raw="upstream ok", content_type="text/plain")], 1,
                 ["is not JSON", "planner.base_url", "'upstream ok'"], id="non-json"),
    pytest.param([Answer(raw='{"status": "ok"}', content_type="application/json")], 1,
                 ["not an OpenAI chat completion", "planner.base_url"], id="not-a-completion"),
    pytest.param([Answer(content="Shot 1: the bay in a storm. Shot 2: Mara climbs.")] * 2, 2,
                 ["invalid shot list twice", "the answer is not JSON"], id="prose"),
    pytest.param([Answer(content='{"scenes": [{"heading": "BAY"}]}')] * 2, 2,
                 ["invalid shot list twice", "expected a JSON object"], id="wrong-schema"),
])
def test_an_answer_that_cannot_heal_fails_the_task_at_once_with_the_reason(
        planning: QueueStack, llm: LLMServer, answers: list[Answer], requests: int,
        reason: list[str]) -> None:
    llm.answer(*answers)
    started = time.monotonic()
    task_id = planning.submit(STORY)
    task, _ = follow(planning, task_id, timeout=20)
    took = time.monotonic() - started

    assert task["status"] == "failed" and took < 5, (task, took)
    assert len(llm.requests) == requests  # never re-sent: each one may be billed
    assert task["error"].startswith("planning failed: ")
    for words in reason:
        assert words in task["error"]
    shown = planning.run("status", task_id)
    assert "failed" in shown.stdout and reason[0] in shown.stdout


def test_an_answer_that_can_heal_is_retried_with_backoff_and_the_task_says_so(
        planning: QueueStack, llm: LLMServer) -> None:
    llm.answer(Answer(status=503, body={"error": {"message": "overloaded"}}),
               Answer(status=429, body={"error": {"message": "rate limited"}}),
               Answer(status=502, raw="<html>bad gateway</html>"),
               json.dumps(PLAN))
    task_id = planning.submit(STORY)
    task, states = follow(planning, task_id, timeout=30)

    assert task["status"] == "succeeded", task
    assert len(llm.requests) == 4
    assert len(states) == 3, states
    for n, state in enumerate(states, 1):
        assert state.startswith(f"planning: retrying (planner unreachable, attempt {n}/8): ")
    assert "429" in states[1] and "rate limited" in states[1]
    assert task["state"] is None  # said while it retried, gone once planned


def test_a_planner_that_is_down_is_unavailable_and_named(tmp_path: Path) -> None:
    cfg = Config()
    cfg.planner.backend = "openai"
    cfg.planner.base_url = f"http://127.0.0.1:{processes.free_port()}/v1"
    with pytest.raises(PlannerUnavailable, match="cannot reach the LLM at http://127.0.0.1"):
        OpenAIPlanner(cfg.planner).plan(STORY, "movie", 4)


def test_refusals_are_not_unavailability_and_quote_what_came(llm_server: LLMServer) -> None:
    cfg = Config()
    cfg.planner.backend = "openai"
    cfg.planner.base_url = llm_server.base_url
    planner = OpenAIPlanner(cfg.planner)
    llm_server.answer(Answer(status=401, body={"error": {"message": "bad key"}}),
                      Answer(raw=HTML))
    with pytest.raises(PlannerError) as refused:
        planner.plan(STORY, "movie", 4)
    assert not isinstance(refused.value, PlannerUnavailable)
    with pytest.raises(PlannerError) as html:
        planner.plan(STORY, "movie", 4)
    assert not isinstance(html.value, PlannerUnavailable)
    assert repr(HTML[:200]) in str(html.value) and "planner.base_url" in str(html.value)


# --- `doctor` asks the planner's service, through the daemon that holds its key ------------------


def doctor_planner(daemon: DaemonHandle) -> Check:
    cfg = Config()
    cfg.daemon.token = daemon.token
    doctor = Doctor(cfg, local_frpc=False)
    doctor.check_daemon(daemon.url)
    return _run("planner", lambda: doctor.check_planner(daemon.url))


def test_doctor_finds_the_model_in_the_services_list(llm: LLMServer, llm_daemon: DaemonHandle
                                                     ) -> None:
    llm.requests.clear()
    llm.models = ["other-model", "story-model"]
    try:
        check = doctor_planner(llm_daemon)
    finally:
        llm.models = None
    assert (check.status, check.detail) == (
        "ok", f"{llm.base_url}: model story-model is listed")
    assert llm.requests == []  # nothing billable asked


def test_doctor_asks_for_one_token_where_no_models_are_listed(llm: LLMServer,
                                                             llm_daemon: DaemonHandle) -> None:
    llm.requests.clear()
    llm.answer("ok")
    check = doctor_planner(llm_daemon)
    assert (check.status, check.detail) == (
        "ok", f"{llm.base_url}: model story-model answered a one-token completion")
    (asked,) = llm.requests
    assert asked.body["max_tokens"] == 1 and asked.body["model"] == "story-model"


def test_doctor_fails_a_planner_that_refuses_with_the_fix(llm: LLMServer,
                                                         llm_daemon: DaemonHandle) -> None:
    llm.answer(Answer(status=401, body={"error": {"message": "Incorrect API key provided"}}))
    check = doctor_planner(llm_daemon)
    assert check.status == "fail"
    assert "answered HTTP 401: Incorrect API key provided" in check.detail
    assert "STORYBOARD_PLANNER_API_KEY" in check.hint and check.hint.startswith("on the GPU box")


def test_doctor_fails_a_planner_that_is_down(tmp_path: Path, s3_server: Any) -> None:
    down = f"http://127.0.0.1:{processes.free_port()}/v1"
    daemon = start_daemon(tmp_path, s3_server, "sketch", sections={
        "planner": {"backend": "openai", "base_url": down, "model": "story-model"}})
    try:
        check = doctor_planner(daemon)
    finally:
        daemon.stop()
    assert check.status == "fail"
    assert check.detail.startswith(f"as the daemon sees it: cannot reach the LLM at {down}")
    assert "reachable from the GPU box" in check.hint
