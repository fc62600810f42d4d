"""The request bodies of the HTTP API, in one place for the server that reads them and the
remote client that writes them (pydantic only: no FastAPI here).

The original system's bodies work as they are: `{"title", "story_text", "style"}` creates a
project (a screenplay too: `format` and `file_name` are optional, and so is a screenplay's
title); `{"style": "", "story_text": ""}` generates a storyboard, `{"prompt": "...",
"style": "..."}` a shot, empty strings meaning the stored values. Unknown fields are ignored,
as the original server ignored them; a field of the wrong type is a 422.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

# The export route's answer header: the export object (format, shots, frames, ...) as ASCII
# JSON, since the body is the file itself.
EXPORT_HEADER = "X-Storyboard-Export"
# Who a request acts for, as the edit history records it (the remote CLI sends its user's
# name; a request without it is recorded as "api"). A label, not a credential.
USER_HEADER = "X-Storyboard-User"


class RenderSettingsBody(BaseModel):
    """A project's render settings (`storyboard new`/`settings` options); absent: unchanged
    (for a new project, the model's default)."""

    model: str | None = Field(None, description="A model name of storyboard.toml's [images].")
    loras: list[str] | None = Field(None, description='LoRAs as "FILE" or "FILE:SCALE", '
                                    "files inside the GPU daemon's images.lora_dir.")
    scheduler: str | None = Field(None, description="The sampler, e.g. dpmpp_2m_karras.")
    steps: int | None = Field(None, description="Denoising steps.")
    cfg: float | None = Field(None, description="Guidance scale.")
    negative_prompt: str | None = Field(None, description="Negative prompt.")
    consistency: str | None = Field(None, description="How characters keep their identity: "
                                    "text, reference, attention or lora.")

    def given(self) -> dict[str, Any]:
        return {k: v for k, v in self.model_dump(include=set(RenderSettingsBody.model_fields))
                .items() if v is not None}


class NewProject(RenderSettingsBody):
    title: str = Field("", description="The project's title (one line); empty: a screenplay's "
                                       "title page, else file_name's stem.")
    story_text: str = Field(description="The story: prose (at most [limits] max_story_bytes) or "
                                        "a Fountain or Final Draft screenplay's text (at most "
                                        "[limits] max_screenplay_bytes).")
    style: str = Field("", description="Visual style preset; empty: movie.")
    aspect: str | None = Field(None,
                               description="Frame aspect, e.g. 16:9 [default: images.aspect].")
    format: str = Field("", description="prose, fountain or fdx; empty: by file_name's "
                                        "extension, else by the text.")
    file_name: str = Field("", description="The story file's name, if it came from one: its "
                                           "extension (.fountain, .fdx) tells the format.")


class ProjectSettings(RenderSettingsBody):
    reset: list[str] = Field(default_factory=list,
                             description="Settings back to the model's default, e.g. "
                                         '["loras", "cfg"].')

    def changes(self) -> dict[str, Any]:
        return {**self.given(), **dict.fromkeys(self.reset)}


class Rename(BaseModel):
    title: str


class CharacterIdentity(BaseModel):
    image: str | None = Field(None, description="A reference image, PNG or JPEG, in base64.")
    lora: str | None = Field(None, description='The character\'s LoRA as "FILE" or '
                             '"FILE:SCALE" in the GPU daemon\'s images.lora_dir; "": none.')
    trigger: str | None = Field(None, description='The LoRA\'s trigger word; "": none.')

    def given(self) -> dict[str, Any]:
        """The fields given, the image as its bytes."""
        import base64
        import binascii

        from storyboard_contract.errors import UsageError

        given = self.model_dump(exclude_none=True)
        if "image" in given:
            try:
                given["image"] = base64.b64decode(given["image"], validate=True)
            except (binascii.Error, ValueError):
                raise UsageError("image: not base64") from None
        return given


class Portraits(BaseModel):
    names: list[str] = Field(default_factory=list,
                             description="The characters to portray; empty: every one.")


class CastChange(BaseModel):
    set: dict[str, str] = Field(default_factory=dict,
                                description="Character name -> description.")
    remove: list[str] = Field(default_factory=list,
                              description="Names to drop from the cast; no plan casts them again.")
    aliases: dict[str, list[str]] = Field(
        default_factory=dict, description="Character name -> its other names (all of them).")
    identity: dict[str, CharacterIdentity] = Field(
        default_factory=dict, description="Character name -> its reference image, LoRA and "
                                          "trigger word (those given).")


class GenerateStoryboard(BaseModel):
    style: str = Field("", description="Style for this run; empty: the project's.")
    story_text: str = Field("", description="A new story for the project; empty: its own.")
    format: str = Field("", description="The new story's format (prose, fountain, fdx); empty: "
                                        "read from its text.")
    no_images: bool = Field(False, description="Plan the shot list only, render nothing.")
    stale: bool = Field(False, description="Plan nothing: render the stale panels of the "
                        "storyboard shown (approved ones aside).")


class GenerateShot(BaseModel):
    prompt: str = Field("", description="New prompt; empty: the shot's stored prompt.")
    style: str = Field("", description="Style; empty: the project's.")
    seed: int | None = Field(None, description="Seed; absent: a fresh random one, recorded.")
    keep_seed: bool = Field(False, description="The seed of the shot's image (the same image "
                                               "again, with nothing else changed).")


# Editing a storyboard: a shot's fields travel as {name: value} (storyboard_cli/shot_fields.py
# is the one list of them), shots by their numbers in the storyboard the project shows.
ShotFields = dict[str, Any]


class ShotNote(BaseModel):
    text: str = Field(description="The note; empty clears it.")


class SplitShot(BaseModel):
    shot: int = Field(description="The shot's number.")
    at: str | None = Field(None, description="Words its second shot starts with; absent: the "
                           "sentence boundary nearest its middle.")


class MergeShots(BaseModel):
    shots: list[int] = Field(min_length=2, max_length=2,
                             description="The numbers of two neighbouring shots.")


class MoveShot(BaseModel):
    shot: int = Field(description="The shot's number.")
    to: int = Field(description="Its new position (1 = first).")


class InsertShot(BaseModel):
    after: int = Field(description="The shot it follows (0: before the first).")
    fields: ShotFields = Field(description="Its fields ({name: value}); `action` is needed.")


class DeleteShot(BaseModel):
    shot: int = Field(description="The shot's number.")


class NewRevision(BaseModel):
    story_text: str = Field(description="The revised story: prose (at most [limits] "
                            "max_story_bytes) or a Fountain or Final Draft screenplay's text "
                            "(at most [limits] max_screenplay_bytes).")
    format: str = Field("", description="prose, fountain or fdx; empty: by file_name's "
                                        "extension, else by the text.")
    file_name: str = Field("", description="The revised story file's name, if it came from "
                                           "one: its extension (.fountain, .fdx) tells the "
                                           "format.")
