"""POST /v1/renders: several shots in one request, rendered together and answered each on
its own, by a real `gpu-daemon serve` with the tiny diffusers pipeline."""

from __future__ import annotations

import json
import uuid

import pytest
from fixtures_daemon import start_daemon

from storyboard_contract.wire import NDJSON


@pytest.fixture(scope="module")
def daemon(tmp_path_factory, s3_server, tiny_model_dir):
    """max_batch 4, and prompts of at most 60 characters (so that one shot can be refused)."""
    handle = start_daemon(tmp_path_factory.mktemp("renders-daemon"), s3_server, "diffusers",
                          tiny_model_dir,
                          images={"width": 64, "height": 64, "steps": 4, "max_batch": 4},
                          sections={"limits": {"max_prompt_chars": 60}})
    yield handle
    handle.stop()


def shot(task_id: str, shot_id: int, prompt: str = "a lighthouse at night") -> dict:
    return {"project_id": 3, "shot_id": shot_id, "task_id": task_id, "index": shot_id,
            "prompt": prompt, "seed": shot_id}


def test_a_window_of_shots_is_one_pipeline_call_and_one_refused_shot_fails_only_itself(
    daemon
):
    task_id = str(uuid.uuid4())
    shots = [shot(task_id, k) for k in range(4)] + [shot(task_id, 9, "a very long prompt " * 5)]
    before = daemon.status()
    with daemon.client() as c, c.stream("POST", "/v1/renders", json={"shots": shots},
                                        headers={"Accept": NDJSON}) as resp:
        assert resp.status_code == 200
        events = [json.loads(line) for line in resp.iter_lines() if line.strip()]
    after = daemon.status()
    assert (after["pipeline_calls"] - before["pipeline_calls"],
            after["renders"] - before["renders"]) == (1, 4)

    progress = [e for e in events if e["event"] == "progress"]
    outcomes = {e["outcome"]["shot_id"]: e["outcome"] for e in events if e["event"] == "shot"}
    assert {p["shot_id"] for p in progress} == {0, 1, 2, 3}  # each shot's own progress
    assert sorted(outcomes) == [0, 1, 2, 3, 9]
    refused = outcomes.pop(9)
    assert (refused["status"], refused["result"]) == (422, None)
    assert refused["error"].startswith("prompt is 95 characters; the limit is 60")
    for shot_id, outcome in outcomes.items():
        result = outcome["result"]
        assert result["image_key"] == f"projects/3/shots/{shot_id}/{task_id}.png"
        assert (result["batch_size"], result["seed"], result["reused"]) == (4, shot_id, False)
    assert events[-1]["event"] == "result"  # the end of the stream: every outcome again
    assert [s["shot_id"] for s in events[-1]["result"]["shots"]] == [0, 1, 2, 3, 9]


def test_a_window_is_refused_whole_only_when_the_request_itself_is_invalid(daemon):
    task_id = str(uuid.uuid4())
    with daemon.client() as c:
        twice = c.post("/v1/renders", json={"shots": [shot(task_id, 1), shot(task_id, 1)]})
        empty = c.post("/v1/renders", json={"shots": []})
    assert twice.status_code == 422
    assert "each shot_id may appear once" in twice.json()["detail"]
    assert empty.status_code == 422
