"""Chinese, Japanese and Korean text: the character ranges every part of the system agrees on.

Regular-expression class bodies (put them inside ``[...]``), from the narrowest to the widest:

- HAN: ideographs (CJK Unified, Extension A, Compatibility): Chinese names and words.
- CJK: HAN plus kana and hangul: scripts written without spaces between words, so a line or a
  prompt may be cut after any of their characters, and CLIP reads each as several tokens.
- PUNCTUATION: CJK symbols and punctuation, full-width forms.
- WIDE: everything drawn full-width in a panel (CJK, PUNCTUATION, radicals, bopomofo, the
  compatibility blocks): a line of a panel's caption may break before any of them.

Only the standard library is used: the CLI reads these at start-up.
"""

from __future__ import annotations

import re

HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
KANA = "\u3040-\u30ff"
HANGUL = "\uac00-\ud7af"
CJK = KANA + HAN + HANGUL
PUNCTUATION = "\u3000-\u303f\uff00-\uffef"
WIDE = "\u2e80-\u303f\u3040-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef"

HAN_CHAR = re.compile(f"[{HAN}]")
CJK_CHAR = re.compile(f"[{CJK}]")


def is_cjk(char: str) -> bool:
    """Whether `char` (one character) is an ideograph, kana or hangul."""
    return bool(CJK_CHAR.match(char))


def has_han(text: str) -> bool:
    """Whether `text` holds at least one Chinese ideograph."""
    return HAN_CHAR.search(text) is not None
