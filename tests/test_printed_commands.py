"""The commands the output names run as printed, also where `storyboard` is not on PATH (after
`make setup` or `make demo`, the CLI is .venv/bin/storyboard), and the CI example finds the
project's CLI by itself."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CLI = Path(sys.executable).with_name("storyboard")
BARE_PATH = "/usr/local/bin:/usr/bin:/bin"


def env_with(path: str, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STORYBOARD")}
    (tmp_path / "storyboard.toml").write_text(
        '[stack]\nstate_dir = "state"\n[redis]\nurl = "redis://127.0.0.1:9/0"\n',
        encoding="utf-8")
    return {**env, "PATH": path, "NO_COLOR": "1", "XDG_CONFIG_HOME": str(tmp_path / "xdg")}


def printed_command(stderr: str) -> str:
    found = re.search(r"\((.+) up starts it\)", stderr)
    assert found, stderr
    return found.group(1)


def test_without_storyboard_on_path_the_printed_command_is_the_clis_own_path(tmp_path):
    env = env_with(BARE_PATH, tmp_path)
    done = subprocess.run([str(CLI), "ps"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=60)
    sb = printed_command(done.stderr)
    assert sb == str(CLI.resolve())
    # Run as printed, from where it was printed, with the same PATH.
    again = subprocess.run(f"{sb} up --help", shell=True, cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=60)
    assert again.returncode == 0 and "Usage:" in again.stdout, again.stderr


def test_inside_the_project_the_path_is_relative_and_on_path_it_is_the_name(tmp_path):
    env = env_with(BARE_PATH, tmp_path)
    done = subprocess.run([str(CLI), "--config", str(tmp_path / "storyboard.toml"), "ps"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    if CLI.resolve().is_relative_to(REPO):
        assert printed_command(done.stderr) == f"./{CLI.resolve().relative_to(REPO)}"
    on_path = env_with(f"{CLI.parent}{os.pathsep}{BARE_PATH}", tmp_path)
    done = subprocess.run([str(CLI), "ps"], cwd=tmp_path, env=on_path, capture_output=True,
                          text=True, timeout=60)
    assert printed_command(done.stderr) == "storyboard"


def test_the_ci_example_finds_the_projects_cli_without_path(tmp_path):
    """No `storyboard` on PATH: the script uses the project's .venv (here: the CLI's own
    environment, given as the project's) and gets as far as the queue, which is down."""
    env = env_with(BARE_PATH, tmp_path)
    env["STORYBOARD_CONFIG"] = str(tmp_path / "storyboard.toml")
    project = tmp_path / "project"
    (project / "examples").mkdir(parents=True)
    for name in ("ci.sh", "lighthouse.txt"):
        (project / "examples" / name).write_bytes((REPO / "examples" / name).read_bytes())
    (project / ".venv").mkdir()
    (project / ".venv" / "bin").symlink_to(CLI.parent)
    done = subprocess.run(["bash", str(project / "examples" / "ci.sh")], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert "command not found" not in done.stderr
    assert done.returncode == 3 and "cannot reach Redis" in done.stderr, done.stderr
