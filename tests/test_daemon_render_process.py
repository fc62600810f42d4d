"""The render process: the tiny diffusers pipeline in a process of its own, driven from here
through the same interface as the in-process render queue (test_daemon_batching.py)."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest
from procstat import child_named

from gpu_daemon.images import RenderJob
from gpu_daemon.images.batching import Cancelled
from gpu_daemon.images.process import PROCESS_NAME, RenderProcess, RenderUnavailable, portable
from storyboard_contract.config import Config, ImagesConfig
from storyboard_contract.errors import ConfigError


def job(seed: int, steps: int = 3, negative: str = "", width: int = 64) -> RenderJob:
    return RenderJob(f"shot {seed}", negative, seed, width, 64, steps, 5.0)


def config(model: Path | str) -> Config:
    cfg = Config()
    cfg.images = ImagesConfig(model=str(model))
    return cfg


@pytest.fixture(scope="module")
def renderer(tiny_model_dir: Path):
    process = RenderProcess(config(tiny_model_dir), max_batch=3)
    yield process
    process.close()


class Progress:
    """An on_step that records the steps and says when the first one came."""

    def __init__(self) -> None:
        self.first = threading.Event()
        self.steps: list[tuple[int, int]] = []

    def __call__(self, step: int, total: int) -> None:
        self.steps.append((step, total))
        self.first.set()


def test_the_backend_is_described_to_the_http_side(renderer, tiny_model_dir):
    assert (renderer.backend.name, renderer.backend.device) == ("diffusers", "cpu")
    assert renderer.backend.model == str(tiny_model_dir)
    # The tiny tokenizer is byte-level: counted here, without loading the model here.
    assert renderer.backend.token_count()("夜色") == 6


def test_jobs_submitted_together_share_calls_and_report_every_step(renderer):
    calls0, renders0 = renderer.stats.pipeline_calls, renderer.stats.renders
    progress = [Progress() for _ in range(4)]
    tickets = renderer.submit_many([(job(seed), p) for seed, p in enumerate(progress)])
    results = [t.future.result(60) for t in tickets]
    assert [r.batch_size for r in results] == [3, 3, 3, 1]
    assert all(r.image.size == (64, 64) for r in results)
    assert all(p.steps == [(1, 3), (2, 3), (3, 3)] for p in progress)
    # The call is counted before its images are handed out.
    assert renderer.stats.pipeline_calls - calls0 == 2
    assert renderer.stats.renders - renders0 == 4
    assert renderer.waiting == 0 and not renderer.stats.busy


def test_jobs_that_wait_behind_a_call_ride_together(renderer):
    blocker = Progress()
    first = renderer.submit(job(0, steps=300), blocker)
    assert blocker.first.wait(60)
    same = [renderer.submit(job(seed)) for seed in (1, 2, 3, 4)]
    other = renderer.submit(job(5, negative="blurry"))
    assert renderer.waiting == 5 and renderer.stats.busy
    first.cancel()  # the blocker's call stops at its next step
    with pytest.raises(Cancelled):
        first.future.result(60)
    assert len(blocker.steps) < 300
    assert [t.future.result(60).batch_size for t in (*same, other)] == [3, 3, 3, 1, 1]


def test_a_cancelled_waiting_job_is_never_rendered(renderer):
    blocker = Progress()
    running = renderer.submit(job(0, steps=300), blocker)
    assert blocker.first.wait(60)
    renders0 = renderer.stats.renders
    dropped = renderer.submit(job(1, negative="other"))
    dropped.cancel()
    running.cancel()
    with pytest.raises(Cancelled):
        running.future.result(60)
    assert dropped.future.cancelled()
    assert renderer.submit(job(2)).future.result(60).batch_size == 1
    assert renderer.stats.renders == renders0 + 1


def test_a_request_the_pipeline_refuses_fails_as_a_value_error(renderer):
    with pytest.raises(ValueError, match="divisible by 8"):
        renderer.submit(job(1, width=65)).future.result(60)
    assert renderer.submit(job(1)).future.result(60).batch_size == 1


def test_foreign_exceptions_cross_as_builtins_with_their_name():
    class OutOfMemoryError(RuntimeError):
        pass

    crossed = portable(OutOfMemoryError("CUDA out of memory"))
    assert type(crossed) is RuntimeError and str(crossed) == "OutOfMemoryError: CUDA out of memory"
    assert type(portable(ValueError("bad size"))) is ValueError
    assert isinstance(portable(ConfigError("no model")), ConfigError)


def test_a_load_error_is_raised_where_the_process_is_started(tmp_path):
    with pytest.raises(ConfigError, match="no model file or folder at"):
        RenderProcess(config(tmp_path / "missing"), max_batch=2)


def test_a_killed_render_process_fails_its_jobs_with_503_and_is_replaced(tiny_model_dir):
    process = RenderProcess(config(tiny_model_dir), max_batch=2)
    try:
        progress = Progress()
        running = process.submit(job(0, steps=300), progress)
        assert progress.first.wait(60)
        os.kill(process._proc.pid, signal.SIGKILL)
        with pytest.raises(RenderUnavailable, match="render process died"):
            running.future.result(60)
        # Jobs submitted while the new process loads wait for it.
        assert process.submit(job(1)).future.result(120).batch_size == 1
        assert process.restarts == 1
    finally:
        process.close()
    assert not process._proc.is_alive()


def test_the_daemon_answers_503_while_its_render_process_restarts(tmp_path, s3_server):
    from fixtures_daemon import start_daemon

    daemon = start_daemon(tmp_path, s3_server)
    body = {"project_id": 1, "shot_id": 1, "task_id": "t-restart", "prompt": "a door",
            "seed": 1, "width": 64, "height": 64}
    try:
        os.kill(child_named(daemon.proc.pid, PROCESS_NAME), signal.SIGKILL)
        statuses = []
        deadline = time.monotonic() + 60
        with daemon.client() as client:
            while time.monotonic() < deadline:
                statuses.append(client.post("/v1/render", json=body).status_code)
                if statuses[-1] == 200:
                    break
                time.sleep(0.2)
    finally:
        daemon.stop()
    assert statuses[-1] == 200 and set(statuses) <= {200, 503}
    log = daemon.proc.log_path.read_text()
    assert "the render process died (exit code -9)" in log and "render process restarted" in log
