"""The remote CLI: the end-to-end flow of tests/test_queue_e2e.py, run once against this
machine's store and Redis and once from another folder (no config, no store, no Redis or S3
settings: a laptop) with --server against a `storyboard serve` in another process over the same
stack. Exit codes and JSON are the same, ids, times, seeds, keys and links aside; so are the
error lines. Plus what only a remote CLI meets: a wrong or missing token, a server that is
down, a command that works on this machine only."""

from __future__ import annotations

import csv
import json
import re
import secrets
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fixtures_queue import QueueStack, storyboard_argv
from fixtures_serve import Served, start_serve
from fixtures_stack import clean_env
from test_queue_e2e import STORY, png
from test_screenplay_projects import BROKEN_FDX, DATA, write_revised_ferry

from storyboard_cli.stack import processes

# What differs between two runs of the same flow: which project and task, when, the random
# seeds, and so the object keys and links (and the size of the images drawn from the seeds).
VARYING = {"id", "task_id", "project_id", "shot_id", "created_at", "started_at", "finished_at",
           "seed", "image_key", "image_url", "url_expires_at", "script_key", "script_url",
           "script_url_expires_at", "path", "files", "bytes", "prefixes", "at", "undoes",
           "undone_by"}
# The story revised (`storyboard update`): one sentence reworded, one added.
REVISED = STORY.replace("climbed the lighthouse stairs", "climbed the stairs slowly, counting "
                        "each step").rstrip() + " The lamp flared once and went dark.\n"

Run = Callable[..., subprocess.CompletedProcess[str]]
SCREENPLAY = DATA / "night_ferry.fountain"


def laptop(root: Path, env: dict[str, str]) -> Run:
    """`storyboard ARGS` in a folder of its own, with only `env` set beyond a clean shell."""
    root.mkdir(parents=True, exist_ok=True)
    write_stories(root)

    def run(*args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*storyboard_argv(), *args], cwd=root, capture_output=True,
                              text=True, timeout=timeout,
                              env={**clean_env(), "NO_COLOR": "1", **env})

    return run


def write_stories(root: Path) -> None:
    """The story, a screenplay and its revision, and a Final Draft file that is not one."""
    (root / "story.txt").write_text(STORY, encoding="utf-8")
    shutil.copy(SCREENPLAY, root / SCREENPLAY.name)
    write_revised_ferry(root)
    (root / "broken.fdx").write_text(BROKEN_FDX, encoding="utf-8")


def same_shape(value: Any) -> Any:
    """The value with what differs between runs (VARYING) blanked, and the edits' numbers in
    the history's words ("undid #12")."""
    if isinstance(value, dict):
        return {k: "<varies>" if k in VARYING and v is not None else same_shape(v)
                for k, v in value.items()}
    if isinstance(value, list):
        return [same_shape(v) for v in value]
    if isinstance(value, str):
        return re.sub(r"#\d+\b", "#<edit>", value)
    return value


