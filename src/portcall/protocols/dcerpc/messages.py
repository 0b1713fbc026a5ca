"""What both endpoint-mapper roles put on the wire and read from it: connection-oriented
DCE/RPC PDUs (C706 chapter 12, MS-RPCE 2.2.2), the NDR of ept_map (C706 appendix O,
MS-RPCE 2.2.1.2) and the protocol towers it carries (C706 appendix L), packed with `struct`.

Everything here is little-endian NDR with ASCII characters and IEEE floats (data
representation 0x10): the only one Windows and Samba send, and the only one read here.
"""

from __future__ import annotations

import struct
import uuid
from dataclasses import dataclass
from typing import Final

from portcall.protocols.base import RemoteProtocolError

# -- PDU types and constants (C706 12.6.4) -----------------------------------------------------

REQUEST: Final = 0
RESPONSE: Final = 2
FAULT: Final = 3
BIND: Final = 11
BIND_ACK: Final = 12
BIND_NAK: Final = 13
PDU_NAMES: Final = {
    REQUEST: "request",
    RESPONSE: "response",
    FAULT: "fault",
    BIND: "bind",
    BIND_ACK: "bind_ack",
    BIND_NAK: "bind_nak",
    14: "alter_context",
    15: "alter_context_resp",
    17: "shutdown",
    18: "co_cancel",
    19: "orphaned",
}
PFC_FIRST_FRAG: Final = 0x01
PFC_LAST_FRAG: Final = 0x02
#: A REQUEST whose header is followed by an object UUID (C706 12.6.3.1).
PFC_OBJECT_UUID: Final = 0x80
#: Little-endian integers, ASCII characters, IEEE floats.
DREP_LE: Final = b"\x10\x00\x00\x00"
MAX_FRAG: Final = 5840
#: Fragments and bytes of one reassembled response, at most: an ept_map answer is one
#: fragment of a few hundred bytes.
MAX_FRAGMENTS: Final = 16
MAX_STUB: Final = 64 * 1024

#: Presentation context results (C706 12.6.3.1) and fault status codes (C706 appendix E).
ACCEPTANCE: Final = 0
PROVIDER_REJECTION: Final = 2
REASON_ABSTRACT_SYNTAX: Final = 1
REASON_TRANSFER_SYNTAXES: Final = 2
NCA_S_OP_RNG_ERROR: Final = 0x1C010002
NCA_S_PROTO_ERROR: Final = 0x1C01000B
#: ept_map's status when no endpoint is registered for the interface, and ept_lookup's when
#: there are no more entries (C706 appendix O).
EPT_S_NOT_REGISTERED: Final = 0x16C9A0D6
EPT_S_NO_MORE_ENTRIES: Final = 0x16C9A0D6

EPT_LOOKUP: Final = 2
EPT_MAP: Final = 3


@dataclass(frozen=True)
class Interface:
    """An RPC interface: its UUID and version."""

    name: str
    uuid: uuid.UUID
    major: int
    minor: int = 0

    def syntax(self) -> bytes:
        """The p_syntax_id_t: UUID then a 32-bit version, major in the low half."""
        return self.uuid.bytes_le + struct.pack("<HH", self.major, self.minor)


EPM: Final = Interface("epmapper", uuid.UUID("e1af8308-5d1f-11c9-91a4-08002b14a0fa"), 3)
NDR: Final = Interface("ndr", uuid.UUID("8a885d04-1ceb-11c9-9fe8-08002b104860"), 2)
DRSUAPI: Final = Interface("drsuapi", uuid.UUID("e3514235-4b06-11d1-ab04-00c04fc2dcd2"), 4)
NETLOGON: Final = Interface("netlogon", uuid.UUID("12345678-1234-abcd-ef00-01234567cffb"), 1)
#: The interfaces the client maps, in order: the directory's and Netlogon's.
DC_INTERFACES: Final = (DRSUAPI, NETLOGON)

#: The ranges Windows hands dynamic RPC ports from: since Server 2008 (KB 929851), and on
#: 2000/2003 (KB 154596).
DYNAMIC_RANGES: Final = ((49152, 65535), (1025, 5000))

_HEADER: Final = struct.Struct("<BBBB4sHHI")
HEADER_SIZE: Final = _HEADER.size


class MalformedPdu(RemoteProtocolError):
    """Bytes that are not a well-formed connection-oriented DCE/RPC PDU."""


@dataclass(frozen=True)
class Pdu:
    ptype: int
    flags: int
    call_id: int
    body: bytes

    @property
    def name(self) -> str:
        return PDU_NAMES.get(self.ptype, f"PDU type {self.ptype}")


def dynamic_range(port: int) -> str | None:
    """The dynamic range `port` lies in, as "low-high", or None."""
    return next((f"{low}-{high}" for low, high in DYNAMIC_RANGES if low <= port <= high), None)


# -- the PDU header ----------------------------------------------------------------------------


def pdu(
    ptype: int, call_id: int, body: bytes, flags: int = PFC_FIRST_FRAG | PFC_LAST_FRAG
) -> bytes:
    length = HEADER_SIZE + len(body)
    return _HEADER.pack(5, 0, ptype, flags, DREP_LE, length, 0, call_id) + body


