"""`storyboard demo`: an example story through the whole system on this machine.

The stack part is `storyboard up` (storyboard_cli.stack.supervisor); this module finds the
example story, makes sure redis-server exists, and runs one storyboard task with live progress.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

from storyboard_cli.stack import processes
from storyboard_contract.errors import UsageError

if TYPE_CHECKING:
    from storyboard_contract.config import Config

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = "bilingual.txt"
# The demo ends with the board to look at: these exports, in this folder, uploaded.
EXPORTS = ("html", "pdf")
EXPORT_FOLDER = Path("exports")
# Installs redis-server (and a CJK font) with apt as root on Debian/Ubuntu; `make setup` runs it.
SYSTEM_DEPS = REPO / "scripts" / "system-deps.sh"
REDIS_HINT = ("redis-server is not installed: run `sudo sh scripts/system-deps.sh` (Debian/"
              "Ubuntu: sudo apt-get install redis-server; macOS: brew install redis), or point "
              "[redis] url at a running Redis")


def example_story(search: tuple[Path, ...] = (Path.cwd(), REPO)) -> Path:
    """examples/bilingual.txt of the checkout (or cwd), else any example story there."""
    folders = [base / "examples" for base in search]
    for folder in folders:
        if (folder / EXAMPLE).is_file():
            return folder / EXAMPLE
    for folder in folders:
        stories = sorted(folder.glob("*.txt")) if folder.is_dir() else []
        if stories:
            return stories[0]
    raise UsageError("no example story found: pass a story file, e.g. storyboard demo story.txt")


def ensure_redis_server(cfg: Config) -> list[str]:
    """Nothing to do when the configured Redis answers or redis-server is installed; else
    install it the way `make setup` does (root + apt), or explain how. Returns what was done."""
    from storyboard_cli.stack.supervisor import redis_answers

    if redis_answers(cfg.redis.url) or processes.find_binary("redis-server"):
        return []
    can_install = (SYSTEM_DEPS.is_file() and shutil.which("apt-get")
                   and hasattr(os, "geteuid") and os.geteuid() == 0)
    if not can_install:
        raise UsageError(REDIS_HINT)
    proc = subprocess.run(["sh", str(SYSTEM_DEPS)], capture_output=True, text=True, timeout=900)
    if proc.returncode != 0 or not processes.find_binary("redis-server"):
        raise UsageError(f"{REDIS_HINT} ({SYSTEM_DEPS} said: {proc.stderr.strip()[-300:]})")
    return [line for line in proc.stdout.splitlines() if line.strip()]


def run_story(cfg: Config, story: Path, timeout: float | None = None,
              quiet: bool = False) -> dict[str, Any]:
    """The demo's storyboard of `story`, made once: the task object, followed to its end.

    The first run creates a project titled after the file and generates it. A later run finds
    that project by its title and reuses it: it follows the task still under way, makes the
    changed story file a new revision of the project's story (only new and changed shots are
    rendered), generates again when the last storyboard did not succeed, and otherwise shows
    the storyboard it has. Running the demo again never makes a second project of the same
    title."""
    from storyboard_cli import output
    from storyboard_cli.service import LocalService
    from storyboard_cli.store.status import LIVE, TaskStatus
    from storyboard_cli.stories import load_story
    from storyboard_cli.tasks.progress import follow

    def say(text: str) -> None:
        if not quiet:
            output.info(output.escape(text))

    service = LocalService(cfg, create_store=True)
    try:
        text, name, _ = load_story(str(story), None, cfg.limits.max_story_bytes)
        title = Path(name).stem
        same = sorted(p["id"] for p in service.list_projects() if p["title"] == title)
        if not same:
            project_id = service.create_project(title, text, "movie")["id"]
            say(f"Project {project_id} {title!r} from {story}: planning and rendering ...")
            task_id = service.generate(str(project_id))["task_id"]
        else:
            # The newest, should older versions of the demo have left several.
            project_id = same[-1]
            if len(same) > 1:
                say(f"Projects {', '.join(map(str, same))} are all titled {title!r}: using "
                    f"{project_id} (remove the others with `storyboard rm ID`)")
            view = service.project(str(project_id))
            last = view["task"]
            if view["story_text"] != text:
                say(f"Project {project_id} {title!r} again, with the changed story of {story} "
                    "as a new revision: rendering what changed ...")
                task_id = service.update_story(str(project_id), text)["task_id"]
            elif last and last["status"] in LIVE:
                say(f"Project {project_id} {title!r} (made by an earlier demo) is still being "
                    "made: following it ...")
                task_id = last["id"]
            elif last and last["status"] == TaskStatus.SUCCEEDED:
                say(f"Project {project_id} {title!r} (made by an earlier demo) has its "
                    f"storyboard already: showing it (render it again with `storyboard "
                    f"generate {project_id}`)")
                task_id = last["id"]
            else:
                say(f"Project {project_id} {title!r} again (its last storyboard did not "
                    "succeed): planning and rendering ...")
                task_id = service.generate(str(project_id))["task_id"]
        follow(service.watch(task_id), timeout)
        return service.task(task_id)
    finally:
        service.close()
