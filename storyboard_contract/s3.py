"""S3-compatible storage client settings shared by the daemon's uploader and link re-signing.

boto3 is imported inside the functions: the CLI must not pay for it at start-up.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from storyboard_contract import keys
from storyboard_contract.errors import ConfigError, ServiceUnavailable, StoryboardError

if TYPE_CHECKING:
    from storyboard_contract.config import S3Config


def make_client(
    endpoint: str,
    access_key: str,
    secret_key: str,
    region: str,
    addressing_style: str,
    connect_timeout: float = 5.0,
    read_timeout: float = 60.0,
    max_attempts: int = 3,
) -> Any:
    """A boto3 S3 client; path or virtual-hosted addressing (TOS needs virtual)."""
    import boto3
    from botocore.config import Config as BotoConfig

    return boto3.client(
        "s3",
        endpoint_url=endpoint or None,
        aws_access_key_id=access_key or None,
        aws_secret_access_key=secret_key or None,
        region_name=region,
        config=BotoConfig(
            signature_version="s3v4",
            s3={"addressing_style": addressing_style},
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            retries={"max_attempts": max_attempts, "mode": "standard"},
        ),
    )


def client_from_config(cfg: S3Config, endpoint: str | None = None) -> Any:
    """A client of the configured bucket, at its endpoint or at another name of it (links
    signed for [s3] public_endpoint name the host viewers reach)."""
    if not cfg.access_key or not cfg.secret_key:
        raise ConfigError(
            "S3 credentials missing: set ACCESS_KEY and SECRET_KEY "
            "(or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY) in the environment or .env"
        )
    return make_client(
        cfg.endpoint if endpoint is None else endpoint, cfg.access_key, cfg.secret_key,
        cfg.region, cfg.addressing_style, connect_timeout=cfg.connect_timeout,
        read_timeout=cfg.read_timeout, max_attempts=cfg.max_attempts,
    )


def presign_get(client: Any, bucket: str, key: str, expires: int) -> tuple[str, str]:
    """A presigned GET URL for key and the moment it expires (ISO 8601, UTC)."""
    url = client.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=expires
    )
    expires_at = datetime.now(timezone.utc) + timedelta(seconds=expires)
    return url, expires_at.isoformat(timespec="seconds")


class BucketProblem(Exception):
    """The bucket round trip failed: the message says what happened, hint what to do."""

    def __init__(self, detail: str, hint: str) -> None:
        super().__init__(detail)
        self.hint = hint


def where(cfg: S3Config) -> str:
    from storyboard_contract.config import redact_url

    return f"{redact_url(cfg.endpoint) or 'AWS S3'} bucket {cfg.bucket}"


def probe_bucket(cfg: S3Config, fetch: bool = True, timeout: float = 3.0) -> str:
    """Write a small object, read it back, fetch it by a presigned link (with fetch), delete it.

    What `storyboard doctor` checks on the host and the daemon on the GPU box: both sides use
    the bucket, each with its own settings. Returns a one-line detail; raises BucketProblem.
    """
    if not (cfg.access_key and cfg.secret_key):
        raise BucketProblem("no S3 credentials",
                            "set ACCESS_KEY and SECRET_KEY in .env (`storyboard up` generates "
                            "them for the local SeaweedFS)")
    client = make_client(cfg.endpoint, cfg.access_key, cfg.secret_key, cfg.region,
                         cfg.addressing_style, connect_timeout=timeout, read_timeout=timeout,
                         max_attempts=1)
    import secrets  # here: `storyboard show` imports this module (links.py) for no probe

    key = keys.probe_key(cfg.prefix, f"{secrets.token_hex(8)}.txt")
    body = f"storyboard bucket check {time.time()}".encode()
    try:
        # First, as some servers (SeaweedFS) create a missing bucket on the first put.
        client.head_bucket(Bucket=cfg.bucket)
    except Exception as exc:  # noqa: BLE001 - a 403 here may be a key without ListBucket
        if error_code(exc) in MISSING:
            raise BucketProblem(*explain_failure(cfg, exc)) from None
    try:
        client.put_object(Bucket=cfg.bucket, Key=key, Body=body, ContentType="text/plain")
        try:
            got = client.get_object(Bucket=cfg.bucket, Key=key)["Body"].read()
            if got != body:
                raise BucketProblem(f"{where(cfg)}: read back different bytes",
                                    "check the S3 endpoint")
            if fetch:
                import httpx

                url, _ = presign_get(client, cfg.bucket, key, 60)
                fetched = httpx.get(url, timeout=timeout)
                if fetched.status_code != 200 or fetched.content != body:
                    raise BucketProblem(
                        f"{where(cfg)}: presigned GET answered {fetched.status_code}",
                        "presigned links fail: check [s3] addressing_style (TOS and AWS need "
                        "virtual) and region")
        finally:
            client.delete_object(Bucket=cfg.bucket, Key=key)
    except BucketProblem:
        raise
    except Exception as exc:  # noqa: BLE001 - botocore/httpx errors, sorted below
        raise BucketProblem(*explain_failure(cfg, exc)) from None
    checks = "write, read back, presigned fetch" if fetch else "write, read back"
    return f"{where(cfg)}: {checks} ok"


MISSING = ("NoSuchBucket", "404", "NotFound")  # what S3 servers answer for a missing bucket
REFUSED = ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "403")


def error_code(exc: Exception) -> str:
    """The S3 error code of a botocore ClientError ("NoSuchKey", "404", ...), or of an error
    that carries one in its message (boto3's S3UploadFailedError); else ""."""
    import re

    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return response.get("Error", {}).get("Code", "")
    found = re.search(r"An error occurred \((\w+)\)", str(exc))
    return found.group(1) if found else ""


def explain_failure(cfg: S3Config, exc: Exception) -> tuple[str, str]:
    code = error_code(exc)
    if code in MISSING:
        return (f"{where(cfg)}: the bucket does not exist",
                "create it: `storyboard bucket create` (or in your provider's console), or "
                "set [s3] bucket / TOS_BUCKET to an existing one")
    text = str(exc) or type(exc).__name__
    reason = "connection refused" if "refused" in text.lower() else text.splitlines()[0][:200]
    if code in REFUSED:
        return (f"{where(cfg)}: {reason}",
                "check ACCESS_KEY / SECRET_KEY (and that they may write to the bucket)")
    return (f"{where(cfg)}: {reason}",
            "the S3 endpoint does not answer: start it (`storyboard up` runs SeaweedFS) or "
            "check ENDPOINT / [s3] endpoint")


NO_SUCH_KEY = ("NoSuchKey", "404", "NotFound")


def open_object(client: Any, cfg: S3Config, key: str, doing: str) -> dict[str, Any] | None:
    """get_object of `key` in the configured bucket: the answer, whose Body streams the
    object; None when the bucket has no such key; any other failure a StoryboardError saying
    what `doing` met."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return client.get_object(Bucket=cfg.bucket, Key=key)
    except ClientError as exc:
        if error_code(exc) in NO_SUCH_KEY:
            return None
        raise storage_error(cfg, exc, doing) from None
    except BotoCoreError as exc:
        raise storage_error(cfg, exc, doing) from None


def storage_error(cfg: S3Config, exc: Exception, doing: str) -> StoryboardError:
    """A failed bucket call of a command as one error saying what to do: a missing bucket or
    refused credentials are bad settings (exit 2), anything else an unreachable bucket
    (exit 3)."""
    detail, hint = explain_failure(cfg, exc)
    kind = ConfigError if error_code(exc) in (*MISSING, *REFUSED) else ServiceUnavailable
    return kind(f"{doing}: {detail}; {hint}")


def create_bucket(cfg: S3Config) -> bool:
    """Create the configured bucket; False when it exists already (and is ours)."""
    from botocore.exceptions import ClientError

    client = client_from_config(cfg)
    try:
        client.head_bucket(Bucket=cfg.bucket)
        return False
    except ClientError as exc:
        if error_code(exc) not in MISSING:
            raise
    params: dict[str, Any] = {"Bucket": cfg.bucket}
    if cfg.region and cfg.region != "us-east-1" and not cfg.endpoint:
        # AWS wants the region spelled out everywhere but us-east-1.
        params["CreateBucketConfiguration"] = {"LocationConstraint": cfg.region}
    client.create_bucket(**params)
    return True


def delete_project_objects(cfg: S3Config, prefixes: list[str], task_ids: set[str],
                           since: datetime) -> int:
    """Delete the objects under these prefixes that are the project's (keys.made_by_project),
    recorded in the store or not; objects another store put under the same prefix stay.
    Returns how many were deleted. BucketProblem if the bucket cannot be reached or refuses."""
    client = client_from_config(cfg)
    deleted = 0
    try:
        for prefix in prefixes:
            pages = client.get_paginator("list_objects_v2").paginate(Bucket=cfg.bucket,
                                                                      Prefix=prefix)
            for page in pages:  # at most 1000 keys a page, as DeleteObjects takes
                batch = [{"Key": item["Key"]} for item in page.get("Contents", [])
                         if keys.made_by_project(item["Key"], task_ids, since,
                                                 item.get("LastModified"))]
                if not batch:
                    continue
                answer = client.delete_objects(Bucket=cfg.bucket,
                                               Delete={"Objects": batch, "Quiet": True})
                refused = answer.get("Errors") or []
                if refused:
                    first = refused[0]
                    raise BucketProblem(
                        f"{where(cfg)}: {len(refused)} object(s) not deleted, e.g. "
                        f"{first.get('Key')}: {first.get('Code')}",
                        "check that the S3 keys may delete objects in the bucket")
                deleted += len(batch)
    except BucketProblem:
        raise
    except Exception as exc:  # noqa: BLE001 - botocore errors, sorted by explain_failure
        raise BucketProblem(*explain_failure(cfg, exc)) from None
    return deleted
