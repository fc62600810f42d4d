"""A bucket outage in the middle of rendering, against a SeaweedFS of its own (stopped and
started again on the same ports and data), a daemon with the tiny diffusers pipeline and real
`storyboard worker` processes. Used by tests/test_daemon_kept_images.py and bench/outage.py.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conftest import S3Server, start_s3
from fixtures_daemon import start_daemon
from fixtures_queue import write_stack

from storyboard_cli.stack import processes


def story(shots: int) -> str:
    """`shots` sentences long enough for a shot each."""
    return "\n".join(f"The keeper climbed to landing number {n} and looked out at the dark sea."
                     for n in range(1, shots + 1)) + "\n"


def stop_bucket(s3: S3Server) -> None:
    s3.proc.stop()


def start_bucket(s3: S3Server) -> None:
    """SeaweedFS again on its ports and data: the bucket and its objects are back. Its master
    may first wait out a 10 s leader election on a busy machine, hence the long wait."""
    old = s3.proc
    s3.proc = processes.Process(old.name, old.argv, old.log_path, env=old.env).start()
    if not processes.wait_until(lambda: processes.http_ok(f"{s3.endpoint}/healthz"), 60):
        raise RuntimeError(f"SeaweedFS did not come back:\n{s3.proc.log_tail()}")


@dataclass
class OutageRun:
    shots: int
    renders: int  # images the daemon rendered for the task
    reused: int  # retries that only uploaded a kept image
    outage_s: float
    seconds: float  # from the outage's start to the task's end
    status: str


def render_through_outage(root: Path, redis_url: str, model_dir: Path, shots: int,
                          outage_s: float, keep_mib: int = 256, workers: int = 2) -> OutageRun:
    """Plan a task of `shots` shots, stop the bucket, start the workers (every upload fails),
    start the bucket again after `outage_s` seconds and wait for the task; keep_mib = 0 turns
    the daemon's kept images off (the behaviour before them)."""
    s3 = start_s3(root / "s3")
    daemon = stack = None
    try:
        daemon = start_daemon(
            root / "daemon", s3, "diffusers", model_dir,
            images={"width": 64, "height": 64, "steps": 4, "max_batch": 4},
            sections={"daemon": {"keep_images_mib": keep_mib},
                      "planner": {"max_shots": shots}})
        # Retries every second for long enough to ride out the outage and the restart.
        retries = int(outage_s) + 60
        stack = write_stack(root / "stack", redis_url, s3, daemon.url, daemon.token,
                            queue={"retries": retries, "backoff": [1]},
                            images={"width": 64, "height": 64})
        task_id = stack.submit(story(shots))
        planned = stack.burst("--queues", "plan")
        assert planned.returncode == 0, planned.stderr
        before = daemon.status()
        stop_bucket(s3)
        started = time.monotonic()
        for _ in range(workers):
            stack.start_worker()
        time.sleep(outage_s)
        start_bucket(s3)
        stack.wait_for(lambda: stack.view(task_id)["status"] in ("succeeded", "failed"),
                       120 + outage_s, "the task after the bucket outage")
        seconds = time.monotonic() - started
        after: dict[str, Any] = daemon.status()
        return OutageRun(shots, after["renders"] - before["renders"],
                         after["kept_reused"] - before["kept_reused"], outage_s, seconds,
                         stack.view(task_id)["status"])
    finally:
        if stack is not None:
            stack.stop_workers()
        if daemon is not None:
            daemon.stop()
        s3.proc.stop()
