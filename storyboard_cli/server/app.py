"""The FastAPI app of `storyboard serve`: the routes of the HTTP API (README, "HTTP API"), each a
call of one LocalService method answering what it returns, and the web page.

Guards, outermost first: CORS (only with [server] cors_origins), the bearer token on every
/api route (when one is set; constant-time compare), the body limit ([server]
max_body_bytes, 413). Errors answer {"error": "<one line>"} (errors.py).

A store connection serves one thread at a time: each worker thread of the pool that runs the
routes has its own LocalService, and each event stream one of its own.
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
from typing import Annotated

from anyio import CapacityLimiter, to_thread
from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, StreamingResponse
from fastapi.routing import APIRoute
from fastapi.security import HTTPBearer
from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException

from storyboard_cli import __version__
from storyboard_cli.board.options import ExportOptions
from storyboard_cli.server import events, page, routes
from storyboard_cli.server.bodies import (
    EXPORT_HEADER,
    CastChange,
    GenerateShot,
    GenerateStoryboard,
    NewProject,
    ProjectSettings,
    Rename,
)
from storyboard_cli.server.errors import status_and_message
from storyboard_cli.service import LocalService
from storyboard_contract.config import Config
from storyboard_contract.errors import NotFound, ServiceUnavailable, UsageError
from storyboard_contract.guards import BearerAuth, BodyLimit, validation_message

TOKEN_VARIABLE = "STORYBOARD_API_TOKEN"


class ServicePerThread:
    """A LocalService per worker thread, made on first use. The pool retires threads idle for
    a while (anyio: 10 s): a new one's service replaces theirs, whose connections are closed
    then, so bursts of traffic never pile up open connections. All are closed when the app
    stops."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.lock = threading.Lock()
        self.by_thread: dict[threading.Thread, LocalService] = {}

    def __call__(self) -> LocalService:
        thread = threading.current_thread()
        service = self.by_thread.get(thread)
        if service is None:
            service = self.new()
            with self.lock:
                for gone in [t for t in self.by_thread if not t.is_alive()]:
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


def is_api(path: str) -> bool:
    return path == routes.API or path.startswith(routes.API + "/")


