"""What both NTP roles put on the wire and read from it: the 48-byte packet header of RFC 5905
(section 7.3), its 64-bit timestamps and 32-bit short times, and the kiss codes of section 7.4.
Bytes after the header (extension fields, a MAC) are counted, never parsed."""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from portcall.protocols.base import LocalProtocolError, RemoteProtocolError
from portcall.protocols.framing import DatagramOrStream

PACKET_BYTES: Final = 48
VERSION: Final = 4
#: Association modes (RFC 5905 section 7.3).
MODE_CLIENT: Final = 3
MODE_SERVER: Final = 4
#: Leap indicator 3: the clock is not synchronised (alarm condition).
LEAP_UNSYNCHRONISED: Final = 3
LEAPS: Final = {
    0: "no warning",
    1: "the last minute of the day has 61 seconds",
    2: "the last minute of the day has 59 seconds",
    3: "the clock is not synchronised",
}
#: Stratum 0 marks a kiss-o'-death packet; 16 an unsynchronised server (section 7.3).
STRATUM_KISS: Final = 0
STRATUM_UNSYNCHRONISED: Final = 16
#: Kiss codes (section 7.4) and what they tell a person.
KISS_CODES: Final = {
    "ACST": "the association belongs to a unicast server",
    "AUTH": "server authentication failed",
    "AUTO": "autokey sequence failed",
    "BCST": "the association belongs to a broadcast server",
    "CRYP": "cryptographic authentication or identification failed",
    "DENY": "access denied by a remote server",
    "DROP": "lost peer in symmetric mode",
    "RSTR": "access denied due to a local policy",
    "INIT": "the association has not yet synchronised for the first time",
    "MCST": "the association belongs to a dynamically discovered server",
    "NKEY": "no key found",
    "NTSN": "network time security negative acknowledgement",
    "RATE": "rate exceeded: the server asks the client to slow down",
    "RMOT": "alteration of association from a remote host running ntpdc",
    "STEP": "a step change in system time has occurred",
}
_ERA_0: Final = datetime(1900, 1, 1, tzinfo=UTC)
#: RFC 4330 section 3: a timestamp whose top bit is clear lies in era 1, from 2036-02-07.
_ERA_1: Final = _ERA_0 + timedelta(seconds=2**32)
_HEADER: Final = struct.Struct("!BBbbII4sQQQQ")


class NtpError(RemoteProtocolError):
    """The peer did not answer as an NTP server must."""


class MalformedPacket(NtpError):
    """A datagram too short for an NTP packet, or with a version no NTP speaks."""


class NotOurReply(NtpError):
    """A server reply whose origin timestamp is not the transmit timestamp we sent."""


class NtpFraming(DatagramOrStream):
    """One packet a datagram. NTP has no TCP mapping (RFC 5905 names only UDP port 123), so
    asking for TCP is a mistake of ours, not the peer's."""

    PREFIX_BYTES = 0

    def _set_udp(self, transport: str) -> None:
        if transport != "udp":
            raise LocalProtocolError(f"NTP runs over udp only, not {transport!r}")
        self._set_transport(transport)


@dataclass(frozen=True)
class Packet:
    """One NTP packet header; times as sent (64-bit timestamps, 32-bit short times)."""

    leap: int = 0
    version: int = VERSION
    mode: int = MODE_CLIENT
    stratum: int = 0
    poll: int = 0
    precision: int = 0
    root_delay: int = 0
    root_dispersion: int = 0
    reference_id: bytes = bytes(4)
    reference: int = 0
    origin: int = 0
    receive: int = 0
    transmit: int = 0

    def encode(self) -> bytes:
        first = (self.leap << 6) | (self.version << 3) | self.mode
        return _HEADER.pack(
            first,
            self.stratum,
            self.poll,
            self.precision,
            self.root_delay,
            self.root_dispersion,
            self.reference_id,
            self.reference,
            self.origin,
            self.receive,
            self.transmit,
        )

    @classmethod
    def decode(cls, wire: bytes) -> Packet:
        """The header of `wire`; what follows it is the caller's to count."""
        if len(wire) < PACKET_BYTES:
            raise MalformedPacket(f"a datagram of {len(wire)} bytes is shorter than an NTP packet")
        first, *rest = _HEADER.unpack_from(wire)
        stratum, poll, precision, delay, dispersion, refid, *times = rest
        return cls(
            first >> 6,
            (first >> 3) & 7,
            first & 7,
            stratum,
            poll,
            precision,
            delay,
            dispersion,
            refid,
            *times,
        )


def to_timestamp(moment: datetime) -> int:
    """`moment` as a 64-bit NTP timestamp: seconds since 1900 modulo the era (RFC 5905 section
    6), then the fraction; in integers, so that a microsecond survives the round trip."""
    delta = moment - _ERA_0
    seconds = delta.days * 86400 + delta.seconds
    fraction = (delta.microseconds << 32) // 1_000_000
    return (seconds % 2**32) << 32 | fraction


def from_timestamp(value: int) -> datetime | None:
    """A 64-bit NTP timestamp as a UTC time, or None for 0, which means "unknown"."""
    if value == 0:
        return None
    seconds, fraction = value >> 32, value & 0xFFFFFFFF
    era = _ERA_0 if seconds & 0x80000000 else _ERA_1
    micro = round(fraction * 1_000_000 / 2**32)
    return era + timedelta(seconds=seconds, microseconds=micro)


def iso(value: int) -> str | None:
    moment = from_timestamp(value)
    return None if moment is None else moment.isoformat()


def short_seconds(value: int) -> float:
    """A 32-bit NTP short time (16.16 fixed point) in seconds."""
    return round(value / 65536, 6)


def ascii_id(value: bytes) -> str:
    """A reference identifier or kiss code as text: NUL padding dropped, others masked."""
    raw = value.rstrip(b"\0").decode("ascii", "replace")
    return "".join(c if c.isprintable() else "?" for c in raw)


def reference_text(stratum: int, value: bytes) -> str:
    """The reference identifier as RFC 5905 (section 7.3) reads it: four ASCII characters for
    a primary server (and a kiss code at stratum 0), an IPv4 address (or the hash of an IPv6
    one, which reads the same) at higher strata."""
    if stratum <= 1 or (stratum >= STRATUM_UNSYNCHRONISED and value.isascii() and value.isalpha()):
        return ascii_id(value)
    return str(ipaddress.IPv4Address(value))


def reference_bytes(stratum: int, text: str) -> bytes:
    """The four bytes of the reference identifier `text` for a server of `stratum`."""
    if stratum <= 1:
        return text.encode("ascii", "replace")[:4].ljust(4, b"\0")
    try:
        return ipaddress.IPv4Address(text).packed
    except ValueError:
        raise LocalProtocolError(
            f"a server of stratum {stratum} names an IPv4 address, not {text!r}"
        ) from None


__all__ = [
    "KISS_CODES",
    "LEAPS",
    "LEAP_UNSYNCHRONISED",
    "MODE_CLIENT",
    "MODE_SERVER",
    "PACKET_BYTES",
    "STRATUM_KISS",
    "STRATUM_UNSYNCHRONISED",
    "VERSION",
    "MalformedPacket",
    "NotOurReply",
    "NtpError",
    "NtpFraming",
    "Packet",
    "ascii_id",
    "from_timestamp",
    "iso",
    "reference_bytes",
    "reference_text",
    "short_seconds",
    "to_timestamp",
]
