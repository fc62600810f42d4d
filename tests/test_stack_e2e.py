"""End to end through `storyboard up`: the worker reaches the GPU daemon only through real
frps/frpc (tcp and stcp), and a tunnel cut in the middle of a task heals once frpc is back."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest
from fixtures_stack import stack_config, storyboard

from storyboard_cli import views
from storyboard_cli.stack import processes
from storyboard_cli.stack.demo import run_story
from storyboard_cli.store import Store
from storyboard_cli.tasks.jobs import connect_redis, submit_storyboard
from storyboard_cli.tasks.progress import follow, poll, snapshot

PNG = b"\x89PNG\r\n\x1a\n"
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "bilingual.txt"


def worker_env(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


def all_healthy(statuses: dict) -> bool:
    return all(s.ok for s in statuses.values())


@pytest.mark.parametrize("mode", ["tcp", "stcp"])
def test_a_storyboard_is_rendered_with_the_daemon_reached_through_the_tunnel(
    new_stack, redis_url, s3_server, mode,
):
    handle = new_stack(mode=mode, workers=1, redis_url=redis_url, s3=s3_server)
    statuses = handle.up()
    assert all_healthy(statuses), statuses
    assert statuses["redis"].state == statuses["s3"].state == "external"

    stack = handle.stack
    env = worker_env(stack.record("worker-1").pid)
    assert env["STORYBOARD_DAEMON_URL"] == stack.tunnel_url != stack.daemon_local_url
    assert str(stack.cfg.frp.visitor_port if mode == "stcp" else stack.cfg.frp.remote_port) \
        in stack.tunnel_url

    view = run_story(stack.cfg, EXAMPLE, timeout=60, quiet=True)
    assert view["status"] == "succeeded", view["error"]
    assert view["progress"]["done"] == view["progress"]["total"] == len(view["shots"]) > 3
    image = httpx.get(view["shots"][0]["image_url"], timeout=10)
    assert image.status_code == 200 and image.content.startswith(PNG)


def test_a_tunnel_cut_mid_task_is_ridden_out_and_the_task_completes(
    new_stack, redis_url, s3_server, tmp_path,
):
    handle = new_stack(mode="stcp", workers=1, redis_url=redis_url, s3=s3_server)
    assert all_healthy(handle.up())
    stack, cfg = handle.stack, handle.cfg
    story = " ".join(f"Night {i}: the keeper climbs tower {i} and lights the lamp."
                     for i in range(1, 21))
    store = Store(cfg.store_path)
    redis = connect_redis(cfg.redis.url)
    try:
        project = store.create_project("twenty nights", story, "movie")
        task = submit_storyboard(store, redis, cfg, project["id"], None, False)
        assert processes.wait_until(lambda: snapshot(store, task["id"]).done >= 1, 30)

        processes.stop_pid(stack.record("frpc").pid, sig=9)
        # Mid-task: renders now fail to reach the daemon and wait for a retry.
        assert processes.wait_until(lambda: any(
            s.error and "cannot reach the GPU daemon" in s.error
            for s in snapshot(store, task["id"]).shots), 15)
        cut = snapshot(store, task["id"])
        assert not cut.finished and cut.done < cut.total

        restored = handle.up()
        assert restored["frpc"].state == "started", restored
        assert {n for n, s in restored.items() if s.state == "running"} == {
            "daemon", "frps", "visitor", "worker-1"}

        follow(poll(store, task["id"]), timeout=60)
        view = views.task_view(store, task["id"])
        assert view["status"] == "succeeded", view["error"]
        assert view["progress"] == {"done": 20, "total": 20}
        assert all(shot["image_key"] for shot in view["shots"])
    finally:
        redis.close()
        store.close()


def test_demo_prints_links_that_return_pngs_exports_the_board_and_leaves_the_stack_running(
    tmp_path, redis_url, s3_server,
):
    root = tmp_path / "demo"
    stack_config(root, workers=1, redis_url=redis_url, s3=s3_server)
    try:
        # What `make demo` runs: no story given, so the bundled bilingual example.
        done = storyboard(root, "demo")
        assert done.returncode == 0, done.stdout + done.stderr
        links = re.findall(r"^  shot \d+: (\S+)$", done.stdout, re.MULTILINE)
        assert len(links) > 3
        for url in (links[0], links[-1]):
            image = httpx.get(url, timeout=10)
            assert image.status_code == 200 and image.content.startswith(PNG)
        assert "storyboard down" in done.stderr
        # It ends with the board: an HTML page and a PDF, their paths and links to them.
        for fmt in ("html", "pdf"):
            path = root / "exports" / f"bilingual-1.{fmt}"
            assert f"Wrote {path} ({fmt}, {len(links)} shots" in done.stdout
            assert path.stat().st_size > 10_000
        shared = re.findall(r"^Link \(valid until \S+\): (\S+)$", done.stdout, re.MULTILINE)
        assert len(shared) == 2
        page = httpx.get(shared[0], timeout=10)
        assert page.status_code == 200 and page.text.startswith("<!doctype html>")
        assert page.content == (root / "exports" / "bilingual-1.html").read_bytes()
        shown = storyboard(root, "ps", "--json")
        assert shown.returncode == 0
        assert {p["state"] for p in json.loads(shown.stdout)["parts"]} == {"running"}
    finally:
        storyboard(root, "down")
