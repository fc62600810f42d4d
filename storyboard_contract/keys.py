"""Where a project's objects live in the bucket: the key layout both sides build and read.

  {prefix}/{project}/shots/{shot}/{task}.png       one image per render task of a shot
  {prefix}/{project}/scripts/{task}.json           the shot list a storyboard task planned
  {prefix}/{project}/exports/{stamp}-{rand}/{name} an `export --upload`
  {prefix}/{project}/cast/{who}/{token}.png        a character's reference image or portrait
  {prefix}/{project}/identity/{who}/{model}-{looks}.pt
                                                   a character's kept identity features
                                                   (consistency = "attention")
  {prefix}/_doctor/{random}.txt                    `storyboard doctor`'s probe, deleted at once

The daemon writes images, scripts and identity features; the host writes exports, uploaded
references and portraits (a render the daemon made, copied under cast/) and reads them back
(`storyboard rm` deletes what a project made, and only that). Keys are built from ids, an
upload time and a file name the host made, never from story or user text (a character is
named by a digest of its name), so there is nothing to traverse with; a repeated upload of
the same render overwrites its own object.
"""

from __future__ import annotations

import re
from datetime import datetime

TASK_ID = re.compile(r"^[A-Za-z0-9-]{1,64}$")
_PREFIX_PART = re.compile(r"^[A-Za-z0-9._-]+$")
# A reference image or portrait, cast/{character slug}/{token}.{png|jpg} (cast_key), or a
# character's kept identity features, identity/{character slug}/{model hash}-{description
# digest}.pt (identity_key; without the digest before it was added): named by neither a task
# nor an upload time.
_CHARACTER_OBJECT = re.compile(r"(?:^|/)\d+/(?:cast/[0-9a-f]{16}/[0-9a-f]{16}\.(?:png|jpg)"
                               r"|identity/[0-9a-f]{16}/[0-9a-f]{1,64}(?:-[0-9a-f]{16})?\.pt)$")
# An export folder's name starts with its upload time in this form (UTC).
STAMP_FORMAT = "%Y%m%dT%H%M%SZ"


def _id(value: int, what: str) -> str:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{what} must be a non-negative integer, got {value!r}")
    return str(value)


def _task_id(value: str) -> str:
    if not isinstance(value, str) or not TASK_ID.match(value):
        raise ValueError(f"task id must be 1-64 letters, digits or '-', got {value!r}")
    return value


def check_prefix(value: str) -> str:
    """The [s3] prefix without its outer slashes; ValueError for one that could escape."""
    parts = [p for p in value.strip("/").split("/") if p]
    for part in parts:
        if part in (".", "..") or not _PREFIX_PART.match(part):
            raise ValueError(f"s3.prefix {value!r}: use letters, digits, '.', '_', '-' and '/'")
    return "/".join(parts)


def _join(*parts: str) -> str:
    return "/".join(p for p in parts if p)


def project_prefix(prefix: str, project_id: int) -> str:
    """``{prefix}/{project}/``: everything a project made lies under it."""
    return _join(check_prefix(prefix), _id(project_id, "project id")) + "/"


def shot_key(prefix: str, project_id: int, shot_id: int, task_id: str) -> str:
    return project_prefix(prefix, project_id) + _join(
        "shots", _id(shot_id, "shot id"), _task_id(task_id) + ".png")


def script_key(prefix: str, project_id: int, task_id: str) -> str:
    return project_prefix(prefix, project_id) + _join("scripts", _task_id(task_id) + ".json")


def character_slug(name: str) -> str:
    """A character's folder: a digest of its name, since names are user text in any script."""
    return _digest(name)


def _digest(text: str) -> str:
    import hashlib  # here, as secrets below: the CLI's config imports this module at start-up

    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def cast_key(prefix: str, project_id: int, name: str, suffix: str = ".png") -> str:
    """A new object per upload or portrait, so a kept board never loses the image it shows;
    `suffix`: .png, or .jpg for an uploaded JPEG."""
    if suffix not in (".png", ".jpg"):
        raise ValueError(f"a reference image is .png or .jpg, not {suffix!r}")
    import secrets

    return project_prefix(prefix, project_id) + _join(
        "cast", character_slug(name), secrets.token_hex(8) + suffix)


def identity_key(prefix: str, project_id: int, name: str, model_hash: str,
                 description: str = "") -> str:
    """One record per character, model and description: features from one model mean
    nothing to another, and a new description is a new look (the old one's record stays,
    for a description changed back)."""
    if not re.fullmatch(r"[0-9a-f]{1,64}", model_hash):
        raise ValueError(f"model hash must be hex digits, got {model_hash!r}")
    looks = _digest(description)
    return project_prefix(prefix, project_id) + _join(
        "identity", character_slug(name), f"{model_hash}-{looks}.pt")


def probe_key(prefix: str, name: str) -> str:
    """A throwaway object `storyboard doctor` writes, reads and deletes to check the bucket."""
    return _join(check_prefix(prefix), "_doctor", name)


def export_key(prefix: str, project_id: int, name: str, when: datetime) -> str:
    """A new folder per upload (its time and a random suffix), so no upload replaces another."""
    import secrets

    folder = f"{when.strftime(STAMP_FORMAT)}-{secrets.token_hex(3)}"
    return project_prefix(prefix, project_id) + _join("exports", folder, name)


def project_prefixes(prefix: str, project_id: int, keys: list[str]) -> list[str]:
    """Where a project's objects live: its prefix under this machine's [s3] prefix, and any
    other that its stored image and script keys show (a daemon configured with another
    prefix)."""
    layout = re.compile(rf"(?:(.*)/)?{project_id}/(?:shots|scripts|cast|identity)/")
    found = {project_prefix(prefix, project_id)}
    for key in keys:
        match = layout.match(key)
        if match:
            found.add(("" if match.group(1) is None else match.group(1) + "/")
                      + f"{project_id}/")
    return sorted(found)


def made_by_project(key: str, task_ids: set[str], since: datetime,
                    modified: datetime | None = None) -> bool:
    """Whether an object under a project's prefix is that project's: an image or a script is
    named by the id of the task that made it; an export upload sits in a folder stamped with
    its upload time, not before the project existed (`since`); a reference image or portrait
    (cast/) or a character's identity features (identity/) was written (`modified`, the
    bucket's time) not before the project existed."""
    name = key.rsplit("/", 1)[-1]
    if name.split(".", 1)[0] in task_ids:
        return True
    if _CHARACTER_OBJECT.search(key):
        # Buckets keep whole seconds.
        return modified is not None and modified >= since.replace(microsecond=0)
    _, exports, rest = key.partition("/exports/")
    return bool(exports) and rest.split("-", 1)[0] >= since.strftime(STAMP_FORMAT)
