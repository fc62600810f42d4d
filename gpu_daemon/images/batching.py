"""The render queue: one pipeline call at a time, same-settings requests batched together.

One render thread owns the backend. When it is free it takes the oldest waiting job plus every
other waiting job with the same settings (model, size, steps, guidance, negative prompt,
scheduler, LoRAs: RenderJob.batch_key), up to
max_batch, and renders them in one call. It never waits for a batch to fill: a request that
arrives at an idle queue starts at once, so batching cannot make a lone request slower; it only
lets requests that would otherwise wait ride along with the call ahead of them.

Requests are futures: the asyncio side awaits them, and cancelling one that has not started
takes it out of the queue. A call whose requests were all cancelled stops at the next step.

The daemon runs this queue inside its render process (process.py), which mirrors the same
interface in the HTTP process; the hooks ``_begin``, ``_progress``, ``_announce`` (a model
being loaded for the call) and ``_end`` are what that process reports across its pipe.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

from PIL import Image

from gpu_daemon.images import ImageBackend, RenderJob, StepCallback

log = logging.getLogger("gpu_daemon.render")


@dataclass(frozen=True)
class Rendered:
    image: Image.Image
    render_ms: float  # the pipeline call that made it, shared by its batch
    batch_size: int
    provenance: dict | None = None  # what made it (images/provenance.py)
    # Identity features its call made, to keep in the bucket (ImageBackend.made_identities).
    identities: dict[str, bytes] = field(default_factory=dict)


class Cancelled(Exception):
    """Raised from the step callback when nobody waits for the batch any more."""


@dataclass(eq=False)  # a ticket is itself: equal jobs are still two requests
class Ticket:
    """A queued job: await ``future``; ``cancel()`` when the requester goes away."""

    job: RenderJob
    future: Future[Rendered]
    on_step: StepCallback | None
    abandoned: bool = False
    number: int = 0  # names the ticket across the render process's pipe
    on_cancel: Callable[[], None] | None = field(default=None, repr=False)

    def cancel(self) -> None:
        # A running future cannot be cancelled; the flag stops its call at the next step.
        self.abandoned = True
        self.future.cancel()
        if self.on_cancel is not None:
            self.on_cancel()


@dataclass
class RenderStats:
    busy: bool = False
    renders: int = 0  # images delivered; a failed or cancelled call adds none
    pipeline_calls: int = 0
    busy_s: float = 0.0
    _since: float | None = field(default=None, repr=False)

    def record_call(self, delivered: int, seconds: float) -> None:
        self.busy = False
        self.busy_s += seconds
        self._since = None
        self.pipeline_calls += 1
        self.renders += delivered

    def busy_seconds(self) -> float:
        """Cumulative busy time, counting the call running now."""
        running = time.monotonic() - self._since if self._since is not None else 0.0
        return self.busy_s + running


class RenderQueue:
    def __init__(self, backend: ImageBackend, max_batch: int) -> None:
        self.backend = backend
        self.max_batch = max(1, max_batch)
        self.stats = RenderStats()
        self._pending: deque[Ticket] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="render", daemon=True)
        self._thread.start()

    @property
    def waiting(self) -> int:
        with self._cond:
            return sum(1 for p in self._pending if not p.future.cancelled())

    def submit(self, job: RenderJob, on_step: StepCallback | None = None) -> Ticket:
        """Queue a job; on_step(step, total) is called from the render thread."""
        return self.submit_many([(job, on_step)])[0]

    def submit_many(self, jobs: list[tuple[RenderJob, StepCallback | None]]) -> list[Ticket]:
        """Queue several jobs at once: the render thread sees all or none of them, so
        same-settings jobs share a call instead of the first one starting alone."""
        tickets = [Ticket(job, Future(), on_step) for job, on_step in jobs]
        self.enqueue(tickets)
        return tickets

    def enqueue(self, tickets: Sequence[Ticket]) -> None:
        """Queue tickets made by the caller (the render process numbers them first)."""
        with self._cond:
            if self._closed:
                raise RuntimeError("render queue is closed")
            self._pending.extend(tickets)
            self._cond.notify()

    def close(self, timeout: float = 30.0) -> None:
        with self._cond:
            self._closed = True
            for p in self._pending:
                p.future.cancel()
            self._pending.clear()
            self._cond.notify()
        self._thread.join(timeout)

    def _take_batch(self) -> list[Ticket] | None:
        """Blocks until there is work; the first live job and its same-settings companions."""
        with self._cond:
            while True:
                while self._pending and not self._pending[0].future.set_running_or_notify_cancel():
                    self._pending.popleft()
                if self._pending:
                    break
                if self._closed:
                    return None
                self._cond.wait()
            first = self._pending.popleft()
            batch, key, rest = [first], first.job.batch_key(), deque()
            while self._pending:
                p = self._pending.popleft()
                if len(batch) < self.max_batch and p.job.batch_key() == key:
                    if p.future.set_running_or_notify_cancel():
                        batch.append(p)
                else:
                    rest.append(p)
            self._pending = rest
            self._begin(batch)
            return batch

    def _run(self) -> None:
        while (batch := self._take_batch()) is not None:
            self._render(batch)

    def _render(self, batch: list[Ticket]) -> None:
        def on_step(step: int, total: int) -> None:
            if all(p.abandoned for p in batch):
                raise Cancelled
            self._progress(batch, step, total)

        started = time.monotonic()
        try:
            self.backend.prepare(batch[0].job, lambda state: self._announce(batch, state))
            images = self.backend.render([p.job for p in batch], _guard(on_step))
        except Exception as exc:  # noqa: BLE001 - every waiting request gets the failure
            if not isinstance(exc, Cancelled):
                log.exception("render of %d job(s) failed", len(batch))
            self._end(batch, 0, time.monotonic() - started)
            for p in batch:
                _settle(p.future, exc=exc)
        else:
            seconds = time.monotonic() - started
            # Counted before the futures resolve: whoever is answered sees its render counted.
            self._end(batch, len(batch), seconds)
            for p, image in zip(batch, images, strict=True):
                _settle(p.future, Rendered(image, seconds * 1000, len(batch),
                                           self.backend.provenance(p.job),
                                           self.backend.made_identities(p.job)))

    def _begin(self, batch: list[Ticket]) -> None:
        """A pipeline call starts (the queue's lock is held)."""
        self.stats.busy = True
        self.stats._since = time.monotonic()

    def _progress(self, batch: list[Ticket], step: int, total: int) -> None:
        for p in batch:
            if p.on_step is not None:
                p.on_step(step, total)

    def _announce(self, batch: list[Ticket], state: str) -> None:
        """What the call does before its steps (loading a model), for its requests."""
        for p in batch:
            if p.on_step is not None and not p.abandoned:
                p.on_step(0, 0, state)

    def _end(self, batch: list[Ticket], delivered: int, seconds: float) -> None:
        with self._cond:
            self.stats.record_call(delivered, seconds)


def _guard(on_step: StepCallback) -> StepCallback:
    """Progress reporting must not break a render, except to cancel it."""

    def call(step: int, total: int) -> None:
        try:
            on_step(step, total)
        except Cancelled:
            raise
        except Exception:  # noqa: BLE001
            log.exception("progress callback failed")

    return call


def _settle(future: Future[Rendered], result: Rendered | None = None,
            exc: BaseException | None = None) -> None:
    # A future whose request went away may already be cancelled; nobody reads it then.
    if future.done():
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)  # type: ignore[arg-type]

