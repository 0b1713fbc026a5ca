"""SMB2 (MS-SMB2) messages both roles share: the direct-TCP framing, the 64-byte header,
NEGOTIATE (2.2.3, 2.2.4) with its negotiate contexts (2.2.3.1), SESSION_SETUP (2.2.5, 2.2.6)
and the error response (2.2.2).

Written with `struct`: the SMB libraries (impacket, smbprotocol) are whole client stacks, and
these messages are fixed little-endian layouts. Every offset and count from the peer is checked
against the message before use.
"""

from __future__ import annotations

import struct
import uuid
from dataclasses import dataclass, field
from typing import Final

from portcall.protocols.base import RemoteProtocolError
from portcall.protocols.ntlm.messages import filetime_text

#: Direct TCP transport (MS-SMB2 2.1): a zero byte and a 24-bit big-endian length.
FRAME_HEADER: Final = 4
MAX_FRAME: Final = 0xFFFFFF
#: NetBIOS session service keep-alive (RFC 1002 4.3.7), skipped when read.
KEEPALIVE: Final = 0x85
#: Keep-alives skipped while waiting for one message.
MAX_KEEPALIVES: Final = 8
SMB2_MAGIC: Final = b"\xfeSMB"
SMB1_MAGIC: Final = b"\xffSMB"

NEGOTIATE: Final = 0
SESSION_SETUP: Final = 1
COMMAND_NAMES: Final = {0: "NEGOTIATE", 1: "SESSION_SETUP", 2: "LOGOFF", 3: "TREE_CONNECT"}
FLAGS_SERVER_TO_REDIR: Final = 0x1

# NTSTATUS values (MS-ERREF 2.3.1).
STATUS_SUCCESS: Final = 0x00000000
STATUS_MORE_PROCESSING_REQUIRED: Final = 0xC0000016
STATUS_INVALID_PARAMETER: Final = 0xC000000D
STATUS_ACCESS_DENIED: Final = 0xC0000022
STATUS_LOGON_FAILURE: Final = 0xC000006D
STATUS_NOT_SUPPORTED: Final = 0xC00000BB
STATUS_NAMES: Final = {
    STATUS_SUCCESS: "STATUS_SUCCESS",
    STATUS_MORE_PROCESSING_REQUIRED: "STATUS_MORE_PROCESSING_REQUIRED",
    STATUS_INVALID_PARAMETER: "STATUS_INVALID_PARAMETER",
    STATUS_ACCESS_DENIED: "STATUS_ACCESS_DENIED",
    STATUS_LOGON_FAILURE: "STATUS_LOGON_FAILURE",
    STATUS_NOT_SUPPORTED: "STATUS_NOT_SUPPORTED",
}

# Dialects (MS-SMB2 2.2.3).
SMB202: Final = 0x0202
SMB210: Final = 0x0210
SMB300: Final = 0x0300
SMB302: Final = 0x0302
SMB311: Final = 0x0311
WILDCARD: Final = 0x02FF
DIALECT_NAMES: Final = {
    SMB202: "2.0.2",
    SMB210: "2.1",
    SMB300: "3.0",
    SMB302: "3.0.2",
    SMB311: "3.1.1",
    WILDCARD: "2.???",
}
CLIENT_DIALECTS: Final = (SMB202, SMB210, SMB300, SMB302, SMB311)

SIGNING_ENABLED: Final = 0x1
SIGNING_REQUIRED: Final = 0x2
CAPABILITY_NAMES: Final = {
    0x01: "DFS",
    0x02: "LEASING",
    0x04: "LARGE_MTU",
    0x08: "MULTI_CHANNEL",
    0x10: "PERSISTENT_HANDLES",
    0x20: "DIRECTORY_LEASING",
    0x40: "ENCRYPTION",
    0x80: "NOTIFICATIONS",
}

# Negotiate contexts (MS-SMB2 2.2.3.1).
PREAUTH_INTEGRITY: Final = 1
ENCRYPTION: Final = 2
SHA512: Final = 1
HASH_NAMES: Final = {SHA512: "SHA-512"}
CIPHER_NAMES: Final = {1: "AES-128-CCM", 2: "AES-128-GCM", 3: "AES-256-CCM", 4: "AES-256-GCM"}
CLIENT_CIPHERS: Final = (2, 1, 4, 3)
#: Bounds on what a peer may list: more than these is not a negotiation.
MAX_DIALECTS: Final = 64
MAX_CONTEXTS: Final = 16
MAX_IDS: Final = 32

