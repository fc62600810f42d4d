"""Reading a story: a file's encoding detected and its bytes checked before it is decoded (its
size and emptiness: storyboard_cli/inputs.py, as for a story sent to the API); then what the
text is (prose, Fountain or Final Draft) and, for a screenplay, its parsed form."""

from __future__ import annotations

import codecs
import re
import sys
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from storyboard_cli.inputs import check_story, check_story_bytes, check_story_format
from storyboard_contract.errors import UsageError

if TYPE_CHECKING:
    from storyboard_contract.config import LimitsConfig
    from storyboard_contract.screenplay import Screenplay

# GB18030 decodes almost any byte soup: Latin-1 German ("Müller trägt") comes out as
# "M黮ler tr鋑t". Chinese text is nearly all GB2312 characters (the common hanzi and CJK
# punctuation); below this share of them the decoding is taken to be wrong.
MIN_GB2312_SHARE = 0.5
# UTF-16 without a byte-order mark must decode to this share of readable characters, and,
# without a single ASCII character to tell the byte order, to this share of Chinese ones.
MIN_READABLE_SHARE = 0.95
MIN_CHINESE_SHARE = 0.9

_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def read_source(source: str, stdin: bytes | None = None) -> tuple[bytes, str]:
    """The raw bytes of FILE (or stdin for '-') and a display name."""
    if source == "-":
        data = stdin if stdin is not None else sys.stdin.buffer.read()
        return data, "stdin"
    path = Path(source)
    if not path.exists():
        raise UsageError(f"story file not found: {path}")
    if not path.is_file():
        raise UsageError(f"not a regular file: {path}")
    try:
        return path.read_bytes(), path.name
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None


def _utf16_without_bom(data: bytes) -> tuple[str, str] | None:
    """(text, encoding) of UTF-16 without a byte-order mark, else None. Every ASCII character
    (a newline, a space, a digit) has a zero byte on the same side of its pair; Chinese text
    has few of them, so they must be on one side only, and the text must read as text."""
    if len(data) < 4 or len(data) % 2:
        return None
    even, odd = data[0::2].count(0), data[1::2].count(0)
    if odd > 4 * even:
        encoding = "utf-16-le"
    elif even > 4 * odd:
        encoding = "utf-16-be"
    else:
        return None
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError:
        return None
    return (text, encoding) if _readable_share(text) >= MIN_READABLE_SHARE else None


def _utf16_chinese(data: bytes) -> tuple[str, str] | None:
    """(text, encoding) of Chinese UTF-16 without a byte-order mark and without any ASCII
    character to tell the byte order: the order that reads as Chinese. Only for bytes that are
    not UTF-8 text: any ASCII text would read as Chinese too."""
    if len(data) < 4 or len(data) % 2:
        return None
    for encoding in ("utf-16-le", "utf-16-be"):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if len(_chinese().findall(text)) >= MIN_CHINESE_SHARE * len(text):
            return text, encoding
    return None


@cache
def _chinese() -> re.Pattern[str]:
    # Compiled when first needed: a class of these ranges takes milliseconds to compile, which
    # `storyboard new` of a UTF-8 story need not spend.
    from storyboard_contract.cjk import HAN, PUNCTUATION

    return re.compile(f"[{HAN}{PUNCTUATION}]")


def _readable_share(text: str) -> float:
    """Letters, digits, punctuation, symbols and white space, as a share of all characters."""
    import unicodedata

    readable = sum(1 for ch in text
                   if ch in "\t\n\r" or unicodedata.category(ch)[0] in "LMNPSZ")
    return readable / len(text) if text else 1.0


def _gb2312_share(text: str) -> float:
    """The share of non-ASCII characters that GB2312 (the common Chinese set) holds."""
    wide = sum(1 for ch in text if ord(ch) > 0x7F)
    if not wide:
        return 1.0
    common = len(text.encode("gb2312", errors="ignore")) - (len(text) - wide)
    return common / 2 / wide


