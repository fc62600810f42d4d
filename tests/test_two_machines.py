"""The two-machine guide (frp/README.md "Two machines, step by step" and queue/README.md's
second GPU box), followed literally by scripts/two_machines.py on network namespaces: a host
and two GPU boxes, each running the guide's commands with this checkout's .venv (--fast).

It needs root and `ip netns`; elsewhere it is skipped, saying why."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "two_machines.py"
SKIPPED = 77


def two_machines(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                          timeout=120)


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_the_two_machine_guide_works_as_written_on_a_host_and_two_gpu_boxes():
    # --keep: the machines stay up as the walk left them, for a look around; --down ends them.
    proc = subprocess.Popen([sys.executable, str(SCRIPT), "--fast", "--boxes", "2", "--keep"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        try:
            out, _ = proc.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGTERM)
            out, _ = proc.communicate(timeout=60)
            pytest.fail(f"the guide did not finish in 300 s:\n{out[-6000:]}")
        if proc.returncode == SKIPPED:
            pytest.skip(out.strip().splitlines()[-1])
        assert proc.returncode == 0, out[-8000:]
        assert "the guide worked on 3 machines" in out
        # Both boxes rendered shots of the same task, and doctor checked each box's daemon.
        assert '"daemon:gpu1": "ok"' in out and '"daemon:gpu2": "ok"' in out

        kept = re.search(r"kept the machines up: namespaces (.+?) \(.*folders in (\S+);", out)
        assert kept, out[-2000:]
        namespaces, folder = kept.group(1).split(), Path(kept.group(2))
        assert len(namespaces) == 3 and folder.is_dir()
        assert all(subprocess.run(["ip", "netns", "pids", ns], capture_output=True,
                                  text=True).stdout.split() for ns in namespaces)
        # A namespace named like ours that no run made (another user's, a crashed run's
        # before it wrote its record) is not --down's to remove.
        bystander = f"sb{(int(namespaces[0][2:6], 16) + 1) % 0x10000:04x}h"
        subprocess.run(["ip", "netns", "add", bystander], check=True)
    finally:
        if proc.returncode != SKIPPED:
            removed = two_machines("--down")
    try:
        assert removed.returncode == 0, removed.stderr
        listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        assert not any(ns in listed for ns in namespaces) and not folder.exists()
        assert bystander in listed
    finally:
        subprocess.run(["ip", "netns", "delete", bystander])