HEADER: Final = struct.Struct("<4sHHIHHIIQIIQ16s")
_NEGOTIATE_REQUEST: Final = struct.Struct("<HHHHI16sIHH")
_NEGOTIATE_RESPONSE: Final = struct.Struct("<HHHH16sIIIIQQHHI")
_SESSION_SETUP_REQUEST: Final = struct.Struct("<HBBIIHHQ")
_SESSION_SETUP_RESPONSE: Final = struct.Struct("<HHHH")
_CONTEXT: Final = struct.Struct("<HHI")


class SmbError(RemoteProtocolError):
    """An SMB2 message that breaks its own layout."""


@dataclass
class Header:
    command: int
    status: int = STATUS_SUCCESS
    message_id: int = 0
    flags: int = 0
    credits: int = 1
    session_id: int = 0

    def pack(self) -> bytes:
        return HEADER.pack(
            SMB2_MAGIC,
            64,
            0,
            self.status,
            self.command,
            self.credits,
            self.flags,
            0,
            self.message_id,
            0xFEFF,
            0,
            self.session_id,
            bytes(16),
        )


def parse_header(message: bytes) -> Header:
    if len(message) < HEADER.size or message[:4] != SMB2_MAGIC:
        raise SmbError("a message without an SMB2 header")
    _, size, _, status, command, credits, flags, _, mid, _, _, sid, _ = HEADER.unpack_from(message)
    if size != HEADER.size:
        raise SmbError(f"an SMB2 header that says it is {size} bytes long, not 64")
    return Header(command, status, mid, flags, credits, sid)


def frame(message: bytes) -> bytes:
    return struct.pack(">I", len(message)) + message


def frame_length(head: bytes) -> int | None:
    """The length a frame header announces; None for a NetBIOS keep-alive to skip. Raises
    `SmbError` for a first byte that is not a session message."""
    if head[0] == KEEPALIVE:
        return None
    if head[0] != 0:
        raise SmbError(f"a frame that does not start with a zero byte ({head!r})")
    return int.from_bytes(head[1:4], "big")


def status_name(status: int) -> str:
    return STATUS_NAMES.get(status, f"NTSTATUS 0x{status:08X}")


def dialect_name(dialect: int) -> str:
    return DIALECT_NAMES.get(dialect, f"0x{dialect:04X}")


def capability_names(capabilities: int) -> list[str]:
    return [name for bit, name in CAPABILITY_NAMES.items() if capabilities & bit]


def _pad8(data: bytes) -> bytes:
    return data + bytes(-len(data) % 8)


# -- negotiate contexts -------------------------------------------------------------------


def contexts_bytes(contexts: list[tuple[int, bytes]]) -> bytes:
    """Contexts laid out one after another, each starting on an 8-byte boundary."""
    out = b""
    for kind, data in contexts:
        out = _pad8(out) + _CONTEXT.pack(kind, len(data), 0) + data
    return out


def preauth_context(salt: bytes) -> tuple[int, bytes]:
    return PREAUTH_INTEGRITY, struct.pack("<HHH", 1, len(salt), SHA512) + salt


def encryption_context(ciphers: tuple[int, ...]) -> tuple[int, bytes]:
    return ENCRYPTION, struct.pack(f"<H{len(ciphers)}H", len(ciphers), *ciphers)


def parse_contexts(message: bytes, offset: int, count: int) -> dict[int, bytes]:
    """Negotiate contexts by type; offsets and lengths checked, at most `MAX_CONTEXTS`."""
    if count > MAX_CONTEXTS:
        raise SmbError(f"{count} negotiate contexts, more than {MAX_CONTEXTS}")
    found: dict[int, bytes] = {}
    at = offset
    for _ in range(count):
        at += -at % 8
        if at + _CONTEXT.size > len(message):
            raise SmbError("a negotiate context runs past the message")
        kind, length, _ = _CONTEXT.unpack_from(message, at)
        data = message[at + _CONTEXT.size : at + _CONTEXT.size + length]
        if len(data) != length:
            raise SmbError(f"negotiate context {kind} runs past the message")
        found.setdefault(kind, data)
        at += _CONTEXT.size + length
    return found


