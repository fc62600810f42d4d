"""Which storyboard.toml a command uses, from any folder: the current one or the nearest above
it (as git finds its repository), then the user's; with none, it says so once, on stderr."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from fixtures_queue import storyboard_argv

NOTE = "no storyboard.toml in"


def run(cwd: Path, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("STORYBOARD_") and k not in ("ACCESS_KEY", "SECRET_KEY")}
    env.update(XDG_CONFIG_HOME=str(home), NO_COLOR="1", COLUMNS="200")
    return subprocess.run([*storyboard_argv(), *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=60)


def test_a_subfolder_uses_the_projects_storyboard_toml_and_its_store(tmp_path: Path) -> None:
    project = tmp_path / "film"
    (project / "drafts" / "act1").mkdir(parents=True)
    (project / "storyboard.toml").write_text('[store]\npath = "data/sb.db"\n', encoding="utf-8")
    story = project / "drafts" / "act1" / "story.txt"
    story.write_text("The storm broke over the bay. Mara ran.", encoding="utf-8")

    made = run(story.parent, tmp_path / "xdg", "new", "story.txt", "--title", "Bay", "--json")
    assert made.returncode == 0, made.stderr
    assert NOTE not in made.stderr
    assert (project / "data" / "sb.db").is_file()
    assert not list(story.parent.glob("*.db"))
    listed = run(project / "drafts", tmp_path / "xdg", "list", "--json")
    assert [p["title"] for p in json.loads(listed.stdout)] == ["Bay"]


def test_the_users_storyboard_toml_is_next(tmp_path: Path) -> None:
    (tmp_path / "xdg" / "storyboard").mkdir(parents=True)
    (tmp_path / "xdg" / "storyboard" / "storyboard.toml").write_text(
        f'[store]\npath = "{tmp_path / "mine.db"}"\n', encoding="utf-8")
    (tmp_path / "elsewhere").mkdir()
    done = run(tmp_path / "elsewhere", tmp_path / "xdg", "list")
    assert done.returncode == 0 and NOTE not in done.stderr, done.stderr


def test_without_any_storyboard_toml_the_command_says_once_what_it_uses(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    done = run(tmp_path / "empty", tmp_path / "xdg", "list")
    assert done.returncode == 0, done.stderr
    assert done.stderr.count(NOTE) == 1
    line = " ".join(done.stderr.split())
    assert f"{NOTE} {tmp_path / 'empty'} or a folder above it" in line
    assert f"the store {tmp_path / 'empty' / 'storyboard.db'}" in line
    assert "storyboard init" in line
    assert "No projects yet" in done.stderr
