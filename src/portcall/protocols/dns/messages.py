"""What both DNS roles put on the wire and read from it: the framing of RFC 1035 section 4.2
(one datagram over UDP, a 2-byte length prefix over TCP), the names a domain controller
registers, and what each response code means. dnspython encodes and decodes the messages."""

from __future__ import annotations

import struct
from collections import deque
from collections.abc import Generator
from typing import Final

import dns.exception
import dns.message
import dns.name
import dns.rcode

from portcall.protocols.base import (
    NEED_DATA,
    LocalProtocolError,
    NeedData,
    PeerClosed,
    RemoteProtocolError,
    SansIO,
)

TRANSPORTS: Final = ("udp", "tcp")
#: The largest message either transport can carry (RFC 1035 4.2.2: a 16-bit length).
MAX_MESSAGE: Final = 65535
#: Records of one kind a client reports, at most: a domain has a handful of DCs.
MAX_RECORDS: Final = 64

#: The SRV records a domain controller registers (MS-ADTS 6.3.2.3), relative to the domain,
#: with the port each names.
DC_SRV_RECORDS: Final = (
    ("_ldap._tcp.dc._msdcs", 389),
    ("_ldap._tcp", 389),
    ("_kerberos._tcp.dc._msdcs", 88),
    ("_kerberos._tcp", 88),
    ("_kerberos._udp", 88),
    ("_kpasswd._tcp", 464),
    ("_kpasswd._udp", 464),
    ("_gc._tcp", 3268),
)
#: The record the DC locator asks for first (MS-ADTS 6.3.6.1).
LOCATOR_SRV: Final = "_ldap._tcp.dc._msdcs"

#: What each response code tells a person (RFC 1035 4.1.1, RFC 2136 2.2).
RCODE_MEANINGS: Final[dict[int, str]] = {
    dns.rcode.NOERROR: "the name exists",
    dns.rcode.FORMERR: "the server could not read the query",
    dns.rcode.SERVFAIL: "the server failed: its zone did not load or its upstream is broken",
    dns.rcode.NXDOMAIN: "the name does not exist in the zone",
    dns.rcode.NOTIMP: "the server does not do this kind of query",
    dns.rcode.REFUSED: "the server refuses to answer for this name: it does not hold the zone"
    " and will not look it up for this client",
}

#: What dnspython raises on bytes that are not a DNS message.
DECODE_ERRORS: Final = (dns.exception.DNSException, ValueError, UnicodeError, struct.error)


class MalformedMessage(RemoteProtocolError):
    """The peer sent something that is not a well-formed DNS message."""


def rcode_name(code: int) -> str:
    try:
        return dns.rcode.to_text(dns.rcode.Rcode(code))
    except ValueError:
        return f"RCODE{code}"


def rcode_meaning(code: int) -> str:
    return RCODE_MEANINGS.get(code, "an unassigned response code")


def parse(wire: bytes) -> dns.message.Message:
    """A DNS message, or MalformedMessage."""
    try:
        return dns.message.from_wire(wire)
    except DECODE_ERRORS as error:
        raise MalformedMessage(f"not a well-formed DNS message ({type(error).__name__})") from None


def domain_name(text: str) -> dns.name.Name:
    """A domain given by the user, as an absolute name; LocalProtocolError when it is none."""
    try:
        return dns.name.from_text(text.strip().rstrip(".") + ".")
    except dns.exception.DNSException as error:
        raise LocalProtocolError(f"{text!r} is not a domain name ({error})") from None


def check_transport(transport: str) -> str:
    if transport not in TRANSPORTS:
        raise LocalProtocolError(f"DNS runs over udp or tcp, not {transport!r}")
    return transport


class DnsFraming(SansIO):
    """Message boundaries for both roles: over UDP each `receive_data` call is one datagram and
    each Send one datagram; over TCP each message has a 2-byte length prefix."""

    transport: str
    _datagrams: deque[bytes]

    def _set_transport(self, transport: str) -> None:
        """Called by each role's constructor before the SansIO one."""
        self.transport = check_transport(transport)
        self._datagrams = deque()

    def receive_data(self, data: bytes) -> None:
        super().receive_data(data)
        if data and self.transport == "udp":
            # A datagram is whole or nothing: the stream buffer is not used.
            self._datagrams.append(bytes(data[:MAX_MESSAGE]))
            self._buffer.clear()

    def frame(self, wire: bytes) -> bytes:
        if self.transport == "udp":
            return wire
        return len(wire).to_bytes(2, "big") + wire

    def read_message(self) -> Generator[NeedData, None, bytes]:
        if self.transport == "tcp":
            size = int.from_bytes((yield from self.read_exactly(2)), "big")
            return (yield from self.read_exactly(size))
        while not self._datagrams:
            if self._eof:
                raise PeerClosed()
            yield NEED_DATA
        return self._datagrams.popleft()
