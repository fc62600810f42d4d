"""Smaller things a user meets every day: piped tables are never cut, a speaker's name stands
outside the quotation marks, and `doctor --side gpu` with its daemon down speaks of the GPU
box."""

from __future__ import annotations

import io
import json
import os
import subprocess
from pathlib import Path

from fixtures_queue import storyboard_argv

from storyboard_cli.stack import processes
from storyboard_cli.stack.doctor import Doctor
from storyboard_cli.store import Store
from storyboard_cli.tasks.jobs import planned_row
from storyboard_contract.config import load_config
from storyboard_contract.wire import DialogueLine, PlannedShot

LONG_TITLE = "The lighthouse keeper's daughter and the storm that did not end " * 3


def cli(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STORYBOARD_")}
    env.update(NO_COLOR="1", XDG_CONFIG_HOME=str(root / "xdg"))
    env.pop("COLUMNS", None)
    return subprocess.run([*storyboard_argv(), *args], cwd=root, env=env, capture_output=True,
                          text=True, timeout=60)


def test_piped_tables_keep_every_title_whole(tmp_path: Path) -> None:
    (tmp_path / "storyboard.toml").write_text('[store]\npath = "sb.db"\n', encoding="utf-8")
    story = tmp_path / "story.txt"
    story.write_text("The storm broke over the bay.", encoding="utf-8")
    assert cli(tmp_path, "new", str(story), "--title", LONG_TITLE.strip()).returncode == 0

    listed = cli(tmp_path, "list")
    assert LONG_TITLE.strip() in listed.stdout, listed.stdout


def test_a_speakers_name_stands_outside_the_quotation_marks(tmp_path: Path) -> None:
    (tmp_path / "storyboard.toml").write_text('[store]\npath = "sb.db"\n', encoding="utf-8")
    store = Store(tmp_path / "sb.db", create=True)
    project = store.create_project("渡口", "周明喊道：“船家，等一等！”", "movie")
    task = store.create_task("storyboard", project["id"])
    shot = PlannedShot(index=0, description="周明喊道：“船家，等一等！”", prompt="渡口",
                       dialogue=[DialogueLine(speaker="周明", line="船家，等一等！")])
    store.save_plan(task["id"], project["id"], [planned_row(task["id"], shot)],
                    with_renders=False)
    store.close()

    shown = cli(tmp_path, "status", task["id"])
    assert "周明: “船家，等一等！”" in shown.stdout, shown.stdout
    assert "“周明" not in shown.stdout


def test_doctor_on_the_gpu_side_with_its_daemon_down_speaks_of_the_gpu_box(tmp_path: Path
                                                                          ) -> None:
    ports = processes.free_ports(4)
    (tmp_path / "storyboard.toml").write_text(
        f"[daemon]\nport = {ports[0]}\n[frp]\nserver_port = {ports[1]}\n"
        f"admin_port = {ports[2]}\n", encoding="utf-8")
    secrets = {"STORYBOARD_DAEMON_TOKEN": "t" * 32, "STORYBOARD_FRP_TOKEN": "f" * 32,
               "STORYBOARD_FRP_SECRET_KEY": "s" * 32, "STORYBOARD_FRP_ADMIN_PASSWORD": "a" * 32}
    cfg = load_config(tmp_path / "storyboard.toml", environ=secrets)
    checks = {c.name: c for c in Doctor(cfg, side="gpu").run()}

    assert checks["daemon"].status == "fail" and "gpu-daemon serve" in checks["daemon"].hint
    assert checks["model"].status == "skip"
    assert checks["model"].detail.startswith("the daemon does not answer; its settings would "
                                             "load: sketch")
    assert checks["frpc"].status == "fail" and "frp/start_frpc.sh" in checks["frpc"].hint
    assert not [c.name for c in checks.values() if "storyboard up" in c.hint + c.detail], \
        json.dumps([c.as_dict() for c in checks.values()], indent=1)


def test_burned_in_subtitles_stay_above_a_sketch_panels_caption() -> None:
    from PIL import ImageChops

    from gpu_daemon.images import RenderJob
    from gpu_daemon.images.sketch import SketchBackend
    from storyboard_cli.board.animatic import backdrop, moving
    from storyboard_cli.board.panels import Panel
    from storyboard_cli.board.sheet import find_font
    from storyboard_contract.typeset import find_cjk_font

    job = RenderJob(prompt="p", negative_prompt="", seed=1, width=688, height=384, steps=1,
                    guidance_scale=1.0, index=0, camera="medium", style="movie",
                    description="The keeper climbs the stairs of the lighthouse in the storm, "
                                "lantern in hand, while the sea breaks on the rocks below.")
    image = SketchBackend(find_cjk_font()).panel(job)
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    shot = {"move": "static", "label": "1", "width": 688, "height": 384,
            "provenance": {"backend": "sketch"}}
    panel = Panel(shot=shot, image=buf.getvalue())
    width, height, font_path = 860, 480, find_font()

    (with_subtitles,) = list(moving(panel, "MARA: Hurry, the lamp is out!", width, height,
                                    font_path, 1))
    changed = ImageChops.difference(with_subtitles, backdrop(panel, width, height, font_path))
    left, top, right, bottom = changed.getbbox()
    caption_top = height * (1 - 0.28)  # the frame fills the picture here (both 16:9-ish)
    assert bottom <= caption_top, (bottom, caption_top)


def test_make_setup_says_each_step_and_lets_pip_list_its_work() -> None:
    """What `make setup` runs on a fresh clone (a dry run: the real one takes minutes)."""
    repo = Path(__file__).resolve().parent.parent
    # --no-print-directory: under `make test` this make is a sub-make, which would say so.
    plan = subprocess.run(["make", "--no-print-directory", "-n", "-B", ".venv/.installed"],
                          cwd=repo, capture_output=True, text=True, timeout=60).stdout.splitlines()
    installs = [k for k, line in enumerate(plan) if "pip install" in line]
    assert installs and all(plan[k - 1].startswith('echo "setup: ') for k in installs), plan
    assert not [line for line in plan if "pip install" in line and " -q" in line]
    assert plan[-1].startswith('echo "setup: done; the CLI is .venv/bin/storyboard')
