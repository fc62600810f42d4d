"""The edges a fault-and-input probe found (issue 23): bad text refused at every door, numbers
in range, canonical ids, event streams that release what they hold when dropped, exports that
never replace what is not a regular file, no token in an access log, plain subtitles, and
errors as documented. The API runs in this process (uvicorn in a thread, the real app over
a store in tmp_path); no other service is needed unless a test says so."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from storyboard_cli.store import Store
from storyboard_cli.tasks.jobs import planned_row
from storyboard_contract.wire import PlannedShot

# Nothing listens here: whatever reaches Redis was not refused at the door.
NO_REDIS = 'redis://127.0.0.1:9/0'


def one_line_error(result, code: int = 2) -> str:
    assert result.exit_code == code, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    return lines[0].removeprefix("Error: ")


def api_error(answer: httpx.Response, status: int) -> str:
    assert answer.status_code == status, answer.text
    message = answer.json()["error"]
    assert "\n" not in message
    return message


def planned_project(root: Path, title: str = "lighthouse", dialogue: list | None = None
                    ) -> tuple[int, int, str]:
    """A project with a planned storyboard of one shot, written to the store: (project id,
    shot id, task id)."""
    store = Store(root / "storyboard.db")
    try:
        project = store.create_project(title, "The keeper climbed.\n", "noir")
        task = store.create_task("storyboard", project["id"])
        shot = PlannedShot(index=0, description="The keeper climbs", action="The keeper climbs",
                           prompt="a keeper on stairs", dialogue=dialogue or [])
        store.save_plan(task["id"], project["id"], [planned_row(task["id"], shot)],
                        with_renders=True)
        return project["id"], store.task_renders(task["id"])[0]["shot_id"], task["id"]
    finally:
        store.close()


class Server:
    """`storyboard serve`'s app under uvicorn in a thread of this process."""

    def __init__(self, root: Path, heartbeat_s: float = 15.0,
                 environ: dict[str, str] | None = None) -> None:
        import uvicorn

        from storyboard_cli.server.app import create_app
        from storyboard_cli.stack import processes
        from storyboard_contract.config import load_config

        self.root = root
        self.config = load_config(root / "storyboard.toml", environ=environ or {})
        self.url = f"http://127.0.0.1:{processes.free_port()}"
        self.server = uvicorn.Server(uvicorn.Config(
            create_app(self.config, heartbeat_s=heartbeat_s), port=int(self.url.rsplit(":", 1)[1]),
            log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        assert processes.wait_until(lambda: self.server.started, 10)

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture()
def server(config_file: Path) -> Iterator[Server]:
    config_file.write_text(f'[store]\npath = "storyboard.db"\n[redis]\nurl = "{NO_REDIS}"\n')
    Store(config_file.parent / "storyboard.db").close()
    running = Server(config_file.parent)
    yield running
    running.stop()


def projects_in(root: Path) -> int:
    store = Store(root / "storyboard.db")
    try:
        return store.db["projects"].count
    finally:
        store.close()


# --- 1. bad text is refused at the door, the same on every path -------------------------------

# What `--title $'bad\xff\xfe'` gives Python: the bytes that are not UTF-8 as lone surrogates.
NOT_UTF8 = b"bad\xff\xfe".decode("utf-8", "surrogateescape")
BINARY_STORY = "The keeper climbed.\x00 The lamp\x1b[31m turned.\x07\n"


def test_a_title_or_prompt_that_is_not_utf8_is_one_line_exit_2(cli, config_file, tmp_path):
    (tmp_path / "s.txt").write_text("The keeper climbed.\n")
    line = one_line_error(cli("new", "s.txt", "--title", NOT_UTF8))
    assert "the title" in line and "not UTF-8" in line
    assert projects_in(tmp_path) == 0
    config_file.write_text(f'[store]\npath = "storyboard.db"\n[redis]\nurl = "{NO_REDIS}"\n')
    project, shot, _ = planned_project(tmp_path)
    # Refused before anything is queued (nothing listens at that Redis).
    line = one_line_error(cli("regen-shot", f"{project}/1", "--prompt",
                              b"p\xedq".decode("utf-8", "surrogateescape")))
    assert "the prompt" in line and "not UTF-8" in line


def test_the_api_refuses_lone_surrogates_and_binary_stories_as_the_cli_does(
        server, cli, tmp_path):
    with server.client() as api:
        # JSON can carry a lone surrogate as an escape.
        body = '{"title": "bad\\ud800", "story_text": "The keeper climbed."}'
        answer = api.post("/api/projects", content=body,
                          headers={"Content-Type": "application/json"})
        assert "the title" in api_error(answer, 422)
        refused = api_error(api.post("/api/projects", json={
            "title": "binary", "story_text": BINARY_STORY}), 422)
        assert "the story" in refused and "U+0000" in refused
    # The same story from a file: the same line.
    (tmp_path / "s.txt").write_text(BINARY_STORY.replace("\x00", ""))
    line = one_line_error(cli("new", "s.txt"))
    assert "the story" in line and "U+001B" in line
    assert projects_in(tmp_path) == 0


def test_the_remote_cli_refuses_text_that_is_not_utf8_as_the_server_does(
        server, cli, tmp_path, monkeypatch):
    monkeypatch.setenv("STORYBOARD_SERVER", server.url)
    (tmp_path / "s.txt").write_text("The keeper climbed.\n")
    line = one_line_error(cli("new", "s.txt", "--title", NOT_UTF8))
    assert "the title" in line and "not UTF-8" in line
    assert projects_in(tmp_path) == 0
    # A project named by such bytes, in the path or the query: no such project, exit 2.
    for args in (["show", NOT_UTF8], ["tasks", NOT_UTF8], ["regen-shot", f"{NOT_UTF8}/1"]):
        one_line_error(cli(*args))


# --- 2. numbers in range ----------------------------------------------------------------------

HUGE = 99999999999999999999999


@pytest.mark.parametrize(("method", "path", "body"), [
    ("GET", f"/api/tasks?limit={HUGE}", None),
    ("GET", "/api/tasks?limit=-5", None),
    ("GET", f"/api/projects/1/log?limit={HUGE}", None),
    ("GET", f"/api/projects/1?revision={HUGE}", None),
    ("GET", f"/api/projects/1/diff?from={HUGE}", None),
    ("GET", f"/api/projects/1/links?expires={HUGE}", None),
    ("POST", "/api/projects/1/shots/move", {"shot": HUGE, "to": 1}),
    ("POST", "/api/projects/1/shots/move", {"shot": 1, "to": -HUGE}),
    ("POST", "/api/projects/1/shots/delete", {"shot": HUGE}),
    ("POST", "/api/projects/1/shots/insert", {"after": HUGE, "fields": {"action": "x"}}),
    ("PATCH", "/api/projects/1/settings", {"steps": HUGE}),
    ("POST", "/api/shots/1/generate", {"seed": HUGE}),
])
def test_numbers_out_of_range_are_422_through_the_api(server, method, path, body):
    planned_project(server.root)
    with server.client() as api:
        api_error(api.request(method, path, json=body), 422)


@pytest.mark.parametrize("args", [
    ["tasks", "--limit", str(HUGE)],
    ["log", "1", "--limit", str(HUGE)],
    ["show", "1", "--revision", str(HUGE)],
])
def test_numbers_out_of_range_are_exit_2_at_the_cli(cli, tmp_path, args):
    planned_project(tmp_path)
    one_line_error(cli(*args))


def test_up_refuses_more_workers_than_a_machine_runs_before_writing_anything(cli, tmp_path):
    from storyboard_contract.config import MAX_WORKERS

    before = sorted(p.name for p in tmp_path.iterdir())
    assert f"at most {MAX_WORKERS}" in one_line_error(cli("up", "--workers", str(HUGE)))
    assert sorted(p.name for p in tmp_path.iterdir()) == before


# --- 3. ids are canonical ---------------------------------------------------------------------


@pytest.mark.parametrize("ref", ["%202", "2%20", "%092", "2%0a", "02", "+2", "%EF%BC%92"])
def test_only_the_canonical_id_names_a_project_through_the_api(server, ref):
    planned_project(server.root, "first")
    planned_project(server.root, "second")
    with server.client() as api:
        assert api.get("/api/projects/2").json()["title"] == "second"
        answer = api.get(f"/api/projects/{ref}")
        assert answer.status_code in (404, 422), answer.text
        assert api.delete(f"/api/projects/{ref}").status_code in (404, 422)
        assert api.get(f"/api/shots/{ref}%2F1").status_code in (404, 422)
    assert projects_in(server.root) == 2


@pytest.mark.parametrize("ref", ["02", " 2", "2 "])
def test_only_the_canonical_id_names_a_project_or_shot_at_the_cli(cli, tmp_path, ref):
    planned_project(tmp_path, "first")
    planned_project(tmp_path, "second")
    one_line_error(cli("show", ref))
    one_line_error(cli("note", f"{ref}/1", "a note"))
    one_line_error(cli("rm", ref, "--yes", "--keep-objects"))
    assert projects_in(tmp_path) == 2


# --- 4. dropped event streams release what they hold ------------------------------------------


def store_descriptors(root: Path) -> int:
    """How many open descriptors of this process are the store's files (db, -wal, -shm)."""
    import os

    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        count += target.startswith(str(root / "storyboard.db"))
    return count


def open_streams(url: str, task_id: str, count: int) -> list:
    """`count` event streams of a task, each read up to its first event."""
    import socket

    host, port = url.removeprefix("http://").split(":")
    streams = []
    for _ in range(count):
        sock = socket.create_connection((host, int(port)))
        sock.sendall(f"GET /api/tasks/{task_id}/events HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        streams.append(sock)
    for sock in streams:
        seen = b""
        while b"event: progress" not in seen:
            seen += sock.recv(65536)
    return streams


def test_dropped_event_streams_release_their_store_connections_at_once(server):
    import time

    _, _, task_id = planned_project(server.root)  # pending: its streams stay open
    with server.client() as api:
        api.get("/api/projects")  # a route thread's own connection
        for sock in open_streams(server.url, task_id, 1):  # the server has served a stream
            sock.close()
        time.sleep(0.5)
        baseline = store_descriptors(server.root)
        for sock in open_streams(server.url, task_id, 20):  # dropped mid-task
            sock.close()
        deadline = time.monotonic() + 3
        while store_descriptors(server.root) > baseline and time.monotonic() < deadline:
            time.sleep(0.05)
        assert store_descriptors(server.root) == baseline
        # The server goes on answering, streams too.
        assert api.get(f"/api/tasks/{task_id}").json()["status"] == "pending"
        for sock in open_streams(server.url, task_id, 1):
            sock.close()


# --- 5. exports never replace what is not a regular file ----------------------------------------


def read_fifo(path: Path) -> tuple[threading.Thread, list[bytes]]:
    """A reader of the FIFO at `path` in a thread (a writer's open waits for one)."""
    got: list[bytes] = []

    def read() -> None:
        with open(path, "rb") as fifo:
            got.append(fifo.read())

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread, got


@pytest.mark.parametrize("force", [False, True])
def test_an_export_into_a_fifo_writes_into_it_and_leaves_it_a_fifo(cli, tmp_path, force):
    import os
    import stat

    planned_project(tmp_path)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    link = tmp_path / "stdout"  # as /dev/stdout is a link to the descriptor
    link.symlink_to(fifo)
    for target in (fifo, link):
        thread, got = read_fifo(fifo)
        result = cli("export", "1", "--format", "html", "-o", str(target),
                     *(["--force"] if force else []))
        assert result.exit_code == 0, result.output
        thread.join(10)
        assert got[0].startswith(b"<!doctype html>") or b"<html" in got[0][:200]
        assert stat.S_ISFIFO(fifo.lstat().st_mode) and link.is_symlink()
    made = {p.name for p in tmp_path.iterdir() if not p.name.startswith("storyboard.")}
    assert made == {"pipe", "stdout"}


def test_an_export_of_several_files_or_a_folder_refuses_a_fifo_and_a_socket(cli, tmp_path):
    import os
    import socket
    import stat

    planned_project(tmp_path)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    for fmt in ("mp4", "storyboarder"):
        line = one_line_error(cli("export", "1", "--format", fmt, "-o", str(fifo), "--force"))
        assert str(fifo) in line and "FIFO" in line
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    with socket.socket(socket.AF_UNIX) as listening:
        listening.bind(str(tmp_path / "sock"))
        line = one_line_error(cli("export", "1", "--format", "html", "-o",
                                  str(tmp_path / "sock"), "--force"))
        assert "socket" in line
        assert stat.S_ISSOCK((tmp_path / "sock").lstat().st_mode)


def test_dash_writes_a_single_file_export_to_standard_output(cli, tmp_path):
    planned_project(tmp_path)
    result = cli("export", "1", "--format", "csv", "-o", "-")
    assert result.exit_code == 0, result.output
    assert result.stdout.lstrip("\ufeff").startswith("number,")
    assert "standard output" in result.stderr
    assert not list(tmp_path.glob("*.csv")) and not (tmp_path / "-").exists()
    for fmt in ("mp4", "storyboarder"):
        assert "standard output" in one_line_error(cli("export", "1", "--format", fmt,
                                                       "-o", "-"))


def test_every_place_an_export_cannot_be_written_is_one_line_exit_2(cli, tmp_path):
    planned_project(tmp_path)
    (tmp_path / "a-file").write_text("x")
    for out in (tmp_path / ("x" * 300 + ".html"),  # a name longer than the system allows
                tmp_path / "a-file" / "board.html",  # a folder that is a file
                tmp_path / "no-such-folder" / "board.html"):
        line = one_line_error(cli("export", "1", "--format", "html", "-o", str(out)))
        assert "unexpected" not in line
    assert sorted(p.name for p in tmp_path.iterdir())[0] == "a-file"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]


# --- 6. tokens never in a log -----------------------------------------------------------------


def query_tokens(url: str) -> list[str]:
    """Ask `url` for a few paths with a token in the query string, as a careless client does
    (refused or not); the tokens sent."""
    import secrets

    sent = [secrets.token_hex(12) for _ in range(3)]
    with httpx.Client(base_url=url, timeout=30) as client:
        client.get(f"/api/projects?token={sent[0]}")
        client.get(f"/v1/status?access_token={sent[1]}&x=1")
        client.get(f"/api/tasks?limit=5&api_key={sent[2]}")
    return sent


def test_servers_access_log_never_holds_a_query_string(tmp_path, config_file):
    import time

    from fixtures_queue import storyboard_argv

    from storyboard_cli.stack import processes

    port = processes.free_port()
    proc = processes.Process("serve", [*storyboard_argv(), "serve", "--port", str(port)],
                             tmp_path / "serve.log", env={"STORYBOARD_API_TOKEN": "t" * 32,
                                                          "STORYBOARD_CONFIG": str(config_file)},
                             cwd=tmp_path).start()
    try:
        assert processes.wait_until(
            lambda: processes.http_ok(f"http://127.0.0.1:{port}/healthz"), 30)
        sent = query_tokens(f"http://127.0.0.1:{port}")
        time.sleep(0.3)
    finally:
        proc.stop()
    log = proc.log_path.read_text()
    assert '"GET /api/projects?token=*** HTTP/1.1" 401' in log
    assert "limit=***&api_key=***" in log
    assert not any(token in log for token in sent)


def test_daemons_access_log_never_holds_a_query_string(sketch_daemon):
    import time

    sent = query_tokens(sketch_daemon.url)
    time.sleep(0.3)
    log = sketch_daemon.proc.log_path.read_text()
    assert "/v1/status?access_token=***&x=***" in log
    assert not any(token in log for token in sent)


# --- 7. subtitles are plain text --------------------------------------------------------------


def test_subtitles_hold_no_markup_and_no_terminal_escapes(cli, tmp_path):
    hostile = ('<b>Run</b> <img src=x onerror=alert(1)> {\\an8}\x1b[31mnow\x1b[0m, '
               '\x1b]0;owned\x07a < b & c > d')
    planned_project(tmp_path, dialogue=[{"speaker": "<i>MARA</i>", "line": hostile}])
    result = cli("export", "1", "--format", "mp4", "-o", str(tmp_path / "cut.mp4"), "--json")
    assert result.exit_code == 0, result.output
    cue = (tmp_path / "cut.srt").read_text(encoding="utf-8").split("\n")
    assert cue[:2] == ["1", "00:00:00,000 --> 00:00:03,000"]
    assert cue[2] == "MARA: Run now, a < b & c > d"


# --- 8. errors as documented ------------------------------------------------------------------


def test_deeply_nested_json_is_422_as_the_readme_says(server):
    nested = "[" * 100_000 + "]" * 100_000
    with server.client() as api:
        for path in ("/api/projects", "/api/projects/1/cast"):
            answer = api.request("POST" if path == "/api/projects" else "PATCH", path,
                                 content=nested, headers={"Content-Type": "application/json"})
            assert "JSON" in api_error(answer, 422)


def test_an_upload_to_a_bucket_that_does_not_answer_ends_within_the_s3_timeouts(
        cli, config_file, tmp_path, monkeypatch):
    import time

    silent = socket.socket()  # accepts connections (the kernel does), never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    try:
        config_file.write_text(
            '[store]\npath = "storyboard.db"\n'
            f'[s3]\nendpoint = "http://127.0.0.1:{silent.getsockname()[1]}"\n'
            'connect_timeout = 1\nread_timeout = 1\nmax_attempts = 2\n')
        monkeypatch.setenv("ACCESS_KEY", "key")
        monkeypatch.setenv("SECRET_KEY", "secret")
        planned_project(tmp_path)
        started = time.monotonic()
        result = cli("export", "1", "--format", "html", "-o", str(tmp_path / "board.html"),
                     "--upload")
        took = time.monotonic() - started
    finally:
        silent.close()
    line = one_line_error(result, 3)
    assert took < 15
    assert f"the export is written: {tmp_path / 'board.html'}" in line
    assert (tmp_path / "board.html").stat().st_size > 0


def test_an_api_export_whose_upload_fails_names_no_server_path(config_file, tmp_path):
    """The API writes the export in a temporary folder it removes: naming it helps nobody."""
    refusing = socket.socket()  # bound, not listening: every connection is refused
    refusing.bind(("127.0.0.1", 0))
    try:
        config_file.write_text(
            f'[store]\npath = "storyboard.db"\n[redis]\nurl = "{NO_REDIS}"\n'
            f'[s3]\nendpoint = "http://127.0.0.1:{refusing.getsockname()[1]}"\n'
            'connect_timeout = 1\nread_timeout = 1\nmax_attempts = 1\n')
        planned_project(tmp_path)
        running = Server(tmp_path, environ={"ACCESS_KEY": "key", "SECRET_KEY": "secret"})
        try:
            with running.client() as api:
                answer = api.get("/api/projects/1/export", params={"upload": "true"})
        finally:
            running.stop()
    finally:
        refusing.close()
    error = api_error(answer, 503)
    assert "storyboard-export-" not in error and "/tmp" not in error
    assert "not kept: ask again without upload" in error
