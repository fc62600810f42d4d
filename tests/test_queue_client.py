"""The worker's daemon client against a real daemon, a closed port and a server that never
answers: results and progress arrive, failures are sorted into retry-worthy or not, and no
message ever contains the token."""

from __future__ import annotations

import socket
import time

import pytest

from storyboard_cli.stack.processes import free_port
from storyboard_cli.store import Store
from storyboard_cli.tasks.daemon_client import (
    DaemonClient,
    DaemonRejected,
    DaemonUnavailable,
    failure,
    read_stream,
)
from storyboard_contract.config import DaemonConfig
from storyboard_contract.errors import ConfigError
from storyboard_contract.wire import PlanRequest, ProgressEvent, RenderRequest


def client_for(url: str, token: str, read_timeout: float = 30.0) -> DaemonClient:
    return DaemonClient(DaemonConfig(url=url, token=token, connect_timeout=1.0,
                                     read_timeout=read_timeout))


def test_plan_and_render_through_the_real_daemon_stream_progress_then_the_result(sketch_daemon):
    client = client_for(sketch_daemon.url, sketch_daemon.token)
    events: list[ProgressEvent] = []
    story = "A ship sailed. A storm rose. The keeper lit the lamp."
    plan = client.plan(PlanRequest(project_id=1, task_id="client-test", story=story),
                       events.append)
    assert len(plan.shots) >= 2 and plan.script_key
    assert events and events[-1].step == events[-1].total
    events.clear()
    shot = plan.shots[0]
    result = client.render(RenderRequest(project_id=1, shot_id=5, task_id="client-test",
                                         prompt=shot.prompt, seed=3), events.append)
    assert result.image_key.endswith("/shots/5/client-test.png") and result.seed == 3
    assert events and all(e.shot_id == 5 for e in events)
    client.close()


def test_a_wrong_token_is_refused_for_good_without_echoing_the_token(sketch_daemon):
    client = client_for(sketch_daemon.url, "not-the-token-s3cr3t")
    with pytest.raises(DaemonRejected, match="STORYBOARD_DAEMON_TOKEN") as info:
        client.status()
    assert "s3cr3t" not in str(info.value) and sketch_daemon.token not in str(info.value)
    assert sketch_daemon.url in str(info.value)


def test_an_invalid_request_is_refused_for_good_with_the_daemons_reason(sketch_daemon):
    client = client_for(sketch_daemon.url, sketch_daemon.token)
    with pytest.raises(DaemonRejected, match="answered 422: invalid request: prompt"):
        client.render(RenderRequest(project_id=1, shot_id=1, task_id="t", prompt="x" * 1000,
                                    seed=1).model_copy(update={"prompt": "x" * 5000}))


def test_a_closed_port_is_unavailable_and_names_the_url_not_the_token():
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(DaemonUnavailable) as info:
        client_for(url, "tok-s3cr3t").status()
    assert str(info.value) == f"cannot reach the GPU daemon at {url}: connection refused"


def test_credentials_in_the_daemon_url_never_reach_a_message():
    port = free_port()
    with pytest.raises(DaemonUnavailable) as info:
        client_for(f"http://gpu:pa55w0rd@127.0.0.1:{port}/?token=t0k", "tok").status()
    assert str(info.value) == (f"cannot reach the GPU daemon at http://gpu:***@127.0.0.1:{port}"
                               "/?token=***: connection refused")


def test_a_daemon_that_never_answers_times_out_as_unavailable():
    with socket.socket() as server:  # accepts connections, never answers (a frozen tunnel)
        server.bind(("127.0.0.1", 0))
        server.listen()
        url = f"http://127.0.0.1:{server.getsockname()[1]}"
        started = time.monotonic()
        with pytest.raises(DaemonUnavailable, match="did not answer in time \\(read timeout\\)"):
            client_for(url, "tok", read_timeout=0.5).status()
        assert time.monotonic() - started < 5


def test_a_stream_that_ends_without_a_result_is_unavailable_and_an_error_event_is_sorted():
    progress = ['{"event": "progress", "step": 1, "total": 4}']
    with pytest.raises(DaemonUnavailable, match="closed the stream"):
        read_stream(iter(progress), None, "the GPU daemon at X")
    bucket_down = '{"event": "error", "status": 503, "error": "cannot reach bucket \'b\'"}'
    with pytest.raises(DaemonUnavailable, match="answered 503: cannot reach bucket 'b'"):
        read_stream(iter([*progress, bucket_down]), None, "the GPU daemon at X")
    assert isinstance(failure(413, "too large", "d"), DaemonRejected)
    assert isinstance(failure(502, "planner failed", "d"), DaemonUnavailable)


def test_a_worker_without_a_token_is_a_configuration_error():
    with pytest.raises(ConfigError, match="STORYBOARD_DAEMON_TOKEN"):
        DaemonClient(DaemonConfig(token=""))


def test_step_progress_is_written_at_most_a_few_times_a_second(tmp_path):
    from storyboard_cli.tasks.jobs import StepWriter

    store = Store(tmp_path / "sb.db")
    project = store.create_project("p", "s", "movie")
    task = store.create_task("storyboard", project["id"])
    store.save_plan(task["id"], project["id"], [{
        "idx": 0, "description": "d", "prompt": "p", "negative_prompt": "", "camera": "wide",
        "dialogue": None, "duration": 1.0, "seed": 1}], with_renders=True)
    shot_id = store.task_renders(task["id"])[0]["shot_id"]
    store.start_window(task["id"], shot_id, "job", 1)
    writer = StepWriter(store, task["id"], [shot_id])
    changes = store.db.conn.total_changes
    for step in range(1, 201):  # 200 steps arriving within a few milliseconds
        writer(ProgressEvent(step=step, total=200))
    assert store.db.conn.total_changes - changes == 1  # rows written to the database
    row = store.task_renders(task["id"])[0]
    assert (row["step"], row["steps"]) == (1, 200)
    time.sleep(0.3)
    writer(ProgressEvent(step=200, total=200))
    assert store.task_renders(task["id"])[0]["step"] == 200
