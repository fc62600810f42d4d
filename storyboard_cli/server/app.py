"""The FastAPI app of `storyboard serve`: the routes of the HTTP API (README, "HTTP API"), each a
call of one LocalService method answering what it returns, and the web page.

Guards, outermost first: CORS (only with [server] cors_origins), who may use /api (when a
token is set: the bearer token, constant-time compare, or a web board session with its
cross-site checks; sessions.py), the body limit ([server] max_body_bytes, 413). Errors
answer {"error": "<one line>"} (errors.py).

A store connection serves one thread at a time: each worker thread of the pool that runs the
routes has its own LocalService, and the event streams share one (events.StreamReader). A
task's polls (`GET /api/tasks/{id}`) are answered on the event loop from the JSON kept since
the store last changed, which a connection of their own tells (reads.py).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
import zipfile
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

from anyio import CapacityLimiter
from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, StreamingResponse
from fastapi.routing import APIRoute
from fastapi.security import HTTPBearer
from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException

from storyboard_cli import __version__
from storyboard_cli.board.options import ExportOptions
from storyboard_cli.server import events, login, page, routes
from storyboard_cli.server.bodies import (
    EXPORT_HEADER,
    USER_HEADER,
    CastChange,
    DeleteShot,
    GenerateShot,
    GenerateStoryboard,
    InsertShot,
    MergeShots,
    MoveShot,
    NewProject,
    NewRevision,
    Portraits,
    ProjectSettings,
    Rename,
    ShotFields,
    ShotNote,
    SplitShot,
)
from storyboard_cli.server.errors import status_and_message
from storyboard_cli.server.reads import TaskAnswers
from storyboard_cli.server.sessions import AUTH, SessionGate, SessionKeeper
from storyboard_cli.server.shell import HTML
from storyboard_cli.service import LocalService
from storyboard_contract import control_chars
from storyboard_contract.config import Config
from storyboard_contract.errors import NotFound, ServiceUnavailable, UsageError
from storyboard_contract.guards import BodyLimit, unreadable_body, validation_message

TOKEN_VARIABLE = "STORYBOARD_API_TOKEN"
# A frame's key names the render that made it: what it holds never changes.
FRAME_CACHE = "private, max-age=31536000, immutable"


class ServicePerThread:
    """A LocalService per worker thread, made on first use. The pool retires threads idle for
    a while (anyio: 10 s): a new one's service replaces theirs, whose connections are closed
    then, so bursts of traffic never pile up open connections. A thread whose store was
    removed or replaced on disk gets a new service too. All are closed when the app stops."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.lock = threading.Lock()
        self.by_thread: dict[threading.Thread, LocalService] = {}

    def __call__(self) -> LocalService:
        thread = threading.current_thread()
        service = self.by_thread.get(thread)
        # A store removed or replaced on disk: the old connection would go on reading, and
        # writing, a file nobody else sees (a stat a request, microseconds).
        if service is None or service.store_replaced():
            service = self.new()
            with self.lock:
                for gone in [t for t in self.by_thread if not t.is_alive() or t is thread]:
                    self.by_thread.pop(gone).close()
                self.by_thread[thread] = service
        return service

    def new(self) -> LocalService:
        """A service of its own (an event stream's), closed by whoever asked for it."""
        return LocalService(self.config, create_store=True)

    def close(self) -> None:
        with self.lock:
            for service in self.by_thread.values():
                service.close()
            self.by_thread.clear()


class OneLineErrorRoute(APIRoute):
    """A route whose failures answer {"error": ...} with their status (errors.py), never a
    traceback; invalid bodies and unknown paths go to the app's handlers."""

    def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            try:
                return await handler(request)
            except (RequestValidationError, HTTPException):
                raise
            except Exception as exc:  # noqa: BLE001 - every failure becomes an answer
                status, message = status_and_message(exc)
                return JSONResponse({"error": message}, status_code=status)

        return answer


