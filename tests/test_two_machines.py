"""The two-machine guide (frp/README.md "Two machines, step by step" and queue/README.md's
second GPU box), followed literally by scripts/two_machines.py on network namespaces: a host
and two GPU boxes, each running the guide's commands with this checkout's .venv (--fast).

It needs root and `ip netns`; elsewhere it is skipped, saying why."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "two_machines.py"
SKIPPED = 77


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_the_two_machine_guide_works_as_written_on_a_host_and_two_gpu_boxes():
    proc = subprocess.Popen([sys.executable, str(SCRIPT), "--fast", "--boxes", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        out, _ = proc.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)  # the script stops its processes, deletes namespaces
        out, _ = proc.communicate(timeout=60)
        pytest.fail(f"the guide did not finish in 300 s:\n{out[-6000:]}")
    if proc.returncode == SKIPPED:
        pytest.skip(out.strip().splitlines()[-1])
    assert proc.returncode == 0, out[-8000:]
    assert "the guide worked on 3 machines" in out
    # Both boxes rendered shots of the same task, and doctor checked each box's daemon.
    assert '"daemon:gpu1": "ok"' in out and '"daemon:gpu2": "ok"' in out
