"""A task's progress as Server-Sent Events: `GET /api/tasks/{id}/events`.

The stream sends what the CLI's progress bars draw: LocalService.watch's snapshots
(storyboard_cli/tasks/progress.py), one `event: progress` per change, as Snapshot.to_json();
a `: heartbeat` comment when nothing changed for a while (proxies close silent connections);
and last `event: task` with the final task object (`status --json`). A failure while
streaming ends it with `event: error` and {"error": "<one line>"}.

The streams of one task share one poll of the store (TaskPolls), however many are open: a
hundred boards watching one task cost one poll, not a hundred. Every poll reads through one
store connection of the streams' own (StreamReader), a poll at a time in a worker thread of
a pool of their own (open streams never take the threads the other routes answer from), and
waits between polls without a thread. A stream holds nothing but its place in the event
loop and its count on its task's poll: a client that leaves (Starlette cancels the stream
when the server hears the disconnect) releases nothing else, and a thousand open streams
cost one connection. (A connection per stream, closed when its client left, kept its file
descriptor open for as long as any other connection of the process held a lock on the file:
SQLite's rule for POSIX locks.)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import anyio
from anyio import CapacityLimiter, sleep, to_thread

from storyboard_cli.server.errors import status_and_message
from storyboard_cli.tasks.progress import POLL_S

if TYPE_CHECKING:
    from storyboard_cli.service import LocalService
    from storyboard_cli.tasks.progress import Snapshot

HEARTBEAT_S = 15.0
STREAM_THREADS = 16
MEDIA_TYPE = "text/event-stream"
# No caching, and no buffering by nginx (X-Accel-Buffering): each event leaves at once.
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
HEARTBEAT = ": heartbeat\n\n"


def sse(event: str, data: Any) -> str:
    """One event; json.dumps writes no raw newline, so the data is a single `data:` line."""
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


class StreamReader:
    """The event streams' one service (one store connection), made on first use (and again
    for a store removed or replaced on disk), used by one thread at a time, closed when the
    app stops."""

    def __init__(self, make: Callable[[], LocalService], limiter: CapacityLimiter) -> None:
        self.make = make
        self.limiter = limiter
        self.lock = threading.Lock()
        self.service: LocalService | None = None

    def _locked(self, method: str, *args: Any) -> Any:
        with self.lock:
            # Made again when the store was removed or replaced on disk, as a route's is.
            if self.service is None or self.service.store_replaced():
                if self.service is not None:
                    self.service.close()
                self.service = self.make()
            return getattr(self.service, method)(*args)

    async def call(self, method: str, *args: Any) -> Any:
        """service.method(*args) in a thread of the streams' pool."""
        return await to_thread.run_sync(self._locked, method, *args, limiter=self.limiter)

    def close(self) -> None:
        with self.lock:
            if self.service is not None:
                self.service.close()
                self.service = None


class TaskPoll:
    """The snapshots of one task, polled from the store by one loop for every stream open on
    it: `version` goes up with each change, `final` is the task object once it ended,
    `failure` what broke the poll."""

    def __init__(self, reader: StreamReader, task_id: str) -> None:
        self.task_id = task_id
        self.watchers = 0
        self.version = 0
        self.latest: Snapshot | None = None
        self.final: dict[str, Any] | None = None
        self.failure: Exception | None = None
        self.changed = anyio.Event()
        self.runner: asyncio.Task[None] | None = None
        self._reader = reader

    async def run(self, poll_s: float) -> None:
        """Poll until the task ends or nobody watches."""
        try:
            while self.watchers:
                snap: Snapshot = await self._reader.call("snapshot", self.task_id)
                if snap != self.latest:
                    self.latest = snap
                    self._bump()
                if snap.finished:
                    break
                await sleep(poll_s)
            if self.watchers:
                self.final = await self._reader.call("task", self.task_id)
        except Exception as exc:  # noqa: BLE001 - every stream reports it in-band
            self.failure = exc
        finally:
            self._bump()

    def _bump(self) -> None:
        self.version += 1
        self.changed.set()
        self.changed = anyio.Event()

    @property
    def over(self) -> bool:
        return self.final is not None or self.failure is not None


class TaskPolls:
    """One TaskPoll per task with open streams. A poll starts with its first stream and stops
    with its last."""

    def __init__(self, reader: StreamReader, poll_s: float = POLL_S) -> None:
        self.reader, self.poll_s = reader, poll_s
        self.polls: dict[str, TaskPoll] = {}

    @contextlib.asynccontextmanager
    async def watch(self, task_id: str) -> AsyncIterator[TaskPoll]:
        poll = self.polls.get(task_id)
        if poll is None or poll.over:
            poll = self.polls[task_id] = TaskPoll(self.reader, task_id)
            poll.watchers += 1
            poll.runner = asyncio.get_running_loop().create_task(poll.run(self.poll_s))
        else:
            poll.watchers += 1
        try:
            yield poll
        finally:
            poll.watchers -= 1
            if not poll.watchers and self.polls.get(task_id) is poll:
                del self.polls[task_id]


async def task_events(polls: TaskPolls, task_id: str, heartbeat_s: float = HEARTBEAT_S
                      ) -> AsyncIterator[str]:
    """The events of task `task_id` until it ends, from its shared poll: the snapshot as it
    is when the stream opens, then each change."""
    async with polls.watch(task_id) as poll:
        seen, sent = 0, None
        while True:
            if poll.version == seen:
                with anyio.move_on_after(heartbeat_s) as quiet:
                    await poll.changed.wait()
                if quiet.cancelled_caught:
                    yield HEARTBEAT
                continue
            seen = poll.version
            if poll.latest is not None and poll.latest != sent:
                sent = poll.latest
                yield sse("progress", sent.to_json())
            if poll.failure is not None:
                yield sse("error", {"error": status_and_message(poll.failure)[1]})
                return
            if poll.final is not None:
                yield sse("task", poll.final)
                return