def flow(run: Run, where: Path) -> dict[str, tuple[Any, ...]]:
    """new → generate (waiting) → show → regen-shot → status → links → cast --set → edits
    (shot, shots split/merge/move/insert/delete, note, approve, log, undo) → generate --stale
    → update → revisions → diff → show --revision → export; a screenplay (new, generate,
    show, regen-shot and shot --move by scene and shot, update with a revised script, a
    timeline and the CSV); and the refusals; each step's exit code and JSON (or error line,
    paths as <here>)."""
    steps: dict[str, tuple[Any, ...]] = {}
    names: dict[str, str] = {}  # what to call the run's own project id and folder in a message

    def scrub(text: str) -> str:
        for value, name in names.items():
            text = re.sub(rf"(?<![\w/-]){re.escape(value)}\b(?!-)", name, text)
        return text

    def step(name: str, *args: str) -> Any:
        done = run(*args, "--json")
        answer = json.loads(done.stdout) if done.stdout.strip() else None
        if name.startswith("refused"):
            steps[name] = (done.returncode, scrub(done.stdout), scrub(done.stderr))
        else:
            assert done.returncode == 0, f"{name}: {done.stderr}"
            steps[name] = (done.returncode, same_shape(answer))
        return answer, done

    (project, _) = step("new", "new", "story.txt", "--title", "lighthouse")
    pid = str(project["id"])
    names.update({str(where): "<here>", pid: "<project>"})
    task, generated = step("generate", "generate", pid, "--timeout", "60")
    names[task["id"]] = "<task>"
    # The progress came as plain lines on stderr (piped): one per shot, then the outcome.
    assert generated.stderr.count(" done (") == len(task["shots"]) >= 3
    assert f"task {task['id'][:8]}: succeeded" in generated.stderr
    step("show", "show", pid)
    regen, _ = step("regen-shot", "regen-shot", f"{pid}/2", "--seed", "7", "--timeout", "60")
    step("status", "status", task["id"])
    step("status by prefix", "status", regen["id"][:8])
    links, _ = step("links", "links", pid, "--expires", "900")
    for shot in links["shots"]:
        png(shot["image_url"])
    step("cast --set", "cast", pid, "--set", "Tom=old keeper, grey beard, yellow oilskin")
    step("tasks", "tasks", pid)
    # The render settings: changed, shown, put back; what the host can refuse, refused.
    step("settings", "settings", pid, "--scheduler", "euler_a", "--steps", "3", "--cfg", "5",
         "--lora", "ink.safetensors:0.5", "--negative", "text, watermark")
    step("settings --reset", "settings", pid, "--reset", "loras", "--reset", "negative")
    step("refused: a LoRA outside the daemon's folder", "settings", pid, "--lora",
         "../ink.safetensors")
    step("refused: an unknown scheduler", "settings", pid, "--scheduler", "dpm_fast")
    step("refused: a model the host does not know", "new", "story.txt", "--model", "sdxl")
    # Editing the storyboard, its history, a stale render and a revision of the story.
    step("shot", "shot", f"{pid}/2", "--camera", "close-up", "--dialogue",
         "Tom: Who is there?", "--duration", "4")
    step("shot read", "shot", f"{pid}/2")
    step("shots split", "shots", pid, "split", "1")
    step("shots merge", "shots", pid, "merge", "1", "2")
    step("shots move", "shots", pid, "move", "3", "--to", "1")
    step("shots insert", "shots", pid, "insert", "--after", "1", "--action",
         "Gulls over the rocks.", "--camera", "wide")
    step("shots delete", "shots", pid, "delete", "2")
    step("note", "note", f"{pid}/1", "more fog")
    step("approve", "approve", f"{pid}/1")
    step("unapprove", "unapprove", f"{pid}/1")
    step("approve another", "approve", f"{pid}/4")
    step("log", "log", pid)
    step("undo", "undo", pid)
    step("generate --stale", "generate", pid, "--stale", "--timeout", "60")
    (where / "revised.txt").write_text(REVISED, encoding="utf-8")
    revised, _ = step("update", "update", pid, "revised.txt", "--timeout", "60")
    names[revised["id"][:8]] = "<revision task>"
    step("revisions", "revisions", pid)
    step("diff", "diff", pid)
    step("show --revision", "show", pid, "--revision", "1")
    step("refused: merge one shot", "shots", pid, "merge", "3", "3")
    step("refused: move out of range", "shots", pid, "move", "1", "--to", "99")
    step("refused: empty action", "shot", f"{pid}/1", "--action", " ")
    step("refused: nothing to undo", "undo", pid)
    step("refused: an unknown revision", "diff", pid, "--from", "9")
    exported, _ = step("export", "export", pid, "--format", "html", "-o", "board.html")
    board = Path(exported["path"])
    assert board == where / "board.html" and board.stat().st_size == exported["bytes"]
    assert board.read_text(encoding="utf-8").count("<img") == len(revised["shots"])
    # A folder export comes as a zip and is unpacked where the local one writes its folder.
    folder, _ = step("export storyboarder", "export", pid, "--format", "storyboarder", "-o",
                     "board")
    made = sorted(p.relative_to(where / "board").as_posix()
                  for p in (where / "board").rglob("*") if p.is_file())
    steps["storyboarder folder"] = (len(made), sorted({Path(p).suffix for p in made}))
    assert Path(folder["path"]) == where / "board" and "board.storyboarder" in made
    # An animatic and its subtitles, side by side as the local export writes them.
    film, _ = step("export mp4", "export", pid, "--format", "mp4", "-o", "board.mp4")
    assert film["files"] == [str(where / "board.mp4"), str(where / "board.srt")]
    steps["subtitles"] = (0, (where / "board.srt").read_text(encoding="utf-8"))
    # A screenplay: titled by its title page, shots by scene, a timeline with its frames.
    (screenplay, _) = step("new screenplay", "new", SCREENPLAY.name)
    sid = str(screenplay["id"])  # in no message below: not scrubbed from them
    step("generate screenplay", "generate", sid, "--timeout", "90")
    step("show screenplay", "show", sid)
    step("regen-shot by scene and shot", "regen-shot", f"{sid}/2.3", "--seed", "5",
         "--timeout", "60")
    step("shot --move by scene and shot", "shot", f"{sid}/2.3", "--move", "Dolly Out")
    step("refused: an unknown move", "shot", f"{sid}/2.3", "--move", "orbit")
    step("update screenplay", "update", sid, "night_ferry_v2.fountain", "--timeout", "90")
    step("export otio", "export", sid, "--format", "otio", "-o", "cut")
    steps["otio folder"] = (0, sorted(p.relative_to(where / "cut").as_posix()
                                      for p in (where / "cut").rglob("*") if p.is_file()))
    step("export csv", "export", sid, "--format", "csv", "-o", "shots.csv")
    with (where / "shots.csv").open(encoding="utf-8-sig", newline="") as table:
        steps["csv"] = (0, [row[:8] for row in csv.reader(table)])
    step("refused: a broken Final Draft file", "new", "broken.fdx")
    step("refused: export over a file", "export", pid, "--format", "html", "-o", "board.html")
    step("refused: unknown project", "show", "987654")
    step("refused: unknown task", "status", "0123456789abcdef0123456789abcdef")
    step("refused: unknown shot number", "regen-shot", f"{pid}/99")
    step("refused: empty title", "rename", pid, " ")
    step("refused: retry of a task that succeeded", "retry", task["id"])
    step("rm", "rm", pid, "--yes")
    step("refused: a removed project", "show", pid)
    return steps