def parse_header(header: bytes) -> tuple[int, int, int, int, int]:
    """(ptype, flags, frag_length, auth_length, call_id) of a 16-byte header, or MalformedPdu."""
    version, minor, ptype, flags, drep, length, auth, call_id = _HEADER.unpack(header)
    if version != 5 or minor > 1:
        raise MalformedPdu(f"RPC version {version}.{minor}, not 5.0 or 5.1")
    if drep[0] & 0xF0 != 0x10:
        raise MalformedPdu("a big-endian PDU, which no Windows or Samba peer sends")
    if not HEADER_SIZE <= length <= MAX_FRAG * 2 or auth > length - HEADER_SIZE:
        raise MalformedPdu(f"a fragment length of {length}")
    return ptype, flags, length, auth, call_id


# -- bind --------------------------------------------------------------------------------------


def bind(call_id: int, interface: Interface = EPM) -> bytes:
    """BIND with one presentation context: `interface` over NDR (C706 12.6.4.3)."""
    context = struct.pack("<HBB", 0, 1, 0) + interface.syntax() + NDR.syntax()
    body = struct.pack("<HHI", MAX_FRAG, MAX_FRAG, 0) + struct.pack("<BBH", 1, 0, 0) + context
    return pdu(BIND, call_id, body)


def parse_bind(body: bytes) -> list[tuple[int, bytes, list[bytes]]]:
    """The presentation contexts of a BIND: (context id, abstract syntax, transfer syntaxes)."""
    _need(body, 12, "BIND")
    count = body[8]
    contexts, pos = [], 12
    for _ in range(count):
        _need(body, pos + 24, "BIND context")
        context_id, transfers = struct.unpack_from("<HB", body, pos)
        abstract = body[pos + 4 : pos + 24]
        pos += 24
        _need(body, pos + 20 * transfers, "BIND transfer syntax")
        syntaxes = [body[pos + 20 * i : pos + 20 * (i + 1)] for i in range(transfers)]
        pos += 20 * transfers
        contexts.append((context_id, abstract, syntaxes))
    return contexts


def bind_ack(call_id: int, results: list[tuple[int, int]], port: str = "135") -> bytes:
    """BIND_ACK with the secondary address and one result per context (C706 12.6.4.4):
    (result, reason); an accepted context names NDR, a rejected one a zero syntax."""
    address = port.encode() + b"\x00"
    body = struct.pack("<HHIH", MAX_FRAG, MAX_FRAG, 0x12345, len(address)) + address
    body += b"\x00" * (-(HEADER_SIZE + len(body)) % 4)
    body += struct.pack("<BBH", len(results), 0, 0)
    for result, reason in results:
        syntax = NDR.syntax() if result == ACCEPTANCE else b"\x00" * 20
        body += struct.pack("<HH", result, reason) + syntax
    return pdu(BIND_ACK, call_id, body)


def parse_bind_ack(body: bytes) -> tuple[str, list[tuple[int, int]]]:
    """The secondary address and the (result, reason) of each context of a BIND_ACK."""
    _need(body, 10, "BIND_ACK")
    length = struct.unpack_from("<H", body, 8)[0]
    pos = 10 + length
    address = body[10:pos].rstrip(b"\x00").decode("ascii", "replace")
    pos += -(HEADER_SIZE + pos) % 4
    _need(body, pos + 4, "BIND_ACK result list")
    count = body[pos]
    pos += 4
    _need(body, pos + 24 * count, "BIND_ACK results")
    results = [struct.unpack_from("<HH", body, pos + 24 * i) for i in range(count)]
    return address, [(int(result), int(reason)) for result, reason in results]


# -- request, response, fault ------------------------------------------------------------------


def request(call_id: int, opnum: int, stub: bytes, context_id: int = 0) -> bytes:
    return pdu(REQUEST, call_id, struct.pack("<IHH", len(stub), context_id, opnum) + stub)


def parse_request(body: bytes, flags: int = 0) -> tuple[int, int, bytes]:
    """(context id, opnum, stub) of a REQUEST, past its object UUID when it has one."""
    start = 24 if flags & PFC_OBJECT_UUID else 8
    _need(body, start, "REQUEST")
    _, context_id, opnum = struct.unpack_from("<IHH", body)
    return context_id, opnum, body[start:]


def response(call_id: int, stub: bytes, context_id: int = 0) -> bytes:
    return pdu(RESPONSE, call_id, struct.pack("<IHBB", len(stub), context_id, 0, 0) + stub)


def response_stub(body: bytes) -> bytes:
    _need(body, 8, "RESPONSE")
    return body[8:]


def fault(call_id: int, status: int, context_id: int = 0) -> bytes:
    return pdu(FAULT, call_id, struct.pack("<IHBBI", 0, context_id, 0, 0, status) + b"\x00" * 4)


def fault_status(body: bytes) -> int:
    _need(body, 12, "FAULT")
    status: int = struct.unpack_from("<I", body, 8)[0]
    return status


def _need(body: bytes, size: int, what: str) -> None:
    if len(body) < size:
        raise MalformedPdu(f"a {what} cut short ({len(body)} bytes, {size} needed)")
