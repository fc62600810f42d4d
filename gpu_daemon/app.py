"""The daemon's HTTP API (wire format in storyboard_contract/wire.py).

The event loop only parses requests and moves bytes. Planning runs in a worker thread, images
in the render process (gpu_daemon/images/process.py), PNG encoding and uploads in a few upload
processes, so the upload of one image overlaps the rendering of the next.

An image whose upload failed is kept for a while (uploader.KeptImages): the worker's retry of
that render only uploads it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from gpu_daemon import __version__
from gpu_daemon.cast import CastObjects
from gpu_daemon.images import BackendInfo, RenderJob, StepCallback
from gpu_daemon.images.batching import Rendered, Ticket
from gpu_daemon.images.process import RenderProcess, RenderUnavailable
from gpu_daemon.uploader import KeptImages, PngUploads, S3Uploader, UploadError, check_bucket
from storyboard_contract import keys, wire
from storyboard_contract.guards import (
    BearerAuth,
    BodyLimit,
    unreadable_body,
    validation_message,
)

if TYPE_CHECKING:
    from gpu_daemon.models.catalog import Catalog
    from gpu_daemon.planner import Planner
    from storyboard_contract.config import Config

log = logging.getLogger("gpu_daemon")

# Sends one event of a streamed answer (progress, or a /v1/renders shot's outcome).
Emit = Callable[[BaseModel], None]

# Progress of a render: its first step, then at most this often, and its last step. A bar
# needs no more, and each event is a line the event loop writes through the tunnel and the
# worker writes to the store (the render process sends every step; this side drops most).
PROGRESS_INTERVAL_S = 0.25


class DaemonError(Exception):
    """A failure answered with this HTTP status and message (or an error event)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Jobs:
    """A request as the render queue takes it: the model's defaults filled in, the prompt
    composed with the style and the cast and fitted to the model's tokenizer, the LoRAs found
    in images.lora_dir. What the daemon cannot render with is a DaemonError (422) here, before
    anything is queued."""

    cfg: Config
    backend: BackendInfo
    catalog: Catalog

    def job_for(self, req: wire.RenderRequest) -> RenderJob:
        """The job without what the bucket holds (Daemon.job_for adds the references and
        kept identities its consistency mode reads)."""
        from gpu_daemon.styles import compose

        limit = self.cfg.limits.max_prompt_chars
        if len(req.prompt) > limit:
            raise DaemonError(
                422, f"prompt is {len(req.prompt)} characters; the limit is {limit} "
                     "(limits.max_prompt_chars)"
            )
        settings = self.settings_for(req, req.width, req.height)
        mode = self.consistency(req)
        cast = [(c.name, c.description) for c in req.characters]
        loras = settings.loras
        if mode == "lora":
            # The trigger word leads the character's words: prompt fitting keeps the cast.
            cast = [(c.name, ", ".join(w for w in (c.trigger, c.description) if w))
                    for c in req.characters]
            loras = self.lora_files([*req.loras, *(c.lora for c in req.characters if c.lora)])
        prompt, style_negative = compose(req.prompt, req.style,
                                         self.backend.token_count(settings.model or None), cast)
        return dataclasses.replace(
            settings, prompt=prompt, negative_prompt=settings.negative_prompt or style_negative,
            seed=req.seed, index=req.index, camera=req.camera,
            description=req.description or req.prompt,
            characters=tuple(c.name for c in req.characters), style=req.style,
            loras=loras, consistency=mode)

    def consistency(self, req: wire.RenderSettings) -> str:
        """The render's consistency mode (the project's, else [images] consistency); 422
        when this daemon cannot render in it."""
        from gpu_daemon.images.consistency import refusal

        mode = req.consistency or self.cfg.images.consistency
        problem = refusal(mode, self.cfg, self.backend.name)
        if problem is not None:
            raise DaemonError(422, f"consistency {mode}: {problem}")
        return mode

    def settings_for(self, req: wire.RenderSettings, width: int | None, height: int | None
                     ) -> RenderJob:
        """A render's settings, what the request leaves unset taken from its model's
        defaults ([images.models.NAME], else [images]): a job without prompt or seed yet.
        422 for a model, scheduler or LoRA the daemon cannot render with."""
        from gpu_daemon.models.schedulers import unknown_message

        try:
            entry = self.catalog.entry(req.model)
        except ValueError as exc:
            raise DaemonError(422, str(exc)) from None
        defaults = entry.generation if entry else self.cfg.images.generation()
        scheduler = req.scheduler or defaults["scheduler"]
        if entry is not None and scheduler not in entry.scheduler_names:
            raise DaemonError(422, f"model {entry.name!r}: "
                              + unknown_message(scheduler, entry.scheduler_names))
        return RenderJob(
            prompt="", negative_prompt=req.negative_prompt or defaults["negative_prompt"],
            seed=0, width=width or defaults["width"], height=height or defaults["height"],
            steps=req.steps or defaults["steps"],
            guidance_scale=defaults["guidance_scale"] if req.guidance_scale is None
            else req.guidance_scale,
            scheduler=scheduler, loras=self.request_loras(req),
            model=entry.name if entry else "",
        )

    def planned_provenance(self, req: wire.PlanRequest, shots: list[wire.PlannedShot]
                           ) -> list[dict]:
        """Each planned shot's provenance as it will be rendered (the script's): its model
        hashed (the first time, a few seconds a GB), its LoRAs, sampler, steps, guidance,
        seed and frame; 422 for settings the daemon cannot render with, as a render would."""
        from gpu_daemon.models import loras
        from gpu_daemon.models.provenance import describe

        settings = self.settings_for(req.render, req.width, req.height)
        entry = self.catalog.entry(settings.model or None)
        identity = self.catalog.identity(settings.model or None)
        used = loras.used(entry.spec.loras if entry else (), settings.loras)
        # Not refused here: a plan is not a render (a mode this daemon cannot render fails
        # each shot's render with its reason).
        consistency = req.render.consistency or self.cfg.images.consistency
        return [describe(identity, dataclasses.replace(settings, seed=s.seed or 0,
                                                       consistency=consistency),
                         used, settings.scheduler) for s in shots]

    def request_loras(self, req: wire.RenderSettings) -> tuple[tuple[str, float], ...]:
        """A request's LoRAs as files in images.lora_dir (422 for one that is not a LoRA
        there, or for a backend that takes none)."""
        return self.lora_files(req.loras)

    def lora_files(self, refs: list[wire.LoraRef]) -> tuple[tuple[str, float], ...]:
        """LoRAs as files in images.lora_dir, a later one's scale winning for a file named
        twice (422 for one that is not a LoRA there, or for a backend that takes none)."""
        if not refs:
            return ()
        if not self.backend.takes_loras:
            raise DaemonError(422, f"the {self.backend.name} backend takes no LoRA")
        from gpu_daemon.models.loras import request_lora

        lora_dir = self.cfg.resolve(self.cfg.images.lora_dir)
        try:
            files = {str(request_lora(ref.name, lora_dir)): ref.scale for ref in refs}
        except ValueError as exc:
            raise DaemonError(422, str(exc)) from None
        return tuple(files.items())


