"""A task's progress as Server-Sent Events: `GET /api/tasks/{id}/events`.

The stream sends what the CLI's progress bars draw: LocalService.watch's snapshots
(storyboard_cli/tasks/progress.py), one `event: progress` per change, as Snapshot.to_json();
a `: heartbeat` comment when nothing changed for a while (proxies close silent connections);
and last `event: task` with the final task object (`status --json`). A failure while
streaming ends it with `event: error` and {"error": "<one line>"}.

Polling the store blocks, so each poll runs in a worker thread, of a pool of the streams' own:
open streams never take the threads the other routes answer from.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from anyio import CapacityLimiter, to_thread

from storyboard_cli.server.errors import status_and_message

if TYPE_CHECKING:
    from storyboard_cli.service import LocalService

HEARTBEAT_S = 15.0
STREAM_THREADS = 16
MEDIA_TYPE = "text/event-stream"
# No caching, and no buffering by nginx (X-Accel-Buffering): each event leaves at once.
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
HEARTBEAT = ": heartbeat\n\n"


def sse(event: str, data: Any) -> str:
    """One event; json.dumps writes no raw newline, so the data is a single `data:` line."""
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


async def task_events(service: LocalService, task_id: str, limiter: CapacityLimiter,
                      heartbeat_s: float = HEARTBEAT_S) -> AsyncIterator[str]:
    """The events of task `task_id` until it ends; closes `service` (the stream's own: a
    store connection is used by one thread at a time) when done or when the client leaves."""
    snapshots = service.watch(task_id)
    last = None
    quiet_since = time.monotonic()
    try:
        while (snap := await to_thread.run_sync(next, snapshots, None,
                                                limiter=limiter)) is not None:
            now = time.monotonic()
            if snap != last:
                yield sse("progress", snap.to_json())
                last, quiet_since = snap, now
            elif now - quiet_since >= heartbeat_s:
                yield HEARTBEAT
                quiet_since = now
        yield sse("task", await to_thread.run_sync(service.task, task_id, limiter=limiter))
    except Exception as exc:  # noqa: BLE001 - the answer has started: report in-band
        yield sse("error", {"error": status_and_message(exc)[1]})
    finally:
        service.close()
