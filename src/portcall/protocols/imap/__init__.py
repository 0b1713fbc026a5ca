"""IMAP4rev1 (RFC 3501) with STARTTLS (RFC 2595, RFC 3501 section 6.2.1): client and server
roles."""

from __future__ import annotations

from portcall.protocols.imap.client import (
    ImapClient,
)
from portcall.protocols.imap.messages import (
    AUTH_WAITING,
    LITERAL_END,
    MAX_LITERALS,
    Completion,
)
from portcall.protocols.imap.server import (
    MAX_ERRORS,
    ImapServer,
)

__all__ = [
    "AUTH_WAITING",
    "LITERAL_END",
    "MAX_ERRORS",
    "MAX_LITERALS",
    "Completion",
    "ImapClient",
    "ImapServer",
]
