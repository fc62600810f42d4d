"""The render process: the image backend and its render queue, away from the HTTP server.

The pipeline runs in a process of its own (spawned: forking a process with torch and uvicorn
threads is not safe), so the event loop, request parsing and progress events never take the
GIL from the render loop. It loads and warms up the backend there, then runs the ordinary
RenderQueue (batching.py). The HTTP process holds a ``RenderProcess``: the same interface
(submit, submit_many, cancel, waiting, stats), each ticket mirrored across one pipe.

Jobs cross to the render process as soon as they are submitted, so when a call ends the next
one starts there at once, without a round trip to the HTTP process. Back come the start of
each call, its steps (only for tickets that want progress), its end (counted before its
results, as in the queue itself) and each ticket's image or error. Images come back as PIL
images (raw pixels: cheaper to pickle than a PNG is to encode on the render side); the HTTP
process hands them to the upload processes as before.

If the render process dies (killed, out of host memory, a driver crash), the tickets it held
fail with ``RenderUnavailable`` (the daemon answers 503, which workers retry) and a new one is
started and loaded; jobs submitted meanwhile wait for it. If the new one cannot load, every
later job fails with the reason, and the daemon's log says it.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import pickle
import signal
import sys
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

from gpu_daemon.images import RenderJob, StepCallback, token_counter
from gpu_daemon.images.batching import Rendered, RenderQueue, RenderStats, Ticket

if TYPE_CHECKING:
    from collections.abc import Callable

    from gpu_daemon.images import ImageBackend
    from storyboard_contract.config import Config

log = logging.getLogger("gpu_daemon.render")


class RenderUnavailable(RuntimeError):
    """The render process died or cannot be started (HTTP 503: worth retrying later)."""


@dataclass
class LoadedBackend:
    """The backend as the HTTP process knows it (implements images.BackendInfo)."""

    name: str
    model: str | None
    device: str
    tokenizers: dict[str, str | None] = field(default_factory=dict)  # per model, as JSON
    takes_loras: bool = False
    default: str | None = None  # the default model's name
    loaded: tuple[str, ...] = ()  # the models in memory, the most recently used last
    _counters: dict[str, Callable[[str], int] | None] = field(default_factory=dict,
                                                              repr=False)

    def token_count(self, model: str | None = None) -> Callable[[str], int] | None:
        name = model or self.default or ""
        if name not in self._counters:
            self._counters[name] = token_counter(self.tokenizers.get(name))
        return self._counters[name]

    @classmethod
    def of(cls, backend: ImageBackend) -> LoadedBackend:
        """What a backend just made reports: the one model it loaded is the default."""
        loaded = backend.loaded()
        return cls(backend.name, backend.model, backend.device, backend.tokenizers(),
                   backend.takes_loras, loaded[0] if loaded else None, loaded)


class RenderProcess:
    """RenderQueue's interface, with the backend and the queue in a render process."""

    def __init__(self, cfg: Config, max_batch: int) -> None:
        self.cfg = cfg
        self.max_batch = max(1, max_batch)
        self.stats = RenderStats()
        self.restarts = 0
        self._ctx = multiprocessing.get_context("spawn")
        self._lock = threading.Lock()
        self._tickets: dict[int, Ticket] = {}
        self._unsent: list[Ticket] = []  # submitted while a new process loads
        self._next = 1
        self._closed = False
        self._broken: str | None = None
        self._conn: Connection | None = None
        self._proc, conn, self.backend = self._start()  # raises what the backend load raised
        self._connect(conn)
        self._receiver = threading.Thread(target=self._receive, name="render-events", daemon=True)
        self._receiver.start()

    # -- the HTTP side's interface --

    @property
    def waiting(self) -> int:
        with self._lock:
            return sum(1 for t in self._tickets.values()
                       if not t.future.running() and not t.future.done())

    def submit(self, job: RenderJob, on_step: StepCallback | None = None) -> Ticket:
        """Queue a job; on_step(step, total) is called from a thread of this process."""
        return self.submit_many([(job, on_step)])[0]

    def submit_many(self, jobs: list[tuple[RenderJob, StepCallback | None]]) -> list[Ticket]:
        """Queue several jobs at once: they reach the render queue together (RenderQueue)."""
        with self._lock:
            if self._closed:
                raise RuntimeError("render queue is closed")
            tickets = []
            for job, on_step in jobs:
                ticket = Ticket(job, Future(), on_step, number=self._next)
                ticket.on_cancel = lambda t=ticket: self._cancel(t)
                self._next += 1
                tickets.append(ticket)
            if self._broken is not None:
                for t in tickets:
                    t.future.set_exception(RenderUnavailable(self._broken))
                return tickets
            self._tickets.update((t.number, t) for t in tickets)
            if self._conn is None:
                self._unsent += tickets
            else:
                self._send_jobs(tickets)
        return tickets

    def close(self, timeout: float = 30.0) -> None:
        with self._lock:
            self._closed = True
            tickets, self._tickets, self._unsent = list(self._tickets.values()), {}, []
            conn, self._conn = self._conn, None
        for t in tickets:
            t.abandoned = True
            t.future.cancel()
        if conn is not None:
            # Asked, not hung up on: closing our end would not wake the receiver's read, and
            # until that read ends the render process would not see an end of file either.
            _send(conn, "close", None)
        self._proc.join(timeout)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join()
        self._receiver.join(timeout)
        if conn is not None:
            conn.close()

    # -- the pipe --

    def _start(self) -> tuple[Any, Connection, LoadedBackend]:
        ours, theirs = self._ctx.Pipe()
        proc = self._ctx.Process(target=render_process_main,
                                 args=(self.cfg, self.max_batch, theirs), name="render",
                                 daemon=True)
        proc.start()
        theirs.close()  # only the render process holds its end: its exit reads as end of file
        try:
            kind, payload = ours.recv()
        except (EOFError, OSError):
            proc.join()
            ours.close()
            raise RenderUnavailable(
                f"the render process exited (code {proc.exitcode}) while loading the image "
                "backend; see the lines above") from None
        if kind == "failed":
            proc.join()
            ours.close()
            raise payload
        return proc, ours, payload

    def _connect(self, conn: Connection) -> None:
        with self._lock:
            self._conn = conn
            if self._unsent:
                self._send_jobs(self._unsent)
                self._unsent = []

    def _send_jobs(self, tickets: list[Ticket]) -> None:
        """Called with the lock held."""
        assert self._conn is not None
        # If the process just died, the receiver fails these with the ones it held.
        _send(self._conn, "submit", [(t.number, t.job, t.on_step is not None) for t in tickets])

    def _cancel(self, ticket: Ticket) -> None:
        with self._lock:
            if ticket in self._unsent:
                self._unsent.remove(ticket)
                self._tickets.pop(ticket.number, None)
                return
            if ticket.future.cancelled():
                # Not started, as far as this side knows: nobody waits for its answer.
                self._tickets.pop(ticket.number, None)
            if self._conn is not None:
                _send(self._conn, "cancel", ticket.number)

    def _receive(self) -> None:
        while True:
            conn = self._conn
            if conn is None:
                return
            try:
                while True:
                    self._handle(*conn.recv())
            except (EOFError, OSError):
                pass
            if not self._restart():
                return

    def _handle(self, kind: str, *args: Any) -> None:
        if kind == "start":
            numbers, = args
            with self._lock:
                for n in numbers:
                    if (t := self._tickets.get(n)) is not None:
                        t.future.set_running_or_notify_cancel()
                self.stats.busy = True
                self.stats._since = time.monotonic()
        elif kind == "step":
            numbers, step, total = args
            for n in numbers:
                t = self._tickets.get(n)
                if t is not None and t.on_step is not None and not t.abandoned:
                    try:
                        t.on_step(step, total)
                    except Exception:  # noqa: BLE001 - progress must not stop the events
                        log.exception("progress callback failed")
        elif kind == "state":
            numbers, state = args
            for n in numbers:
                t = self._tickets.get(n)
                if t is not None and t.on_step is not None and not t.abandoned:
                    t.on_step(0, 0, state)
        elif kind == "end":
            delivered, seconds, loaded = args
            with self._lock:
                self.stats.record_call(delivered, seconds)
                self.backend.loaded = loaded
        elif kind == "done":
            number, rendered, exc = args
            with self._lock:
                t = self._tickets.pop(number, None)
            if t is not None and not t.future.done():
                if exc is not None:
                    t.future.set_exception(exc)
                else:
                    t.future.set_result(rendered)

    def _restart(self) -> bool:
        """The render process is gone: fail what it held, start another. False: stop."""
        with self._lock:
            if self._closed:
                return False
            conn, self._conn = self._conn, None
            held = [t for t in self._tickets.values() if t not in self._unsent]
            for t in held:
                del self._tickets[t.number]
            self.stats.busy, self.stats._since = False, None
        if conn is not None:
            conn.close()
        self._proc.join()
        reason = (f"the render process died (exit code {self._proc.exitcode}); "
                  "a new one is loading")
        log.error("%s; %d request(s) failed", reason, len(held))
        for t in held:
            _fail(t.future, RenderUnavailable(reason))
        try:
            proc, conn, fresh = self._start()
        except Exception as exc:  # noqa: BLE001 - every later request is told why
            broken = f"the render process died and could not be restarted: {exc}"
            log.error("%s", broken)
            with self._lock:
                self._broken = broken
                waiting, self._unsent = self._unsent, []
                for t in waiting:
                    self._tickets.pop(t.number, None)
            for t in waiting:
                _fail(t.future, RenderUnavailable(broken))
            return False
        self.restarts += 1
        self.backend.loaded = fresh.loaded
        log.warning("render process restarted (restart %d)", self.restarts)
        self._proc = proc
        self._connect(conn)
        return True


