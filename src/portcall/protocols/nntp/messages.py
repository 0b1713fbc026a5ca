"""NNTP reply codes both roles use."""

from __future__ import annotations

#: Greetings (RFC 3977 section 5.1.1): posting allowed, posting prohibited.
POSTING_ALLOWED = 200
POSTING_PROHIBITED = 201
#: Greetings that turn the client away: temporarily, permanently.
SERVICE_UNAVAILABLE = 400
SERVICE_REFUSED = 502
#: The capability list follows (RFC 3977 section 5.2.2).
CAPABILITY_LIST = 101
#: Go ahead with the TLS handshake (RFC 4642 section 2.2.2).
CONTINUE_WITH_TLS = 382
#: Further reply codes the server role uses (RFC 3977 section 3.2.1 and each command's
#: section; 580 from RFC 4642 section 2.2.2).
HELP_FOLLOWS = 100
SERVER_DATE = 111
CLOSING_CONNECTION = 205
LIST_FOLLOWS = 215
NEW_GROUPS_FOLLOW = 231
NO_SUCH_GROUP = 411
NO_GROUP_SELECTED = 412
NO_SUCH_ARTICLE = 430
NOT_WANTED = 435
POSTING_NOT_PERMITTED = 440
UNKNOWN_COMMAND = 500
SYNTAX_ERROR = 501
COMMAND_UNAVAILABLE = 502
TLS_NOT_POSSIBLE = 580
