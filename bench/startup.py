"""CLI start-up: `storyboard --help` and `storyboard new` against `python -c pass`.

Each command runs REPEAT times, interleaved so machine noise hits all of them alike; the
figure is the ratio of medians. Also lists the modules the CLI imports that take over 10 ms.
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPEAT = 15
BIN = Path(sys.executable).parent


def _time(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   check=True)
    return time.perf_counter() - start


def slow_imports(threshold_us: int = 10_000) -> list[tuple[str, float]]:
    """Modules whose cumulative import time under `import storyboard_cli.cli` exceeds 10 ms."""
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import storyboard_cli.cli"],
        capture_output=True, text=True, check=True,
    ).stderr
    rows = []
    for line in out.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)", line)
        if m and int(m.group(2)) > threshold_us:
            rows.append((m.group(3)[1:] + m.group(4), int(m.group(2)) / 1000))
    return rows


def run() -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "storyboard.toml"
        cfg.write_text('[store]\npath = "sb.db"\n')
        story = Path(tmp) / "story.txt"
        story.write_text("The keeper climbed the stairs. The light turned.\n")
        env = {**os.environ, "STORYBOARD_CONFIG": str(cfg), "NO_COLOR": "1"}
        commands = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "storyboard --help": [str(BIN / "storyboard"), "--help"],
            "storyboard new": [str(BIN / "storyboard"), "new", str(story), "--json"],
        }
        for argv in commands.values():  # warm the page cache and the store
            _time(argv, env)
        samples: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(REPEAT):
            for name, argv in commands.items():
                samples[name].append(_time(argv, env))
    med = {name: statistics.median(v) * 1000 for name, v in samples.items()}
    base = med["python -c pass"]
    return {
        "median_ms": med,
        "ratio_help": med["storyboard --help"] / base,
        "ratio_new": med["storyboard new"] / base,
        "slow_imports": slow_imports(),
    }


if __name__ == "__main__":
    result = run()
    for name, ms in result["median_ms"].items():
        print(f"{name:20s} {ms:7.1f} ms")
    print(f"--help / python: {result['ratio_help']:.2f}x")
    print(f"new / python:    {result['ratio_new']:.2f}x")
    for name, ms in result["slow_imports"]:
        print(f"  import {name}: {ms:.1f} ms")