def remote_env(served: Served) -> dict[str, str]:
    return {"STORYBOARD_SERVER": served.url, "STORYBOARD_API_TOKEN": served.token}


def test_the_remote_cli_runs_the_end_to_end_flow_with_the_same_answers_as_the_local_one(
        served: Served, tmp_path: Path):
    # `served`: a `storyboard serve` in its own process over a stack with a worker, whose
    # folder holds the configuration and the store: the local runs are made there.
    stack = served.stack
    write_stories(stack.root)
    # Project ids from 10 up, so that scrubbing the run's own id from a message never takes a
    # shot number or a count for it ("move a shot to 1 to 5").
    store = stack.store()
    try:
        while store.create_project("filler", "Once.", "movie")["id"] < 9:
            pass
    finally:
        store.close()
    local = flow(stack.run, stack.root)
    away = tmp_path / "laptop"
    remote = flow(laptop(away, remote_env(served)), away)
    assert list(remote) == list(local)
    for name in local:
        assert remote[name] == local[name], name
    # The laptop has nothing of the system: no store, no settings.
    assert sorted(p.name for p in away.iterdir()) == [
        "board", "board.html", "board.mp4", "board.srt", "broken.fdx", "cut",
        "night_ferry.fountain", "night_ferry_v2.fountain", "revised.txt", "shots.csv",
        "story.txt"]
    # Piped, the download's progress is a line at the start and one per quarter.
    run = laptop(away, remote_env(served))
    project = json.loads(run("new", "story.txt", "--json").stdout)["id"]
    assert run("generate", str(project), "--timeout", "60").returncode == 0
    again = run("export", str(project), "--format", "html", "-o", "again.html")
    assert again.returncode == 0, again.stderr
    progress = [ln for ln in again.stderr.splitlines() if ln.startswith("export: ")]
    assert progress[0].startswith("export: downloading ") and "from the server" in progress[0]
    assert progress[-1].endswith(" downloaded") and len(progress) <= 5
    assert again.stdout.startswith(f"Wrote {away / 'again.html'} (html, ")
    # `list` through --server (given after the command) shows the projects, as locally.
    listed = laptop(away, {"STORYBOARD_API_TOKEN": served.token})("list", "--server",
                                                                  served.url, "--json")
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == json.loads(stack.run("list", "--json").stdout)


