"""Final Draft (.fdx) to the screenplay model (storyboard_contract/screenplay.py).

An FDX file is XML: `<FinalDraft><Content>` holds `<Paragraph Type="...">` elements in reading
order, each with `<Text>` runs (a run carries its own Style, such as "Bold+Underline" or
"AllCaps"); `<DualDialogue>` (alone or inside a Paragraph) wraps the two speeches of a dual
dialogue; `<TitlePage><Content>` holds the title page as plain paragraphs; a scene heading may
carry `Number="12A"` and a scene summary in `<SceneProperties><Summary>`.

Steps (parse_fdx):
1. Parse with defusedxml and no DTD allowed: a Final Draft file never has one, and a DTD is
   where XML bombs (billion laughs) and external entities live. Broken XML is refused.
2. The root must be FinalDraft and Content must hold paragraphs.
3. Paragraph types: "Scene Heading" opens a scene; "Action" and "General" are action
   (centered when the paragraph is); "Character" opens a speech that the "Parenthetical" and
   "Dialogue" paragraphs after it fill; "Transition"; "Shot" is an explicit camera direction.
   Other types (a TV template's act breaks, a cast list) are kept as action. A ScriptNote
   inside a paragraph is a note; an omitted scene (OMITTED, its old text inside) is skipped.
   The script notes Final Draft keeps apart, by character range (`<ScriptNotes>` at the
   end), are not read.
4. Text: the runs joined. Final Draft stores what the writer typed and shows capitals through
   styles, so a run styled AllCaps, or a paragraph whose type the file's ElementSettings
   style AllCaps (Final Draft's default for headings, cues, transitions and shots when the
   file has no settings), reads in capitals. Bold, italic and underline are dropped: the model
   is plain text.
5. The title page: the first paragraph is the title; a line ending in "by" is the credit and
   the next one the author; the remaining left-aligned lines are the contact, any others notes.
"""

from __future__ import annotations

import re
from xml.etree.ElementTree import Element as XmlElement
from xml.etree.ElementTree import ParseError

import defusedxml
import defusedxml.ElementTree

from storyboard_cli.screenplay.build import ScreenplayBuilder
from storyboard_cli.screenplay.errors import ScreenplayError
from storyboard_cli.screenplay.lines import split_cue
from storyboard_contract.screenplay import Action, Dialogue, Screenplay, Shot, Transition

# Types Final Draft shows in capitals by default (its ElementSettings say so when present).
_DEFAULT_ALL_CAPS = frozenset({"Scene Heading", "Character", "Transition", "Shot"})
_DIALOGUE_TYPES = frozenset({"Character", "Parenthetical", "Dialogue"})
_PARENTHETICAL = re.compile(r"\((.*)\)", re.DOTALL)
_CREDIT = re.compile(r"(?:.*\s)?by:?", re.IGNORECASE)


def parse_fdx(data: str | bytes) -> Screenplay:
    """The screenplay a Final Draft file holds; ScreenplayError if it is broken, hostile or
    empty."""
    # 1. parse, no DTD
    try:
        root = defusedxml.ElementTree.fromstring(data, forbid_dtd=True)
    except defusedxml.DefusedXmlException:
        raise ScreenplayError(
            "refused: this FDX file declares a DTD, the way XML bombs and external entities "
            "get in (Final Draft never writes one)") from None
    except ParseError as exc:
        raise ScreenplayError(f"not a Final Draft file: broken XML ({exc})") from None
    # 2. shape
    if root.tag != "FinalDraft":
        raise ScreenplayError(
            f"not a Final Draft file: its XML root is <{root.tag}>, not <FinalDraft>")
    content = root.find("Content")
    if content is None or content.find(".//Paragraph") is None:
        raise ScreenplayError("this Final Draft file has no paragraphs")
    # 3-4. the body
    reader = _FdxReader(_all_caps_types(root))
    reader.read(content)
    if not reader.builder.has_content():
        raise ScreenplayError(
            "no screenplay in this Final Draft file: no scene heading, action or dialogue")
    # 5. the title page
    return reader.builder.build(_title_page(root.find("TitlePage/Content")))


def _all_caps_types(root: XmlElement) -> frozenset[str]:
    """Paragraph types this file shows in capitals."""
    settings = {
        element.get("Type", ""): "AllCaps" in (font.get("Style") or "")
        for element in root.iter("ElementSettings")
        if (font := element.find("FontSpec")) is not None
    }
    return frozenset(
        [kind for kind, caps in settings.items() if caps]
        + [kind for kind in _DEFAULT_ALL_CAPS if kind not in settings]
    )


