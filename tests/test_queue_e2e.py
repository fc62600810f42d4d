"""End to end, as a user runs it: `storyboard new` -> `generate` (waiting) -> presigned PNG
links -> `regen-shot` -> `status --json` -> `links`, with real Redis, SeaweedFS, GPU daemon
(sketch and a tiny diffusers pipeline) and `storyboard worker` processes."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

from PIL import Image

from storyboard_cli.stack.processes import free_port

STORY = ("The storm rose over the bay. Old Tom climbed the lighthouse stairs. "
         "Mara waited by the great lens. A small boat drifted toward the rocks.\n")
TASK_KEYS = {"id", "type", "status", "project_id", "shot_id", "progress", "error",
             "created_at", "started_at", "finished_at", "no_images", "stale", "revision",
             "warnings", "state", "shots"}
SHOT_KEYS = {"id", "index", "number", "label", "scene", "scene_heading", "scene_shot", "camera",
             "move", "action", "dialogue", "characters", "duration",
             "description", "prompt", "image_prompt", "seed", "width", "height", "image_key",
             "image_url", "url_expires_at", "notes", "approved", "stale", "revised", "provenance"}


def png(url: str) -> Image.Image:
    with urllib.request.urlopen(url, timeout=10) as resp:
        data = resp.read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def new_project(stack, story: str = STORY) -> int:
    (stack.root / "story.txt").write_text(story, encoding="utf-8")
    return stack.json("new", "story.txt", "--title", "lighthouse")["id"]


def test_a_story_becomes_a_storyboard_with_links_and_one_shot_can_be_redone(stack):
    stack.start_worker()
    stack.start_worker()  # two workers share the render jobs
    project = new_project(stack)

    done = stack.run("generate", str(project), "--json", "--timeout", "60")
    assert done.returncode == 0, done.stderr
    task = json.loads(done.stdout)
    assert set(task) == TASK_KEYS
    assert (task["type"], task["status"], task["error"]) == ("storyboard", "succeeded", None)
    shots = task["shots"]
    assert len(shots) >= 3
    assert task["progress"] == {"done": len(shots), "total": len(shots)}
    assert all(set(s) == SHOT_KEYS for s in shots)
    assert [s["index"] for s in shots] == list(range(len(shots)))
    assert [s["number"] for s in shots] == list(range(1, len(shots) + 1))
    # Piped, so progress came as plain lines on stderr: one per shot, then the outcome.
    assert done.stderr.count(" done (") == len(shots)
    assert f"task {task['id'][:8]}: succeeded" in done.stderr
    # The project's 16:9 frame at the workers' pixel budget (256 x 256): 344 x 192.
    for shot in shots:
        assert png(shot["image_url"]).size == (344, 192) == (shot["width"], shot["height"])

    target = shots[1]
    # Named as `show` prints it: PROJECT/NUMBER.
    regen = stack.json("regen-shot", f"{project}/{target['number']}", "--seed", "7",
                       "--timeout", "60")
    assert (regen["type"], regen["status"], regen["shot_id"]) == (
        "shot_generation", "succeeded", target["id"])
    assert [s["id"] for s in regen["shots"]] == [target["id"]]
    assert regen["progress"] == {"done": 1, "total": 1}

    after = stack.json("status", task["id"])
    assert set(after) == TASK_KEYS and after["status"] == "succeeded"
    changed = [(a["id"], a["image_key"]) for a, b in zip(after["shots"], shots, strict=True)
               if a["image_key"] != b["image_key"]]
    assert changed == [(target["id"], target["image_key"].replace(task["id"], regen["id"]))]
    assert after["shots"][1]["seed"] == 7 and after["shots"][1]["prompt"] == target["prompt"]
    png(after["shots"][1]["image_url"])

    # Links with more than links.MIN_LEFT_S (300 s) left: `show` keeps them as they are.
    links = stack.json("links", str(project), "--expires", "900")
    renewed = links["shots"]
    assert [s["image_key"] for s in renewed] == [s["image_key"] for s in after["shots"]]
    assert all(r["image_url"] != a["image_url"] for r, a in zip(renewed, after["shots"],
                                                                  strict=True))
    for shot in renewed:
        png(shot["image_url"])
    assert links["script_key"] == f"projects/{project}/scripts/{task['id']}.json"
    script = json.loads(urllib.request.urlopen(links["script_url"], timeout=10).read())
    assert (script["task_id"], script["aspect"], script["width"], script["height"]) == (
        task["id"], "16:9", 344, 192)
    assert [s["number"] for s in script["shots"]] == [s["number"] for s in shots]
    assert [s["seed"] for s in script["shots"]] == [s["seed"] for s in shots]
    stored = stack.json("show", str(project))["shots"]
    assert [s["image_url"] for s in stored] == [s["image_url"] for s in renewed]
    # Out of S3's range (1 s to 7 days): refused, and no stored link is rewritten.
    for expires in ("0", "-5", "604801"):
        refused = stack.run("links", str(project), "--expires", expires, "--json")
        assert refused.returncode == 2, expires
        assert json.loads(refused.stdout) == {
            "error": "--expires must be between 1 and 604800 seconds (7 days)"}
    assert stack.json("show", str(project))["shots"] == stored
    # Without --json: a table, then every link whole on its own line.
    human = stack.run("links", str(project))
    lines = [ln.split(": ", 1)[1] for ln in human.stdout.splitlines()
             if ln.startswith("  shot ")]
    assert len(lines) == len(shots)
    png(lines[0])


def test_the_tiny_diffusers_pipeline_renders_every_shot_and_reports_its_steps(
    make_stack, diffusers_daemon
):
    stack = make_stack(diffusers_daemon, name="diffusers", images={"width": 64, "height": 64})
    stack.start_worker()
    project = new_project(stack)
    done = stack.run("generate", str(project), "--json", "--timeout", "90", timeout=120)
    assert done.returncode == 0, done.stderr
    task = json.loads(done.stdout)
    assert task["status"] == "succeeded"
    # 16:9 at least 64 pixels high, in multiples of 8.
    for shot in task["shots"]:
        assert png(shot["image_url"]).size == (112, 64)
    store = stack.store()
    # The daemon's NDJSON step events reached the store: 4 diffusion steps per shot.
    assert {(r["step"], r["steps"]) for r in store.task_renders(task["id"])} == {(4, 4)}
    store.close()


def test_no_wait_answers_the_queued_object_and_a_timeout_exits_4_leaving_the_task_queued(stack):
    project = new_project(stack)
    queued = stack.run("generate", str(project), "--no-wait", "--json")
    assert queued.returncode == 0, queued.stderr
    answer = json.loads(queued.stdout)
    assert list(answer) == ["message", "task_id", "status"]
    assert (answer["message"], answer["status"]) == ("Task queued successfully", "pending")
    assert "no worker is listening" in queued.stderr

    waited = stack.run("status", answer["task_id"], "--watch", "--timeout", "0.3", "--json")
    assert waited.returncode == 4
    assert json.loads(waited.stdout)["error"].startswith(f"task {answer['task_id']} is still")
    assert f"storyboard status {answer['task_id']} --watch" in waited.stderr
    assert stack.json("status", answer["task_id"])["status"] == "pending"


def test_redis_down_when_queueing_is_one_line_exit_3_and_records_no_task(stack):
    project = new_project(stack)
    down = f"redis://:pw-s3cr3t@127.0.0.1:{free_port()}/0"
    done = stack.run("generate", str(project), env={"STORYBOARD_REDIS_URL": down})
    assert done.returncode == 3
    assert done.stderr.startswith("Error: cannot reach Redis at redis://:***@127.0.0.1:")
    assert len(done.stderr.strip().splitlines()) == 1 and "s3cr3t" not in done.stderr
    assert stack.json("list")[0]["last_task_status"] is None


def test_the_ci_example_script_drives_a_running_stack(stack):
    worker = stack.start_worker()
    script = Path(__file__).parent.parent / "examples" / "ci.sh"
    # The script calls `storyboard` from PATH, as in CI after `pip install`.
    env = {**stack.env, "CI_TIMEOUT": "120",
           "PATH": str(Path(sys.executable).parent) + os.pathsep + stack.env["PATH"]}
    done = subprocess.run(["bash", str(script), str(script.parent / "lighthouse.txt")], env=env,
                          cwd=stack.root, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, f"{done.stderr}\n--- worker log\n{worker.log_tail(40)}"
    assert "ci.sh: ok, task" in done.stderr


def test_a_running_worker_follows_a_store_removed_and_made_again(stack):
    """`rm storyboard.db*` and a new project while the stack runs: the workers open the new
    store (they used to go on writing the removed file, and the new task never moved)."""
    worker = stack.start_worker()
    first = stack.run("generate", str(new_project(stack)), "--json", "--timeout", "60")
    assert first.returncode == 0, first.stderr
    for made in stack.root.glob("storyboard.db*"):
        made.unlink()
    again = stack.run("generate", str(new_project(stack)), "--json", "--timeout", "60")
    assert again.returncode == 0, f"{again.stderr}\n--- worker log\n{worker.log_tail(30)}"
    task = json.loads(again.stdout)
    assert task["status"] == "succeeded" and task["project_id"] == 1
    assert all(png(shot["image_url"]).size for shot in task["shots"])
