"""Name the protocol behind a few bytes a peer sent: the evidence for `wrong-protocol`."""

from __future__ import annotations

import re

_TEXT_PATTERNS: tuple[tuple[re.Pattern[bytes], str], ...] = (
    (re.compile(rb"^HTTP/\d\.\d \d{3}"), "HTTP"),
    (re.compile(rb"^\{[0-9A-Fa-f]{8}\} ?NODEINFO"), "Exchange routing (RESvc)"),
    (re.compile(rb"^SSH-\d\.\d"), "SSH"),
    (re.compile(rb"^\+OK"), "POP3"),
    (re.compile(rb"^-ERR"), "POP3"),
    (re.compile(rb"^\* (OK|PREAUTH|BYE)"), "IMAP4"),
    (re.compile(rb"^\S+ (BAD|NO) ", re.I), "IMAP4"),
    (re.compile(rb"^220[ -].*\bE?SMTP\b", re.I), "SMTP"),
    (re.compile(rb"^220[ -].*(\bFTP\b|FTPd\b|\bProFTPD\b)", re.I), "FTP"),
    (re.compile(rb"^2[02][01][ -].*\b(NNTP|news|InterNetNews|INN)\b", re.I), "NNTP"),
    (re.compile(rb"^20[01] "), "NNTP"),
    (re.compile(rb"^220[ -]"), "SMTP"),
    (re.compile(rb"^(421|554)[ -]"), "SMTP"),
    (re.compile(rb"^5\d\d[ -]"), "a line protocol (SMTP, NNTP or FTP)"),
    (re.compile(rb"^<(!DOCTYPE|html)", re.I), "HTTP"),
)


def _looks_like_tls(data: bytes) -> bool:
    # A TLS record: content type handshake (22) or alert (21), version 3.x.
    return len(data) >= 3 and data[0] in (0x15, 0x16) and data[1] == 0x03 and data[2] <= 0x04


def _looks_like_ldap(data: bytes) -> bool:
    # An LDAPMessage is a BER SEQUENCE whose first element is an INTEGER messageID.
    if len(data) < 4 or data[0] != 0x30:
        return False
    length = data[1]
    offset = 2 if length < 0x80 else 2 + (length & 0x7F)
    return len(data) > offset and data[offset] == 0x02


#: DCE/RPC connection-oriented PDU types a server sends (C706 12.6.4): response, fault,
#: bind_ack, bind_nak, alter_context_resp, shutdown.
_RPC_SERVER_PTYPES = frozenset({2, 3, 12, 13, 15, 17})


def _looks_like_dcerpc(data: bytes) -> bool:
    # Version 5.0 or 5.1, a server's PDU type, and the NDR data representation's first byte
    # (little-endian integers and ASCII: 0x10, or big-endian: 0x00).
    return (
        len(data) >= 8
        and data[0] == 5
        and data[1] in (0, 1)
        and data[2] in _RPC_SERVER_PTYPES
        and data[4] in (0x10, 0x00)
    )


def _looks_like_smb(data: bytes) -> bool:
    # Direct TCP transport (MS-SMB2 2.1): a zero byte and a 3-byte length, then an SMB2 or
    # SMB1 header's protocol ID.
    return len(data) >= 8 and data[0] == 0 and data[4:8] in (b"\xfeSMB", b"\xffSMB")


def _looks_like_kerberos_tcp(data: bytes) -> bool:
    # A 4-byte length (RFC 4120 7.2.2), then an AS-REP, TGS-REP or KRB-ERROR's APPLICATION tag
    # (11, 13, 30) whose BER length agrees with it: text never does.
    if len(data) < 8 or data[4] not in (0x6B, 0x6D, 0x7E):
        return False
    prefix = int.from_bytes(data[:4], "big")
    first = data[5]
    if first < 0x80:
        return prefix == first + 2
    width = first & 0x7F
    if width not in (1, 2) or len(data) < 6 + width:
        return False
    return prefix == int.from_bytes(data[6 : 6 + width], "big") + 2 + width


_BINARY_PATTERNS = (
    (_looks_like_dcerpc, "DCE/RPC"),
    (_looks_like_smb, "SMB"),
    (_looks_like_kerberos_tcp, "Kerberos"),
)

#: How a name begins when the expected protocol itself answered, but broke its rules.
NON_CONFORMING = "a non-conforming "


def non_conforming(name: str) -> str:
    """What answered, when it is the expected protocol breaking its own rules."""
    return f"{NON_CONFORMING}{name} service"


def identify(data: bytes) -> str | None:
    """A person's name for the protocol these first bytes belong to, or None."""
    if not data:
        return None
    if _looks_like_tls(data):
        return "TLS"
    if _looks_like_ldap(data):
        return "LDAP"
    for looks_like, name in _BINARY_PATTERNS:
        if looks_like(data):
            return name
    head = data[:256]
    for pattern, name in _TEXT_PATTERNS:
        if pattern.search(head):
            return name
    return None
