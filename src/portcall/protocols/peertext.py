"""Peer text as a person reads it in a reason: the words themselves, quoted, never a repr.

Every protocol quotes what a peer said through `quoted`, so evidence reads the same whichever
protocol found it. The text is left as it came (control characters included): each report
path makes peer text inert where it is written out.
"""

from __future__ import annotations

from typing import Final

#: How many characters of peer text a reason quotes, at most: a whole banner line of most
#: services (Exchange's SMTP greeting is cut after its version and "ready at").
QUOTE_CHARS: Final = 88
ELLIPSIS: Final = "…"


def as_text(data: bytes | str) -> str:
    """Peer bytes decoded as UTF-8, with any invalid byte replaced; text unchanged."""
    if isinstance(data, str):
        return data
    return data.decode("utf-8", "replace")


def quoted(data: bytes | str, limit: int = QUOTE_CHARS) -> str:
    """`data` as text in double quotes, without its trailing line end, cut to `limit`
    characters with an ellipsis when longer."""
    text = as_text(data).rstrip("\r\n")
    if len(text) > limit:
        text = _cut(text, limit) + " " + ELLIPSIS
    return f'"{text}"'


def _cut(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, back to the last space when one is near the end, so
    that no word is shown half."""
    head = text[:limit]
    space = head.rfind(" ")
    if text[limit] != " " and space >= limit * 3 // 4:
        head = head[:space]
    return head.rstrip()
