"""NNTP (RFC 3977) with STARTTLS (RFC 4642): client and server roles."""

from __future__ import annotations

from portcall.protocols.nntp.client import (
    NntpClient,
)
from portcall.protocols.nntp.messages import (
    CAPABILITY_LIST,
    CLOSING_CONNECTION,
    COMMAND_UNAVAILABLE,
    CONTINUE_WITH_TLS,
    HELP_FOLLOWS,
    LIST_FOLLOWS,
    NEW_GROUPS_FOLLOW,
    NO_GROUP_SELECTED,
    NO_SUCH_ARTICLE,
    NO_SUCH_GROUP,
    NOT_WANTED,
    POSTING_ALLOWED,
    POSTING_NOT_PERMITTED,
    POSTING_PROHIBITED,
    SERVER_DATE,
    SERVICE_REFUSED,
    SERVICE_UNAVAILABLE,
    SYNTAX_ERROR,
    TLS_NOT_POSSIBLE,
    UNKNOWN_COMMAND,
)
from portcall.protocols.nntp.server import (
    MAX_ERRORS,
    NNTP_SERVICE_BUILDS,
    NntpServer,
)

__all__ = [
    "CAPABILITY_LIST",
    "CLOSING_CONNECTION",
    "COMMAND_UNAVAILABLE",
    "CONTINUE_WITH_TLS",
    "HELP_FOLLOWS",
    "LIST_FOLLOWS",
    "MAX_ERRORS",
    "NEW_GROUPS_FOLLOW",
    "NNTP_SERVICE_BUILDS",
    "NOT_WANTED",
    "NO_GROUP_SELECTED",
    "NO_SUCH_ARTICLE",
    "NO_SUCH_GROUP",
    "POSTING_ALLOWED",
    "POSTING_NOT_PERMITTED",
    "POSTING_PROHIBITED",
    "SERVER_DATE",
    "SERVICE_REFUSED",
    "SERVICE_UNAVAILABLE",
    "SYNTAX_ERROR",
    "TLS_NOT_POSSIBLE",
    "UNKNOWN_COMMAND",
    "NntpClient",
    "NntpServer",
]