@dataclass
class Daemon:
    """Everything the endpoints share; built once at start-up, the model already loaded."""

    cfg: Config
    planner: Planner
    render_process: RenderProcess  # the model loaded in it
    script_uploader: S3Uploader  # shot-list scripts, in a thread: one per task
    image_uploads: PngUploads  # PNG encoding and upload, in upload processes
    catalog: Catalog  # every model, resolved (gpu_daemon/models/catalog.py)
    backend: BackendInfo = field(init=False)
    jobs: Jobs = field(init=False)
    kept: KeptImages = field(init=False)
    cast: CastObjects = field(init=False)
    # Identity keys whose features this daemon has put in the bucket (each once).
    kept_identities: set[str] = field(default_factory=set)
    started: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.backend = self.render_process.backend
        self.jobs = Jobs(self.cfg, self.backend, self.catalog)
        self.cast = CastObjects(self.script_uploader)
        self.kept = KeptImages(self.cfg.daemon.keep_images_mib * 2**20,
                               self.cfg.daemon.keep_images_s)

    def close(self) -> None:
        self.render_process.close()
        self.image_uploads.close()

    def status(self) -> wire.DaemonStatus:
        stats = self.render_process.stats
        return wire.DaemonStatus(
            version=__version__,
            planner=self.planner.name,
            image_backend=self.backend.name,
            model=self.backend.model,
            model_loaded=self.backend.model is not None,
            device=self.backend.device,
            busy=stats.busy,
            waiting=self.render_process.waiting,
            render_busy_s=round(stats.busy_seconds(), 4),
            renders=stats.renders,
            pipeline_calls=stats.pipeline_calls,
            uptime_s=round(time.monotonic() - self.started, 3),
            max_batch=self.render_process.max_batch,
            kept_images=len(self.kept),
            kept_reused=self.kept.reused,
            models=self.model_statuses(),
            max_loaded=self.cfg.images.max_loaded,
            prompt_language=self.cfg.planner.prompt_language,
        )

    def model_statuses(self) -> list[wire.ModelStatus]:
        from gpu_daemon.models.catalog import KIND_NAMES

        loaded = self.render_process.backend.loaded
        return [wire.ModelStatus(
            name=e.name, source=e.resolved.source, kind=KIND_NAMES[e.resolved.kind],
            architecture=e.label, text_encoder=e.encoder.name if e.encoder else None,
            reads_chinese=bool(e.encoder and e.encoder.reads_chinese),
            default=e.name == self.catalog.default, loaded=e.name in loaded)
            for e in self.catalog.entries.values()]

    async def plan(self, req: wire.PlanRequest, emit: Emit) -> wire.PlanResponse:
        from gpu_daemon.planner import PlannerError, PlannerUnavailable
        from gpu_daemon.planner.cast import keep_user_cast
        from gpu_daemon.planner.people import CastEdits

        limits = self.cfg.limits
        max_shots = min(req.max_shots or self.cfg.planner.max_shots, limits.max_shots)
        if req.story is not None:
            size = len(req.story.encode("utf-8"))
            if size > limits.max_story_bytes:
                raise DaemonError(
                    422, f"story is {size} bytes; the limit is {limits.max_story_bytes} "
                         "(limits.max_story_bytes)"
                )
            work = partial(self.planner.plan, req.story, req.style, max_shots,
                           CastEdits.of(req.cast))
        else:
            # A screenplay gets a shot a scene at least, up to [limits] max_shots (the
            # wire's schema bounds its size).
            from gpu_daemon.planner.scenes import min_shots

            max_shots = min(max(max_shots, min_shots(req.screenplay)), limits.max_shots)
            work = partial(self.planner.plan_screenplay, req.screenplay, req.style, max_shots)
        loop = asyncio.get_running_loop()
        total = 2 if req.upload_script else 1
        emit(wire.ProgressEvent(step=0, total=total))
        try:
            # The user's word on the cast holds whatever the planner made of the story.
            plan = keep_user_cast(await loop.run_in_executor(None, work), req.cast)
        except PlannerUnavailable as exc:  # worth retrying (503): wire.PLANNER_UNREACHABLE
            raise DaemonError(503, f"{wire.PLANNER_UNREACHABLE}: planner {self.planner.name}: "
                                   f"{exc}") from None
        except PlannerError as exc:
            # The offline rules planner fails only on its input (422); an LLM's answer that
            # asking again cannot change (424, a failed dependency): neither is retried.
            status = 422 if self.planner.name == "rules" else 424
            raise DaemonError(status, f"planner {self.planner.name}: {exc}") from None
        except Exception as exc:
            # A planner bug (a plan the schema refuses): the same request fails the same way,
            # so it is answered as what it is, and the worker fails the task with it at once.
            log.exception("planner %s failed", self.planner.name)
            reason = " ".join(str(exc).split())[:300]
            raise DaemonError(500, f"internal error of the planner {self.planner.name}: "
                                   f"{type(exc).__name__}: {reason}") from None
        emit(wire.ProgressEvent(step=1, total=total))
        shots = [s.model_copy(update={"seed": wire.shot_seed(req.task_id, s.index)})
                 for s in plan.shots]
        try:
            warning = self.catalog.language_warning(req.render.model,
                                                    [s.prompt for s in shots])
        except ValueError as exc:  # an unknown model: the project's renders would fail
            raise DaemonError(422, str(exc)) from None
        answer = wire.PlanResponse(shots=shots, characters=plan.characters,
                                      planner=self.planner.name,
                                      warnings=[warning] if warning else [])
        if req.upload_script:
            planned = await loop.run_in_executor(None, self.jobs.planned_provenance, req, shots)
            script = {
                "project_id": req.project_id, "task_id": req.task_id, "style": req.style,
                "aspect": req.aspect, "width": req.width, "height": req.height,
                "planner": self.planner.name,
                "characters": [c.model_dump() for c in answer.characters],
                "shots": [{**s.model_dump(), "provenance": p}
                          for s, p in zip(answer.shots, planned, strict=True)],
            }
            data = json.dumps(script, ensure_ascii=False, indent=2).encode("utf-8")
            uploaded = await loop.run_in_executor(
                None, self.script_uploader.upload_script, req.project_id, req.task_id, data
            )
            answer.script_key, answer.script_url = uploaded.key, uploaded.url
            answer.url_expires_at = uploaded.expires_at
            emit(wire.ProgressEvent(step=2, total=total))
        return answer

    async def job_for(self, req: wire.RenderRequest) -> RenderJob:
        """The request's job, with what its consistency mode reads from the bucket."""
        job = self.jobs.job_for(req)
        if job.consistency in ("reference", "attention"):
            job = await asyncio.get_running_loop().run_in_executor(
                None, self._with_cast, req, job)
        return job

    def _with_cast(self, req: wire.RenderRequest, job: RenderJob) -> RenderJob:
        if job.consistency == "reference":
            try:
                references = tuple(self.cast.reference(req.project_id, c)
                                   for c in req.characters if c.reference_key)
            except ValueError as exc:
                raise DaemonError(422, str(exc)) from None
            return dataclasses.replace(job, references=references)
        model_hash = self.catalog.identity(job.model or None).model_hash or _name_hash(job)
        identity_keys = [keys.identity_key(self.cfg.s3.prefix, req.project_id, c.name,
                                           model_hash, c.description) for c in req.characters]
        return dataclasses.replace(job, identities=tuple(
            (key, self.cast.identity(key)) for key in identity_keys))

    async def render(self, req: wire.RenderRequest, emit: Emit | None) -> wire.RenderResponse:
        job = await self.job_for(req)
        return await self._finish(req, job, self._submit([(req, job)], emit)[0])

    async def render_many(self, req: wire.RendersRequest, emit: Emit | None
                          ) -> wire.RendersResponse:
        """Every shot of the request queued at once (same-settings shots share pipeline
        calls); each shot's outcome is sent as soon as it is known, and one shot's failure
        is only that shot's."""
        outcomes: dict[int, wire.ShotOutcome] = {}

        def settle(outcome: wire.ShotOutcome) -> wire.ShotOutcome:
            outcomes[outcome.shot_id] = outcome
            if emit is not None:
                emit(wire.ShotEvent(outcome=outcome))
            return outcome

        ready = []
        for shot in req.shots:
            try:
                ready.append((shot, await self.job_for(shot)))
            except (DaemonError, UploadError) as exc:
                settle(wire.ShotOutcome(shot_id=shot.shot_id, status=exc.status,
                                           error=str(exc)))

        async def one(shot: wire.RenderRequest, job: RenderJob,
                      source: Ticket | Rendered) -> wire.ShotOutcome:
            try:
                result = await _logged(shot, self._finish(shot, job, source))
            except (DaemonError, UploadError) as exc:
                return settle(wire.ShotOutcome(shot_id=shot.shot_id, status=exc.status,
                                                  error=str(exc)))
            return settle(wire.ShotOutcome(shot_id=shot.shot_id, result=result))

        sources = self._submit(ready, emit)
        await asyncio.gather(*(one(shot, job, source)
                               for (shot, job), source in zip(ready, sources, strict=True)))
        return wire.RendersResponse(shots=[outcomes[s.shot_id] for s in req.shots])

    def _submit(self, shots: list[tuple[wire.RenderRequest, RenderJob]], emit: Emit | None
                ) -> list[Ticket | Rendered]:
        """For each shot its kept image (uploader.KeptImages), or a ticket of the render
        process; the tickets are submitted together."""
        loop = asyncio.get_running_loop()
        sources: list[Ticket | Rendered | None] = [self.kept.take(kept_key(r, j))
                                                   for r, j in shots]
        todo = [i for i, source in enumerate(sources) if source is None]
        tickets = self.render_process.submit_many(
            [(shots[i][1], progress_callback(shots[i][0], emit, loop)) for i in todo])
        for i, ticket in zip(todo, tickets, strict=True):
            sources[i] = ticket
        return sources  # type: ignore[return-value]

    async def _finish(self, req: wire.RenderRequest, job: RenderJob,
                      source: Ticket | Rendered) -> wire.RenderResponse:
        """Wait for the shot's render (unless kept from before) and upload it; an image whose
        upload fails is kept for the retry."""
        if isinstance(source, Rendered):
            rendered = source
        else:
            try:
                rendered = await asyncio.wrap_future(source.future)
            except asyncio.CancelledError:
                source.cancel()
                raise
            except Exception as exc:
                raise DaemonError(render_failure_status(exc),
                                  f"render failed: {type(exc).__name__}: {exc}") from None
        try:
            uploaded = await asyncio.wrap_future(
                self.image_uploads.submit(req.project_id, req.shot_id, req.task_id, rendered.image)
            )
        except Exception as exc:
            self.kept.put(kept_key(req, job), rendered, rendered.image)
            if isinstance(exc, UploadError):
                raise
            raise DaemonError(500, f"upload failed: {type(exc).__name__}: {exc}") from None
        await self._keep_identities(rendered.identities)
        return wire.RenderResponse(
            image_key=uploaded.key, image_url=uploaded.url, url_expires_at=uploaded.expires_at,
            # The image's own size: a pipeline may render only sizes of its own (HunyuanDiT).
            prompt=job.prompt, seed=job.seed, width=rendered.image.width,
            height=rendered.image.height,
            backend=self.backend.name, render_ms=round(rendered.render_ms, 2),
            batch_size=rendered.batch_size, reused=source is rendered,
            provenance=rendered.provenance, warnings=self.warnings(job),
        )

    async def _keep_identities(self, made: dict[str, bytes]) -> None:
        """Identity features the render made, put in the bucket once each: later windows
        and regens of the project read them (an UploadError fails the shot, to be
        retried)."""
        loop = asyncio.get_running_loop()
        for key, data in made.items():
            if key not in self.kept_identities:
                await loop.run_in_executor(None, self.cast.keep_identity, key, data)
                self.kept_identities.add(key)

    def warnings(self, job: RenderJob) -> list[str]:
        """What the requester should be told about this render (the host says each once
        per task)."""
        warning = self.catalog.language_warning(job.model or None, [job.prompt])
        return [warning] if warning else []