def _send(conn: Connection, *message: Any) -> None:
    """A message to the other process; if it is gone, whoever reads from it finds out."""
    with contextlib.suppress(OSError):
        conn.send(message)


def _fail(future: Future[Rendered], exc: Exception) -> None:
    """Fails a future in any state but done or cancelled."""
    if future.running() or (not future.done() and future.set_running_or_notify_cancel()):
        future.set_exception(exc)


# -- inside the render process --


class _PipedQueue(RenderQueue):
    """The render queue of the render process: reports its calls over the pipe."""

    def __init__(self, backend: ImageBackend, max_batch: int, conn: Connection) -> None:
        self._conn = conn
        self._send_lock = threading.Lock()
        super().__init__(backend, max_batch)

    def send(self, *message: Any) -> None:
        with self._send_lock:
            _send(self._conn, *message)

    def _begin(self, batch: list[Ticket]) -> None:
        super()._begin(batch)
        self.send("start", [t.number for t in batch])

    def _progress(self, batch: list[Ticket], step: int, total: int) -> None:
        wanted = [t.number for t in batch if t.on_step is not None and not t.abandoned]
        if wanted:
            self.send("step", wanted, step, total)

    def _announce(self, batch: list[Ticket], state: str) -> None:
        wanted = [t.number for t in batch if t.on_step is not None and not t.abandoned]
        if wanted:
            self.send("state", wanted, state)

    def _end(self, batch: list[Ticket], delivered: int, seconds: float) -> None:
        super()._end(batch, delivered, seconds)
        self.send("end", delivered, seconds, self.backend.loaded())


