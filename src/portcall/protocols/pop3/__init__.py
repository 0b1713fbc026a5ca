"""POP3 (RFC 1939) with CAPA and STLS (RFC 2449, RFC 2595): client and server roles."""

from __future__ import annotations

from portcall.protocols.pop3.client import (
    Pop3Client,
)
from portcall.protocols.pop3.messages import (
    ERR,
    OK,
)
from portcall.protocols.pop3.server import (
    MAX_ERRORS,
    Pop3Server,
)

__all__ = [
    "ERR",
    "MAX_ERRORS",
    "OK",
    "Pop3Client",
    "Pop3Server",
]
