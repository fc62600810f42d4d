"""A character's reference image in the bucket, at keys.cast_key (a new object each time, so a
kept board never loses the image it shows): one the user uploads (`cast --image`, checked by
inputs.check_reference_image), or a neutral portrait rendered from the character's
description (`cast --portraits`) through the daemon's ordinary render (`POST /v1/render`,
the project's style and render settings), then copied under cast/ and the render's own object
deleted.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from storyboard_contract.config import Config
    from storyboard_contract.wire import RenderRequest, RenderSettings

# What a portrait shows beside the character's description, which the daemon adds as for any
# shot showing the character (gpu_daemon.styles.compose).
PORTRAIT_PROMPT = ("close-up portrait, head and shoulders, facing the camera, neutral "
                   "expression, plain light background")
CONTENT_TYPES = {".png": "image/png", ".jpg": "image/jpeg"}


def upload(client: Any, config: Config, project_id: int, name: str, data: bytes,
           suffix: str) -> str:
    """Put a checked reference image in the bucket; its key."""
    from storyboard_contract.keys import cast_key
    from storyboard_contract.s3 import storage_error

    key = cast_key(config.s3.prefix, project_id, name, suffix)
    try:
        client.put_object(Bucket=config.s3.bucket, Key=key, Body=data,
                          ContentType=CONTENT_TYPES[suffix])
    except Exception as exc:  # noqa: BLE001 - botocore errors, sorted by storage_error
        raise storage_error(config.s3, exc, f"uploading the reference image of {name}") from None
    return key


def portrait_request(project: dict[str, Any], character: dict[str, Any],
                     settings: RenderSettings, size: tuple[int, int]) -> RenderRequest:
    """A render of a character's portrait: the portrait prompt, the character with its
    description, the project's style and render settings, a seed of its own (a new portrait
    each time: keep it or redo it). It is no shot of the storyboard (shot id 0). Its identity
    comes from the words alone (consistency "text"): the portrait is what the other modes
    start from."""
    from storyboard_contract.wire import Character, RenderRequest, shot_seed

    task_id = f"portrait-{uuid.uuid4()}"
    return RenderRequest(
        **settings.model_dump(exclude={"consistency"}), consistency="text",
        project_id=project["id"], shot_id=0, task_id=task_id,
        prompt=PORTRAIT_PROMPT, camera="close-up",
        characters=[Character(name=character["name"], description=character["description"])],
        style=project["style"], seed=shot_seed(task_id, 0), width=size[0], height=size[1])


def keep_portrait(client: Any, config: Config, project_id: int, name: str,
                  rendered: str) -> str:
    """Copy a rendered portrait under the character's cast/ folder and delete the render's
    object; the portrait's key."""
    from storyboard_contract.keys import cast_key
    from storyboard_contract.s3 import storage_error

    key = cast_key(config.s3.prefix, project_id, name)
    try:
        client.copy_object(Bucket=config.s3.bucket, Key=key,
                           CopySource={"Bucket": config.s3.bucket, "Key": rendered},
                           ContentType="image/png", MetadataDirective="REPLACE")
        client.delete_object(Bucket=config.s3.bucket, Key=rendered)
    except Exception as exc:  # noqa: BLE001 - botocore errors, sorted by storage_error
        raise storage_error(config.s3, exc, f"keeping the portrait of {name}") from None
    return key