def _wants_steps(step: int, total: int, state: str | None = None) -> None:
    """Marks a ticket whose requester wants progress (_progress sends it)."""


def portable(exc: BaseException) -> BaseException:
    """The exception itself when the HTTP process can unpickle it without importing more than
    it has (builtins, this project); else a builtin one with its type and message: a torch
    out-of-memory error reads RuntimeError("OutOfMemoryError: ..."), a ValueError stays one
    (the daemon answers 422 to those)."""
    module = type(exc).__module__
    if module == "builtins" or module.split(".")[0] in ("gpu_daemon", "storyboard_contract"):
        try:
            pickle.loads(pickle.dumps(exc))
            return exc
        except Exception:  # noqa: BLE001 - any pickling trouble: fall back to the text
            pass
    kind = ValueError if isinstance(exc, ValueError) else RuntimeError
    return kind(f"{type(exc).__name__}: {exc}")


PROCESS_NAME = "sb-render"  # what ps, top and /proc/PID/comm show


def _name_process(name: str) -> None:
    if sys.platform == "linux":
        import ctypes

        pr_set_name = 15
        ctypes.CDLL(None).prctl(pr_set_name, name.encode()[:15], 0, 0, 0)


def render_process_main(cfg: Config, max_batch: int, conn: Connection) -> None:
    """The render process's main: load, say ready, then take jobs until the pipe closes."""
    from gpu_daemon.images import make_backend

    # Ctrl-C reaches the whole process group; the HTTP process shuts this one down.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _name_process(PROCESS_NAME)
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        backend = make_backend(cfg)
        ready = LoadedBackend.of(backend)
    except Exception as exc:  # noqa: BLE001 - the HTTP process reports it and exits
        conn.send(("failed", portable(exc)))
        return
    queue = _PipedQueue(backend, max_batch, conn)
    conn.send(("ready", ready))
    held: dict[int, Ticket] = {}

    def answer(ticket: Ticket, future: Future[Rendered]) -> None:
        held.pop(ticket.number, None)
        if future.cancelled():
            return  # cancelled before it started: the HTTP side already knows
        exc = future.exception()
        queue.send("done", ticket.number, None if exc else future.result(),
                   portable(exc) if exc else None)

    try:
        while True:
            kind, payload = conn.recv()
            if kind == "submit":
                tickets = [Ticket(job, Future(), _wants_steps if wants else None, number=number)
                           for number, job, wants in payload]
                for t in tickets:
                    held[t.number] = t
                    t.future.add_done_callback(lambda f, t=t: answer(t, f))
                queue.enqueue(tickets)
            elif kind == "cancel" and (t := held.get(payload)) is not None:
                t.cancel()
            elif kind == "close":
                break
    except (EOFError, OSError):
        pass  # the HTTP process died: stop what runs, then exit
    for t in list(held.values()):
        t.cancel()
    queue.close()
    os._exit(0)
