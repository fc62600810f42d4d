"""The daemon's HTTP API, served by a real `gpu-daemon serve` with the sketch backend,
uploading to the SeaweedFS bucket of the test harness."""

from __future__ import annotations

import io
import json
import statistics
import time
import uuid
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
from PIL import Image

from storyboard_contract.wire import NDJSON, shot_seed


def render_body(**overrides):
    body = {
        "project_id": 7, "shot_id": 11, "task_id": str(uuid.uuid4()), "index": 2,
        "prompt": "an old man opens a wooden door at night", "camera": "close-up",
        "description": "夜色中，老人推开木门。", "style": "movie", "seed": 42,
    }
    return {**body, **overrides}


def test_liveness_is_public_and_everything_else_needs_the_token(sketch_daemon):
    url = sketch_daemon.url
    assert httpx.get(f"{url}/healthz").json() == {"ok": True}
    for headers in ({}, {"Authorization": "Bearer wrong"},
                    {"Authorization": f"Basic {sketch_daemon.token}"},
                    {"Authorization": f"Bearer {sketch_daemon.token}x"}):
        assert httpx.get(f"{url}/v1/status", headers=headers).status_code == 401
        resp = httpx.post(f"{url}/v1/render", json=render_body(), headers=headers)
        assert resp.status_code == 401
        assert "token" in resp.json()["detail"]
    assert httpx.get(f"{url}/v1/status", headers=sketch_daemon.headers).status_code == 200
    assert httpx.get(f"{url}/no-such-path").status_code == 401


def test_rendered_shot_lands_in_the_bucket_behind_a_presigned_link(sketch_daemon, s3_server):
    body = render_body()
    with sketch_daemon.client() as c:
        resp = c.post("/v1/render", json=body)
    assert resp.status_code == 200, resp.text
    shot = resp.json()
    assert shot["image_key"] == f"projects/7/shots/11/{body['task_id']}.png"
    assert (shot["backend"], shot["width"], shot["height"]) == ("sketch", 256, 256)
    assert shot["seed"] == 42

    head = s3_server.client().head_object(Bucket=s3_server.bucket, Key=shot["image_key"])
    assert head["ContentType"] == "image/png"

    got = httpx.get(shot["image_url"])
    assert got.status_code == 200
    assert Image.open(io.BytesIO(got.content)).size == (256, 256)

    parts = urlsplit(shot["image_url"])
    unsigned = urlunsplit(parts._replace(query=""))
    assert httpx.get(unsigned).status_code == 403
    query = dict(parse_qsl(parts.query))
    signature = query["X-Amz-Signature"]
    query["X-Amz-Signature"] = ("0" if signature[0] != "0" else "1") + signature[1:]
    tampered = urlunsplit(parts._replace(query=urlencode(query)))
    assert httpx.get(tampered).status_code == 403


def test_a_render_is_at_the_requested_size_and_its_prompt_carries_the_cast(sketch_daemon):
    body = render_body(width=344, height=192, characters=[
        {"name": "Lin", "description": "young woman, red wool scarf"}])
    with sketch_daemon.client() as c:
        shot = c.post("/v1/render", json=body).json()
    assert (shot["width"], shot["height"]) == (344, 192)
    assert Image.open(io.BytesIO(httpx.get(shot["image_url"]).content)).size == (344, 192)
    assert shot["prompt"].startswith("cinematic film still, an old man opens a wooden door")
    assert "Lin (young woman, red wool scarf)" in shot["prompt"]


def test_same_request_gives_the_same_png(sketch_daemon):
    with sketch_daemon.client() as c:
        urls = [c.post("/v1/render", json=render_body()).json()["image_url"] for _ in range(2)]
        other = c.post("/v1/render", json=render_body(description="另一个镜头")).json()
    first, second = (httpx.get(u).content for u in urls)
    assert first == second
    assert httpx.get(other["image_url"]).content != first


def test_bodies_over_the_limit_are_refused_with_413(sketch_daemon):
    # Over [daemon] max_body_bytes (4 MiB: room for a screenplay).
    huge = json.dumps(render_body(description="x" * 5_000_000)).encode()
    with sketch_daemon.client() as c:
        declared = c.post("/v1/render", content=huge, headers={"Content-Type": "application/json"})
        assert declared.status_code == 413
        assert "daemon.max_body_bytes" in declared.json()["detail"]

    def chunks():  # no Content-Length: the limit must hold while the body streams in
        for i in range(0, len(huge), 65536):
            yield huge[i:i + 65536]

    with sketch_daemon.client() as c:
        streamed = c.post("/v1/render", content=chunks(),
                          headers={"Content-Type": "application/json"})
    assert streamed.status_code == 413


