"""What both CLDAP roles put on the wire and read from it: the LDAP "ping" search of MS-ADTS
6.3.3, the NETLOGON_SAM_LOGON_RESPONSE_EX structure it returns (6.3.1.9) with its RFC 1035
compressed names, the DS_* flags, and the framing (a datagram over UDP, BER over TCP).

The LDAP messages themselves are built and read with pyasn1 and pyasn1-modules' LDAP schema,
through the helpers of the LDAP package.
"""

from __future__ import annotations

import struct
import uuid
from collections import deque
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any, Final

from pyasn1.codec.ber import decoder, encoder

from portcall.protocols.base import (
    NEED_DATA,
    LocalProtocolError,
    NeedData,
    PeerClosed,
    RemoteProtocolError,
    SansIO,
)
from portcall.protocols.framing import check_transport
from portcall.protocols.ldap.messages import (
    DECODE_ERRORS,
    MESSAGE_SCHEMA,
    FramingError,
    base_search,
    read_frame,
)

#: The one attribute an LDAP ping asks for (MS-ADTS 6.3.3).
NETLOGON_ATTRIBUTE: Final = "Netlogon"
#: NtVer 6: NETLOGON_NT_VERSION_5 | NETLOGON_NT_VERSION_5EX, which asks for
#: NETLOGON_SAM_LOGON_RESPONSE_EX (MS-ADTS 6.3.1.1).
NT_VERSION_5EX: Final = 0x00000006
#: What a DC puts in the response's NtVersion: NETLOGON_NT_VERSION_1 | NETLOGON_NT_VERSION_5EX.
RESPONSE_NT_VERSION: Final = 0x00000005

#: Operation codes of the responses that share the _EX structure (MS-ADTS 6.3.1.9).
LOGON_SAM_LOGON_RESPONSE_EX: Final = 23
LOGON_SAM_PAUSE_RESPONSE_EX: Final = 21
LOGON_SAM_USER_UNKNOWN_EX: Final = 25
EX_OPCODES: Final = {
    LOGON_SAM_LOGON_RESPONSE_EX: "LOGON_SAM_LOGON_RESPONSE_EX",
    LOGON_SAM_PAUSE_RESPONSE_EX: "LOGON_SAM_PAUSE_RESPONSE_EX",
    LOGON_SAM_USER_UNKNOWN_EX: "LOGON_SAM_USER_UNKNOWN_EX",
}

#: DS_* flags of the response (MS-ADTS 6.3.1.2), by the short name a person reads.
DS_FLAGS: Final = {
    0x00000001: "PDC",
    0x00000004: "GC",
    0x00000008: "LDAP",
    0x00000010: "DS",
    0x00000020: "KDC",
    0x00000040: "TIMESERV",
    0x00000080: "CLOSEST",
    0x00000100: "WRITABLE",
    0x00000200: "GOOD_TIMESERV",
    0x00000400: "NDNC",
    0x00000800: "SELECT_SECRET_DOMAIN_6",
    0x00001000: "FULL_SECRET_DOMAIN_6",
    0x00002000: "WS",
    0x00004000: "DS_8",
    0x00008000: "DS_9",
    0x00010000: "DS_10",
    0x00020000: "KEY_LIST",
    0x20000000: "DNS_CONTROLLER",
    0x40000000: "DNS_DOMAIN",
    0x80000000: "DNS_FOREST",
}
#: What a Samba 4.17 DC answers: PDC GC LDAP DS KDC TIMESERV CLOSEST WRITABLE GOOD_TIMESERV
#: FULL_SECRET_DOMAIN_6.
SAMBA_DC_FLAGS: Final = 0x000013FD

#: The names of the structure, in wire order (MS-ADTS 6.3.1.9).
NAME_FIELDS: Final = (
    "forest",
    "domain",
    "dc_name",
    "netbios_domain",
    "netbios_name",
    "user",
    "site",
    "client_site",
)
#: The fixed head: opcode, Sbz, flags, domain GUID.
_HEAD: Final = struct.Struct("<HHI16s")
#: The fixed tail after the names: NtVersion, LmNtToken, Lm20Token.
_TAIL: Final = struct.Struct("<IHH")
_TOKENS: Final = 0xFFFF

#: RFC 1035 4.1.4 bounds: a name of at most 255 octets, labels of 63, and here at most 32
#: pointers followed in one name (each must point before itself, so none can loop).
MAX_NAME: Final = 255
MAX_LABEL: Final = 63
MAX_POINTERS: Final = 32
#: A Netlogon response is a few hundred bytes; a datagram holds at most this many messages.
MAX_BLOB: Final = 4096
MAX_MESSAGES_PER_DATAGRAM: Final = 8


class MalformedResponse(RemoteProtocolError):
    """The Netlogon attribute does not hold a well-formed NETLOGON_SAM_LOGON_RESPONSE_EX."""


class MalformedMessage(RemoteProtocolError):
    """A datagram or frame that is not a whole LDAPMessage."""


def flag_names(flags: int) -> list[str]:
    return [name for bit, name in DS_FLAGS.items() if flags & bit]