def _text(paragraph: XmlElement, all_caps: bool) -> str:
    """The paragraph's Text runs joined, capitals where a style asks for them."""
    runs = []
    for run in paragraph.findall("Text"):
        text = run.text or ""
        if all_caps or "AllCaps" in (run.get("Style") or ""):
            text = text.upper()
        runs.append(text)
    return "".join(runs).replace("\r\n", "\n").replace("\r", "\n").strip()


class _FdxReader:
    """One pass over Content's paragraphs, telling a ScreenplayBuilder what it meets."""

    def __init__(self, all_caps_types: frozenset[str]) -> None:
        self.all_caps_types = all_caps_types
        self.builder = ScreenplayBuilder()
        self._speech: Dialogue | None = None  # the speech being filled
        self._spoken: list[str] = []
        self._notes: list[str] = []  # notes of the paragraphs read since the last element

    def read(self, container: XmlElement, *, dual: bool = False) -> None:
        speakers = 0
        for child in container:
            if child.tag == "DualDialogue":
                self._end_speech()
                self.read(child, dual=True)
                continue
            if child.tag != "Paragraph":
                continue
            inner = child.find("DualDialogue")
            if inner is not None:
                self._end_speech()
                self.read(inner, dual=True)
                continue
            kind = child.get("Type", "General")
            text = _text(child, kind in self.all_caps_types)
            if kind == "Character":
                speakers += 1
            self._paragraph(child, kind, text, right=dual and speakers == 2)
        self._end_speech()

    def _paragraph(self, paragraph: XmlElement, kind: str, text: str, *, right: bool) -> None:
        builder = self.builder
        if paragraph.find("OmittedScene") is not None:
            return  # a scene cut from the script, kept only to hold its number
        if kind in _DIALOGUE_TYPES and (kind == "Character" or self._speech is not None):
            self._speech_part(kind, text, right=right)
            self._notes += _script_notes(paragraph)
            return
        self._end_speech()
        self._notes += _script_notes(paragraph)
        if not text:
            self._flush_notes()
            return
        if kind == "Scene Heading":
            builder.heading(text, paragraph.get("Number"))
            for summary in paragraph.findall("SceneProperties/Summary/Paragraph"):
                if synopsis := _text(summary, all_caps=False):
                    builder.synopsis(synopsis)
        elif kind == "Transition":
            builder.element(Transition(text=text))
        elif kind == "Shot":
            builder.element(Shot(text=text))
        else:  # Action, General, a stray Dialogue/Parenthetical, other types
            builder.element(Action(text=text, centered=paragraph.get("Alignment") == "Center"))
        self._flush_notes()

    def _speech_part(self, kind: str, text: str, *, right: bool) -> None:
        if kind == "Character":
            self._end_speech()
            name, extensions, _ = split_cue(text)
            self._speech = Dialogue(character=name, extensions=extensions, line="",
                                    dual="right" if right else None)
        elif self._speech is not None and text:
            if kind == "Parenthetical":
                match = _PARENTHETICAL.fullmatch(text)
                self._speech.parentheticals.append(match[1].strip() if match else text)
            else:
                self._spoken.append(text)

    def _end_speech(self) -> None:
        if self._speech is None:
            return
        self._speech.line = "\n".join(self._spoken)
        if self._speech.character:
            self.builder.element(self._speech)
        self._speech, self._spoken = None, []
        self._flush_notes()

    def _flush_notes(self) -> None:
        """Notes stay in the scene of the paragraph they were written in, after its element."""
        for note in self._notes:
            self.builder.note(note, attached=True)
        self._notes.clear()


def _script_notes(paragraph: XmlElement) -> list[str]:
    """The texts of the ScriptNotes written inside a paragraph."""
    notes = []
    for note in paragraph.iter("ScriptNote"):
        text = "\n".join(filter(None, (_text(part, all_caps=False)
                                       for part in note.iter("Paragraph"))))
        if text:
            notes.append(text)
    return notes


def _title_page(content: XmlElement | None) -> dict[str, str]:
    if content is None:
        return {}
    lines = [(text, paragraph.get("Alignment", "Left"))
             for paragraph in content.iter("Paragraph")
             if (text := _text(paragraph, all_caps=False))]
    if not lines:
        return {}
    title_page = {"title": lines[0][0]}
    rest = lines[1:]
    if rest and _CREDIT.fullmatch(rest[0][0]):
        title_page["credit"] = rest[0][0]
        if len(rest) > 1:
            title_page["author"] = rest[1][0]
        rest = rest[2:]
    contact = [text for text, alignment in rest if alignment == "Left"]
    notes = [text for text, alignment in rest if alignment != "Left"]
    if contact:
        title_page["contact"] = "\n".join(contact)
    if notes:
        title_page["notes"] = "\n".join(notes)
    return title_page