def _name_hash(job: RenderJob) -> str:
    """Names a model whose files have no hash (a hub id): by the daemon's name for it."""
    import hashlib

    return hashlib.sha256(f"model:{job.model}".encode()).hexdigest()[:10]


def kept_key(req: wire.RenderRequest, job: RenderJob) -> tuple:
    """What a kept image depends on: the render's task and shot, and every setting of the job
    (model, prompt, negative prompt, seed, size, steps, guidance, ...). Kept images live in
    this daemon's memory, with its models."""
    return (req.project_id, req.task_id, req.shot_id, dataclasses.astuple(job))


def progress_callback(req: wire.RenderRequest, emit: Emit | None,
                      loop: asyncio.AbstractEventLoop) -> StepCallback | None:
    """on_step for the render process's steps: the shot's first step, then at most every
    PROGRESS_INTERVAL_S, and its last step, as progress events of its stream; a state
    (loading its model) at once."""
    if emit is None:
        return None
    last = -PROGRESS_INTERVAL_S

    def on_step(step: int, total: int, state: str | None = None) -> None:
        nonlocal last
        now = time.monotonic()
        if state is None and step < total and now - last < PROGRESS_INTERVAL_S:
            return
        last = now
        event = wire.ProgressEvent(shot_id=req.shot_id, step=step, total=total, state=state)
        loop.call_soon_threadsafe(emit, event)

    return on_step