def id_list(data: bytes, counted_at: int, ids_at: int) -> list[int]:
    """A count followed by 16-bit identifiers (hash algorithms, ciphers), bounded."""
    if len(data) < counted_at + 2:
        raise SmbError("a negotiate context too short for its count")
    count = struct.unpack_from("<H", data, counted_at)[0]
    if count > MAX_IDS or ids_at + 2 * count > len(data):
        raise SmbError(f"a negotiate context listing {count} identifiers it does not hold")
    return list(struct.unpack_from(f"<{count}H", data, ids_at))


# -- NEGOTIATE ----------------------------------------------------------------------------


def negotiate_request(client_guid: bytes, salt: bytes, message_id: int = 0) -> bytes:
    """A NEGOTIATE offering 2.0.2 to 3.1.1, with the contexts 3.1.1 requires."""
    dialects = struct.pack(f"<{len(CLIENT_DIALECTS)}H", *CLIENT_DIALECTS)
    contexts = [preauth_context(salt), encryption_context(CLIENT_CIPHERS)]
    head_len = HEADER.size + _NEGOTIATE_REQUEST.size + len(dialects)
    context_at = head_len + (-head_len % 8)
    body = _NEGOTIATE_REQUEST.pack(
        36,
        len(CLIENT_DIALECTS),
        SIGNING_ENABLED,
        0,
        0x7F,
        client_guid,
        context_at,
        len(contexts),
        0,
    )
    first = Header(NEGOTIATE, message_id=message_id).pack() + body + dialects
    return _pad8(first) + contexts_bytes(contexts)


@dataclass
class NegotiateRequest:
    dialects: list[int]
    contexts: dict[int, bytes] = field(default_factory=dict)


def parse_negotiate_request(message: bytes) -> NegotiateRequest:
    at = HEADER.size
    if len(message) < at + _NEGOTIATE_REQUEST.size:
        raise SmbError("a NEGOTIATE request too short for its fields")
    _, count, _, _, _, _, context_at, context_count, _ = _NEGOTIATE_REQUEST.unpack_from(message, at)
    dialects_at = at + _NEGOTIATE_REQUEST.size
    if count > MAX_DIALECTS or dialects_at + 2 * count > len(message):
        raise SmbError(f"a NEGOTIATE request listing {count} dialects it does not hold")
    dialects = list(struct.unpack_from(f"<{count}H", message, dialects_at))
    contexts = parse_contexts(message, context_at, context_count) if SMB311 in dialects else {}
    return NegotiateRequest(dialects, contexts)


@dataclass
class NegotiateResponse:
    security_mode: int
    dialect: int
    server_guid: bytes
    capabilities: int
    max_transact: int
    max_read: int
    max_write: int
    system_time: int
    start_time: int = 0
    security_blob: bytes = b""
    contexts: dict[int, bytes] = field(default_factory=dict)


def negotiate_response(header: Header, answer: NegotiateResponse) -> bytes:
    blob_at = HEADER.size + _NEGOTIATE_RESPONSE.size
    contexts = [(kind, data) for kind, data in answer.contexts.items()]
    context_at = blob_at + len(answer.security_blob)
    context_at += -context_at % 8
    body = _NEGOTIATE_RESPONSE.pack(
        65,
        answer.security_mode,
        answer.dialect,
        len(contexts) if contexts else 0,
        answer.server_guid,
        answer.capabilities,
        answer.max_transact,
        answer.max_read,
        answer.max_write,
        answer.system_time,
        answer.start_time,
        blob_at,
        len(answer.security_blob),
        context_at if contexts else 0,
    )
    first = header.pack() + body + answer.security_blob
    return _pad8(first) + contexts_bytes(contexts) if contexts else first


