"""A parsed screenplay: what a Fountain or Final Draft file says, in the terms a storyboard needs.

Both host parsers (storyboard_cli/screenplay: fountain.py, fdx.py) produce this model and
nothing else, so the planner never sees a file format. It crosses the wire to the GPU daemon's
planners (storyboard_contract/wire.py, PlanRequest.screenplay), so it lives in the contract,
imports only pydantic and the standard library, and is bounded like every wire schema:

- MAX_SCREENPLAY_TEXT_BYTES of text in all (UTF-8), about eight feature films (a 120-page
  script holds about 130,000);
- MAX_SCENES scenes and MAX_SCREENPLAY_PARTS elements and metadata in all;
- each text MAX_TEXT_CHARS, each name MAX_NAME_CHARS.

A screenplay at these bounds, as the worker sends it (JSON without its null fields), fits the
daemon's default body limit ([daemon] max_body_bytes, 4 MiB); tests/test_screenplay_limits.py
holds it to that.

Shape: a title page, then scenes in order. A scene is what a heading opens (material before
the first heading, if any, is a scene without one). Its `elements` are what can become shots,
in reading order: action, dialogue, transitions, explicit shots and lyrics. Notes, sections
and synopses are the writer's metadata, never shots: they sit in `metadata`, each with the
number of elements that precede it, so a consumer can still tell where in the scene it was.
All text is plain: emphasis markup is gone and escapes are resolved.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, computed_field, model_validator

from storyboard_contract.numbering import scene_numbers

MAX_SCREENPLAY_TEXT_BYTES = 1_000_000
MAX_SCENES = 2_000
MAX_SCREENPLAY_PARTS = 15_000
MAX_TEXT_CHARS = 20_000
MAX_NAME_CHARS = 200

IntExt = Literal["INT", "EXT", "INT/EXT", "EST"]
Text = Annotated[str, Field(max_length=MAX_TEXT_CHARS)]
Name = Annotated[str, Field(max_length=MAX_NAME_CHARS)]


class Action(BaseModel):
    """Description of what is seen. `centered` for Fountain's `>text<` (e.g. THE END)."""

    kind: Literal["action"] = "action"
    text: Text
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
    character: Name
    extensions: Annotated[list[Name], Field(max_length=10)] = Field(default_factory=list)
    parentheticals: Annotated[list[Text], Field(max_length=50)] = Field(default_factory=list)
    line: Text
    dual: Literal["left", "right"] | None = None


class Transition(BaseModel):
    """An editorial transition between shots or scenes ("CUT TO:", "DISSOLVE TO:")."""

    kind: Literal["transition"] = "transition"
    text: Text


class Shot(BaseModel):
    """A camera direction the writer gave as its own paragraph (Final Draft's "Shot" type,
    e.g. "CLOSE ON THE KEYS"): the framing the writer asked for."""

    kind: Literal["shot"] = "shot"
    text: Text


class Lyrics(BaseModel):
    """Sung lines outside a dialogue block (Fountain's `~`)."""

    kind: Literal["lyrics"] = "lyrics"
    text: Text


Element = Annotated[Action | Dialogue | Transition | Shot | Lyrics, Field(discriminator="kind")]


class Note(BaseModel):
    """A writer's note (`[[...]]`): never printed, never a shot."""

    kind: Literal["note"] = "note"
    text: Text
    position: int = Field(ge=0, description="how many of the scene's elements precede it")


class Section(BaseModel):
    """An outline heading (`#` act, `##` sequence, ...): structure, never a shot."""

    kind: Literal["section"] = "section"
    text: Text
    depth: int = Field(ge=1)
    position: int = Field(ge=0, description="how many of the scene's elements precede it")


class Synopsis(BaseModel):
    """A one-line summary the writer gave the scene (`=` in Fountain, the scene summary in
    Final Draft)."""

    kind: Literal["synopsis"] = "synopsis"
    text: Text
    position: int = Field(ge=0, description="how many of the scene's elements precede it")


Metadata = Annotated[Note | Section | Synopsis, Field(discriminator="kind")]


class Scene(BaseModel):
    """A scene: its heading taken apart, and its elements in reading order.

    `heading` is the heading as written, without the scene number (None for material before
    the first heading). `int_ext` is None for a heading without a prefix (a forced one such as
    `.DREAM SEQUENCE`); `time_of_day` is None where the heading names none.
    """

    heading: Name | None = None
    int_ext: IntExt | None = None
    location: Name | None = None
    time_of_day: Name | None = None
    number: Annotated[str | None, Field(max_length=16)] = None
    elements: list[Element] = Field(default_factory=list)
    metadata: list[Metadata] = Field(default_factory=list)


class Screenplay(BaseModel):
    """A whole screenplay. `title_page` maps lower-case keys ("title", "credit", "author",
    "draft date", "contact", ...) to their text; `title` is the title on one line."""

    title: Name | None = None
    title_page: Annotated[dict[Name, Text], Field(max_length=50)] = Field(default_factory=dict)
    scenes: Annotated[list[Scene], Field(max_length=MAX_SCENES)] = Field(default_factory=list)

    @model_validator(mode="after")
    def _within_bounds(self) -> Screenplay:
        parts = sum(len(scene.elements) + len(scene.metadata) for scene in self.scenes)
        if parts > MAX_SCREENPLAY_PARTS:
            raise ValueError(f"the screenplay has {parts:,} elements and notes; the limit is "
                             f"{MAX_SCREENPLAY_PARTS:,}")
        size = self.text_bytes()
        if size > MAX_SCREENPLAY_TEXT_BYTES:
            raise ValueError(f"the screenplay holds {size:,} bytes of text; the limit is "
                             f"{MAX_SCREENPLAY_TEXT_BYTES:,}")
        return self

    def numbered_scenes(self) -> list[tuple[str, Scene]]:
        """Each scene with its number (storyboard_contract/numbering.py: the script's own, else
        the headings counted); shots are numbered within these (3.2)."""
        numbers = scene_numbers((scene.number, scene.heading) for scene in self.scenes)
        return list(zip(numbers, self.scenes, strict=True))

    def text_bytes(self) -> int:
        """The UTF-8 size of every text it holds (headings, elements, notes, title page)."""
        texts = [*self.title_page.keys(), *self.title_page.values()]
        for scene in self.scenes:
            texts += [scene.heading or "", scene.number or ""]
            for part in (*scene.elements, *scene.metadata):
                if isinstance(part, Dialogue):
                    texts += [part.character, part.line, *part.extensions, *part.parentheticals]
                else:
                    texts.append(part.text)
        return sum(len(text.encode("utf-8")) for text in texts)

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
