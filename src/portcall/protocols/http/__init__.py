"""HTTP/1.1 (RFC 9110, RFC 9112), client and server roles, with h11 doing all of the parsing.

A few GETs on one keep-alive connection show that HTTP answers and whether Outlook Web Access
lives at its Exchange 2000/2003 paths. Redirects are reported, never followed: where they lead is
a fact about the server, and following them could take the probe to another host.

The server role answers as IIS with Outlook Web Access answers a browser that has not logged on:
a home page, a 401 challenge at /exchange/ and the OWA logon form.
"""

from __future__ import annotations

from portcall.protocols.http.client import (
    CLOSED,
    HEAD_LIMIT,
    OWA_AUTH_SCHEMES,
    OWA_LOGON,
    OWA_PATHS,
    STATUS_LINE_START,
    UNUSABLE,
    USER_AGENT,
    Answer,
    HttpClient,
)
from portcall.protocols.http.server import (
    ALLOWED_METHODS,
    MAX_FAILURES,
    MAX_REQUESTS,
    OWA_LOGON_PAGE,
    SERVER_HEADERS,
    HttpServer,
)

__all__ = [
    "ALLOWED_METHODS",
    "CLOSED",
    "HEAD_LIMIT",
    "MAX_FAILURES",
    "MAX_REQUESTS",
    "OWA_AUTH_SCHEMES",
    "OWA_LOGON",
    "OWA_LOGON_PAGE",
    "OWA_PATHS",
    "SERVER_HEADERS",
    "STATUS_LINE_START",
    "UNUSABLE",
    "USER_AGENT",
    "Answer",
    "HttpClient",
    "HttpServer",
]
