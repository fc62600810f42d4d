"""`storyboard serve` as the original system's users call it: the original README's Chinese
example bodies on the four original endpoints, answered in the original shapes (the same
objects the CLI's --json prints), the rest of the API, its errors and its guards. One real
server process for the session (tests/fixtures_serve.py) over real Redis, SeaweedFS, the
sketch GPU daemon and a `storyboard worker`."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import zipfile

import httpx
import pytest
from fixtures_queue import storyboard_argv
from fixtures_serve import read_events

# The original README's examples, byte for byte.
ORIGINAL_PROJECT = {"title": "测试故事",
                    "story_text": "从前有一个小女孩，她住在森林边上。有一天她在森林里迷路了。",
                    "style": "水彩画风格"}
ORIGINAL_GENERATE = {"style": "", "story_text": ""}
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def queued(answer: httpx.Response) -> str:
    """The queued answer of the original API, exactly; its task id."""
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body) == {"message", "task_id", "status"}
    assert body["message"] == "Task queued successfully" and body["status"] == "pending"
    assert UUID.fullmatch(body["task_id"])
    return body["task_id"]


def new_project(api: httpx.Client, **fields: str) -> dict:
    answer = api.post("/api/projects", json={**ORIGINAL_PROJECT, **fields})
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_the_four_original_endpoints_take_the_original_bodies_and_answer_the_cli_objects(
        served):
    stack = served.stack
    with served.client() as api:
        created = api.post("/api/projects", json=ORIGINAL_PROJECT)
        assert created.status_code == 200, created.text
        project = created.json()
        assert {k: project[k] for k in ORIGINAL_PROJECT} == ORIGINAL_PROJECT
        assert project == stack.json("show", str(project["id"]))  # the CLI's project object

        task_id = queued(api.post(f"/api/projects/{project['id']}/generate-storyboard",
                                  json=ORIGINAL_GENERATE))
        task = served.wait_task(api, task_id)
        assert task["status"] == "succeeded", task["error"]
        assert task == stack.json("status", task_id)  # `status --json`, field for field
        assert task["type"] == "storyboard" and task["project_id"] == project["id"]
        assert task["progress"]["done"] == task["progress"]["total"] == len(task["shots"]) >= 2
        # Empty strings kept the project's own style and story.
        shown = api.get(f"/api/projects/{project['id']}").json()
        assert shown["style"] == "水彩画风格"
        assert shown["story_text"] == ORIGINAL_PROJECT["story_text"]
        assert [s["id"] for s in shown["shots"]] == [s["id"] for s in task["shots"]]

        shot = task["shots"][1]
        edit = {"prompt": "小女孩在森林里哭泣，特写", "style": "铅笔素描"}
        regen_id = queued(api.post(f"/api/shots/{shot['id']}/generate", json=edit))
        regen = served.wait_task(api, regen_id)
        assert regen["status"] == "succeeded", regen["error"]
        assert (regen["type"], regen["shot_id"]) == ("shot_generation", shot["id"])
        (redone,) = regen["shots"]
        assert redone["prompt"] == "小女孩在森林里哭泣，特写"
        assert "铅笔素描" in redone["image_prompt"]
        assert redone["image_key"] != shot["image_key"]
        image = httpx.get(redone["image_url"], timeout=10)
        assert image.content[:8] == b"\x89PNG\r\n\x1a\n"
        assert regen == stack.json("status", regen_id[:8])


def test_generate_with_a_story_text_replaces_the_projects_story_first(served):
    with served.client() as api:
        project = new_project(api, title="replaced story")
        story = "灯塔守护人每晚点亮灯塔。一天夜里，一艘船在风暴中靠近了礁石。"
        task_id = queued(api.post(f"/api/projects/{project['id']}/generate-storyboard",
                                  json={"style": "noir", "story_text": story}))
        assert served.wait_task(api, task_id)["status"] == "succeeded"
        shown = api.get(f"/api/projects/{project['id']}").json()
        assert shown["story_text"] == story and shown["style"] == "水彩画风格"
        assert shown["shots"][0]["action"].startswith("灯塔守护人")
        assert "noir" in shown["shots"][0]["image_prompt"]
        # A story that is refused changes nothing.
        empty = api.post(f"/api/projects/{project['id']}/generate-storyboard",
                         json={"story_text": " " * 3})
        assert empty.status_code == 422 and "story is empty" in empty.json()["error"]
        assert api.get(f"/api/projects/{project['id']}").json()["story_text"] == story


def test_the_event_stream_carries_the_bars_progress_and_ends_with_the_task_object(served):
    with served.client() as api:
        project = new_project(api, title="events")
        task_id = queued(api.post(f"/api/projects/{project['id']}/generate-storyboard"))
        events = read_events(api, task_id)
        final = api.get(f"/api/tasks/{task_id}").json()
        # Read again after the end: the finished snapshot, then the task object at once.
        again = read_events(api, task_id[:8])
    kinds = [kind for kind, _ in events]
    assert kinds[-1] == "task" and set(kinds[:-1]) <= {"progress", "heartbeat"}
    assert events[-1][1] == final and final["status"] == "succeeded"
    snapshots = [data for kind, data in events if kind == "progress"]
    assert all(s["task_id"] == task_id for s in snapshots)
    # One event per change, from the queued or planning task to the end.
    assert snapshots[0]["status"] in ("pending", "running") and len(snapshots) >= 2
    assert all(a != b for a, b in zip(snapshots, snapshots[1:], strict=False))
    assert snapshots[-1]["status"] == "succeeded"
    assert [s["status"] for s in snapshots[-1]["shots"]] == ["done"] * len(final["shots"])
    assert set(snapshots[-1]["shots"][0]) == {"shot_id", "index", "status", "step", "steps",
                                             "error", "state"}
    assert snapshots[-1]["warnings"] == []
    assert [kind for kind, _ in again] == ["progress", "task"] and again[-1][1] == final


def test_a_quiet_stream_sends_heartbeats(served, tmp_path):
    # A server whose heartbeat comes every 0.3 s, in-process: the same app, the same routes.
    import threading

    import uvicorn

    from storyboard_cli.server.app import create_app
    from storyboard_cli.stack import processes

    store = served.stack.store()
    try:
        project = store.create_project("quiet", "One.", "movie")
        task = store.create_task("storyboard", project["id"])  # pending; no job queued
    finally:
        store.close()
    port = processes.free_port()
    server = uvicorn.Server(uvicorn.Config(
        create_app(served.stack.config(), heartbeat_s=0.3), port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        assert processes.wait_until(lambda: server.started, 10)
        lines = []
        with httpx.stream("GET", f"http://127.0.0.1:{port}/api/tasks/{task['id']}/events",
                          timeout=10) as answer:
            for line in answer.iter_lines():
                lines.append(line)
                if lines.count(": heartbeat") == 2:
                    break
    finally:
        server.should_exit = True
        thread.join(10)
    assert lines[0] == "event: progress"
    assert json.loads(lines[1].removeprefix("data: "))["status"] == "pending"
    assert lines.count(": heartbeat") == 2 and lines.count("event: progress") == 1


def test_the_rest_of_the_api_calls_the_same_service(served):
    stack = served.stack
    with served.client() as api:
        project = new_project(api, title="rest of the api", story_text=(
            "Lin opened the bookshop. Tom waited in the rain. Lin smiled at Tom."))
        pid = project["id"]
        assert any(p["id"] == pid for p in api.get("/api/projects").json())
        task_id = queued(api.post(f"/api/projects/{pid}/generate-storyboard",
                                  json={"no_images": True}))
        assert served.wait_task(api, task_id)["status"] == "succeeded"

        renamed = api.patch(f"/api/projects/{pid}", json={"title": "书店 / bookshop"})
        assert renamed.json()["title"] == "书店 / bookshop"
        # A title names the project too, "/" and all.
        by_title = api.get("/api/projects/" + httpx.URL("书店 / bookshop").raw_path.decode())
        assert by_title.json()["id"] == pid
        assert api.get(f"/api/projects/{pid}/cast").json() == stack.json("cast", str(pid))
        cast = api.patch(f"/api/projects/{pid}/cast",
                         json={"set": {"lin": "young woman, red scarf"}, "remove": ["Tom"]})
        assert [(c["name"], c["description"]) for c in cast.json()] == [
            ("Lin", "young woman, red scarf")]
        # The shot object a reference names (a plan only: no links that could be renewed).
        assert api.get(f"/api/shots/{pid}/2").json() == \
            api.get(f"/api/projects/{pid}").json()["shots"][1]
        assert [t["id"] for t in api.get("/api/tasks", params={"project": pid}).json()] == [
            task_id]
        assert api.get("/api/tasks", params={"limit": 1}).json() == stack.json("tasks",
                                                                              "--limit", "1")
        assert api.get("/api/workers").json() == {"listening": True}
        links = api.get(f"/api/projects/{pid}/links", params={"expires": 60})
        assert links.status_code == 200 and links.json()["script_url"]

        retried = api.post(f"/api/tasks/{task_id}/retry")
        assert retried.status_code == 422 and "succeeded" in retried.json()["error"]
        pending = queued(api.post(f"/api/projects/{pid}/generate-storyboard"))
        cancelled = api.post(f"/api/tasks/{pending}/cancel")
        assert cancelled.status_code == 200 and cancelled.json()["status"] in ("cancelled",
                                                                               "succeeded")
        removed = api.delete(f"/api/projects/{pid}", params={"keep_objects": True})
        assert removed.json()["id"] == pid and removed.json()["objects"]["kept"] is True
        assert api.get(f"/api/projects/{pid}").status_code == 404


def test_exports_download_as_files_with_the_export_object_in_a_header(served):
    with served.client() as api:
        project = new_project(api, title="export me")
        task_id = queued(api.post(f"/api/projects/{project['id']}/generate-storyboard"))
        shots = len(served.wait_task(api, task_id)["shots"])

        html = api.get(f"/api/projects/{project['id']}/export", params={"format": "html"})
        assert html.status_code == 200, html.text
        assert html.headers["content-type"].startswith("text/html")
        assert "attachment" in html.headers["content-disposition"]
        assert f"export-me-{project['id']}.html" in html.headers["content-disposition"]
        summary = json.loads(html.headers["x-storyboard-export"])
        assert summary["format"] == "html" and summary["frames"] == summary["shots"] == shots
        assert "path" not in summary and summary["files"] == [f"export-me-{project['id']}.html"]
        assert html.text.count("data:image/png;base64,") == shots  # embedded, as exported

        # The web board is the same page, its frames links (through serve) instead of
        # embedded images.
        board = api.get(f"/api/projects/{project['id']}/board").text
        assert board.count('<article class="panel"') == html.text.count('<article class="panel"')
        assert board.count('<img src="/api/images/') == shots and "data:image" not in board
        assert board.split("<style>")[1].split("</style>")[0] == \
            html.text.split("<style>")[1].split("</style>")[0]

        # Several files come as one zip: a Storyboarder folder, an animatic and its subtitles.
        stem = f"export-me-{project['id']}"
        folder = api.get(f"/api/projects/{project['id']}/export",
                         params={"format": "storyboarder"})
        assert folder.headers["content-type"] == "application/zip"
        names = zipfile.ZipFile(io.BytesIO(folder.content)).namelist()
        assert f"{stem}/{stem}.storyboarder" in names and f"{stem}/images/" in names
        assert json.loads(folder.headers["x-storyboard-export"])["files"] == [stem]
        film = api.get(f"/api/projects/{project['id']}/export", params={"format": "mp4"})
        packed = zipfile.ZipFile(io.BytesIO(film.content))
        assert packed.namelist() == [f"{stem}.mp4", f"{stem}.srt"]
        assert json.loads(film.headers["x-storyboard-export"])["files"] == packed.namelist()
        assert packed.read(f"{stem}.mp4")[4:8] == b"ftyp"
        bad = api.get(f"/api/projects/{project['id']}/export", params={"format": "gif"})
        assert bad.status_code == 422 and "unknown format 'gif'" in bad.json()["error"]


def test_the_project_object_comes_with_working_links_though_the_stored_ones_expired(served):
    with served.client() as api:
        project = new_project(api, title="expired links")
        task_id = queued(api.post(f"/api/projects/{project['id']}/generate-storyboard"))
        shots = served.wait_task(api, task_id)["shots"]
        store = served.stack.store()
        try:
            store.set_shot_link(shots[0]["id"], "https://expired.invalid/",
                                "2000-01-01T00:00:00+00:00")
        finally:
            store.close()
        renewed = api.get(f"/api/projects/{project['id']}").json()["shots"]
    assert renewed[0]["image_url"] != "https://expired.invalid/"
    assert renewed[0]["url_expires_at"] > "2001"
    assert httpx.get(renewed[0]["image_url"], timeout=10).content[:8] == b"\x89PNG\r\n\x1a\n"
    assert renewed[1]["image_url"] == shots[1]["image_url"]  # still valid: left as it was


def one_line_error(answer: httpx.Response, status: int, words: str) -> None:
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert words in error and "\n" not in error and "Traceback" not in error


def test_errors_are_one_readable_line_with_their_status(served):
    with served.client() as api:
        one_line_error(api.get("/api/projects/4242"), 404, "no project with id or title")
        one_line_error(api.get("/api/tasks/0000000000"), 404, "no task")
        one_line_error(api.post("/api/shots/987654/generate", json={}), 404, "shot")
        one_line_error(api.post("/api/projects/4242/generate-storyboard"), 404, "no project")
        one_line_error(api.get("/api/no/such/route"), 404, "Not Found")

        one_line_error(api.post("/api/projects", json={"title": "x"}), 422,
                       "story_text: Field required")
        one_line_error(api.post("/api/projects", json={**ORIGINAL_PROJECT, "title": 7}), 422,
                       "title: Input should be a valid string")
        one_line_error(api.post("/api/projects", content=b"{not json",
                                headers={**served.headers, "Content-Type": "application/json"}),
                       422, "JSON")
        one_line_error(api.post("/api/projects", json={**ORIGINAL_PROJECT, "title": "a\nb"}),
                       422, "the title")
        one_line_error(api.post("/api/projects", json={**ORIGINAL_PROJECT, "aspect": "5:1"}),
                       422, "aspect")
        # A body's key is the client's text: a newline in it is shown as an escape.
        one_line_error(api.patch("/api/projects/4242/cast", json={"set": {"a\nb": 7}}), 422,
                       "set.a\\nb: Input should be a valid string")
        listed = api.get("/api/projects").json()

        # 4.5 MB of UTF-8: over [server] max_body_bytes (4 MiB, room for a screenplay file).
        big = {**ORIGINAL_PROJECT, "story_text": "长" * 1_500_000}
        one_line_error(api.post("/api/projects", json=big), 413, "over the limit")

        def chunks():  # no Content-Length: counted as it streams in
            yield b'{"title": "t", "story_text": "'
            for _ in range(70):  # 4.6 MB
                yield b"x" * 65_536
            yield b'", "style": ""}'

        one_line_error(api.post("/api/projects", content=chunks(),
                                headers={**served.headers, "Content-Type": "application/json"}),
                       413, "over the limit")
        assert api.get("/api/projects").json() == listed  # refused bodies made nothing


def test_every_api_route_needs_the_token_but_the_login_form_and_docs_do_not(served):
    routes = [("GET", "/api/projects"), ("POST", "/api/projects"), ("GET", "/api/tasks/x"),
              ("GET", "/api/tasks/x/events"), ("GET", "/api/workers"),
              ("POST", "/api/shots/1/generate"), ("GET", "/api/projects/1/export")]
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": served.token},
                    {"Authorization": f"Basic {served.token}"}):
        with served.client(headers=headers) as api:
            for method, path in routes:
                answer = api.request(method, path, json=ORIGINAL_PROJECT)
                one_line_error(answer, 401, "STORYBOARD_API_TOKEN")
                assert answer.headers["www-authenticate"] == "Bearer"
    with served.client(headers={}) as anyone:
        assert anyone.get("/healthz").json() == {"ok": True}
        assert anyone.get("/", follow_redirects=False).headers["location"] == "/login?next=/"
        assert anyone.get("/login").status_code == 200
        assert anyone.get("/static/board.js").status_code == 200
        assert anyone.get("/docs").status_code == 200
        paths = anyone.get("/openapi.json").json()["paths"]
        for path in ("/api/projects", "/api/projects/{project}/generate-storyboard",
                     "/api/shots/{shot}/generate", "/api/tasks/{task}",
                     "/api/tasks/{task}/events", "/api/tasks/{task}/retry"):
            assert path in paths
        # No CORS unless configured: a browser on another site gets no permission.
        preflight = anyone.options("/api/projects", headers={
            "Origin": "https://elsewhere.example", "Access-Control-Request-Method": "POST"})
        assert "access-control-allow-origin" not in preflight.headers


def test_no_secret_reaches_the_servers_log(served):
    log = served.proc.log_path.read_text()
    assert "GET /api/tasks/" in log  # it does log the requests
    for secret in (served.token, served.stack.env["SECRET_KEY"],
                   served.stack.env["STORYBOARD_DAEMON_TOKEN"]):
        assert secret not in log


def test_serve_refuses_a_reachable_host_without_a_token_and_says_how(served):
    env = {k: v for k, v in served.stack.env.items() if k != "STORYBOARD_API_TOKEN"}
    for host in ("0.0.0.0", "192.0.2.7", "example.com", "::"):
        done = subprocess.run([*storyboard_argv(), "serve", "--host", host], env=env,
                              cwd=served.stack.root, capture_output=True, text=True, timeout=30)
        assert done.returncode == 2
        assert done.stderr.strip().splitlines() == [
            f"Error: --host {host} can be reached from other machines: set "
            "STORYBOARD_API_TOKEN (a long random string) first, or keep 127.0.0.1"]


def test_serve_on_a_port_taken_or_a_host_that_is_not_here_says_so_in_one_line(served):
    port = served.url.rsplit(":", 1)[1]
    taken = served.stack.run("serve", "--port", port, timeout=30)
    assert taken.returncode == 2
    assert taken.stderr.strip() == (f"Error: cannot listen on 127.0.0.1:{port}: Address already "
                                    "in use; choose another --port or --host")
    absent = served.stack.run("serve", "--host", "192.0.2.1", timeout=30,
                              env={"STORYBOARD_API_TOKEN": served.token})
    assert absent.returncode == 2 and len(absent.stderr.strip().splitlines()) == 1
    assert "cannot listen on 192.0.2.1:8080" in absent.stderr


def test_serve_without_the_server_extra_says_what_to_install(served):
    code = ("import sys; sys.modules['uvicorn'] = None; sys.argv = ['storyboard', 'serve'];"
            "from storyboard_cli.cli import main; main()")
    done = subprocess.run([sys.executable, "-c", code], env=served.stack.env,
                          cwd=served.stack.root, capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert done.stderr.strip() == ("Error: storyboard serve needs the server extra: "
                                   "pip install 'storyboard[server]'")


def test_behind_a_proxys_root_path_with_cors_configured(served):
    """As behind a reverse proxy that serves it under /storyboard (and strips the prefix), for
    a front end on another origin that [server] cors_origins allows."""
    from fixtures_serve import start_serve

    stack = served.stack
    stack.env["STORYBOARD_SERVER_CORS_ORIGINS"] = "https://writers.example"
    try:
        proc, url = start_serve(stack, served.token, "--root-path", "/storyboard/")
    finally:
        del stack.env["STORYBOARD_SERVER_CORS_ORIGINS"]
    try:
        with httpx.Client(base_url=url, timeout=10) as anyone:
            first = anyone.get("/", follow_redirects=False)
            assert first.headers["location"] == "/storyboard/login?next=/"
            page = anyone.get("/login").text
            assert '<base href="/storyboard/">' in page
            # Opened without a proxy that strips the prefix (the URL serve prints), the same.
            assert anyone.get("/storyboard/login").text == page
            assert anyone.get("/storyboard/static/board.js").status_code == 200
            assert "url: '/storyboard/openapi.json'" in anyone.get("/docs").text
            one_line_error(anyone.get("/api/projects"), 401, "STORYBOARD_API_TOKEN")

            allowed = {"Origin": "https://writers.example"}
            preflight = anyone.options("/api/projects", headers={
                **allowed, "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization,content-type"})
            assert preflight.status_code == 200
            assert preflight.headers["access-control-allow-origin"] == "https://writers.example"
            listed = anyone.get("/api/projects", headers={**allowed, **served.headers})
            assert listed.status_code == 200
            assert listed.headers["access-control-allow-origin"] == "https://writers.example"
            other = anyone.options("/api/projects", headers={
                "Origin": "https://elsewhere.example", "Access-Control-Request-Method": "GET"})
            assert "access-control-allow-origin" not in other.headers
    finally:
        proc.stop()


def test_serve_stops_soon_on_sigterm_though_an_event_stream_is_open(served):
    import contextlib
    import signal
    import threading
    import time

    from fixtures_serve import start_serve

    store = served.stack.store()
    try:  # a task no worker will take: its stream stays open
        project = store.create_project("never runs", "One.", "movie")
        task = store.create_task("storyboard", project["id"])
    finally:
        store.close()
    proc, url = start_serve(served.stack, served.token)
    opened = threading.Event()

    def listen() -> None:
        # The stream is cut off (the task never ends): the client sees its end or an error.
        with contextlib.suppress(httpx.HTTPError), \
                httpx.Client(base_url=url, headers=served.headers, timeout=30) as api, \
                api.stream("GET", f"/api/tasks/{task['id']}/events") as answer:
            opened.set()
            for _ in answer.iter_lines():
                pass

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    try:
        assert opened.wait(10)
        started = time.monotonic()
        proc.popen.send_signal(signal.SIGTERM)
        proc.popen.wait(15)
        assert time.monotonic() - started < 8
    finally:
        proc.stop()
    listener.join(10)
    assert not listener.is_alive()  # the stream was closed, not left hanging


def test_the_connections_of_retired_worker_threads_are_closed(tmp_path):
    """The server's thread pool retires idle threads; their store connections do not pile up."""
    import sqlite3
    import threading

    from storyboard_cli.server.app import ServicePerThread
    from storyboard_contract.config import load_config

    (tmp_path / "storyboard.toml").write_text('[store]\npath = "storyboard.db"\n')
    services = ServicePerThread(load_config(tmp_path / "storyboard.toml", environ={}))
    used = []

    def request() -> None:
        service = services()
        service.list_projects()
        used.append(service)

    for _ in range(4):
        thread = threading.Thread(target=request)
        thread.start()
        thread.join()
    assert len(services.by_thread) == 1 and len(set(map(id, used))) == 4
    for retired in used[:-1]:
        with pytest.raises(sqlite3.ProgrammingError, match="closed"):
            retired.store.conn.execute("select 1")
    used[-1].list_projects()
    services.close()
    with pytest.raises(sqlite3.ProgrammingError):
        used[-1].store.conn.execute("select 1")