@dataclass
class NetlogonResponse:
    """NETLOGON_SAM_LOGON_RESPONSE_EX, the names as text ("" when absent)."""

    flags: int
    domain_guid: uuid.UUID
    names: dict[str, str] = field(default_factory=dict)
    opcode: int = LOGON_SAM_LOGON_RESPONSE_EX
    nt_version: int = RESPONSE_NT_VERSION

    def details(self) -> dict[str, object]:
        return {
            "opcode": EX_OPCODES.get(self.opcode, str(self.opcode)),
            **{name: self.names.get(name, "") for name in NAME_FIELDS},
            "domain_guid": str(self.domain_guid),
            "flags": self.flags,
            "flag_names": flag_names(self.flags),
            "nt_version": self.nt_version,
        }


# -- the Netlogon structure --------------------------------------------------------------------


def encode_response(response: NetlogonResponse) -> bytes:
    """The structure as a DC sends it, names compressed against those before them."""
    out = bytearray(_HEAD.pack(response.opcode, 0, response.flags, response.domain_guid.bytes_le))
    seen: dict[tuple[bytes, ...], int] = {}
    for name in NAME_FIELDS:
        out += _encode_name(response.names.get(name, ""), len(out), seen)
    out += _TAIL.pack(response.nt_version, _TOKENS, _TOKENS)
    return bytes(out)


def _encode_name(text: str, offset: int, seen: dict[tuple[bytes, ...], int]) -> bytes:
    labels = tuple(label.encode() for label in text.rstrip(".").split(".") if label)
    if any(len(label) > MAX_LABEL for label in labels):
        raise LocalProtocolError(f"{text!r} has a label over {MAX_LABEL} bytes")
    if sum(len(label) + 1 for label in labels) + 1 > MAX_NAME:
        raise LocalProtocolError(f"{text!r} is longer than {MAX_NAME} octets")
    out = bytearray()
    for index in range(len(labels)):
        suffix = tuple(label.lower() for label in labels[index:])
        if suffix in seen:
            return bytes(out) + struct.pack(">H", 0xC000 | seen[suffix])
        if offset + len(out) < 0x4000:
            seen[suffix] = offset + len(out)
        out += bytes([len(labels[index])]) + labels[index]
    return bytes(out) + b"\x00"


def decode_response(blob: bytes) -> NetlogonResponse:
    """The structure, or MalformedResponse; linear in `blob`, whose size is capped."""
    if len(blob) > MAX_BLOB:
        raise MalformedResponse(f"a Netlogon response of {len(blob)} bytes (over {MAX_BLOB})")
    if len(blob) < _HEAD.size:
        raise MalformedResponse(f"a Netlogon response of only {len(blob)} bytes")
    opcode, _, flags, guid = _HEAD.unpack_from(blob)
    if opcode not in EX_OPCODES:
        raise MalformedResponse(f"Netlogon opcode {opcode}, not a _EX response (23)")
    names: dict[str, str] = {}
    pos = _HEAD.size
    for name in NAME_FIELDS:
        names[name], pos = decode_name(blob, pos)
    nt_version = RESPONSE_NT_VERSION
    if len(blob) - pos >= _TAIL.size:
        nt_version = _TAIL.unpack_from(blob, len(blob) - _TAIL.size)[0]
    return NetlogonResponse(flags, uuid.UUID(bytes_le=guid), names, opcode, nt_version)


def decode_name(blob: bytes, pos: int) -> tuple[str, int]:
    """The RFC 1035 name at `pos` and where the next field starts. A pointer must point before
    itself, so a chain always ends; the name and the pointers followed are bounded too."""
    labels: list[str] = []
    size, hops, end, cursor = 0, 0, -1, pos
    while True:
        if cursor >= len(blob):
            raise MalformedResponse("a name runs past the end of the Netlogon response")
        length = blob[cursor]
        if length == 0:
            return ".".join(labels), (cursor + 1 if end < 0 else end)
        if length & 0xC0 == 0xC0:
            cursor, end, hops = _follow(blob, cursor, end, hops)
            continue
        if length & 0xC0:
            raise MalformedResponse(f"a name label with the reserved type bits {length:#x}")
        size += length + 1
        if size > MAX_NAME or cursor + 1 + length > len(blob):
            raise MalformedResponse("a name longer than 255 octets or past the end")
        labels.append(blob[cursor + 1 : cursor + 1 + length].decode("utf-8", "replace"))
        cursor += 1 + length


def _follow(blob: bytes, cursor: int, end: int, hops: int) -> tuple[int, int, int]:
    """Where a compression pointer at `cursor` leads; the field's end is set at the first."""
    if cursor + 2 > len(blob):
        raise MalformedResponse("a name pointer cut short")
    target = struct.unpack_from(">H", blob, cursor)[0] & 0x3FFF
    if target >= cursor:
        raise MalformedResponse("a name pointer that does not point back (a loop)")
    if hops >= MAX_POINTERS:
        raise MalformedResponse(f"a name with more than {MAX_POINTERS} pointers")
    return target, (cursor + 2 if end < 0 else end), hops + 1


