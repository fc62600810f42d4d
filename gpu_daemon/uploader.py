"""Uploads rendered shots and shot-list scripts to S3-compatible storage, with presigned links.

The original system's ``TosUploader``: endpoint, region, bucket, addressing style and
credentials come from the [s3] settings (which accept its ACCESS_KEY / SECRET_KEY / ENDPOINT /
TOS_BUCKET variables). Object keys follow storyboard_contract/keys.py: ids only.
"""

from __future__ import annotations

import io
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from storyboard_contract.config import S3Config, redact_url
from storyboard_contract.keys import check_prefix, script_key, shot_key
from storyboard_contract.s3 import BucketProblem, client_from_config, presign_get, probe_bucket

if TYPE_CHECKING:
    from PIL import Image

    from storyboard_contract.wire import BucketCheck

log = logging.getLogger("gpu_daemon.upload")



class UploadError(Exception):
    """The bucket refused or could not be reached; status is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status

    def __reduce__(self) -> tuple[type[UploadError], tuple[int, str]]:
        # It crosses from the upload processes; the default would drop the status.
        return type(self), (self.status, str(self))


@dataclass(frozen=True)
class Uploaded:
    key: str
    url: str
    expires_at: str


class S3Uploader:
    """Puts objects and answers with their key and a presigned GET link.

    boto3 clients are thread-safe: the daemon's one in-process uploader serves its script
    uploads from any thread; each upload process has its own.
    """

    def __init__(self, cfg: S3Config, client: Any | None = None) -> None:
        check_prefix(cfg.prefix)
        self.cfg = cfg
        self.client = client if client is not None else client_from_config(cfg)

    @property
    def where(self) -> str:
        return f"bucket {self.cfg.bucket!r} at {redact_url(self.cfg.endpoint) or 'AWS S3'}"

    def upload_png(self, project_id: int, shot_id: int, task_id: str, data: bytes) -> Uploaded:
        key = shot_key(self.cfg.prefix, project_id, shot_id, task_id)
        return self.put(key, data, "image/png")

    def upload_script(self, project_id: int, task_id: str, data: bytes) -> Uploaded:
        key = script_key(self.cfg.prefix, project_id, task_id)
        return self.put(key, data, "application/json; charset=utf-8")

    def put(self, key: str, data: bytes, content_type: str) -> Uploaded:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.put_object(
                Bucket=self.cfg.bucket, Key=key, Body=data, ContentType=content_type
            )
            url, expires_at = presign_get(self.client, self.cfg.bucket, key, self.cfg.link_expiry)
        except ClientError as exc:
            err = exc.response.get("Error", {})
            code = err.get("Code", "error")
            # The message may quote the access key id, never the secret; keep it short anyway.
            raise UploadError(
                502, f"upload to {self.where} refused: {code} {err.get('Message', '')}".rstrip()
            ) from None
        except BotoCoreError as exc:
            raise UploadError(503, f"cannot reach {self.where}: {exc}") from None
        return Uploaded(key, url, expires_at)


def check_bucket(cfg: S3Config) -> BucketCheck:
    """The bucket round trip (write, read back, presigned fetch, delete) with the daemon's own
    S3 settings."""
    from storyboard_contract.wire import BucketCheck

    try:
        detail, hint, ok = probe_bucket(cfg), "", True
    except BucketProblem as exc:
        detail, hint, ok = str(exc), exc.hint, False
    return BucketCheck(ok=ok, endpoint=cfg.endpoint, bucket=cfg.bucket, detail=detail, hint=hint)


class PngUploads:
    """PNG encoding and upload in worker processes, each with its own S3 client.

    Processes, not threads: encoding and boto3 are Python work, and in threads they hold the
    GIL that the render thread needs between its many short torch calls. Measured with the
    tiny pipeline and two requests in flight, each ~55 ms render waited ~7 ms for the GIL.
    """

    def __init__(self, cfg: S3Config, workers: int = 2) -> None:
        self.cfg = cfg
        self.workers = workers
        self._pool = self._start()

    def _start(self) -> ProcessPoolExecutor:
        # spawn: forking a process that runs torch and uvicorn threads is not safe.
        pool = ProcessPoolExecutor(
            self.workers, mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker, initargs=(self.cfg,),
        )
        # Start them all now, so that no request pays for a process start and boto3's import.
        for ready in [pool.submit(_ready) for _ in range(self.workers)]:
            ready.result()
        return pool

    def submit(self, project_id: int, shot_id: int, task_id: str,
               image: Image.Image) -> Future[Uploaded]:
        args = (project_id, shot_id, task_id, image)
        try:
            return self._pool.submit(_encode_and_upload, *args)
        except BrokenProcessPool:
            # A worker died (killed, out of memory); its uploads failed, later ones need not.
            log.warning("an upload process died; starting new ones")
            self._pool = self._start()
            return self._pool.submit(_encode_and_upload, *args)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


_worker_uploader: S3Uploader | None = None


def _init_worker(cfg: S3Config) -> None:
    global _worker_uploader
    # Ctrl-C reaches the whole process group; the daemon shuts its workers down itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_with_parent, daemon=True).start()
    _worker_uploader = S3Uploader(cfg)


def _exit_with_parent() -> None:
    """A killed daemon leaves no upload process behind (they would wait for work forever)."""
    parent = multiprocessing.parent_process()
    if parent is not None:
        parent.join()
        os._exit(0)


def _ready() -> bool:
    return _worker_uploader is not None


def _encode_and_upload(project_id: int, shot_id: int, task_id: str,
                       image: Image.Image) -> Uploaded:
    assert _worker_uploader is not None
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return _worker_uploader.upload_png(project_id, shot_id, task_id, buf.getvalue())


class KeptImages:
    """Rendered images whose upload failed, kept so that the retry only uploads (issue 14:
    a 20 s bucket outage made 100 shots cost 268 renders, and on a GPU the render is the
    expensive part).

    Keyed by everything the image depends on (task, shot, prompt, seed, size, model, ...), so
    a retry that asks for anything else renders anew. Bounded by the images' pixel bytes and
    by age ([daemon] keep_images_mib / keep_images_s): the oldest go first. Used from the
    event loop only.
    """

    def __init__(self, max_bytes: int, max_age_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_bytes, self.max_age_s, self.clock = max_bytes, max_age_s, clock
        self._items: OrderedDict[Hashable, tuple[float, int, Any]] = OrderedDict()
        self.bytes = 0
        self.reused = 0

    def __len__(self) -> int:
        self._expire()
        return len(self._items)

    def put(self, key: Hashable, value: Any, image: Image.Image) -> None:
        size = image.width * image.height * len(image.getbands())
        self._drop(key)
        if size > self.max_bytes or self.max_age_s <= 0:
            return
        self._items[key] = (self.clock(), size, value)
        self.bytes += size
        while self.bytes > self.max_bytes:
            self._drop(next(iter(self._items)))

    def take(self, key: Hashable) -> Any | None:
        """The kept value for key, removed (a retry whose upload fails again puts it back)."""
        self._expire()
        item = self._drop(key)
        if item is None:
            return None
        self.reused += 1
        return item[2]

    def _drop(self, key: Hashable) -> tuple[float, int, Any] | None:
        item = self._items.pop(key, None)
        if item is not None:
            self.bytes -= item[1]
        return item

    def _expire(self) -> None:
        oldest_allowed = self.clock() - self.max_age_s
        while self._items and next(iter(self._items.values()))[0] < oldest_allowed:
            self._drop(next(iter(self._items)))