def parse_negotiate_response(message: bytes) -> NegotiateResponse:
    at = HEADER.size
    if len(message) < at + _NEGOTIATE_RESPONSE.size:
        raise SmbError("a NEGOTIATE response too short for its fields")
    (
        size,
        mode,
        dialect,
        context_count,
        guid,
        caps,
        transact,
        read,
        write,
        now,
        start,
        blob_at,
        blob_len,
        context_at,
    ) = _NEGOTIATE_RESPONSE.unpack_from(message, at)
    if size != 65:
        raise SmbError(f"a NEGOTIATE response whose structure size is {size}, not 65")
    answer = NegotiateResponse(
        mode,
        dialect,
        guid,
        caps,
        transact,
        read,
        write,
        now,
        start,
        security_blob=_buffer(message, blob_at, blob_len),
    )
    if dialect == SMB311:
        answer.contexts = parse_contexts(message, context_at, context_count)
    return answer


def _buffer(message: bytes, offset: int, length: int) -> bytes:
    if length and (offset < HEADER.size or offset + length > len(message)):
        raise SmbError(f"a security buffer of {length} bytes at {offset} outside the message")
    return message[offset : offset + length]


def describe(answer: NegotiateResponse) -> dict[str, object]:
    """The negotiate facts as plain JSON-able values."""
    facts: dict[str, object] = {
        "dialect": dialect_name(answer.dialect),
        "signing_enabled": bool(answer.security_mode & SIGNING_ENABLED),
        "signing_required": bool(answer.security_mode & SIGNING_REQUIRED),
        "server_guid": str(uuid.UUID(bytes_le=answer.server_guid)),
        "system_time": filetime_text(answer.system_time),
        "max_transact_size": answer.max_transact,
        "max_read_size": answer.max_read,
        "max_write_size": answer.max_write,
        "capabilities": capability_names(answer.capabilities),
    }
    if PREAUTH_INTEGRITY in answer.contexts:
        hashes = id_list(answer.contexts[PREAUTH_INTEGRITY], 0, 4)
        facts["preauth_integrity"] = [HASH_NAMES.get(h, str(h)) for h in hashes]
    if ENCRYPTION in answer.contexts:
        ciphers = id_list(answer.contexts[ENCRYPTION], 0, 2)
        facts["ciphers"] = [CIPHER_NAMES.get(c, str(c)) for c in ciphers]
    return facts


# -- SESSION_SETUP and errors ------------------------------------------------------------


def session_setup_request(token: bytes, message_id: int) -> bytes:
    blob_at = HEADER.size + _SESSION_SETUP_REQUEST.size
    body = _SESSION_SETUP_REQUEST.pack(25, 0, SIGNING_ENABLED, 0, 0, blob_at, len(token), 0)
    return Header(SESSION_SETUP, message_id=message_id).pack() + body + token


def session_setup_token(message: bytes) -> bytes:
    """The security buffer of a SESSION_SETUP request."""
    at = HEADER.size
    if len(message) < at + _SESSION_SETUP_REQUEST.size:
        raise SmbError("a SESSION_SETUP request too short for its fields")
    _, _, _, _, _, blob_at, blob_len, _ = _SESSION_SETUP_REQUEST.unpack_from(message, at)
    return _buffer(message, blob_at, blob_len)


def session_setup_response(header: Header, token: bytes) -> bytes:
    blob_at = HEADER.size + _SESSION_SETUP_RESPONSE.size
    body = _SESSION_SETUP_RESPONSE.pack(9, 0, blob_at, len(token))
    return header.pack() + body + token


def session_setup_blob(message: bytes) -> bytes:
    """The security buffer of a SESSION_SETUP response."""
    at = HEADER.size
    if len(message) < at + _SESSION_SETUP_RESPONSE.size:
        raise SmbError("a SESSION_SETUP response too short for its fields")
    size, _, blob_at, blob_len = _SESSION_SETUP_RESPONSE.unpack_from(message, at)
    if size != 9:
        raise SmbError(f"a SESSION_SETUP response whose structure size is {size}, not 9")
    return _buffer(message, blob_at, blob_len)


def error_response(header: Header) -> bytes:
    """The ERROR response (MS-SMB2 2.2.2) a server sends with a failure status."""
    return header.pack() + struct.pack("<HBBI", 9, 0, 0, 0) + b"\x00"
