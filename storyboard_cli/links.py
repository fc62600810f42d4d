"""Fresh presigned links from the object keys in the store: expired links are renewed without
rendering anything again. Presigning is local (a signature over key and expiry), so it needs
the credentials but no round trip to the bucket; boto3 is imported only here, when used."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from storyboard_cli.errors import UsageError
from storyboard_cli.s3 import client_from_config, presign_get

if TYPE_CHECKING:
    from storyboard_cli.config import S3Config
    from storyboard_cli.store import Store

MAX_EXPIRY_S = 604_800  # SigV4 presigned URLs live at most 7 days


def resign_project(
    store: Store, cfg: S3Config, project_id: int, expires: int, client: Any | None = None
) -> list[dict[str, Any]]:
    """Re-sign every shot image of the project's current storyboard; stores and returns the
    shots with their new links (shots without an image are returned unchanged)."""
    if not 1 <= expires <= MAX_EXPIRY_S:
        raise UsageError(f"--expires must be between 1 and {MAX_EXPIRY_S} seconds (7 days)")
    shots = store.project_view(project_id)["shots"]
    if not any(s["image_key"] for s in shots):
        return shots
    client = client if client is not None else client_from_config(cfg)
    for shot in shots:
        if shot["image_key"]:
            shot["image_url"], shot["url_expires_at"] = presign_get(
                client, cfg.bucket, shot["image_key"], expires
            )
            store.set_shot_link(shot["id"], shot["image_url"], shot["url_expires_at"])
    return shots
