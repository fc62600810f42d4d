"""A task's progress as Server-Sent Events: `GET /api/tasks/{id}/events`.

The stream sends what the CLI's progress bars draw: LocalService.watch's snapshots
(storyboard_cli/tasks/progress.py), one `event: progress` per change, as Snapshot.to_json();
a `: heartbeat` comment when nothing changed for a while (proxies close silent connections);
and last `event: task` with the final task object (`status --json`). A failure while
streaming ends it with `event: error` and {"error": "<one line>"}.

Every stream reads through one store connection of the streams' own (StreamReader), a poll
at a time in a worker thread of a pool of their own (open streams never take the threads the
other routes answer from), and waits between polls without a thread. A stream holds nothing
but its place in the event loop: a client that leaves (Starlette cancels the stream when the
server hears the disconnect) releases nothing because it holds nothing, and a thousand open
streams cost one connection. (A connection per stream, closed when its client left, kept
its file descriptor open for as long as any other connection of the process held a lock on
the file: SQLite's rule for POSIX locks.)
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

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
    """The event streams' one service (one store connection), made on first use, used by one
    thread at a time, closed when the app stops."""

    def __init__(self, make: Callable[[], LocalService], limiter: CapacityLimiter) -> None:
        self.make = make
        self.limiter = limiter
        self.lock = threading.Lock()
        self.service: LocalService | None = None

    def _locked(self, method: str, *args: Any) -> Any:
        with self.lock:
            if self.service is None:
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


async def task_events(reader: StreamReader, task_id: str, heartbeat_s: float = HEARTBEAT_S,
                      poll_s: float = POLL_S) -> AsyncIterator[str]:
    """The events of task `task_id` (a whole id) until it ends."""
    last: Snapshot | None = None
    quiet_since = time.monotonic()
    try:
        while True:
            snap: Snapshot = await reader.call("snapshot", task_id)
            now = time.monotonic()
            if snap != last:
                yield sse("progress", snap.to_json())
                last, quiet_since = snap, now
            elif now - quiet_since >= heartbeat_s:
                yield HEARTBEAT
                quiet_since = now
            if snap.finished:
                break
            await sleep(poll_s)
        yield sse("task", await reader.call("task", task_id))
    except Exception as exc:  # noqa: BLE001 - the answer has started: report in-band
        yield sse("error", {"error": status_and_message(exc)[1]})