def render_failure_status(exc: Exception) -> int:
    """A backend's ValueError says this request cannot be rendered as it is (422: the worker
    does not retry it, the same request fails the same way); anything else is the daemon's
    trouble (500, worth retrying: out of memory, a device error), 503 while the render process
    is being restarted."""
    if isinstance(exc, RenderUnavailable):
        return 503
    return 422 if isinstance(exc, ValueError) else 500


async def _answer(
    request: Request, work: Callable[[Emit | None], Awaitable[BaseModel]]
) -> Response:
    """Plain JSON, or with ``Accept: application/x-ndjson`` a stream of progress events
    ending in one result or error event."""
    if wire.NDJSON not in request.headers.get("accept", ""):
        try:
            result = await work(None)
        except (DaemonError, UploadError) as exc:
            return JSONResponse({"detail": str(exc)}, status_code=exc.status)
        return JSONResponse(result.model_dump(mode="json"))

    events: asyncio.Queue[BaseModel | None] = asyncio.Queue()

    async def run() -> None:
        try:
            result = await work(events.put_nowait)
            events.put_nowait(wire.ResultEvent(result=result.model_dump(mode="json")))
        except (DaemonError, UploadError) as exc:
            events.put_nowait(wire.ErrorEvent(status=exc.status, error=str(exc)))
        except Exception as exc:  # noqa: BLE001 - the stream has started: report in-band
            log.exception("request failed")
            events.put_nowait(wire.ErrorEvent(status=500, error=f"internal error: {exc}"))
        finally:
            events.put_nowait(None)

    async def lines() -> AsyncIterator[str]:
        task = asyncio.create_task(run())
        try:
            while (event := await events.get()) is not None:
                # The events already waiting go out as one chunk: a batch's shots report
                # each step at once, and the worker pays per chunk it reads (HTTP parsing,
                # and through the tunnel a frp frame each), not per line.
                chunk = [event.model_dump_json()]
                while not events.empty() and (event := events.get_nowait()) is not None:
                    chunk.append(event.model_dump_json())
                yield "\n".join(chunk) + "\n"
                if event is None:
                    break
        finally:
            # The client went away (or we are done): stop the work it was waiting for.
            task.cancel()

    return StreamingResponse(lines(), media_type=wire.NDJSON)