def test_invalid_fields_are_422_with_a_readable_message(sketch_daemon):
    with sketch_daemon.client() as c:
        resp = c.post("/v1/render", json=render_body(seed=-1, width=65, task_id="../../etc"))
        assert resp.status_code == 422
        detail = resp.json()["detail"]
        assert isinstance(detail, str)
        for field in ("seed", "width", "task_id"):
            assert field in detail
        assert c.post("/v1/plan", content=b"{not json",
                      headers={"Content-Type": "application/json"}).status_code == 422
        over = c.post("/v1/render", json=render_body(prompt="y" * 1001))
        assert over.status_code == 422 and "prompt" in over.json()["detail"]
        blank = c.post("/v1/plan", json={"project_id": 1, "task_id": "t", "story": " \n "})
        assert blank.status_code == 422 and "no text" in blank.json()["detail"]


def test_json_nested_too_deeply_is_422_as_at_serve(sketch_daemon):
    nested = "[" * 100_000 + "]" * 100_000
    with sketch_daemon.client() as c:
        resp = c.post("/v1/render", content=nested, headers={"Content-Type": "application/json"})
    assert resp.status_code == 422
    assert "nested too deeply" in resp.json()["detail"]


def test_control_characters_in_style_and_prompt_are_422_streaming_or_not(sketch_daemon):
    """A newline in a style used to fail every render with a 500 the worker retried."""
    plan = {"project_id": 1, "task_id": "t", "story": "The keeper climbed."}
    bad = [("/v1/render", render_body(style="noir\nx"), "style", "a newline"),
           ("/v1/render", render_body(prompt="a door\x1b[31m"), "prompt", "ESC"),
           ("/v1/render", render_body(negative_prompt="blur\rx"), "negative prompt",
            "a carriage return"),
           ("/v1/plan", {**plan, "style": "noir\u202e"}, "style", "a control character")]
    with sketch_daemon.client() as c:
        for path, body, what, named in bad:
            for headers in ({}, {"Accept": NDJSON}):
                resp = c.post(path, json=body, headers=headers)
                assert resp.status_code == 422, (path, what)
                assert f"{what} must be plain text on one line; it contains {named}" in \
                    resp.json()["detail"]
        assert c.post("/v1/render", json=render_body(style="noir")).status_code == 200


def test_a_backend_value_error_is_the_requests_fault_and_not_worth_a_retry():
    from gpu_daemon.app import render_failure_status
    from storyboard_cli.tasks.daemon_client import DaemonRejected, DaemonUnavailable, failure

    # The sketch backend's answer to a multi-line style, before requests were checked.
    caused_by_request = ValueError("can't measure length of multiline text")
    assert isinstance(failure(render_failure_status(caused_by_request), "x", "d"),
                      DaemonRejected)
    out_of_memory = RuntimeError("CUDA out of memory")
    assert isinstance(failure(render_failure_status(out_of_memory), "x", "d"),
                      DaemonUnavailable)


def test_render_streams_progress_then_one_result(sketch_daemon):
    with sketch_daemon.client() as c, c.stream(
        "POST", "/v1/render", json=render_body(), headers={"Accept": NDJSON}
    ) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith(NDJSON)
        events = [json.loads(line) for line in resp.iter_lines() if line]
    assert [e["event"] for e in events] == ["progress", "result"]
    assert events[0] == {"event": "progress", "shot_id": 11, "step": 1, "total": 1,
                         "state": None}
    assert httpx.get(events[-1]["result"]["image_url"]).status_code == 200


def test_plan_returns_shots_and_uploads_the_script(sketch_daemon, s3_server):
    story = ("清晨，小镇还在沉睡。老陈推开木门，看见院子里站着一个陌生的孩子。"
             "“你是谁？”老陈问。孩子没有回答。")
    task_id = str(uuid.uuid4())
    with sketch_daemon.client() as c:
        resp = c.post("/v1/plan", json={"project_id": 3, "task_id": task_id, "story": story,
                                        "style": "anime", "aspect": "4:3", "width": 592,
                                        "height": 440})
    assert resp.status_code == 200, resp.text
    plan = resp.json()
    assert plan["planner"] == "rules"
    shots = plan["shots"]
    assert shots and [s["index"] for s in shots] == list(range(len(shots)))
    assert [s["number"] for s in shots] == [s["index"] + 1 for s in shots]
    assert [s["seed"] for s in shots] == [shot_seed(task_id, s["index"]) for s in shots]
    # The child is unnamed but comes back: a role of the cast.
    assert [(c["name"], c["description"]) for c in plan["characters"]] == [
        ("老陈", "elderly person"), ("孩子", "child")]
    assert {"speaker": "老陈", "line": "你是谁？", "parenthetical": None} in [
        d for s in shots for d in s["dialogue"]]
    assert plan["script_key"] == f"projects/3/scripts/{task_id}.json"

    got = httpx.get(plan["script_url"])
    assert got.status_code == 200
    script = got.json()
    assert script["task_id"] == task_id
    # Each shot with the provenance it will render with (the sketch backend: no model).
    assert [{k: v for k, v in s.items() if k != "provenance"} for s in script["shots"]] == shots
    assert [(p["backend"], p["model"], p["seed"], p["width"], p["height"])
            for p in (s["provenance"] for s in script["shots"])] == \
        [("sketch", None, s["seed"], 592, 440) for s in shots]
    assert (script["aspect"], script["width"], script["height"]) == ("4:3", 592, 440)
    assert script["characters"] == plan["characters"]
    head = s3_server.client().head_object(Bucket=s3_server.bucket, Key=plan["script_key"])
    assert head["ContentType"].startswith("application/json")


