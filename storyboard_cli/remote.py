"""The Service over HTTP: the CLI with ``--server URL`` (or ``$STORYBOARD_SERVER``) drives a
`storyboard serve` elsewhere through its API (storyboard_cli/server/app.py; README, "HTTP
API") instead of this machine's store and Redis.

Every method sends what LocalService takes, to the route the server declares for it
(server/routes.py), and returns what the server's LocalService answered, so the commands print
the same lines and JSON. The server's errors come back as the same exceptions, each read from
its HTTP status by the tree that declares it (storyboard_contract/errors.py: 404 NotFound,
422 UsageError, 503 ServiceUnavailable, ...), so the exit codes are the same too. Progress
comes from the task's Server-Sent Events stream, as the same Snapshot objects the bars draw
locally.

The server's address and the API token never appear in a message: errors name the server
by its scheme, host and port only, and any text that comes back is scrubbed of both.
"""

from __future__ import annotations

import glob
import json
import queue
import shutil
import threading
import zipfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from storyboard_cli.server import routes
from storyboard_contract.errors import (
    ConfigError,
    ServerFailed,
    ServiceUnavailable,
    StoryboardError,
    error_for_status,
)

if TYPE_CHECKING:
    import httpx
    from pydantic import BaseModel

    from storyboard_cli.board.options import ExportOptions
    from storyboard_cli.tasks.progress import Snapshot

CONNECT_TIMEOUT_S = 5.0
# Creating a project or queueing a task is quick; `links` re-signs every shot and `export`
# reads every frame from the bucket before the first byte comes back.
READ_TIMEOUT_S = 300.0
# The events stream sends a heartbeat every 15 s: four missed mean the server is gone.
STREAM_READ_TIMEOUT_S = 60.0
CHUNK_BYTES = 1 << 16
# While no event arrives, how often watch() yields the latest snapshot again (as the local
# poll of the store does).
POLL_S = 0.15

def server_label(url: str) -> str:
    """The server as messages name it: scheme, host and port, nothing that may be secret
    (credentials in the address, a path or query carrying a token)."""
    parts = urlsplit(url)
    host = f"[{parts.hostname}]" if ":" in (parts.hostname or "") else parts.hostname
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}"


def check_server_url(url: str) -> str:
    if not url.startswith(("http://", "https://")) or not urlsplit(url).hostname:
        raise ConfigError("--server / STORYBOARD_SERVER must be an http:// or https:// URL")
    return url.rstrip("/")


def sse_events(lines: Iterable[str]) -> Iterator[tuple[str, str]]:
    """(event, data) of a text/event-stream, comments (heartbeats) skipped."""
    event, data = "message", []
    for line in lines:
        if not line:
            if data:
                yield event, "\n".join(data)
            event, data = "message", []
        elif line.startswith(":"):
            continue
        else:
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "event":
                event = value
            elif field == "data":
                data.append(value)
    if data:
        yield event, "\n".join(data)


