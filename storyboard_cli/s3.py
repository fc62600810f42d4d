"""S3-compatible storage client settings shared by the daemon's uploader and link re-signing.

boto3 is imported inside the functions: the CLI must not pay for it at start-up.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from storyboard_cli.errors import ConfigError, ServiceUnavailable, StoryboardError

if TYPE_CHECKING:
    from storyboard_cli.config import S3Config


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


def client_from_config(cfg: S3Config) -> Any:
    if not cfg.access_key or not cfg.secret_key:
        raise ConfigError(
            "S3 credentials missing: set ACCESS_KEY and SECRET_KEY "
            "(or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY) in the environment or .env"
        )
    return make_client(
        cfg.endpoint, cfg.access_key, cfg.secret_key, cfg.region, cfg.addressing_style
    )


def presign_get(client: Any, bucket: str, key: str, expires: int) -> tuple[str, str]:
    """A presigned GET URL for key and the moment it expires (ISO 8601, UTC)."""
    url = client.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=expires
    )
    expires_at = datetime.now(timezone.utc) + timedelta(seconds=expires)
    return url, expires_at.isoformat(timespec="seconds")


# Error codes meaning the settings are wrong rather than the bucket away.
_SETTINGS_CODES = {"NoSuchBucket": "create the bucket or set [s3] bucket / TOS_BUCKET",
                   "AccessDenied": "check ACCESS_KEY / SECRET_KEY",
                   "InvalidAccessKeyId": "check ACCESS_KEY / SECRET_KEY",
                   "SignatureDoesNotMatch": "check ACCESS_KEY / SECRET_KEY",
                   "403": "check ACCESS_KEY / SECRET_KEY"}


def error_code(exc: Exception) -> str:
    """The S3 error code of a botocore ClientError ("NoSuchKey", "404", ...), or of an error
    that wraps one in its message (boto3's S3UploadFailedError); else ""."""
    import re

    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return response.get("Error", {}).get("Code", "")
    found = re.search(r"An error occurred \((\w+)\)", str(exc))
    return found.group(1) if found else ""


def storage_error(exc: Exception, doing: str) -> StoryboardError:
    """A failed bucket call as one line for the user: wrong settings are bad input (exit 2),
    anything else means the bucket cannot be reached (exit 3)."""
    code = error_code(exc)
    if code in _SETTINGS_CODES:
        return ConfigError(f"{doing}: the bucket says {code}; {_SETTINGS_CODES[code]}")
    reason = (str(exc) or type(exc).__name__).splitlines()[0][:200]
    return ServiceUnavailable(f"{doing}: cannot reach the bucket: {reason}")