def decode_story(data: bytes, encoding: str | None = None, name: str = "story") -> tuple[str, str]:
    """Text and the encoding used. Raises UsageError for binary or undecodable input."""
    if encoding:
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise UsageError(f"unknown encoding {encoding!r}") from None
        try:
            return _check_text(data.decode(encoding), name), encoding
        except UnicodeDecodeError as exc:
            raise UsageError(
                f"{name} is not valid {encoding}: {exc.reason} at byte {exc.start}"
            ) from None
    for bom, enc in _BOMS:
        if data.startswith(bom):
            try:
                return _check_text(data.decode(enc), name), enc
            except UnicodeDecodeError:
                raise UsageError(
                    f"{name} starts with a {enc} byte-order mark but is not {enc}"
                ) from None
    utf16 = _utf16_without_bom(data)
    if utf16:
        return _check_text(utf16[0], name), utf16[1]
    if b"\x00" in data:
        # Chinese UTF-16 has zero bytes of its own (一 is U+4E00), too few to tell the order.
        utf16 = _utf16_chinese(data)
        if not utf16:
            raise UsageError(f"{name} looks like a binary file, not a text story")
        return _check_text(utf16[0], name), utf16[1]
    try:
        return _check_text(data.decode("utf-8"), name), "utf-8"
    except UnicodeDecodeError:
        pass
    utf16 = _utf16_chinese(data)
    if utf16:
        return _check_text(utf16[0], name), utf16[1]
    hint = ("pass --encoding (latin-1 or cp1252 for Western European text, gb18030 for "
            "Chinese)")
    try:
        text = data.decode("gb18030")
    except UnicodeDecodeError:
        raise UsageError(f"{name}: cannot detect the text encoding (not UTF-8, UTF-16 or "
                         f"GB18030); {hint}") from None
    if _gb2312_share(text) < MIN_GB2312_SHARE:
        raise UsageError(f"{name}: cannot detect the text encoding (not UTF-8, and read as "
                         f"GB18030 it is mostly rare characters); {hint}")
    return _check_text(text, name), "gb18030"


def _check_text(text: str, name: str) -> str:
    controls = sum(1 for ch in text if ord(ch) < 32 and ch not in "\t\n\r\f\v")
    if "\x00" in text or controls > max(2, len(text) // 100):
        raise UsageError(f"{name} looks like a binary file, not a text story")
    return text


def file_limit(limits: LimitsConfig) -> int:
    """The most bytes a story file may hold before its format is known: the larger of the
    prose and screenplay limits (read_story then holds it to its format's)."""
    return max(limits.max_story_bytes, limits.max_screenplay_bytes)


def load_story(
    source: str, encoding: str | None, max_bytes: int, stdin: bytes | None = None
) -> tuple[str, str, str]:
    """(text, display name, encoding) after every check a story must pass."""
    data, name = read_source(source, stdin)
    check_story_bytes(data, max_bytes, name)
    text, used = decode_story(data, encoding, name)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise UsageError(f"{name} holds only whitespace; write the story first")
    return text, name, used


def read_story(text: str, limits: LimitsConfig, story_format: str | None = None,
               file_name: str = "") -> tuple[str, Screenplay | None]:
    """(format, parsed screenplay or None) of a story's text, checked: its format as given, or
    by the file's extension, or by its content (storyboard_cli/screenplay/detect.py); its size
    within that format's limit; a screenplay readable and within the wire's bounds."""
    from storyboard_cli.screenplay import detect_format, read_screenplay

    story_format = check_story_format(story_format) or detect_format(file_name, text)
    check_story(text, limits, story_format)
    if story_format == "prose":
        return story_format, None
    return story_format, read_screenplay(text, story_format)  # type: ignore[arg-type]


def screenplay_json(screenplay: Screenplay | None) -> str | None:
    """A parsed screenplay as the store keeps it (a project's and a revision's `screenplay`);
    None for prose."""
    return screenplay and screenplay.model_dump_json(exclude_none=True)


def same_story(project: dict[str, Any], text: str, story_format: str) -> bool:
    """Whether a story given is the one the project has: the same text read the same way (the
    same words forced to be prose are another story to plan)."""
    return (text, story_format) == (project["story"], project["format"])