class RemoteService:
    """The Service protocol (storyboard_cli/service.py) over a `storyboard serve`."""

    # Export progress counts the bytes downloaded (the server reads the frames).
    export_progress_unit = "bytes"

    def __init__(self, url: str, token: str = "",
                 transport: httpx.BaseTransport | None = None) -> None:
        import httpx

        self.url = check_server_url(url)
        self.label = server_label(self.url)
        self.token = token
        from storyboard_cli.server.bodies import USER_HEADER
        from storyboard_cli.service import local_user

        headers = {"Accept": "application/json", USER_HEADER: local_user()}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.Client(
            base_url=self.url, headers=headers, transport=transport,
            timeout=httpx.Timeout(READ_TIMEOUT_S, connect=CONNECT_TIMEOUT_S),
        )

    def close(self) -> None:
        self._http.close()

    # --- HTTP --------------------------------------------------------------------------------

    def _scrub(self, text: str) -> str:
        for secret in (self.token, self.url):
            if secret:
                text = text.replace(secret, "***")
        return text

    def _unreachable(self, exc: Exception) -> ServiceUnavailable:
        import httpx

        why = "timed out" if isinstance(exc, httpx.TimeoutException) else \
            self._scrub(str(exc)) or type(exc).__name__
        return ServiceUnavailable(f"cannot reach the storyboard server at {self.label}: {why}")

    def _raise_for_error(self, resp: httpx.Response) -> None:
        """Raise what the local service raised, for an error answer."""
        if resp.status_code < 400:
            return
        if resp.status_code in (401, 403):  # also from a proxy in front, whatever its body
            given = "refused the API token" if self.token else "requires an API token"
            raise ConfigError(f"the storyboard server at {self.label} {given}: set "
                              "STORYBOARD_API_TOKEN to the server's token")
        try:
            message = resp.json()["error"]
            if not isinstance(message, str):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            raise ServiceUnavailable(
                f"{self.label} answered HTTP {resp.status_code} without a storyboard error: is "
                "it `storyboard serve` (check --server / STORYBOARD_SERVER)?") from None
        raise error_for_status(resp.status_code)(self._scrub(message))

    def _call(self, method: str, route: str, *, params: dict[str, Any] | None = None,
              body: BaseModel | None = None, payload: Any = None, **refs: str | int) -> Any:
        """One request to `route` (server/routes.py) with its `refs` filled in; its JSON
        answer, or the error it stands for. `body`: one of the server's request models
        (storyboard_cli/server/bodies.py), so both sides share it; `payload`: a body with no
        model of its own (a shot's fields, storyboard_cli/shot_fields.py)."""
        import httpx

        # ASCII JSON: text that is not UTF-8 (a lone surrogate) travels as an escape, and the
        # server's check refuses it with the line the local service gives.
        sent = payload if body is None else body.model_dump()
        content = None if sent is None else json.dumps(sent).encode()
        try:
            resp = self._http.request(method, routes.api_path(route, params, **refs),
                                      content=content, headers=None if content is None else
                                      {"Content-Type": "application/json"})
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from None
        self._raise_for_error(resp)
        return resp.json()

    # --- projects ----------------------------------------------------------------------------

    def create_project(self, title: str | None, story_text: str, style: str,
                       aspect: str | None = None, story_format: str | None = None,
                       file_name: str | None = None,
                       settings: dict[str, Any] | None = None) -> dict[str, Any]:
        from storyboard_cli.server.bodies import NewProject

        return self._call("POST", routes.PROJECTS, body=NewProject(
            title=title or "", story_text=story_text, style=style, aspect=aspect,
            format=story_format or "", file_name=file_name or "", **(settings or {})))

    def project_settings(self, project: str, changes: dict[str, Any] | None = None
                         ) -> dict[str, Any]:
        from storyboard_cli.server.bodies import ProjectSettings

        if not changes:
            return self._call("GET", routes.SETTINGS, project=project)
        reset = [k for k, v in changes.items() if v is None]
        return self._call("PATCH", routes.SETTINGS, project=project, body=ProjectSettings(
            **{k: v for k, v in changes.items() if v is not None}, reset=reset))

    def list_projects(self) -> list[dict[str, Any]]:
        return self._call("GET", routes.PROJECTS)

    def project(self, ref: str, task: str | None = None,
                revision: int | None = None) -> dict[str, Any]:
        return self._call("GET", routes.PROJECT, project=ref,
                          params={"task": task, "revision": revision})

    def rename_project(self, project: str, title: str) -> dict[str, Any]:
        from storyboard_cli.server.bodies import Rename

        return self._call("PATCH", routes.PROJECT, project=project, body=Rename(title=title))

    def remove_project(self, project: str, keep_objects: bool = False) -> dict[str, Any]:
        return self._call("DELETE", routes.PROJECT, project=project,
                          params={"keep_objects": "true" if keep_objects else None})

    def cast(self, project: str) -> list[dict[str, Any]]:
        return self._call("GET", routes.CAST, project=project)

    def set_cast(self, project: str, descriptions: dict[str, str],
                 remove: list[str] | None = None) -> list[dict[str, Any]]:
        from storyboard_cli.server.bodies import CastChange

        return self._call("PATCH", routes.CAST, project=project,
                          body=CastChange(set=descriptions, remove=remove or []))

    # --- tasks -------------------------------------------------------------------------------

    def generate(self, project: str, style: str | None = None, no_images: bool = False,
                 story_text: str | None = None, story_format: str | None = None,
                 stale: bool = False) -> dict[str, Any]:
        from storyboard_cli.server.bodies import GenerateStoryboard

        # Empty strings mean the project's own values (the original API's convention).
        return self._call("POST", routes.GENERATE_STORYBOARD, project=project,
                          body=GenerateStoryboard(style=style or "", story_text=story_text or "",
                                                  no_images=no_images,
                                                  format=story_format or "", stale=stale))

    def regen_shot(self, shot: str | int, prompt: str | None = None, style: str | None = None,
                   seed: int | None = None, keep_seed: bool = False) -> dict[str, Any]:
        from storyboard_cli.server.bodies import GenerateShot

        return self._call("POST", routes.GENERATE_SHOT, shot=shot, body=GenerateShot(
            prompt=prompt or "", style=style or "", seed=seed, keep_seed=keep_seed))

    def resolve_shot(self, ref: str | int) -> int:
        return int(self.shot(ref)["id"])

    def shot(self, ref: str | int) -> dict[str, Any]:
        return self._call("GET", routes.SHOT, shot=ref)

    def resolve_task(self, ref: str) -> str:
        return str(self.task(ref)["id"])

    def task(self, task_id: str) -> dict[str, Any]:
        return self._call("GET", routes.TASK, task=task_id)

    def tasks(self, project: str | None = None, limit: int | None = None
              ) -> list[dict[str, Any]]:
        return self._call("GET", routes.TASKS, params={"project": project, "limit": limit})

    def watch(self, task_id: str) -> Iterator[Snapshot]:
        """The task's progress from its events stream, ending with a finished snapshot.

        The server sends an event only when something changed; the stream is read in a
        thread, and the latest snapshot is yielded again every POLL_S meanwhile, so the
        caller's --timeout and Ctrl+C act as promptly as over the local store."""
        arrived: queue.Queue[Snapshot | StoryboardError] = queue.Queue()
        stream = _EventStream(self, task_id, arrived)
        threading.Thread(target=stream.read, name=f"events-{task_id[:8]}", daemon=True).start()
        last: Snapshot | None = None
        try:
            while True:
                try:
                    item = arrived.get(timeout=POLL_S)
                except queue.Empty:
                    if last is not None:
                        yield last
                    continue
                if isinstance(item, StoryboardError):
                    raise item
                last = item
                yield item
                if item.finished:
                    return
        finally:
            stream.close()

    def retry(self, task_id: str) -> dict[str, Any]:
        return self._call("POST", routes.RETRY, task=task_id)

    def cancel(self, task_id: str) -> dict[str, Any]:
        return self._call("POST", routes.CANCEL, task=task_id)

    def links(self, project: str, expires: int | None = None,
              task: str | None = None) -> dict[str, Any]:
        return self._call("GET", routes.LINKS, project=project,
                          params={"expires": expires, "task": task})

    def workers_listening(self) -> bool:
        return bool(self._call("GET", routes.WORKERS)["listening"])

    # --- editing the storyboard, its history, the story's revisions ----------------------------

    def edit_shot(self, shot: str | int, fields: dict[str, Any]) -> dict[str, Any]:
        return self._call("PATCH", routes.SHOT, shot=shot, payload=fields)

    def split_shot(self, project: str, number: int, at: str | None = None) -> dict[str, Any]:
        from storyboard_cli.server.bodies import SplitShot

        return self._call("POST", routes.SHOTS_SPLIT, project=project,
                          body=SplitShot(shot=number, at=at))

    def merge_shots(self, project: str, first: int, second: int) -> dict[str, Any]:
        from storyboard_cli.server.bodies import MergeShots

        return self._call("POST", routes.SHOTS_MERGE, project=project,
                          body=MergeShots(shots=[first, second]))

    def move_shot(self, project: str, number: int, to: int) -> dict[str, Any]:
        from storyboard_cli.server.bodies import MoveShot

        return self._call("POST", routes.SHOTS_MOVE, project=project,
                          body=MoveShot(shot=number, to=to))

    def insert_shot(self, project: str, after: int, fields: dict[str, Any]) -> dict[str, Any]:
        from storyboard_cli.server.bodies import InsertShot

        return self._call("POST", routes.SHOTS_INSERT, project=project,
                          body=InsertShot(after=after, fields=fields))

    def delete_shot(self, project: str, number: int) -> dict[str, Any]:
        from storyboard_cli.server.bodies import DeleteShot

        return self._call("POST", routes.SHOTS_DELETE, project=project,
                          body=DeleteShot(shot=number))

    def note_shot(self, shot: str | int, text: str) -> dict[str, Any]:
        from storyboard_cli.server.bodies import ShotNote

        return self._call("POST", routes.SHOT_NOTE, shot=shot, body=ShotNote(text=text))

    def approve_shot(self, shot: str | int, approved: bool = True) -> dict[str, Any]:
        return self._call("POST", routes.SHOT_APPROVE if approved else routes.SHOT_UNAPPROVE,
                          shot=shot)

    def history(self, project: str, limit: int | None = None) -> list[dict[str, Any]]:
        return self._call("GET", routes.LOG, project=project, params={"limit": limit})

    def undo(self, project: str) -> dict[str, Any]:
        return self._call("POST", routes.UNDO, project=project)

    def update_story(self, project: str, story_text: str, story_format: str | None = None,
                     file_name: str | None = None) -> dict[str, Any]:
        from storyboard_cli.server.bodies import NewRevision

        return self._call("POST", routes.REVISIONS, project=project, body=NewRevision(
            story_text=story_text, format=story_format or "", file_name=file_name or ""))

    def revisions(self, project: str) -> list[dict[str, Any]]:
        return self._call("GET", routes.REVISIONS, project=project)

    def diff(self, project: str, from_revision: int | None = None,
             to_revision: int | None = None) -> dict[str, Any]:
        return self._call("GET", routes.DIFF, project=project,
                          params={"from": from_revision, "to": to_revision})

    # --- exports -----------------------------------------------------------------------------

    def export(self, project: str, fmt: str, out: Path | None = None,
               options: ExportOptions | None = None, *, force: bool = False,
               upload: bool = False,
               progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
        """The server writes the export; it is downloaded to `out` (named as locally, refused
        where it exists unless force, written whole or not at all). `progress` is told
        (bytes downloaded, bytes to download). The export object, as locally."""
        import dataclasses

        import httpx

        from storyboard_cli.board import export as board
        from storyboard_cli.inputs import check_export
        from storyboard_cli.server.bodies import EXPORT_HEADER

        # Bad options are refused before asking.
        options = check_export(fmt, options)
        path = board.destination(self.project(project), fmt, out, force, options)
        params = {"format": fmt, **dataclasses.asdict(options),
                  "upload": "true" if upload else None}
        work = board.work_folder(path)
        try:
            download = work / "download"
            try:
                with self._http.stream("GET", routes.api_path(routes.EXPORT, project=project),
                                       params={k: v for k, v in params.items() if v},
                                       headers={"Accept": "*/*"}) as resp:
                    if resp.status_code >= 400:
                        resp.read()
                        self._raise_for_error(resp)
                    meta = json.loads(resp.headers.get(EXPORT_HEADER) or "{}")
                    packed = fmt != "zip" and resp.headers.get(
                        "Content-Type", "").startswith("application/zip")
                    _save(resp, download, progress)
            except httpx.TransportError as exc:
                raise self._unreachable(exc) from None
            # A folder export (storyboarder), or one with files beside it (mp4's .srt),
            # comes as a zip of them: unpacked to where the local export puts them.
            placed = _unpack(download, work / "files", meta.get("files"),
                             [path, *board.companions(fmt, path)]) if packed \
                else [(download, path)]
            board.place(placed)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        from storyboard_cli.service import size_on_disk

        targets = [target for _, target in placed]
        answer = {k: v for k, v in meta.items() if k != "files"}
        return {**answer, "format": fmt, "path": str(path),
                "files": [str(t) for t in targets],
                "bytes": sum(size_on_disk(t) for t in targets)}


class _EventStream:
    """A task's events stream read into a queue: each progress event as a Snapshot, and
    what ended it early as the error the CLI shows."""

    def __init__(self, service: RemoteService, task_id: str,
                 out: queue.Queue[Snapshot | StoryboardError]) -> None:
        self.service, self.task_id, self.out = service, task_id, out
        self.response: httpx.Response | None = None
        self.closed = False

    def read(self) -> None:
        import httpx

        from storyboard_cli.tasks.progress import Snapshot

        service = self.service
        timeout = httpx.Timeout(STREAM_READ_TIMEOUT_S, connect=CONNECT_TIMEOUT_S)
        path = routes.api_path(routes.TASK_EVENTS, task=self.task_id)
        try:
            with service._http.stream("GET", path, timeout=timeout,
                                      headers={"Accept": "text/event-stream"}) as resp:
                self.response = resp
                if resp.status_code >= 400:
                    resp.read()
                    service._raise_for_error(resp)
                for event, data in sse_events(resp.iter_lines()):
                    if event == "progress":
                        self.out.put(Snapshot.from_json(json.loads(data)))
                    elif event == "error":
                        raise ServiceUnavailable(service._scrub(json.loads(data)["error"]))
                    elif event == "task":
                        break  # after the finished snapshot, which ended watch()
        except StoryboardError as exc:
            self.out.put(exc)
            return
        except Exception as exc:  # noqa: BLE001 - reported in the caller's thread
            if not self.closed:
                self.out.put(service._unreachable(exc) if isinstance(exc, httpx.HTTPError)
                             else ServerFailed(f"reading the progress stream failed: "
                                               f"{type(exc).__name__}"))
            return
        self.out.put(ServiceUnavailable(
            f"the storyboard server at {service.label} ended the progress stream before task "
            f"{self.task_id} finished; follow it: storyboard status {self.task_id} --watch"))

    def close(self) -> None:
        """Stop reading (the caller stopped waiting): the reader's next read fails, and it
        ends without a word."""
        self.closed = True
        if self.response is not None:
            self.response.close()


def _save(resp: httpx.Response, target: Path, progress: Callable[[int, int], None] | None
          ) -> None:
    total = int(resp.headers.get("Content-Length") or 0)
    done = 0
    if progress is not None:
        progress(0, total)
    with open(target, "wb") as f:
        for chunk in resp.iter_bytes(CHUNK_BYTES):
            f.write(chunk)
            done += len(chunk)
            if progress is not None:
                progress(done, max(total, done))


def _unpack(archive: Path, folder: Path, names: list[str] | None, targets: list[Path]
            ) -> list[tuple[Path, Path]]:
    """A packed export unpacked: its top-level entries (`names` in the server's order, the
    export first; else the zip's own) become the local targets, in order."""
    with zipfile.ZipFile(archive) as zf:
        members = zf.namelist()
        tops = list(dict.fromkeys(m.split("/", 1)[0] for m in members))
        names = names or tops
        if set(tops) != set(names) or len(names) > len(targets) or any(
                ".." in m.split("/") or m.startswith("/") for m in members):
            raise ServiceUnavailable("the server's export is not the packed export expected: "
                                     "is it the same storyboard version?")
        zf.extractall(folder)
    placed = list(zip(names, targets, strict=False))
    for name, target in placed:
        # A folder export names its main file after itself (NAME/NAME.storyboarder).
        for inner in (folder / name).glob(f"{glob.escape(name)}.*"):
            inner.rename(inner.with_name(target.name + inner.name[len(name):]))
    return [(folder / name, target) for name, target in placed]
