"""SMB2 (MS-SMB2) NEGOTIATE and the NTLM identity behind SESSION_SETUP, client and server roles.

The client offers dialects 2.0.2 to 3.1.1, reports what the server chose (dialect, signing,
GUID, time, sizes, capabilities), then starts NTLM in a SESSION_SETUP to read the server's
CHALLENGE_MESSAGE and stops: no credentials are sent. With ``multi_protocol`` it opens with the
SMB1 multi-protocol NEGOTIATE (`smb1`), which an SMB1-only server (Windows 2000/2003) answers
in SMB1 instead of closing. The server role answers the same requests as a domain controller
would and refuses everything else. `spnego` holds the few RFC 4178 tokens both roles need.
"""

from __future__ import annotations

from portcall.protocols.smb.client import SmbClient
from portcall.protocols.smb.messages import (
    CLIENT_DIALECTS,
    MAX_KEEPALIVES,
    SMB1_MAGIC,
    SMB2_MAGIC,
    STATUS_LOGON_FAILURE,
    STATUS_MORE_PROCESSING_REQUIRED,
    SmbError,
    dialect_name,
    frame,
    status_name,
)
from portcall.protocols.smb.server import MAX_REQUESTS, SERVER_DIALECTS, SmbServer

__all__ = [
    "CLIENT_DIALECTS",
    "MAX_KEEPALIVES",
    "MAX_REQUESTS",
    "SERVER_DIALECTS",
    "SMB1_MAGIC",
    "SMB2_MAGIC",
    "STATUS_LOGON_FAILURE",
    "STATUS_MORE_PROCESSING_REQUIRED",
    "SmbClient",
    "SmbError",
    "SmbServer",
    "dialect_name",
    "frame",
    "status_name",
]