def test_many_streams_on_one_task_each_get_its_snapshot_and_its_end(served):
    # Twenty boards watching one task share one poll of the store (server/events.py,
    # TaskPolls); each still gets the snapshot as it is when it opens, and the end.
    import asyncio
    import threading

    import uvicorn

    from storyboard_cli.server.app import create_app
    from storyboard_cli.stack import processes

    store = served.stack.store()
    project = store.create_project("watched", "One.", "movie")
    task = store.create_task("storyboard", project["id"])  # pending; no job queued
    port = processes.free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(served.stack.config()), port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()

    async def watch(opened: asyncio.Queue) -> list[str]:
        async with httpx.AsyncClient(timeout=20) as client, client.stream(
                "GET", f"http://127.0.0.1:{port}/api/tasks/{task['id']}/events") as answer:
            lines = []
            async for line in answer.aiter_lines():
                lines.append(line)
                if line == "event: progress":
                    await opened.put(None)
            return lines

    async def everyone() -> list[list[str]]:
        opened: asyncio.Queue = asyncio.Queue()
        streams = [asyncio.create_task(watch(opened)) for _ in range(20)]
        for _ in streams:
            await opened.get()
        await asyncio.to_thread(store.cancel_task, task["id"])
        return await asyncio.gather(*streams)

    try:
        assert processes.wait_until(lambda: server.started, 10)
        seen = asyncio.run(everyone())
    finally:
        server.should_exit = True
        thread.join(10)
        store.close()
    # (The workers' sweep may have failed the task, which has no job, before it was cancelled.)
    finals = []
    for lines in seen:
        events = [json.loads(line.removeprefix("data: ")) for line in lines
                  if line.startswith("data: ")]
        assert lines[0] == "event: progress" and lines[-3] == "event: task"
        assert events[-1]["id"] == task["id"]
        assert events[-2]["status"] == events[-1]["status"] in ("cancelled", "failed")
        finals.append(events[-1])
    assert all(final == finals[0] for final in finals)