# -- the LDAP ping -----------------------------------------------------------------------------


def ping_request(message_id: int, domain: str, nt_version: int = NT_VERSION_5EX) -> bytes:
    """SearchRequest base "", scope base, (&(DnsDomain=<domain>)(NtVer=<nt_version LE>)),
    attribute Netlogon (MS-ADTS 6.3.3.1)."""
    message, search = base_search(message_id)
    terms = search["filter"]["and"]
    for position, (name, value) in enumerate(
        (("DnsDomain", domain.encode()), ("NtVer", struct.pack("<I", nt_version)))
    ):
        match = terms[position]["equalityMatch"]
        match["attributeDesc"] = name.encode()
        match["assertionValue"] = value
    search["attributes"].append(NETLOGON_ATTRIBUTE)
    return bytes(encoder.encode(message))


def ping_terms(search: Any) -> dict[str, bytes] | None:
    """The equality terms of a ping filter, names lower-cased: a lone equalityMatch or an AND
    of them (MS-ADTS 6.3.3.2); None for any other filter."""
    found = search["filter"]
    kind = found.getName()
    if kind == "equalityMatch":
        items = [found.getComponent()]
    elif kind == "and":
        items = [term.getComponent() for term in found.getComponent()]
        if any(term.getName() != "equalityMatch" for term in found.getComponent()):
            return None
    else:
        return None
    return {
        bytes(item["attributeDesc"]).decode("utf-8", "replace").lower(): bytes(
            item["assertionValue"]
        )
        for item in items
    }


def decode_message(frame: bytes, spec: Any) -> Any:
    try:
        message, rest = decoder.decode(frame, asn1Spec=spec)
    except DECODE_ERRORS as error:
        raise MalformedMessage(f"not an LDAPMessage ({type(error).__name__})") from None
    if rest:
        raise MalformedMessage("bytes after the LDAPMessage")
    return message


def netlogon_entry(message_id: int, blob: bytes) -> bytes:
    """The SearchResultEntry of a ping's answer: object "" with the Netlogon value."""
    message = MESSAGE_SCHEMA.clone()
    message["messageID"] = message_id
    entry = message["protocolOp"].getComponentByName("searchResEntry")
    entry["objectName"] = b""
    attribute = entry["attributes"][0]
    attribute["type"] = NETLOGON_ATTRIBUTE.encode()
    attribute["vals"].append(blob)
    return bytes(encoder.encode(message))


def request_schema() -> Any:
    return MESSAGE_SCHEMA.clone()


# -- framing -----------------------------------------------------------------------------------


class CldapFraming(SansIO):
    """Message boundaries for both roles. Over UDP each `receive_data` call is one datagram,
    which may hold several LDAPMessages (a DC sends the entry and the done in one), and each
    Send is one datagram; over TCP, messages follow one another, framed by their BER length."""

    transport: str
    _frames: deque[bytes | MalformedMessage]

    def _set_transport(self, transport: str) -> None:
        """Called by each role's constructor before the SansIO one."""
        self.transport = check_transport(transport, "CLDAP")
        self._frames = deque()

    def receive_data(self, data: bytes) -> None:
        super().receive_data(data)
        if data and self.transport == "udp":
            datagram = bytes(self._buffer)
            self._buffer.clear()
            self._frames.extend(self._split(datagram))

    def _split(self, datagram: bytes) -> list[bytes | MalformedMessage]:
        """The messages of one datagram; one cut or past the cap ends them with the error,
        which `read_message` raises in its turn."""
        self._buffer[:] = datagram
        frames: list[bytes | MalformedMessage] = []
        try:
            while self._buffer:
                if len(frames) >= MAX_MESSAGES_PER_DATAGRAM:
                    raise MalformedMessage(f"over {MAX_MESSAGES_PER_DATAGRAM} messages in one")
                frames.append(_whole(read_frame(self, self.reply_limit)))
        except FramingError as error:
            frames.append(MalformedMessage(f"a datagram that is not LDAP ({error})"))
        except RemoteProtocolError as error:
            frames.append(MalformedMessage(str(error)))
        finally:
            self._buffer.clear()
        return frames

    def read_message(self) -> Generator[NeedData, None, bytes]:
        if self.transport == "tcp":
            try:
                return (yield from read_frame(self, self.reply_limit))
            except FramingError as error:
                raise MalformedMessage(f"not an LDAPMessage ({error})") from None
        while not self._frames:
            if self._eof:
                raise PeerClosed()
            yield NEED_DATA
        frame = self._frames.popleft()
        if isinstance(frame, MalformedMessage):
            raise frame
        return frame


def _whole(steps: Generator[NeedData, None, bytes]) -> bytes:
    """Run a reader over a buffer that holds all there is: wanting more means a cut message."""
    try:
        next(steps)
    except StopIteration as stop:
        frame: bytes = stop.value
        return frame
    steps.close()
    raise MalformedMessage("a datagram that ends inside an LDAPMessage")
