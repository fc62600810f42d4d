"""The cast's objects in the bucket, as the daemon reads and keeps them for the consistency
modes: each character's reference image (consistency "reference"; the host uploads it under
keys.cast_key) and its kept identity features (consistency "attention"; the daemon writes
them under keys.identity_key the first time a character is rendered, and reads them for
every later render of the project, regen included).

A request names a reference by its key; only keys of the request's own project's cast are
read, so a request cannot make the daemon read any other object of the bucket.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gpu_daemon.uploader import UploadError
from storyboard_contract import keys
from storyboard_contract.errors import StoryboardError
from storyboard_contract.s3 import open_object

if TYPE_CHECKING:
    from gpu_daemon.uploader import S3Uploader
    from storyboard_contract.wire import Character

# A reference image larger than this is refused (a portrait PNG is well under it).
MAX_REFERENCE_BYTES = 20 * 2**20


class CastObjects:
    def __init__(self, uploader: S3Uploader) -> None:
        self.uploader = uploader
        self.cfg = uploader.cfg

    def reference(self, project_id: int, character: Character) -> bytes:
        """The character's reference image; ValueError (422) for a key outside the project's
        cast or an object the bucket does not hold, UploadError for a bucket that fails."""
        key = character.reference_key or ""
        cast = keys.project_prefix(self.cfg.prefix, project_id) + "cast/"
        if not key.startswith(cast) or ".." in key.split("/"):
            raise ValueError(f"character {character.name!r}: reference_key must be an object "
                             f"of the project's cast ({cast}...)")
        data = self._read(key, f"reading {character.name!r}'s reference image",
                          MAX_REFERENCE_BYTES)
        if data is None:
            raise ValueError(f"character {character.name!r}: its reference image {key} is not "
                             f"in {self.uploader.where}; set it again (cast --image)")
        return data

    def identity(self, key: str) -> bytes | None:
        """A character's kept identity features, None when none are kept yet."""
        return self._read(key, "reading a character's kept identity")

    def keep_identity(self, key: str, data: bytes) -> None:
        self.uploader.put(key, data, "application/octet-stream")

    def _read(self, key: str, doing: str, limit: int | None = None) -> bytes | None:
        try:
            answer = open_object(self.uploader.client, self.cfg, key, doing)
        except StoryboardError as exc:
            raise UploadError(503, str(exc)) from None
        if answer is None:
            return None
        if limit is not None and answer.get("ContentLength", 0) > limit:
            raise ValueError(f"{key} is over {limit // 2**20} MiB")
        return answer["Body"].read()