def test_waiting_remotely_times_out_like_locally_while_no_worker_listens(
        stack: QueueStack, tmp_path: Path):
    # Nothing changes while no worker runs, so the events stream is silent: --timeout acts
    # all the same, with the same exit code and message.
    (stack.root / "story.txt").write_text(STORY, encoding="utf-8")
    token = secrets.token_urlsafe(24)
    proc, url = start_serve(stack, token)
    away = tmp_path / "laptop"
    outcomes = []
    try:
        for run in (stack.run, laptop(away, {"STORYBOARD_SERVER": url,
                                             "STORYBOARD_API_TOKEN": token})):
            project = json.loads(run("new", "story.txt", "--json").stdout)["id"]
            queued = run("generate", str(project), "--no-wait", "--json")
            assert "no worker is listening" in queued.stderr
            task = json.loads(queued.stdout)["task_id"]
            started = time.monotonic()
            waited = run("status", task, "--watch", "--timeout", "0.5", "--json")
            assert time.monotonic() - started < 10
            outcomes.append((waited.returncode,
                             *(re.sub(f"{task[:8]}[-0-9a-f]*", "<task>", out)
                               for out in (waited.stdout, waited.stderr))))
    finally:
        proc.stop()
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][0] == 4


def test_a_wrong_or_missing_token_is_one_line_exit_2_that_never_shows_it(
        served: Served, tmp_path: Path):
    wrong = "not-the-token-" + secrets.token_hex(8)
    for token, says in ((wrong, "refused the API token"), ("", "requires an API token")):
        run = laptop(tmp_path, {"STORYBOARD_SERVER": served.url, "STORYBOARD_API_TOKEN": token})
        done = run("list")
        assert done.returncode == 2
        assert done.stderr == (f"Error: the storyboard server at {served.url} {says}: set "
                               "STORYBOARD_API_TOKEN to the server's token\n")
        assert done.stdout == ""
        as_json = run("show", "1", "--json")
        assert as_json.returncode == 2 and "error" in json.loads(as_json.stdout)
        assert wrong not in as_json.stdout + as_json.stderr


def test_a_server_that_is_down_is_one_line_exit_3_without_its_credentials(tmp_path: Path):
    port = processes.free_port()
    token = secrets.token_urlsafe(24)
    run = laptop(tmp_path, {"STORYBOARD_API_TOKEN": token})
    for args in (("list",), ("generate", "1"), ("status", "0123456789abcdef"),
                 ("export", "1", "--format", "html")):
        done = run("--server", f"http://writer:pw-s3cr3t@127.0.0.1:{port}/base?key=k3y",
                   *args)
        assert done.returncode == 3, args
        assert done.stderr.startswith(
            f"Error: cannot reach the storyboard server at http://127.0.0.1:{port}: ")
        assert len(done.stderr.splitlines()) == 1
        assert not [s for s in ("s3cr3t", "k3y", "writer", "base") if s in done.stderr]
        assert token not in done.stderr
    assert not list(tmp_path.glob("*.html"))


def test_commands_of_this_machine_refuse_server_in_one_line(tmp_path: Path):
    run = laptop(tmp_path, {})
    for command in ("worker", "up", "ps", "doctor", "demo"):
        done = run("--server", "http://127.0.0.1:9", command)
        assert done.returncode == 2, command
        assert done.stderr == (f"Error: `storyboard {command}` works on this machine only; "
                               "--server is for the project and task commands (see README, "
                               "Remote CLI)\n")
    bad = run("--server", "ftp://example.org", "list")
    assert (bad.returncode, bad.stderr) == (
        2, "Error: --server / STORYBOARD_SERVER must be an http:// or https:// URL\n")


def test_doctor_checks_the_server_storyboard_server_names_and_its_token(served: Served):
    from storyboard_cli.stack.doctor import Doctor, Failed
    from storyboard_contract.config import load_config

    cfg = load_config(None, environ={"STORYBOARD_SERVER": served.url,
                                     "STORYBOARD_API_TOKEN": served.token})
    assert Doctor(cfg).check_serve() == f"{served.url}: token accepted"
    for token, says in (("wrong", "refused our API token"), ("", "requires an API token")):
        cfg.server.api_token = token
        with pytest.raises(Failed, match=says):
            Doctor(cfg).check_serve()
    cfg.server.url = f"http://127.0.0.1:{processes.free_port()}"
    with pytest.raises(Failed, match="connection refused") as down:
        Doctor(cfg).check_serve()
    assert "`storyboard up`" in down.value.hint
