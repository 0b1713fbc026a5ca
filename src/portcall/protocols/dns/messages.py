"""What both DNS roles put on the wire and read from it: the framing of RFC 1035 section 4.2
(one datagram over UDP, a 2-byte length prefix over TCP), the names a domain controller
registers, and what each response code means. dnspython encodes and decodes the messages."""

from __future__ import annotations

import struct
from typing import Final

import dns.exception
import dns.message
import dns.name
import dns.rcode

from portcall.protocols.base import (
    LocalProtocolError,
    RemoteProtocolError,
)
from portcall.protocols.framing import (
    DatagramOrStream,
)

#: The largest message either transport can carry (RFC 1035 4.2.2: a 16-bit length).
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


class DnsFraming(DatagramOrStream):
    """DNS framing (RFC 1035 4.2.2): over TCP a 2-byte length prefix."""

    PREFIX_BYTES = 2
