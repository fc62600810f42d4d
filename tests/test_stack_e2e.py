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
from storyboard_contract.config import load_config

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


def test_demo_prints_one_url_to_open_exports_the_board_and_reuses_its_project_when_run_again(
    tmp_path, redis_url, s3_server,
):
    root = tmp_path / "demo"
    stack_config(root, workers=1, redis_url=redis_url, s3=s3_server, serve=True)
    board_port = load_config(root / "storyboard.toml", environ={}).server.port
    try:
        # What `make demo` runs: no story given, so the bundled bilingual example.
        done = storyboard(root, "demo")
        assert done.returncode == 0, done.stdout + done.stderr
        board = f"http://127.0.0.1:{board_port}/projects/1"
        # One URL to open: the project's web board (no presigned link, no part's address).
        assert re.findall(r"https?://\S+", done.stdout + done.stderr) == [board]
        assert f"Open the board: {board}" in done.stderr
        # The CLI as it can be typed here (its path when `storyboard` on PATH is another).
        assert re.search(r"`\S*storyboard token` prints it", done.stderr)
        assert "storyboard down" in done.stderr
        shots = [line for line in done.stdout.splitlines() if re.match(r"^│ \d+ ", line)]
        assert len(shots) > 3
        # It ends with the board to print or send: an HTML page and a PDF, their paths.
        for fmt in ("html", "pdf"):
            path = root / "exports" / f"bilingual-1.{fmt}"
            assert f"Wrote {path} ({fmt}, {len(shots)} shots" in done.stdout
            assert path.stat().st_size > 10_000

        # The URL works with the token `storyboard token` prints, frames and all.
        token = storyboard(root, "token").stdout.strip()
        with httpx.Client(base_url=f"http://127.0.0.1:{board_port}", timeout=30,
                          headers={"Origin": f"http://127.0.0.1:{board_port}"}) as browser:
            login = browser.post("/login", data={"token": token, "next": "/projects/1"},
                                 follow_redirects=True)
            assert login.status_code == 200 and "board.js" in login.text
            html = browser.get("/api/projects/1/board").text
            frames = re.findall(r'<img src="(/api/images/[^"]+)"', html)
            assert len(frames) == len(shots)
            assert browser.get(frames[0]).content.startswith(PNG)

        # Again: the same project, shown as it is, nothing rendered twice.
        again = storyboard(root, "demo", "--json")
        assert again.returncode == 0, again.stderr
        assert json.loads(again.stdout)["project_id"] == 1
        listed = json.loads(storyboard(root, "list", "--json").stdout)
        assert [(p["id"], p["title"]) for p in listed] == [(1, "bilingual")]
        assert len(json.loads(storyboard(root, "tasks", "--json").stdout)) == 1
        again = storyboard(root, "demo")
        assert "has its storyboard already: showing it" in again.stderr

        # A changed story file of the same name: the same project, planned and rendered again.
        changed = root / "mine" / "bilingual.txt"
        changed.parent.mkdir()
        changed.write_text(EXAMPLE.read_text(encoding="utf-8") + "\nThe lamp went out.\n",
                           encoding="utf-8")
        redone = storyboard(root, "demo", str(changed), "--json")
        assert redone.returncode == 0, redone.stderr
        assert json.loads(redone.stdout)["project_id"] == 1
        assert [p["id"] for p in json.loads(storyboard(root, "list", "--json").stdout)] == [1]
        assert len(json.loads(storyboard(root, "tasks", "--json").stdout)) == 2
        shown = storyboard(root, "ps", "--json")
        assert shown.returncode == 0
        assert {p["state"] for p in json.loads(shown.stdout)["parts"]} == {"running"}
    finally:
        storyboard(root, "down")
