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


def window_of_four(tmp_path) -> tuple[Store, str, list[int]]:
    """A store with a task of four shots, all claimed and running in one window."""
    store = Store(tmp_path / "sb.db")
    project = store.create_project("p", "s", "movie")
    task = store.create_task("storyboard", project["id"])
    store.save_plan(task["id"], project["id"], [{
        "idx": i, "description": "d", "prompt": "p", "negative_prompt": "", "camera": "wide",
        "dialogue": None, "duration": 1.0, "seed": i} for i in range(4)], with_renders=True)
    first = store.task_renders(task["id"])[0]["shot_id"]
    _, window = store.start_window(task["id"], first, "job", 4)
    return store, task["id"], window


def write_transactions(store: Store) -> list[str]:
    """The write transactions the store begins from now on, one entry each."""
    begun: list[str] = []
    store.conn.set_trace_callback(lambda sql: begun.append(sql) if sql == "BEGIN IMMEDIATE"
                                  else None)
    return begun


def test_a_windows_shots_report_their_steps_together_in_one_write(tmp_path):
    from storyboard_cli.tasks.jobs import StepWriter

    store, task_id, window = window_of_four(tmp_path)
    writer = StepWriter(store, task_id, window)
    begun = write_transactions(store)
    for step in (1, 2):  # a batch's shots report each step together
        for shot_id in window:
            writer(ProgressEvent(shot_id=shot_id, step=step, total=20))
    assert len(begun) == 1  # the first step of all four; the second within 0.25 s waits
    assert [(r["step"], r["steps"]) for r in store.task_renders(task_id)] == [(1, 20)] * 4
    time.sleep(0.3)
    writer(ProgressEvent(shot_id=window[0], step=3, total=20))  # reports again: all go out
    assert len(begun) == 2
    assert [r["step"] for r in store.task_renders(task_id)] == [3, 2, 2, 2]


def test_a_window_stops_at_its_next_step_write_once_its_task_is_cancelled(tmp_path):
    from storyboard_cli.tasks.jobs import RenderCancelled, StepWriter

    store, task_id, window = window_of_four(tmp_path)
    writer = StepWriter(store, task_id, window)
    assert store.cancel_task(task_id)
    with pytest.raises(RenderCancelled):
        for shot_id in window:
            writer(ProgressEvent(shot_id=shot_id, step=1, total=20))


def test_a_windows_rendered_shots_are_recorded_in_one_write_that_settles_the_task(tmp_path):
    from storyboard_cli.store.renders import Finished

    store, task_id, window = window_of_four(tmp_path)
    begun = write_transactions(store)
    status = store.finish_renders(task_id, [
        Finished(shot_id, f"k/{shot_id}.png", "https://x/", "2030-01-01T00:00:00+00:00", 9)
        for shot_id in window])
    assert (len(begun), status) == (1, "succeeded")
    assert [(r["status"], r["image_key"]) for r in store.task_renders(task_id)] == [
        ("done", f"k/{shot_id}.png") for shot_id in window]


def test_the_stream_skips_events_of_kinds_it_does_not_know_and_refuses_invalid_ones():
    from pydantic import ValidationError

    lines = ['{"event": "heartbeat", "at": 1}', '{"event": "progress", "step": 1, "total": 4}',
             '{"event": "result", "result": {"shots": []}}']
    seen: list[ProgressEvent] = []
    assert read_stream(iter(lines), seen.append, "d") == {"shots": []}
    assert [(e.step, e.total) for e in seen] == [(1, 4)]
    with pytest.raises(ValidationError):
        read_stream(iter(['{"event": "progress", "step": "one", "total": 4}']), None, "d")
    with pytest.raises(DaemonUnavailable, match="malformed progress line"):
        read_stream(iter(['{"event": "progress", "step"']), None, "d")
