"""Make text that came from a peer harmless to print.

Banners, capabilities and certificate fields are chosen by whoever runs the server. Printed as
they are, an escape sequence could move the cursor, recolour or hide a line, or forge a row of
the report; an invisible or reordering character could make one name look like another; rich
markup in them could restyle it. Every such character is shown as an escape, and so is the
backslash itself, so that an escape on screen always stands for one character of the original:
a banner holding the four characters ``\\x1b`` is shown as ``\\\\x1b``, never like an ESC.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

#: ASCII text needs only these: C0 controls, DEL and the backslash.
_UNSAFE_ASCII = re.compile(r"[\x00-\x1f\x7f\\]")

#: Unicode categories never shown as they are: controls (C0, C1), format characters (bidi
#: marks, overrides and isolates, U+061C, zero-width space/joiners, U+2060, U+FEFF, soft
#: hyphen; CVE-2021-42574), surrogates, and the line and paragraph separators.
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})

#: Letters and marks that render as nothing and so can hide in a name: Hangul fillers, the
#: Braille blank, the combining grapheme joiner, Khmer inherent vowels and variation selectors.
_INVISIBLE = frozenset(
    "\u115f\u1160\u2800\u3164\uffa0\u034f\u17b4\u17b5"
    + "".join(map(chr, [*range(0x180B, 0x1810), *range(0xFE00, 0xFE10)]))
    + "".join(map(chr, range(0xE0100, 0xE01F0)))
)


def _escape(char: str) -> str:
    if char == "\\":
        return "\\\\"
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def _unsafe(char: str) -> bool:
    return char in _INVISIBLE or unicodedata.category(char) in _UNSAFE_CATEGORIES


def is_plain(text: str, limit: int) -> bool:
    """Whether `text` is printable ASCII without a backslash, within `limit`: the common case,
    which `inert` returns as it is, decided without a look at each character in Python."""
    return len(text) <= limit and text.isascii() and text.isprintable() and "\\" not in text


def inert(text: object, limit: int = 400) -> str:
    """`text` with every control, invisible or reordering character and every backslash
    escaped, cut to `limit` characters (an ellipsis marks the cut)."""
    raw = text if type(text) is str else str(text)
    if is_plain(raw, limit):
        return raw
    raw = raw[: limit + 1]  # escaping only lengthens: no need to look further
    if raw.isascii():
        cleaned = _UNSAFE_ASCII.sub(lambda match: _escape(match.group()), raw)
        if len(cleaned) <= limit:
            return cleaned
    pieces = [_escape(c) if c == "\\" or _unsafe(c) else c for c in raw]
    return _cut(pieces, limit)


def _cut(pieces: list[str], limit: int) -> str:
    """The pieces joined, or as many as fit before an ellipsis: an escape is never split."""
    if sum(map(len, pieces)) <= limit:
        return "".join(pieces)
    kept, used = [], 0
    for piece in pieces:
        if used + len(piece) > limit - 1:
            break
        kept.append(piece)
        used += len(piece)
    return "".join(kept) + "…"


#: How much of one string value a machine-readable document keeps.
DOCUMENT_LIMIT = 8192


def inert_tree(value: Any, limit: int = DOCUMENT_LIMIT) -> Any:
    """`value` (dicts, lists and scalars, as bound for JSON) with every string made inert, so
    that a consumer printing a field (``jq -r``) prints no control or invisible character."""
    if isinstance(value, str):
        return inert(value, limit)
    if isinstance(value, dict):
        return {inert(k, limit): inert_tree(v, limit) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [inert_tree(item, limit) for item in value]
    return value
