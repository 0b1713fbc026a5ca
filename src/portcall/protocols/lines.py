"""Line-based replies shared by SMTP, POP3, IMAP4 and NNTP."""

from __future__ import annotations

import re
from collections.abc import Generator
from dataclasses import dataclass

from portcall.protocols.base import Event, Handshake

_CODE_LINE = re.compile(r"^(\d{3})([ -]?)(.*)$")

#: More lines than any honest capability list holds; a peer that sends more is cut off.
MAX_LINES = 500


@dataclass(frozen=True)
class CodeReply:
    """A numbered reply (SMTP, NNTP): the code and the text of each line."""

    code: int
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        return self.lines[0] if self.lines else ""

    @property
    def ok(self) -> bool:
        return 200 <= self.code < 400


def read_code_reply(hs: Handshake) -> Generator[Event, None, CodeReply]:
    """A reply of one or more `NNN-text` lines ending with `NNN text` (RFC 5321 section 4.2)."""
    lines: list[str] = []
    while True:
        line = yield from hs.read_line()
        match = _CODE_LINE.match(line)
        if match is None:
            raise hs.wrong_protocol(f"unexpected reply {line[:60]!r}")
        code, separator, text = match.groups()
        lines.append(text)
        if separator != "-":
            return CodeReply(int(code), tuple(lines))
        if len(lines) >= MAX_LINES:
            raise hs.wrong_protocol(f"a reply of more than {MAX_LINES} lines")


def read_dot_block(hs: Handshake) -> Generator[Event, None, list[str]]:
    """Lines up to a lone `.`, with dot-stuffing removed (RFC 1939 section 3, RFC 3977 3.1.1)."""
    lines: list[str] = []
    while True:
        line = yield from hs.read_line()
        if line == ".":
            return lines
        lines.append(line[1:] if line.startswith("..") else line)
        if len(lines) >= MAX_LINES:
            raise hs.wrong_protocol(f"a list of more than {MAX_LINES} lines")
