"""The request bodies of the HTTP API, in one place for the server that reads them and the
remote client that writes them (pydantic only: no FastAPI here).

The original system's bodies work as they are: `{"title", "story_text", "style"}` creates a
project; `{"style": "", "story_text": ""}` generates a storyboard, `{"prompt": "...",
"style": "..."}` a shot, empty strings meaning the stored values. Unknown fields are ignored,
as the original server ignored them; a field of the wrong type is a 422.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

# The export route's answer header: the export object (format, shots, frames, ...) as ASCII
# JSON, since the body is the file itself.
EXPORT_HEADER = "X-Storyboard-Export"


class NewProject(BaseModel):
    title: str = Field(description="The project's title (one line, not empty).")
    story_text: str = Field(description="The story, at most [limits] max_story_bytes.")
    style: str = Field("", description="Visual style preset; empty: movie.")
    aspect: str | None = Field(None,
                               description="Frame aspect, e.g. 16:9 [default: images.aspect].")


class Rename(BaseModel):
    title: str


class CastChange(BaseModel):
    set: dict[str, str] = Field(default_factory=dict,
                                description="Character name -> description.")
    remove: list[str] = Field(default_factory=list, description="Names to drop from the cast.")


class GenerateStoryboard(BaseModel):
    style: str = Field("", description="Style for this run; empty: the project's.")
    story_text: str = Field("", description="A new story for the project; empty: its own.")
    no_images: bool = Field(False, description="Plan the shot list only, render nothing.")


class GenerateShot(BaseModel):
    prompt: str = Field("", description="New prompt; empty: the shot's stored prompt.")
    style: str = Field("", description="Style; empty: the project's.")
    seed: int | None = Field(None, description="Seed; absent: a fresh random one, recorded.")
