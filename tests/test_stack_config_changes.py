"""A running stack takes an edited storyboard.toml: `up` restarts exactly the parts whose
configuration changed, and says which."""

from __future__ import annotations

import httpx
from fixtures_stack import storyboard


def daemon_status(handle) -> dict:
    cfg = handle.reload().cfg
    answer = httpx.get(f"http://127.0.0.1:{cfg.daemon.port}/v1/status", timeout=10,
                       headers={"Authorization": f"Bearer {cfg.daemon.token}"})
    return answer.json()


def test_up_restarts_the_parts_whose_configuration_changed_and_says_which(
        new_stack, redis_url, s3_server):
    handle = new_stack(mode="tcp", workers=1, redis_url=redis_url, s3=s3_server)
    first = handle.up()
    assert all(s.ok for s in first.values()), first
    before = handle.pids()
    assert daemon_status(handle)["prompt_language"] == "en"

    with handle.config_path.open("a", encoding="utf-8") as f:
        f.write('\n[planner]\nprompt_language = "zh"\n')
    done = storyboard(handle.root, "up")
    assert done.returncode == 0, done.stdout + done.stderr
    said = " ".join((done.stdout + done.stderr).split())
    assert "restarted daemon: [planner] changed since it started" in said

    after = handle.pids()
    assert after["daemon"] != before["daemon"]
    assert {k: v for k, v in after.items() if k != "daemon"} == \
        {k: v for k, v in before.items() if k != "daemon"}
    assert daemon_status(handle)["prompt_language"] == "zh"

    again = handle.up()
    assert {s.state for s in again.values()} <= {"running", "external"}, again
    assert handle.pids() == after


def test_a_changed_queue_restarts_the_workers_not_the_daemon(new_stack, redis_url, s3_server):
    handle = new_stack(mode="tcp", workers=1, redis_url=redis_url, s3=s3_server)
    assert all(s.ok for s in handle.up().values())
    before = handle.pids()
    text = handle.config_path.read_text(encoding="utf-8")
    handle.config_path.write_text(text.replace("[queue]\n", "[queue]\nresult_ttl = 1234\n", 1),
                                  encoding="utf-8")
    second = handle.up()
    assert second["worker-1"].state == "restarted"
    assert second["worker-1"].detail == "[queue] changed"
    assert {n for n, s in second.items() if s.state == "restarted"} == {"worker-1"}
    assert handle.pids()["daemon"] == before["daemon"]
