"""Fresh presigned links from the object keys in the store: expired links are renewed without
rendering anything again. Presigning is local (a signature over key and expiry), so it needs
the credentials but no round trip to the bucket; boto3 is imported only here, when used."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from storyboard_contract.s3 import client_from_config, presign_get

if TYPE_CHECKING:
    from storyboard_cli.store import Store
    from storyboard_contract.config import S3Config

# A link with less left than this is renewed before it is shown.
MIN_LEFT_S = 300


def resign_project(
    store: Store, cfg: S3Config, view: dict[str, Any], expires: int, client: Any | None = None
) -> dict[str, Any]:
    """Re-sign every shot image and the shot-list script of the storyboard a project object
    shows; stores the new links and returns the project object with them. `expires`: checked
    already (inputs.check_expires)."""
    shots = view["shots"]
    if not view["script_key"] and not any(s["image_key"] for s in shots):
        return view
    client = client if client is not None else client_from_config(cfg)
    for shot in shots:
        if shot["image_key"]:
            shot["image_url"], shot["url_expires_at"] = presign_get(
                client, cfg.bucket, shot["image_key"], expires
            )
            store.set_shot_link(shot["id"], shot["image_url"], shot["url_expires_at"])
    if view["script_key"]:
        resign_script(store, cfg, view, expires, client)
    return view


def renew_expiring(store: Store, cfg: S3Config, view: dict[str, Any], expires: int) -> None:
    """New links, in `view` and the store, for whatever of a project object's storyboard has
    a link about to expire (or none yet): shot images and the shot-list script."""
    shots = [s for s in view["shots"] if s["image_key"]]
    # Links signed together share their expiry: one check a stamp, not one a shot.
    soon = {stamp: expiring(stamp) for stamp in {s["url_expires_at"] for s in shots}}
    stale = [s for s in shots if soon[s["url_expires_at"]]]
    script = bool(view["script_key"]) and expiring(view["script_url_expires_at"])
    if not stale and not script:
        return
    client = client_from_config(cfg)
    for shot in stale:
        shot["image_url"], shot["url_expires_at"] = presign_get(
            client, cfg.bucket, shot["image_key"], expires)
        store.set_shot_link(shot["id"], shot["image_url"], shot["url_expires_at"])
    if script:
        resign_script(store, cfg, view, expires, client)


def resign_script(
    store: Store, cfg: S3Config, view: dict[str, Any], expires: int, client: Any | None = None
) -> None:
    """A new link to the project object's shot-list script, stored and set in `view`."""
    client = client if client is not None else client_from_config(cfg)
    view["script_url"], view["script_url_expires_at"] = presign_get(
        client, cfg.bucket, view["script_key"], expires
    )
    store.set_script_link(view["shots_task"]["id"], view["script_url"],
                          view["script_url_expires_at"])


def viewer_links(cfg: S3Config) -> Callable[[dict[str, Any]], str]:
    """Links to shots' images for viewers who reach the bucket at [s3] public_endpoint (the
    host is part of a link's signature, so they are signed for that name), valid for
    [s3] link_expiry."""
    client = client_from_config(cfg, endpoint=cfg.public_endpoint)
    return lambda shot: presign_get(client, cfg.bucket, shot["image_key"], cfg.link_expiry)[0]


def expiring(expires_at: str | None, within_s: float = MIN_LEFT_S) -> bool:
    """Whether a link that expires at `expires_at` (ISO 8601) has less than `within_s` left."""
    if not expires_at:
        return True
    deadline = datetime.fromisoformat(expires_at)
    if deadline.tzinfo is None:  # a bare date or time: UTC, as every stamp here is
        deadline = deadline.replace(tzinfo=timezone.utc)
    return deadline <= datetime.now(timezone.utc) + timedelta(seconds=within_s)
