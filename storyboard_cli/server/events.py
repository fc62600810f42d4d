"""A task's progress as Server-Sent Events: `GET /api/tasks/{id}/events`.

The stream sends what the CLI's progress bars draw: LocalService.watch's snapshots
(storyboard_cli/tasks/progress.py), one `event: progress` per change, as Snapshot.to_json();
a `: heartbeat` comment when nothing changed for a while (proxies close silent connections);
and last `event: task` with the final task object (`status --json`). A failure while
streaming ends it with `event: error` and {"error": "<one line>"}.

The streams of one task share one poll of the store (TaskPolls), however many are open. Polling
the store blocks, so each poll runs in a worker thread, of a pool of the streams' own: open
streams never take the threads the other routes answer from.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import anyio
from anyio import CapacityLimiter, to_thread

from storyboard_cli.server.errors import status_and_message

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


class TaskPoll:
    """The snapshots of one task, polled from the store by one loop (in the streams' threads)
    for every stream open on it: `version` goes up with each change, `final` is the task
    object once it ended, `failure` what broke the poll."""

    def __init__(self, service: LocalService, task_id: str, limiter: CapacityLimiter) -> None:
        self.task_id = task_id
        self.watchers = 0
        self.version = 0
        self.latest: Snapshot | None = None
        self.final: dict[str, Any] | None = None
        self.failure: Exception | None = None
        self.changed = anyio.Event()
        self.runner: asyncio.Task[None] | None = None
        self._service, self._limiter = service, limiter

    async def run(self) -> None:
        """Poll until the task ends or nobody watches; the service is closed after its last
        use (a store connection is used by one thread at a time)."""
        snapshots = self._service.watch(self.task_id)
        try:
            while self.watchers and (snap := await to_thread.run_sync(
                    next, snapshots, None, limiter=self._limiter)) is not None:
                if snap != self.latest:
                    self.latest = snap
                    self._bump()
            if self.watchers:
                self.final = await to_thread.run_sync(self._service.task, self.task_id,
                                                      limiter=self._limiter)
        except Exception as exc:  # noqa: BLE001 - every stream reports it in-band
            self.failure = exc
        finally:
            self._bump()
            self._service.close()

    def _bump(self) -> None:
        self.version += 1
        self.changed.set()
        self.changed = anyio.Event()

    @property
    def over(self) -> bool:
        return self.final is not None or self.failure is not None


class TaskPolls:
    """One TaskPoll per task with open streams: a hundred boards watching one task cost one
    poll of the store, not a hundred. A poll starts with its first stream and stops with its
    last."""

    def __init__(self, new_service: Callable[[], LocalService], limiter: CapacityLimiter
                 ) -> None:
        self.new_service, self.limiter = new_service, limiter
        self.polls: dict[str, TaskPoll] = {}

    @contextlib.asynccontextmanager
    async def watch(self, task_id: str) -> AsyncIterator[TaskPoll]:
        poll = self.polls.get(task_id)
        if poll is None or poll.over:
            poll = self.polls[task_id] = TaskPoll(self.new_service(), task_id, self.limiter)
            poll.watchers += 1
            poll.runner = asyncio.get_running_loop().create_task(poll.run())
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