def create_app(daemon: Daemon, token: str | None) -> FastAPI:
    """The ASGI app; token None (--insecure-no-token) turns authentication off."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await asyncio.get_running_loop().run_in_executor(None, daemon.close)

    app = FastAPI(
        title="storyboard gpu-daemon", version=__version__, lifespan=lifespan,
        docs_url=None, redoc_url=None, openapi_url=None,
    )
    app.state.daemon = daemon

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": validation_message(exc)}, status_code=422)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        if unreadable := unreadable_body(exc):
            return JSONResponse({"detail": unreadable}, status_code=422)
        return await http_exception_handler(request, exc)

    @app.get("/healthz")
    async def healthz() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/v1/status")
    async def status(check: str = "") -> wire.DaemonStatus:
        answer = daemon.status()
        checks = set(check.split(","))
        loop = asyncio.get_running_loop()
        if "bucket" in checks:
            answer.bucket = await loop.run_in_executor(None, check_bucket, daemon.cfg.s3)
        if "planner" in checks:
            answer.planner_check = await loop.run_in_executor(None, daemon.planner.check)
        return answer

    @app.post("/v1/plan")
    async def plan(req: wire.PlanRequest, request: Request) -> Response:
        return await _answer(request, lambda emit: _logged(req, daemon.plan(req, emit or _ignore)))

    @app.post("/v1/render")
    async def render(req: wire.RenderRequest, request: Request) -> Response:
        return await _answer(request, lambda emit: _logged(req, daemon.render(req, emit)))

    @app.post("/v1/renders")
    async def renders(req: wire.RendersRequest, request: Request) -> Response:
        # Each shot is logged on its own (render_many).
        return await _answer(request, lambda emit: daemon.render_many(req, emit))

    # Added last = outermost: the token is checked before the body is even read.
    app.add_middleware(BodyLimit, max_bytes=daemon.cfg.daemon.max_body_bytes)
    app.add_middleware(BearerAuth, token=token)
    return app


def _ignore(event: wire.ProgressEvent) -> None:
    pass


WorkRequest = wire.PlanRequest | wire.RenderRequest
WorkResult = wire.PlanResponse | wire.RenderResponse


async def _logged(req: WorkRequest, work: Awaitable[WorkResult]) -> WorkResult:
    """One log line per plan or render: which task and shot, how it went, how long it took."""
    started = time.perf_counter()
    try:
        result = await work
    except asyncio.CancelledError:
        log.info("%s cancelled after %.0f ms (the client went away)", _what(req),
                 (time.perf_counter() - started) * 1000)
        raise
    except Exception as exc:
        log.warning("%s failed after %.0f ms: %s", _what(req),
                    (time.perf_counter() - started) * 1000, exc)
        raise
    log.info("%s", request_line(req, result, (time.perf_counter() - started) * 1000))
    return result


def _what(req: WorkRequest) -> str:
    if isinstance(req, wire.RenderRequest):
        return f"render task={req.task_id} project={req.project_id} shot={req.shot_id}"
    return f"plan task={req.task_id} project={req.project_id}"


def request_line(req: WorkRequest, result: WorkResult, total_ms: float) -> str:
    if isinstance(result, wire.RenderResponse):
        detail = (f"batch={result.batch_size} render_ms={result.render_ms:.0f} "
                  f"{result.width}x{result.height}")
    else:
        detail = f"shots={len(result.shots)} planner={result.planner}"
    return f"{_what(req)} ok {detail} total_ms={total_ms:.0f}"