def test_plan_without_upload_streams_progress(sketch_daemon):
    body = {"project_id": 3, "task_id": "t-1", "story": "A door opens. A child waits.",
            "upload_script": False, "max_shots": 1}
    with sketch_daemon.client() as c, c.stream("POST", "/v1/plan", json=body,
                                                headers={"Accept": NDJSON}) as resp:
        events = [json.loads(line) for line in resp.iter_lines() if line]
    assert [e["event"] for e in events] == ["progress", "progress", "result"]
    result = events[-1]["result"]
    assert result["script_key"] is None and len(result["shots"]) == 1


def test_status_reports_backends_and_render_counters(sketch_daemon):
    before = sketch_daemon.status()
    with sketch_daemon.client() as c:
        assert c.post("/v1/render", json=render_body()).status_code == 200
    after = sketch_daemon.status()
    assert (after["image_backend"], after["planner"], after["device"]) == ("sketch", "rules", "cpu")
    assert after["model"] is None and after["model_loaded"] is False
    assert after["renders"] == before["renders"] + 1
    assert after["pipeline_calls"] == before["pipeline_calls"] + 1
    assert after["render_busy_s"] > before["render_busy_s"]
    assert after["uptime_s"] > before["uptime_s"]
    assert (after["busy"], after["waiting"]) == (False, 0)


def test_keep_alive_requests_are_not_delayed_by_nagle(sketch_daemon):
    # With Nagle on, a keep-alive request waited ~44 ms for a delayed ACK (measured here).
    with sketch_daemon.client() as c:
        c.get("/v1/status")
        times = []
        for _ in range(30):
            start = time.perf_counter()
            assert c.get("/v1/status").status_code == 200
            times.append(time.perf_counter() - start)
    assert statistics.median(times) < 0.02, times


def test_a_bucket_that_refuses_uploads_is_a_clear_502(tmp_path, s3_server):
    from fixtures_daemon import start_daemon

    daemon = start_daemon(tmp_path, s3_server, "sketch", env={"ACCESS_KEY": "AKNOBODY"})
    try:
        with daemon.client() as c:
            plain = c.post("/v1/render", json=render_body())
            checked = c.get("/v1/status", params={"check": "bucket"}).json()
            with c.stream("POST", "/v1/render", json=render_body(),
                          headers={"Accept": NDJSON}) as resp:
                events = [json.loads(line) for line in resp.iter_lines() if line]
    finally:
        daemon.stop()
    assert plain.status_code == 502
    assert f"bucket '{s3_server.bucket}'" in plain.json()["detail"]
    # ... and its own bucket check says so, for `storyboard doctor` to show.
    bucket = checked["bucket"]
    assert bucket["ok"] is False and bucket["bucket"] == s3_server.bucket
    assert "ACCESS_KEY" in bucket["hint"] and s3_server.secret_key not in json.dumps(bucket)
    assert s3_server.secret_key not in plain.text
    assert events[-1]["event"] == "error" and events[-1]["status"] == 502
    assert f"bucket '{s3_server.bucket}'" in events[-1]["error"]


def test_status_reports_the_daemons_own_bucket_check_only_when_asked(sketch_daemon, s3_server):
    with sketch_daemon.client() as c:
        assert c.get("/v1/status").json()["bucket"] is None
        bucket = c.get("/v1/status", params={"check": "bucket"}).json()["bucket"]
    assert bucket["ok"] is True, bucket
    assert (bucket["endpoint"], bucket["bucket"]) == (s3_server.endpoint, s3_server.bucket)
    assert "write, read back, presigned fetch ok" in bucket["detail"]


def test_the_log_has_one_line_per_render_and_plan_and_no_health_checks(sketch_daemon):
    task = str(uuid.uuid4())
    with sketch_daemon.client() as c:
        for _ in range(3):
            assert httpx.get(f"{sketch_daemon.url}/healthz").status_code == 200
        assert c.post("/v1/render", json=render_body(task_id=task, shot_id=5)).status_code == 200
        plan = {"project_id": 7, "task_id": task, "story": "An old man opens the door.",
                "upload_script": False}
        assert c.post("/v1/plan", json=plan).status_code == 200
    log = sketch_daemon.proc.log_path.read_text()
    [render] = [line for line in log.splitlines() if f"render task={task}" in line]
    assert "project=7 shot=5 ok batch=1 render_ms=" in render and "total_ms=" in render
    [planned] = [line for line in log.splitlines() if f"plan task={task}" in line]
    assert "ok shots=1 planner=rules" in planned
    assert "/healthz" not in log and "httpx" not in log
