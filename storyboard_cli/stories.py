"""Reading a story file: encoding detection and the checks every story must pass."""

from __future__ import annotations

import codecs
import sys
from pathlib import Path

from storyboard_cli.errors import UsageError

# Tried in order after the byte-order marks; GB18030 last because it decodes almost anything.
FALLBACK_ENCODINGS = ("utf-8", "gb18030")
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


def _looks_utf16(data: bytes) -> str | None:
    """UTF-16 without a BOM: one byte of each pair is mostly zero for Latin text."""
    if len(data) < 4 or len(data) % 2:
        return None
    even_zero = data[0::2].count(0) / (len(data) // 2)
    odd_zero = data[1::2].count(0) / (len(data) // 2)
    if odd_zero > 0.3 and even_zero < 0.05:
        return "utf-16-le"
    if even_zero > 0.3 and odd_zero < 0.05:
        return "utf-16-be"
    return None


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
    utf16 = _looks_utf16(data)
    if utf16:
        try:
            return _check_text(data.decode(utf16), name), utf16
        except UnicodeDecodeError:
            pass
    if b"\x00" in data:
        raise UsageError(f"{name} looks like a binary file, not a text story")
    for enc in FALLBACK_ENCODINGS:
        try:
            return _check_text(data.decode(enc), name), enc
        except UnicodeDecodeError:
            continue
    raise UsageError(f"{name}: cannot detect the text encoding; pass --encoding")


def _check_text(text: str, name: str) -> str:
    controls = sum(1 for ch in text if ord(ch) < 32 and ch not in "\t\n\r\f\v")
    if "\x00" in text or controls > max(2, len(text) // 100):
        raise UsageError(f"{name} looks like a binary file, not a text story")
    return text


def load_story(
    source: str, encoding: str | None, max_bytes: int, stdin: bytes | None = None
) -> tuple[str, str, str]:
    """(text, display name, encoding) after every check a story must pass."""
    data, name = read_source(source, stdin)
    if len(data) > max_bytes:
        raise UsageError(
            f"{name} is {len(data):,} bytes; the limit is {max_bytes:,} (limits.max_story_bytes)"
        )
    if not data.strip():
        raise UsageError(f"{name} is empty; write the story first")
    text, used = decode_story(data, encoding, name)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise UsageError(f"{name} holds only whitespace; write the story first")
    return text, name, used
