"""The panels of a board, in shot order: each shot with its frame, or why it has none.

The frames are read from the bucket by their stored keys (never through presigned links, which
may have expired), a few at a time in threads: at most READ_AHEAD images are in memory at
once, however many shots the project has. A shot that failed or was never rendered, or whose
image is gone from the bucket, becomes a panel without a frame that says why; every format
draws it as a marked empty frame.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from storyboard_cli.store.status import RenderStatus

if TYPE_CHECKING:
    from storyboard_contract.config import S3Config

# Downloads in flight, and images read ahead of the writer (the memory bound).
READERS = 8
READ_AHEAD = 16

NOT_RENDERED = "not rendered yet"
RENDER_FAILED = "render failed"
NOT_IN_BUCKET = "image missing from the bucket"

# Reads one object by key: its bytes, or None when the bucket has no such key.
Fetch = Callable[[str], "bytes | None"]
# Called with (frames read, frames to read) after each frame.
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Panel:
    """A shot object and its frame: the PNG read from the bucket (exports), or a link to it
    (the web page), or neither and the reason."""

    shot: dict[str, Any]
    image: bytes | None = None
    url: str | None = None
    missing: str | None = None


def missing_reasons(renders: Iterable[dict[str, Any]]) -> dict[int, str]:
    """Shot id -> why it has no frame, from the render rows of the storyboard's task: a
    failed render says so (with its error); the others are not rendered yet."""
    reasons = {}
    for render in renders:
        if render["status"] == RenderStatus.FAILED:
            error = (render.get("error") or "").splitlines()
            reasons[render["shot_id"]] = f"{RENDER_FAILED}: {error[0]}" if error else RENDER_FAILED
    return reasons


def link_panels(shots: list[dict[str, Any]], reasons: dict[int, str] | None = None,
                url_of: Callable[[dict[str, Any]], str | None] | None = None) -> list[Panel]:
    """The panels of `shots` with their frames as links (the web board): the shots' own
    presigned links, or what `url_of` makes of a shot that has an image. Nothing is read
    from the bucket."""
    reasons = reasons or {}
    url_of = url_of or (lambda shot: shot["image_url"])
    panels = []
    for shot in shots:
        url = url_of(shot) if shot["image_key"] else None
        panels.append(Panel(shot, url=url) if url else
                      Panel(shot, missing=reasons.get(shot["id"], NOT_RENDERED)))
    return panels


def read_panels(
    shots: list[dict[str, Any]], fetch: Fetch, reasons: dict[int, str] | None = None,
    progress: Progress | None = None, readers: int = READERS, read_ahead: int = READ_AHEAD,
) -> Iterator[Panel]:
    """The panels of `shots` in order, their frames fetched by key `readers` at a time and at
    most `read_ahead` ahead of the consumer. Errors of `fetch` are raised where the panel is
    taken; downloads not yet started are dropped when the consumer stops early."""
    reasons = reasons or {}
    total = sum(1 for s in shots if s["image_key"])
    done = 0
    if progress:
        progress(0, total)
    pool = ThreadPoolExecutor(max_workers=max(1, readers), thread_name_prefix="frames")
    upcoming = iter(shots)
    queued: deque[tuple[dict[str, Any], Future[bytes | None] | None]] = deque()

    def queue_next() -> None:
        shot = next(upcoming, None)
        if shot is not None:
            key = shot["image_key"]
            queued.append((shot, pool.submit(fetch, key) if key else None))

    try:
        for _ in range(max(1, read_ahead)):
            queue_next()
        while queued:
            shot, future = queued.popleft()
            if future is None:
                queue_next()
                yield Panel(shot, missing=reasons.get(shot["id"], NOT_RENDERED))
                continue
            image = future.result()
            del future  # the bytes live in the panel only, not in the queue
            queue_next()
            done += 1
            if progress:
                progress(done, total)
            yield Panel(shot, image=image) if image is not None else Panel(
                shot, missing=NOT_IN_BUCKET)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def bucket_fetch(client: Any, cfg: S3Config) -> Fetch:
    """Reads objects of the configured bucket with a boto3 client; a missing key is None, any
    other failure a StoryboardError naming the key and what to do."""
    from botocore.exceptions import BotoCoreError

    from storyboard_contract.s3 import open_object, storage_error

    def fetch(key: str) -> bytes | None:
        answer = open_object(client, cfg, key, f"reading {key}")
        try:
            return None if answer is None else answer["Body"].read()
        except BotoCoreError as exc:
            raise storage_error(cfg, exc, f"reading {key}") from None

    return fetch
