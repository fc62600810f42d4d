"""`gpu-daemon serve` with the diffusers backend, loading the tiny random-weight pipeline from
disk (the real from_pretrained path, no download), uploading to the test bucket."""

from __future__ import annotations

import io
import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
from PIL import Image

from storyboard_contract.wire import NDJSON


def body(seed: int, **overrides):
    return {"project_id": 1, "shot_id": seed, "task_id": str(uuid.uuid4()), "seed": seed,
            "prompt": "a lighthouse in a storm", "style": "watercolor", **overrides}


def png(url: str) -> bytes:
    resp = httpx.get(url)
    assert resp.status_code == 200
    assert resp.content.startswith(b"\x89PNG")
    return resp.content


def test_status_shows_the_loaded_model(diffusers_daemon, tiny_model_dir):
    status = diffusers_daemon.status()
    assert status["image_backend"] == "diffusers"
    assert status["model"] == str(tiny_model_dir) and status["model_loaded"] is True
    assert status["device"] == "cpu"
    # transformers' notices about backends the daemon does not use stay out of its log.
    assert "requires torchvision" not in diffusers_daemon.proc.log_path.read_text()


def test_the_same_seed_gives_the_same_bytes(diffusers_daemon):
    with diffusers_daemon.client() as c:
        answers = [c.post("/v1/render", json=body(seed)).json() for seed in (5, 5, 6)]
    first, again, other = (png(a["image_url"]) for a in answers)
    assert first == again
    assert first != other
    # A lone request on an idle daemon is not held back to wait for a batch.
    assert [a["batch_size"] for a in answers] == [1, 1, 1]
    assert Image.open(io.BytesIO(first)).size == (64, 64)


def test_concurrent_equal_requests_share_pipeline_calls(diffusers_daemon):
    # 12 steps: long enough that the requests behind the first one are still waiting.
    seeds = [21, 22, 23, 24]
    with diffusers_daemon.client() as c:
        alone = {s: c.post("/v1/render", json=body(s, steps=12)).json() for s in seeds}
    before = diffusers_daemon.status()

    def post(seed: int) -> dict:
        with diffusers_daemon.client() as c:
            resp = c.post("/v1/render", json=body(seed, steps=12))
            assert resp.status_code == 200, resp.text
            return resp.json()

    with ThreadPoolExecutor(len(seeds)) as pool:
        together = dict(zip(seeds, pool.map(post, seeds), strict=True))
    after = diffusers_daemon.status()

    assert after["renders"] - before["renders"] == 4
    assert after["pipeline_calls"] - before["pipeline_calls"] < 4
    assert max(a["batch_size"] for a in together.values()) > 1
    # Each answer is its own shot: its key, and the image of its own seed.
    assert len({a["image_key"] for a in together.values()}) == 4
    refs = {s: Image.open(io.BytesIO(png(alone[s]["image_url"]))).convert("L") for s in seeds}
    for seed in seeds:
        got = Image.open(io.BytesIO(png(together[seed]["image_url"]))).convert("L")
        diffs = {s: _mean_abs(got, ref) for s, ref in refs.items()}
        assert min(diffs, key=diffs.get) == seed
        assert diffs[seed] < 1.0


def _mean_abs(a: Image.Image, b: Image.Image) -> float:
    pa, pb = a.tobytes(), b.tobytes()
    return sum(abs(x - y) for x, y in zip(pa, pb, strict=True)) / len(pa)


def test_streaming_reports_denoising_steps_then_the_result(diffusers_daemon):
    with diffusers_daemon.client() as c, c.stream(
        "POST", "/v1/render", json=body(3, steps=4), headers={"Accept": NDJSON}
    ) as resp:
        assert resp.status_code == 200
        events = [json.loads(line) for line in resp.iter_lines() if line]
    progress = [(e["step"], e["total"]) for e in events if e["event"] == "progress"]
    # The first and the last step always; those between at most every PROGRESS_INTERVAL_S.
    assert progress[0] == (1, 4) and progress[-1] == (4, 4)
    assert [step for step, _ in progress] == sorted({step for step, _ in progress})
    assert [e["event"] for e in events][-1] == "result"
    assert all(e["shot_id"] == 3 for e in events[:-1])
    png(events[-1]["result"]["image_url"])


def test_a_client_that_hangs_up_mid_stream_stops_its_render(diffusers_daemon):
    before = diffusers_daemon.status()
    with diffusers_daemon.client() as c, c.stream(
        "POST", "/v1/render", json=body(9, steps=150), headers={"Accept": NDJSON}
    ) as resp:
        first = json.loads(next(resp.iter_lines()))
        assert first["event"] == "progress" and first["total"] == 150
    # The connection is closed: the call stops at its next step, no image is delivered.
    deadline = time.monotonic() + 30
    while (status := diffusers_daemon.status())["busy"] and time.monotonic() < deadline:
        time.sleep(0.02)
    assert status["pipeline_calls"] == before["pipeline_calls"] + 1
    assert status["renders"] == before["renders"]
