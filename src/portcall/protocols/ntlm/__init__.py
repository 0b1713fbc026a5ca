"""NTLM identity (MS-NLMP): the NEGOTIATE_MESSAGE that starts NTLM without credentials and the
CHALLENGE_MESSAGE whose AV pairs and VERSION name the server, its domain and its Windows
version, usable over SMB, HTTP, SMTP, IMAP and POP3."""

from __future__ import annotations

from portcall.protocols.ntlm.client import (
    CANCEL,
    IMAP,
    MAX_TOKEN_CHARS,
    POP3,
    SMTP,
    TextFraming,
    authorization_header,
    challenge_from_headers,
    challenge_from_line,
    decode_token,
    encode_token,
    is_continuation,
    negotiate_line,
    note_ntlm,
    record_challenge,
)
from portcall.protocols.ntlm.messages import (
    CLIENT_FLAGS,
    MAX_AV_PAIRS,
    SIGNATURE,
    Challenge,
    Identity,
    NtlmError,
    Version,
    challenge_message,
    negotiate_flags,
    negotiate_message,
    parse_challenge,
    windows_name,
)
from portcall.protocols.ntlm.server import (
    CANCELLED,
    PROFILE_VERSIONS,
    NtlmChallenger,
    host_identity,
)

__all__ = [
    "CANCEL",
    "CANCELLED",
    "CLIENT_FLAGS",
    "IMAP",
    "MAX_AV_PAIRS",
    "MAX_TOKEN_CHARS",
    "POP3",
    "PROFILE_VERSIONS",
    "SIGNATURE",
    "SMTP",
    "Challenge",
    "Identity",
    "NtlmChallenger",
    "NtlmError",
    "TextFraming",
    "Version",
    "authorization_header",
    "challenge_from_headers",
    "challenge_from_line",
    "challenge_message",
    "decode_token",
    "encode_token",
    "host_identity",
    "is_continuation",
    "negotiate_flags",
    "negotiate_line",
    "negotiate_message",
    "note_ntlm",
    "parse_challenge",
    "record_challenge",
    "windows_name",
]
