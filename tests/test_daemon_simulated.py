"""The simulated backend (a benchmark tool): a real `gpu-daemon serve` whose pipeline calls
take the configured time per call plus a time per image and draw nothing, behind which the
rest of the system (render process, progress, uploads to SeaweedFS, workers, store) is real.
"""

from __future__ import annotations

import io
import json
import uuid

import pytest
from fixtures_daemon import start_daemon
from fixtures_queue import assert_each_shot_once_and_done
from PIL import Image
from procstat import child_named, cpu_seconds

from gpu_daemon.images.process import PROCESS_NAME
from gpu_daemon.images.simulated import png_bytes
from storyboard_contract.wire import NDJSON

CALL_MS, IMAGE_MS, STEPS = 150.0, 50.0, 10
# A call is never shorter than its time (it sleeps to deadlines); it may end a little later
# when the 2-core machine is busy and the render process wakes up late.
LATE_S = 0.1
STORY = "\n".join(f"The keeper climbed to landing number {n} and looked out at the dark sea."
                  for n in range(1, 9)) + "\n"


@pytest.fixture(scope="module")
def simulated(tmp_path_factory, s3_server):
    handle = start_daemon(tmp_path_factory.mktemp("simulated-daemon"), s3_server, "simulated",
                          images={"simulated_call_ms": CALL_MS, "simulated_image_ms": IMAGE_MS,
                                  "steps": STEPS, "max_batch": 4})
    yield handle
    handle.stop()


def call_seconds(images: int) -> float:
    return (CALL_MS + images * IMAGE_MS) / 1000


def renders(daemon, shots: int) -> list[dict]:
    """One /v1/renders request of `shots` shots, read as its NDJSON events."""
    task_id = str(uuid.uuid4())
    body = {"shots": [{"project_id": 5, "shot_id": k, "task_id": task_id, "index": k,
                       "prompt": "a lighthouse at night", "seed": k, "width": 680,
                       "height": 384} for k in range(shots)]}
    with daemon.client() as c, c.stream("POST", "/v1/renders", json=body,
                                        headers={"Accept": NDJSON}) as resp:
        assert resp.status_code == 200
        return [json.loads(line) for line in resp.iter_lines() if line.strip()]


def test_a_call_takes_its_time_per_call_plus_per_image_sleeping_and_reports_every_shots_steps(
    simulated
):
    status = simulated.status()
    assert (status["image_backend"], status["model_loaded"]) == ("simulated", False)
    render_process = child_named(simulated.proc.pid, PROCESS_NAME)
    cpu0, busy0 = cpu_seconds(render_process), status["render_busy_s"]
    for shots in (1, 3):
        before = simulated.status()
        events = renders(simulated, shots)
        after = simulated.status()
        assert after["pipeline_calls"] - before["pipeline_calls"] == 1
        busy = after["render_busy_s"] - before["render_busy_s"]
        assert call_seconds(shots) - 0.005 <= busy <= call_seconds(shots) + LATE_S, busy

        outcomes = [e["outcome"] for e in events if e["event"] == "shot"]
        assert sorted(o["shot_id"] for o in outcomes) == list(range(shots))
        for outcome in outcomes:
            result = outcome["result"]
            assert (result["backend"], result["batch_size"]) == ("simulated", shots)
            assert call_seconds(shots) * 1000 <= result["render_ms"] <= \
                (call_seconds(shots) + LATE_S) * 1000
        # Each shot's progress: its steps in order, ending with the last one (the daemon
        # sends the first, then at most every 0.25 s, then the last).
        for k in range(shots):
            steps = [(e["step"], e["total"]) for e in events
                     if e["event"] == "progress" and e.get("shot_id") == k]
            assert steps[0][0] >= 1 and steps[-1] == (STEPS, STEPS), steps
            assert [s for s, _ in steps] == sorted({s for s, _ in steps})
    # It slept: the render process spent a small part of those calls' time on the CPU
    # (handing its steps and images over the pipe).
    busy = simulated.status()["render_busy_s"] - busy0
    assert cpu_seconds(render_process) - cpu0 < 0.2 * busy, (cpu_seconds(render_process) - cpu0)


def test_a_storyboard_renders_through_workers_store_and_bucket_with_real_png_sizes(
    make_stack, simulated, s3_server
):
    # The product's default pixel budget: 16:9 frames of 680 x 384.
    stack = make_stack(simulated, images={"width": 512, "height": 512})
    stack.start_worker()
    before = simulated.status()
    task_id = stack.submit(STORY)
    stack.wait_for(lambda: stack.view(task_id)["status"] in ("succeeded", "failed"), 60,
                   "the task to finish")
    view = assert_each_shot_once_and_done(stack, task_id, 8)
    after = simulated.status()

    # Two windows of four (a window split by timing costs one call more at most), each call
    # as long as the settings say.
    calls = after["pipeline_calls"] - before["pipeline_calls"]
    assert after["renders"] - before["renders"] == 8 and calls in (2, 3)
    busy = after["render_busy_s"] - before["render_busy_s"]
    expected = calls * CALL_MS / 1000 + 8 * IMAGE_MS / 1000
    assert expected - 0.01 <= busy <= expected + calls * LATE_S, (busy, expected)

    # Every upload is a real PNG of the frame, as large as a photograph-like frame's.
    bucket = s3_server.client()
    for shot in view["shots"]:
        assert (shot["width"], shot["height"]) == (680, 384)
        data = bucket.get_object(Bucket=s3_server.bucket, Key=shot["image_key"])["Body"].read()
        assert data == png_bytes(680, 384)
        assert 1.3 <= len(data) / (680 * 384) <= 1.8, len(data)  # ~400 KB
        with Image.open(io.BytesIO(data)) as image:
            assert (image.format, image.size, image.mode) == ("PNG", (680, 384), "RGB")
