"""A parsed screenplay: what a Fountain or Final Draft file says, in the terms a storyboard needs.

Both parsers (fountain.py, fdx.py) produce this model and nothing else, so the planner never
sees a file format. It crosses the wire to the GPU daemon's planner, so it imports only pydantic
and the standard library.

Shape: a title page, then scenes in order. A scene is what a heading opens (material before
the first heading, if any, is a scene without one). Its `elements` are what can become shots,
in reading order: action, dialogue, transitions, explicit shots and lyrics. Notes, sections
and synopses are the writer's metadata, never shots: they sit in `metadata`, each with the
number of elements that precede it, so a consumer can still tell where in the scene it was.
All text is plain: emphasis markup is gone and escapes are resolved.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, computed_field

IntExt = Literal["INT", "EXT", "INT/EXT", "EST"]


class Action(BaseModel):
    """Description of what is seen. `centered` for Fountain's `>text<` (e.g. THE END)."""

    kind: Literal["action"] = "action"
    text: str
    centered: bool = False


class Dialogue(BaseModel):
    """One speech: the cue's name, its extensions, its parentheticals and the spoken words.

    `character` is the name alone ("STEEL" for `STEEL (V.O.) ^`); `extensions` are the cue's
    parenthesised words without parentheses ("V.O.", "CONT'D"); `parentheticals` are the
    directions under the cue, in order, without parentheses; `line` is the spoken text, its
    line breaks kept. `dual` marks the two halves of a dual dialogue ("left" is the first
    speaker, "right" the one marked `^` in Fountain); None for ordinary dialogue.
    """

    kind: Literal["dialogue"] = "dialogue"
    character: str
    extensions: list[str] = Field(default_factory=list)
    parentheticals: list[str] = Field(default_factory=list)
    line: str
    dual: Literal["left", "right"] | None = None


class Transition(BaseModel):
    """An editorial transition between shots or scenes ("CUT TO:", "DISSOLVE TO:")."""

    kind: Literal["transition"] = "transition"
    text: str


class Shot(BaseModel):
    """A camera direction the writer gave as its own paragraph (Final Draft's "Shot" type,
    e.g. "CLOSE ON THE KEYS"): the framing the writer asked for."""

    kind: Literal["shot"] = "shot"
    text: str


class Lyrics(BaseModel):
    """Sung lines outside a dialogue block (Fountain's `~`)."""

    kind: Literal["lyrics"] = "lyrics"
    text: str


Element = Annotated[Action | Dialogue | Transition | Shot | Lyrics, Field(discriminator="kind")]


class Note(BaseModel):
    """A writer's note (`[[...]]`): never printed, never a shot."""

    kind: Literal["note"] = "note"
    text: str
    position: int = Field(ge=0, description="how many of the scene's elements precede it")


class Section(BaseModel):
    """An outline heading (`#` act, `##` sequence, ...): structure, never a shot."""

    kind: Literal["section"] = "section"
    text: str
    depth: int = Field(ge=1)
    position: int = Field(ge=0, description="how many of the scene's elements precede it")


class Synopsis(BaseModel):
    """A one-line summary the writer gave the scene (`=` in Fountain, the scene summary in
    Final Draft)."""

    kind: Literal["synopsis"] = "synopsis"
    text: str
    position: int = Field(ge=0, description="how many of the scene's elements precede it")


Metadata = Annotated[Note | Section | Synopsis, Field(discriminator="kind")]


class Scene(BaseModel):
    """A scene: its heading taken apart, and its elements in reading order.

    `heading` is the heading as written, without the scene number (None for material before
    the first heading). `int_ext` is None for a heading without a prefix (a forced one such as
    `.DREAM SEQUENCE`); `time_of_day` is None where the heading names none.
    """

    heading: str | None = None
    int_ext: IntExt | None = None
    location: str | None = None
    time_of_day: str | None = None
    number: str | None = None
    elements: list[Element] = Field(default_factory=list)
    metadata: list[Metadata] = Field(default_factory=list)


class Screenplay(BaseModel):
    """A whole screenplay. `title_page` maps lower-case keys ("title", "credit", "author",
    "draft date", "contact", ...) to their text; `title` is the title on one line."""

    title: str | None = None
    title_page: dict[str, str] = Field(default_factory=dict)
    scenes: list[Scene] = Field(default_factory=list)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def characters(self) -> list[str]:
        """Every name with a cue, in order of first appearance, each once (compared without
        regard to case; the first spelling wins)."""
        seen: dict[str, str] = {}
        for scene in self.scenes:
            for element in scene.elements:
                if isinstance(element, Dialogue):
                    seen.setdefault(element.character.casefold(), element.character)
        return list(seen.values())
