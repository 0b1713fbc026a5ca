"""Make text that came from a peer harmless to print.

Banners, capabilities and certificate fields are chosen by whoever runs the server. Printed as
they are, an escape sequence could move the cursor, recolour or hide a line, or forge a row of
the report; rich markup in them could restyle it. Every such character is shown as an escape.
"""

from __future__ import annotations

import re

# C0 and C1 controls, DEL, and the Unicode bidirectional overrides and isolates that can make a
# line read in another order than it is written (CVE-2021-42574).
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def inert(text: object, limit: int = 400) -> str:
    """`text` with every control character escaped, cut to `limit` characters."""
    cleaned = _UNSAFE.sub(_escape, str(text))
    if len(cleaned) > limit:
        cleaned = cleaned[: limit - 1] + "…"
    return cleaned