def zip_files(files: list[Path], archive: Path) -> Path:
    """One zip of `files` (folders with what they hold), each under its own name."""
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as packed:
        for top in files:
            for item in [top, *sorted(top.rglob("*"))] if top.is_dir() else [top]:
                packed.write(item, item.relative_to(top.parent).as_posix())
    return archive


class RootPathTwice:
    """ASGI middleware: with --root-path, uvicorn puts the root path in front of every request
    path, ready for a proxy that strips it. A request that kept it (no proxy in between: the
    URL `serve` prints, opened here or through a forwarded port) then holds it twice, and is
    served as if the proxy had stripped it, so both ways reach the same board."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        root = scope.get("root_path", "").rstrip("/")
        if root and scope["type"] in ("http", "websocket"):
            path = scope["path"]
            if path == root + root or path.startswith(root + root + "/"):
                scope = {**scope, "path": path[len(root):]}
        await self.app(scope, receive, send)


class PlainPaths:
    """ASGI middleware: a request path holding a control character (`/api/projects/2%0a`) is
    a 404 at once. Starlette's route patterns end in `$`, which matches before a final
    newline: `2\n` would name project 2, and only the canonical form of an id may."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and control_chars.CONTROL.search(scope["path"]):
            await JSONResponse({"error": "no such path: it holds a control character"},
                               status_code=404)(scope, receive, send)
            return
        await self.app(scope, receive, send)


def requester(request: Request) -> str:
    """Whom a request acts for in the edit history: the name in its USER_HEADER (one line, at
    most 64 characters), else "web" (a browser logged in to the board) or "api"."""
    named = control_chars.flatten(request.headers.get(USER_HEADER, ""))[:64].strip()
    return named or ("web" if request.scope.get(AUTH) == "session" else "api")


def is_api(path: str) -> bool:
    return path == routes.API or path.startswith(routes.API + "/")


def frame_links(config: Config) -> Callable[[Request], Callable[[dict], str | None]]:
    """How the web board links a shot's frame: through this server (/api/images/KEY, under
    the root path the browser sees), or, when viewers reach the bucket ([s3]
    public_endpoint), presigned links for that name."""
    if config.s3.public_endpoint:
        from functools import cache

        from storyboard_cli.links import viewer_links

        signer = cache(lambda: viewer_links(config.s3))  # one client, made on first use
        return lambda request: signer()

    def served(request: Request) -> Callable[[dict], str | None]:
        root = request.scope.get("root_path", "").rstrip("/")
        return lambda shot: root + routes.api_path(routes.IMAGE, key=shot["image_key"])

    return served


