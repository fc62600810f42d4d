"""Renders per shot through a bucket outage (issue 14, item 4).

A task of N shots (tiny diffusers pipeline, `storyboard up`'s two workers) is planned, the
bucket (SeaweedFS) is stopped, the workers start, and the bucket comes back after S seconds;
the figure is the daemon's renders (/v1/status) over the shots, once with the daemon's kept
images off (`[daemon] keep_images_mib = 0`: every retry rendered again, as before) and once
with the default (the retry only uploads the image it kept).

Run alone: .venv/bin/python bench/outage.py [--shots 100] [--outage 20]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import harness
from fixtures_bucket import OutageRun, render_through_outage

TARGET_RENDERS_PER_SHOT = 1.0


def run(shots: int = 100, outage_s: float = 20) -> dict[str, Any]:
    from gpu_daemon.testing import build_tiny_pipeline

    with tempfile.TemporaryDirectory(prefix="bench-outage-") as tmp:
        root = Path(tmp)
        model = build_tiny_pipeline(root / "tiny-sd")
        redis = harness.RedisServer(root / "redis").start()
        try:
            runs = {name: render_through_outage(root / name, redis.url, model, shots, outage_s,
                                                keep_mib=keep)
                    for name, keep in (("kept images off", 0), ("kept images on", 256))}
        finally:
            redis.stop()
    return {"shots": shots, "outage_s": outage_s, "runs": runs}


def markdown(res: dict[str, Any]) -> tuple[str, list[bool]]:
    runs: dict[str, OutageRun] = res["runs"]
    rows = [[name, r.status, r.renders, f"{r.renders / r.shots:.2f}", r.reused,
             f"{r.seconds:.1f}"] for name, r in runs.items()]
    text = (f"A {res['shots']}-shot task, the bucket stopped for {res['outage_s']:g} s while "
            "two workers render (retries every second):\n\n" + harness.table(
                ["daemon", "task", "renders", "renders per shot", "retries that only uploaded",
                 "outage start → task done (s)"], rows) + "\n\n")
    line, ok = harness.verdict("renders per shot through a bucket outage",
                               runs["kept images on"].renders / res["shots"],
                               TARGET_RENDERS_PER_SHOT, False)
    return text + f"- {line}\n", [ok]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shots", type=int, default=100)
    parser.add_argument("--outage", type=float, default=20)
    args = parser.parse_args()
    print(markdown(run(args.shots, args.outage))[0])


if __name__ == "__main__":
    main()
