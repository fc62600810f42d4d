"""Uploads rendered shots and shot-list scripts to S3-compatible storage, with presigned links.

The original system's ``TosUploader``: endpoint, region, bucket, addressing style and
credentials come from the [s3] settings (which accept its ACCESS_KEY / SECRET_KEY / ENDPOINT /
TOS_BUCKET variables). Object keys are built from ids only: no user text reaches a key, so
there is nothing to traverse with.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from storyboard_cli.config import S3Config
from storyboard_cli.s3 import client_from_config, presign_get

_TASK_ID = re.compile(r"^[A-Za-z0-9-]{1,64}$")
_PREFIX_PART = re.compile(r"^[A-Za-z0-9._-]+$")


class UploadError(Exception):
    """The bucket refused or could not be reached; status is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Uploaded:
    key: str
    url: str
    expires_at: str


def _id(value: int, what: str) -> str:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{what} must be a non-negative integer, got {value!r}")
    return str(value)


def _task_id(value: str) -> str:
    if not isinstance(value, str) or not _TASK_ID.match(value):
        raise ValueError(f"task id must be 1-64 letters, digits or '-', got {value!r}")
    return value


def _prefix(value: str) -> str:
    parts = [p for p in value.strip("/").split("/") if p]
    for part in parts:
        if part in (".", "..") or not _PREFIX_PART.match(part):
            raise ValueError(f"s3.prefix {value!r}: use letters, digits, '.', '_', '-' and '/'")
    return "/".join(parts)


def shot_key(prefix: str, project_id: int, shot_id: int, task_id: str) -> str:
    """``{prefix}/{project}/shots/{shot}/{task}.png``: one object per render task of a shot."""
    parts = [_prefix(prefix), _id(project_id, "project id"), "shots", _id(shot_id, "shot id"),
             _task_id(task_id) + ".png"]
    return "/".join(p for p in parts if p)


def script_key(prefix: str, project_id: int, task_id: str) -> str:
    """``{prefix}/{project}/scripts/{task}.json``: the planned shot list of a storyboard task."""
    parts = [_prefix(prefix), _id(project_id, "project id"), "scripts", _task_id(task_id) + ".json"]
    return "/".join(p for p in parts if p)


class S3Uploader:
    """Puts objects and answers with their key and a presigned GET link.

    boto3 clients are thread-safe, so one uploader serves the daemon's upload threads.
    """

    def __init__(self, cfg: S3Config, client: Any | None = None) -> None:
        _prefix(cfg.prefix)
        self.cfg = cfg
        self.client = client if client is not None else client_from_config(cfg)

    @property
    def where(self) -> str:
        return f"bucket {self.cfg.bucket!r} at {self.cfg.endpoint or 'AWS S3'}"

    def upload_png(self, project_id: int, shot_id: int, task_id: str, data: bytes) -> Uploaded:
        key = shot_key(self.cfg.prefix, project_id, shot_id, task_id)
        return self._put(key, data, "image/png")

    def upload_script(self, project_id: int, task_id: str, data: bytes) -> Uploaded:
        key = script_key(self.cfg.prefix, project_id, task_id)
        return self._put(key, data, "application/json; charset=utf-8")

    def _put(self, key: str, data: bytes, content_type: str) -> Uploaded:
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