def create_app(config: Config, token: str | None = None,
               heartbeat_s: float = events.HEARTBEAT_S) -> FastAPI:
    """The app over `config`'s store, Redis and bucket; with `token`, every /api route needs
    `Authorization: Bearer <token>`."""
    thread_service = ServicePerThread(config)
    stream_threads = CapacityLimiter(events.STREAM_THREADS)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        thread_service.close()

    app = FastAPI(
        title="storyboard", version=__version__, lifespan=lifespan,
        description="The storyboard system's HTTP API: projects, storyboard and shot tasks, "
        f"their progress (Server-Sent Events) and exports. Every {routes.API} route needs "
        f"`Authorization: Bearer ${TOKEN_VARIABLE}` when the server has a token. Errors "
        f'answer {{"error": "<one line>"}}: {NotFound.http_status} unknown id, '
        f"{UsageError.http_status} invalid input, 413 body too large, 401 missing or wrong "
        f"token, {ServiceUnavailable.http_status} a service (Redis, the bucket) is down.",
    )

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"error": validation_message(exc)}, status_code=422)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code,
                            headers=exc.headers)

    # Declared for the docs (their Authorize button); BearerAuth below enforces it before
    # a body is read.
    bearer = HTTPBearer(auto_error=False, description=f"${TOKEN_VARIABLE}")
    api = APIRouter(prefix=routes.API, route_class=OneLineErrorRoute,
                    dependencies=[Security(bearer)])

    # --- projects (routes with a suffix first: a project may be named by a title with "/") --

    @api.post(routes.PROJECTS, tags=["projects"])
    def create_project(body: NewProject) -> JSONResponse:
        """Create a project; the project object."""
        return JSONResponse(thread_service().create_project(body.title, body.story_text,
                                                            body.style, body.aspect,
                                                            body.given()))

    @api.get(routes.PROJECTS, tags=["projects"])
    def list_projects() -> JSONResponse:
        """Every project: id, title, style, aspect, story length, shots, last task status."""
        return JSONResponse(thread_service().list_projects())

    @api.post(routes.GENERATE_STORYBOARD, tags=["tasks"])
    def generate_storyboard(project: str, body: GenerateStoryboard | None = None
                            ) -> JSONResponse:
        """Queue a storyboard task: plan the shot list and render every shot. Empty strings
        mean the project's own style and story; a story given replaces the project's."""
        body = body or GenerateStoryboard()
        return JSONResponse(thread_service().generate(project, body.style or None,
                                                      body.no_images, body.story_text or None))

    @api.get(routes.CAST, tags=["projects"])
    def cast(project: str) -> JSONResponse:
        """The project's characters."""
        return JSONResponse(thread_service().cast(project))

    @api.patch(routes.CAST, tags=["projects"])
    def set_cast(project: str, body: CastChange) -> JSONResponse:
        """Describe characters (new names join the cast) and remove others; the cast."""
        return JSONResponse(thread_service().set_cast(project, body.set, body.remove))

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
    def board(project: str) -> StreamingResponse:
        """The board as the HTML export's page, its frames fresh links (the web page's)."""
        return StreamingResponse(thread_service().board_page(project), media_type=page.HTML)

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
            done = thread_service().export(project, fmt, folder, options, upload=upload)
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
    def show_project(project: str, task: str | None = None) -> JSONResponse:
        """The project object: its story, cast, newest task and the storyboard it shows."""
        return JSONResponse(thread_service().project(project, task))

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

    @api.get(routes.SHOT, tags=["tasks"])
    def resolve_shot(shot: str) -> JSONResponse:
        """The id of the shot a reference (id or PROJECT/NUMBER) names."""
        return JSONResponse({"id": thread_service().resolve_shot(shot)})

    @api.get(routes.TASKS, tags=["tasks"])
    def tasks(project: str | None = None, limit: int | None = None) -> JSONResponse:
        """Task summaries, newest first: every project's, or one project's."""
        return JSONResponse(thread_service().tasks(project, limit))

    @api.get(routes.TASK_EVENTS, tags=["tasks"], response_class=StreamingResponse)
    async def task_events(task: str) -> StreamingResponse:
        """The task's progress as Server-Sent Events: `event: progress` per change, a
        `: heartbeat` comment every 15 s, last `event: task` with the task object."""
        service = thread_service.new()
        try:
            task_id = await to_thread.run_sync(service.resolve_task, task,
                                               limiter=stream_threads)
        except BaseException:
            service.close()
            raise
        return StreamingResponse(
            events.task_events(service, task_id, stream_threads, heartbeat_s),
            media_type=events.MEDIA_TYPE, headers=events.HEADERS)

    @api.get(routes.TASK, tags=["tasks"])
    def task(task: str) -> JSONResponse:
        """The task object (as `storyboard status --json`); an id or a unique prefix."""
        return JSONResponse(thread_service().task(task))

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

    app.include_router(api)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, bool]:
        return {"ok": True}

    page.add_routes(app)

    # Added last = outermost.
    app.add_middleware(BodyLimit, max_bytes=config.server.max_body_bytes,
                       setting="server.max_body_bytes", key="error")
    app.add_middleware(BearerAuth, token=token or None, guarded=is_api,
                       variable=TOKEN_VARIABLE, key="error")
    if config.server.cors_origins:
        from starlette.middleware.cors import CORSMiddleware

        # Outside the token check: a browser's preflight carries no Authorization header.
        app.add_middleware(CORSMiddleware, allow_origins=config.server.cors_origins,
                           allow_methods=["GET", "POST", "PATCH", "DELETE"],
                           allow_headers=["Authorization", "Content-Type"],
                           expose_headers=[EXPORT_HEADER, "Content-Disposition"])
    return app