def create_app(config: Config, token: str | None = None,
               heartbeat_s: float = events.HEARTBEAT_S) -> FastAPI:
    """The app over `config`'s store, Redis and bucket; with `token`, every /api route needs
    `Authorization: Bearer <token>` or a web board session, and the pages a login."""
    thread_service = ServicePerThread(config)
    streams = events.StreamReader(thread_service.new, CapacityLimiter(events.STREAM_THREADS))
    task_polls = events.TaskPolls(streams)
    keeper = (SessionKeeper(token, config.server.session_expiry, lambda: thread_service().store)
              if token else None)
    links_for = frame_links(config)
    task_answers = TaskAnswers(config.store_path)

    def task_json(ref: str) -> bytes:
        """The task object as JSONResponse writes it (in a worker thread)."""
        return JSONResponse(thread_service().task(ref)).body

    def acting(request: Request) -> LocalService:
        """This thread's service, acting for whom the request names (the edit history)."""
        service = thread_service()
        service.user = requester(request)
        return service

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        thread_service.close()
        streams.close()
        task_answers.close()

    app = FastAPI(
        title="storyboard", version=__version__, lifespan=lifespan,
        description="The storyboard system's HTTP API: projects, storyboard and shot tasks, "
        f"their progress (Server-Sent Events) and exports. Every {routes.API} route needs "
        f"`Authorization: Bearer ${TOKEN_VARIABLE}` when the server has a token (or, from "
        "the web board, its login's session cookie). Errors "
        f'answer {{"error": "<one line>"}}: {NotFound.http_status} unknown id, '
        f"{UsageError.http_status} invalid input, 413 body too large, 401 missing or wrong "
        f"token, {ServiceUnavailable.http_status} a service (Redis, the bucket) is down.",
    )

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"error": validation_message(exc)}, status_code=422)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        if unreadable := unreadable_body(exc):
            return JSONResponse({"error": unreadable}, status_code=422)
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code,
                            headers=exc.headers)

    # Declared for the docs (their Authorize button); SessionGate below enforces it before
    # a body is read.
    bearer = HTTPBearer(auto_error=False, description=f"${TOKEN_VARIABLE}")
    api = APIRouter(prefix=routes.API, route_class=OneLineErrorRoute,
                    dependencies=[Security(bearer)])

    # --- projects (routes with a suffix first: a project may be named by a title with "/") --

    @api.post(routes.PROJECTS, tags=["projects"])
    def create_project(body: NewProject, request: Request) -> JSONResponse:
        """Create a project from a story in prose or a screenplay (Fountain, Final Draft),
        with its render settings; the project object."""
        return JSONResponse(acting(request).create_project(
            body.title or None, body.story_text, body.style, body.aspect, body.format or None,
            body.file_name or None, body.given()))

    @api.get(routes.PROJECTS, tags=["projects"])
    def list_projects() -> JSONResponse:
        """Every project: id, title, style, aspect, story length, shots, last task status."""
        return JSONResponse(thread_service().list_projects())

    @api.post(routes.GENERATE_STORYBOARD, tags=["tasks"])
    def generate_storyboard(project: str, request: Request,
                            body: GenerateStoryboard | None = None) -> JSONResponse:
        """Queue a storyboard task: plan the shot list and render every shot (approved panels
        kept). Empty strings mean the project's own style and story; a story given replaces
        the project's (a new revision). With `stale`, no plan: render the stale panels."""
        body = body or GenerateStoryboard()
        return JSONResponse(acting(request).generate(
            project, body.style or None, body.no_images, body.story_text or None,
            body.format or None, body.stale))

    # --- editing the storyboard a project shows: each answers {"edit", "shots"} ------------

    @api.post(routes.SHOTS_SPLIT, tags=["edits"])
    def split_shot(project: str, body: SplitShot, request: Request) -> JSONResponse:
        """Split a shot in two where `at` starts in its text (else near its middle)."""
        return JSONResponse(acting(request).split_shot(project, body.shot, body.at))

    @api.post(routes.SHOTS_MERGE, tags=["edits"])
    def merge_shots(project: str, body: MergeShots, request: Request) -> JSONResponse:
        """Merge two neighbouring shots into one."""
        return JSONResponse(acting(request).merge_shots(project, *body.shots))

    @api.post(routes.SHOTS_MOVE, tags=["edits"])
    def move_shot(project: str, body: MoveShot, request: Request) -> JSONResponse:
        """Move a shot to another position; the shots between shift by one."""
        return JSONResponse(acting(request).move_shot(project, body.shot, body.to))

    @api.post(routes.SHOTS_INSERT, tags=["edits"])
    def insert_shot(project: str, body: InsertShot, request: Request) -> JSONResponse:
        """A new shot after shot `after` (0: first); its fields as PATCH /api/shots takes."""
        return JSONResponse(acting(request).insert_shot(project, body.after, body.fields))

    @api.post(routes.SHOTS_DELETE, tags=["edits"])
    def delete_shot(project: str, body: DeleteShot, request: Request) -> JSONResponse:
        """Remove a shot; the ones after it move up."""
        return JSONResponse(acting(request).delete_shot(project, body.shot))

    @api.get(routes.LOG, tags=["edits"])
    def log(project: str, limit: int | None = None) -> JSONResponse:
        """The project's edits, newest first: who, when, what, before and after."""
        return JSONResponse(thread_service().history(project, limit))

    @api.post(routes.UNDO, tags=["edits"])
    def undo(project: str, request: Request) -> JSONResponse:
        """Undo the newest edit of the storyboard shown not undone yet."""
        return JSONResponse(acting(request).undo(project))

    @api.get(routes.REVISIONS, tags=["revisions"])
    def revisions(project: str) -> JSONResponse:
        """The revisions of the project's story, each with the storyboard planned from it."""
        return JSONResponse(thread_service().revisions(project))

    @api.post(routes.REVISIONS, tags=["revisions"])
    def update_story(project: str, body: NewRevision, request: Request) -> JSONResponse:
        """A new revision of the story (prose or a screenplay), planned at once: unchanged
        shots keep their panels, new and changed ones render. The queued answer plus
        `revision`."""
        return JSONResponse(acting(request).update_story(
            project, body.story_text, body.format or None, body.file_name or None))

    @api.get(routes.DIFF, tags=["revisions"])
    def diff(project: str, from_: int | None = Query(None, alias="from"),
             to: int | None = None) -> JSONResponse:
        """The shots added, removed and changed between two revisions' storyboards."""
        return JSONResponse(thread_service().diff(project, from_, to))

    @api.get(routes.CAST, tags=["projects"])
    def cast(project: str) -> JSONResponse:
        """The project's characters."""
        return JSONResponse(thread_service().cast(project))

    @api.patch(routes.CAST, tags=["projects"])
    def set_cast(project: str, body: CastChange) -> JSONResponse:
        """Describe characters (new names join the cast, linked at once to the shots that
        name them), remove others (no plan casts them again), give characters their other
        names, reference images, LoRAs and trigger words; the cast."""
        identity = {name: fields.given() for name, fields in body.identity.items()}
        return JSONResponse(thread_service().set_cast(project, body.set, body.remove,
                                                      dict(body.aliases), identity))

    @api.post(routes.PORTRAITS, tags=["projects"])
    def portraits(project: str, body: Portraits) -> JSONResponse:
        """Render a neutral portrait of each character (or of those named) from its
        description and keep it as its reference image; the cast."""
        return JSONResponse(thread_service().portraits(project, body.names or None))

    @api.get(routes.SETTINGS, tags=["projects"])
    def settings(project: str) -> JSONResponse:
        """The project's render settings: model, loras, scheduler, steps, cfg,
        negative_prompt (null: the model's default)."""
        return JSONResponse(thread_service().project_settings(project))

    @api.patch(routes.SETTINGS, tags=["projects"])
    def set_settings(project: str, body: ProjectSettings) -> JSONResponse:
        """Change the project's render settings (`reset` names those back to the model's
        default); the settings after it. Tasks queued from now on render with them."""
        return JSONResponse(thread_service().project_settings(project, body.changes() or None))

    @api.get(routes.LINKS, tags=["projects"])
    def links(project: str, expires: int | None = None, task: str | None = None
              ) -> JSONResponse:
        """Fresh presigned links for every shot and the shot-list script; the project
        object."""
        return JSONResponse(thread_service().links(project, expires, task))

    @api.get(routes.BOARD, tags=["projects"], response_class=HTMLResponse)
    def board(project: str, request: Request) -> StreamingResponse:
        """The board as the HTML export's page, its frames links (the web page's): through
        this server, or presigned for [s3] public_endpoint when that is set."""
        return StreamingResponse(thread_service().board_page(project, links_for(request)),
                                 media_type=HTML)

    @api.get(routes.IMAGE, tags=["projects"], response_class=StreamingResponse)
    def image(key: str) -> StreamingResponse:
        """A shot's image, streamed from the bucket by the key the store recorded (the web
        board's frames: one port reaches everything). Cached by the browser: a key names
        one render, whose image never changes."""
        frame = thread_service().frame(key)
        return StreamingResponse(
            frame.chunks, media_type=frame.content_type,
            headers={"Content-Length": str(frame.size), "Cache-Control": FRAME_CACHE},
            background=BackgroundTask(frame.close))

    @api.get(routes.EXPORT, tags=["projects"], response_class=FileResponse)
    def export(project: str, options: Annotated[ExportOptions, Depends()],
               fmt: str = Query("html", alias="format"), upload: bool = False) -> FileResponse:
        """The board as a file: html, pdf, mp4, storyboarder or zip. An export of several
        files (a Storyboarder folder; an mp4 and its .srt subtitles) comes as one zip of
        them. The export object (frames, empty frames, its files' names, and with upload
        its key and link) is in the X-Storyboard-Export header."""
        from storyboard_cli.board.export import CONTENT_TYPES

        folder = Path(tempfile.mkdtemp(prefix="storyboard-export-"))
        try:
            done = thread_service().export(project, fmt, folder, options, upload=upload,
                                           kept=False)
            files = [Path(f) for f in done["files"]]
            path = Path(done["path"])
            if path.is_dir() or len(files) > 1:
                path = zip_files(files, folder / f"{path.name}.zip")
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        # The server's paths mean nothing to the client: only the files' names.
        summary = {**{k: v for k, v in done.items() if k != "path"},
                   "files": [f.name for f in files]}
        return FileResponse(
            path, filename=path.name,
            media_type=CONTENT_TYPES.get(path.suffix, "application/octet-stream"),
            headers={EXPORT_HEADER: json.dumps(summary)},
            background=BackgroundTask(shutil.rmtree, folder, ignore_errors=True))

    @api.get(routes.PROJECT, tags=["projects"])
    def show_project(project: str, task: str | None = None, revision: int | None = None
                     ) -> JSONResponse:
        """The project object: its story, cast, newest task and the storyboard it shows (or
        that of storyboard task `task`, or of revision `revision` of the story)."""
        return JSONResponse(thread_service().project(project, task, revision))

    @api.patch(routes.PROJECT, tags=["projects"])
    def rename_project(project: str, body: Rename) -> JSONResponse:
        """Give a project a new title; the project object."""
        return JSONResponse(thread_service().rename_project(project, body.title))

    @api.delete(routes.PROJECT, tags=["projects"])
    def remove_project(project: str, keep_objects: bool = False) -> JSONResponse:
        """Remove a project and (unless keep_objects) its objects in the bucket."""
        return JSONResponse(thread_service().remove_project(project, keep_objects))

    # --- shots and tasks ---------------------------------------------------------------------

    @api.post(routes.GENERATE_SHOT, tags=["tasks"])
    def generate_shot(shot: str, body: GenerateShot | None = None) -> JSONResponse:
        """Queue a shot_generation task: render one shot again (by shot id or
        PROJECT/NUMBER). Empty strings mean the stored prompt and the project's style."""
        body = body or GenerateShot()
        return JSONResponse(thread_service().regen_shot(shot, body.prompt or None,
                                                        body.style or None, body.seed,
                                                        body.keep_seed))

    @api.post(routes.SHOT_NOTE, tags=["edits"])
    def note_shot(shot: str, body: ShotNote, request: Request) -> JSONResponse:
        """A note on a shot's panel (empty clears it)."""
        return JSONResponse(acting(request).note_shot(shot, body.text))

    @api.post(routes.SHOT_APPROVE, tags=["edits"])
    def approve_shot(shot: str, request: Request) -> JSONResponse:
        """Approve a shot's panel: re-plans, retries and stale renders leave it alone."""
        return JSONResponse(acting(request).approve_shot(shot, True))

    @api.post(routes.SHOT_UNAPPROVE, tags=["edits"])
    def unapprove_shot(shot: str, request: Request) -> JSONResponse:
        """Take a panel's approval back."""
        return JSONResponse(acting(request).approve_shot(shot, False))

    @api.patch(routes.SHOT, tags=["edits"])
    def edit_shot(shot: str, body: ShotFields, request: Request) -> JSONResponse:
        """Change a shot's fields ({name: value}: camera, action, dialogue, characters,
        duration, prompt); a change to what its panel shows makes the panel stale."""
        return JSONResponse(acting(request).edit_shot(shot, body))

    @api.get(routes.SHOT, tags=["tasks"])
    def shot(shot: str) -> JSONResponse:
        """The shot object of the shot a reference (id or PROJECT/NUMBER) names."""
        return JSONResponse(thread_service().shot(shot))

    @api.get(routes.TASKS, tags=["tasks"])
    def tasks(project: str | None = None, limit: int | None = None) -> JSONResponse:
        """Task summaries, newest first: every project's, or one project's."""
        return JSONResponse(thread_service().tasks(project, limit))

    @api.get(routes.TASK_EVENTS, tags=["tasks"], response_class=StreamingResponse)
    async def task_events(task: str) -> StreamingResponse:
        """The task's progress as Server-Sent Events: `event: progress` per change, a
        `: heartbeat` comment every 15 s, last `event: task` with the task object."""
        task_id = await streams.call("resolve_task", task)
        return StreamingResponse(events.task_events(task_polls, task_id, heartbeat_s),
                                 media_type=events.MEDIA_TYPE, headers=events.HEADERS)

    @api.get(routes.TASK, tags=["tasks"], response_class=JSONResponse)
    async def task(task: str) -> Response:
        """The task object (as `storyboard status --json`); an id or a unique prefix."""
        return Response(await task_answers.get(task, task_json), media_type="application/json")

    @api.post(routes.RETRY, tags=["tasks"])
    def retry(task: str) -> JSONResponse:
        """Queue again what failed or was cancelled."""
        return JSONResponse(thread_service().retry(task))

    @api.post(routes.CANCEL, tags=["tasks"])
    def cancel(task: str) -> JSONResponse:
        """Cancel a pending or running task."""
        return JSONResponse(thread_service().cancel(task))

    @api.get(routes.WORKERS, tags=["tasks"])
    def workers() -> JSONResponse:
        """Whether a worker takes the queued tasks."""
        return JSONResponse({"listening": thread_service().workers_listening()})

    # Routes are matched in order, each costing FastAPI a few microseconds twice a request:
    # the task routes, which boards and `--watch` poll, go first (nothing else starts with
    # /tasks, so no other route can be shadowed). A third of a task request's CPU otherwise.
    api.routes.sort(key=lambda route: not route.path.startswith(routes.API + "/tasks"))
    app.include_router(api)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, bool]:
        return {"ok": True}

    login.add_routes(app, token or None, keeper)
    page.add_routes(app, needs_login=bool(token))

    # Added last = outermost.
    app.add_middleware(BodyLimit, max_bytes=config.server.max_body_bytes,
                       setting="server.max_body_bytes", key="error")
    app.add_middleware(SessionGate, token=token or None, keeper=keeper, guarded=is_api,
                       variable=TOKEN_VARIABLE)
    app.add_middleware(RootPathTwice)
    app.add_middleware(PlainPaths)
    if config.server.cors_origins:
        from starlette.middleware.cors import CORSMiddleware

        # Outside the token check: a browser's preflight carries no Authorization header.
        app.add_middleware(CORSMiddleware, allow_origins=config.server.cors_origins,
                           allow_methods=["GET", "POST", "PATCH", "DELETE"],
                           allow_headers=["Authorization", "Content-Type", USER_HEADER],
                           expose_headers=[EXPORT_HEADER, "Content-Disposition"])
    return app
