"""A ClientHello of portcall's own, and a reader for the server's answer up to its Certificate.

Windows Server 2003 without the AES update offers only RC4 and 3DES suites, which stock
OpenSSL 3 builds leave out, so no `ssl` context here can negotiate with it. Up to TLS 1.2 the
server's certificate travels in the clear, right after the ServerHello (RFC 5246 section 7.3),
so a hello that offers those suites is enough to read it; the handshake is never finished (the
way testssl.sh reads such servers with its own sockets).

Sans-IO: `client_hello()` gives the bytes to send, `FlightReader` takes what the server sends
and yields a `ServerFlight` once the Certificate has arrived. Every length is checked against
what is left, the whole answer is capped at `MAX_FLIGHT` bytes, and each byte is looked at a
bounded number of times, so work stays linear in the input whatever the peer sends.

Written with `struct` because no library fits: tlslite-ng is a full TLS implementation whose
Certificate parser builds its own key objects (failing on keys it does not support) and would
duplicate what `cryptography` does here; scapy's TLS layer comes with a whole packet toolkit and
dissects what it cannot parse into raw payload instead of rejecting it. Five record and
handshake headers are all this needs.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from typing import Final

from portcall.protocols.base import RemoteProtocolError

#: The most bytes of server answer read before the Certificate must have arrived; real
#: chains are a few KiB, and a record is at most 2^14 + 2048 bytes (RFC 5246 section 6.2.3).
MAX_FLIGHT: Final = 64 * 1024
_MAX_RECORD: Final = 2**14 + 2048

_HANDSHAKE: Final = 22
_ALERT: Final = 21
_CLIENT_HELLO: Final = 1
_SERVER_HELLO: Final = 2
_CERTIFICATE: Final = 11
#: Handshake messages a server may send before its Certificate in TLS 1.0-1.2: none but
#: HelloRequest (0), which a client ignores (RFC 5246 section 7.4.1.1).
_HELLO_REQUEST: Final = 0

TLS1_0: Final = 0x0301
TLS1_2: Final = 0x0303

#: Version numbers as `ssl.SSLObject.version()` spells them, so reports read alike.
VERSION_NAMES: Final = {
    0x0300: "SSLv3",
    0x0301: "TLSv1",
    0x0302: "TLSv1.1",
    0x0303: "TLSv1.2",
}


@dataclass(frozen=True)
class Suite:
    name: str
    bits: int
    #: Broken or withdrawn bulk cipher (RC4: RFC 7465; 3DES, DES and export: RFC 8996 era).
    weak: bool = True


#: What is offered, strongest first, IANA names (RFC 5246 appendix A.5, RFC 4492, RFC 4346).
#: RC4 and 3DES are the point; AES rides along for servers OpenSSL failed with otherwise.
SUITES: Final = {
    0xC012: Suite("TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA", 112),
    0xC011: Suite("TLS_ECDHE_RSA_WITH_RC4_128_SHA", 128),
    0x0016: Suite("TLS_DHE_RSA_WITH_3DES_EDE_CBC_SHA", 112),
    0x0013: Suite("TLS_DHE_DSS_WITH_3DES_EDE_CBC_SHA", 112),
    0x000A: Suite("TLS_RSA_WITH_3DES_EDE_CBC_SHA", 112),
    0x0005: Suite("TLS_RSA_WITH_RC4_128_SHA", 128),
    0x0004: Suite("TLS_RSA_WITH_RC4_128_MD5", 128),
    0x0064: Suite("TLS_RSA_EXPORT1024_WITH_RC4_56_SHA", 56),
    0x0062: Suite("TLS_RSA_EXPORT1024_WITH_DES_CBC_SHA", 56),
    0x0009: Suite("TLS_RSA_WITH_DES_CBC_SHA", 56),
    0x0003: Suite("TLS_RSA_EXPORT_WITH_RC4_40_MD5", 40),
    0x0006: Suite("TLS_RSA_EXPORT_WITH_RC2_CBC_40_MD5", 40),
    0x002F: Suite("TLS_RSA_WITH_AES_128_CBC_SHA", 128, weak=False),
    0x0035: Suite("TLS_RSA_WITH_AES_256_CBC_SHA", 256, weak=False),
}
#: TLS_EMPTY_RENEGOTIATION_INFO_SCSV (RFC 5746): asks about secure renegotiation without an
#: extension, which the oldest stacks tolerate.
_SCSV: Final = 0x00FF

#: Alert descriptions (RFC 5246 section 7.2) by number, for a reason a person can read.
ALERTS: Final = {
    10: "unexpected_message",
    20: "bad_record_mac",
    40: "handshake_failure",
    43: "unsupported_certificate",
    47: "illegal_parameter",
    50: "decode_error",
    70: "protocol_version",
    71: "insufficient_security",
    80: "internal_error",
    112: "unrecognized_name",
}


class AlertReceived(RemoteProtocolError):
    """The server answered the hello with an alert instead of a ServerHello."""

    def __init__(self, level: int, description: int) -> None:
        self.description = ALERTS.get(description, f"alert {description}")
        kind = "fatal" if level == 2 else "warning"
        super().__init__(f"the server answered with a {kind} {self.description} alert")


class NotTls(RemoteProtocolError):
    """The bytes are not a TLS 1.0-1.2 server answer."""


@dataclass(frozen=True)
class ServerFlight:
    """What the server chose and sent, read before any key exchange."""

    version: int
    suite: int
    #: DER certificates, leaf first, as the server sent them.
    chain: tuple[bytes, ...]

    @property
    def version_name(self) -> str:
        return VERSION_NAMES.get(self.version, f"0x{self.version:04X}")

    @property
    def suite_name(self) -> str:
        known = SUITES.get(self.suite)
        return known.name if known else f"0x{self.suite:04X}"

    @property
    def bits(self) -> int:
        known = SUITES.get(self.suite)
        return known.bits if known else 0


def client_hello(version: int = TLS1_2, server_name: str = "", *, random: bytes = b"") -> bytes:
    """A ClientHello record offering `SUITES` at `version`, with SNI when `server_name` is a
    host name. The record says TLS 1.0 whatever `version`, as clients do for old servers."""
    suites = b"".join(struct.pack("!H", code) for code in (*SUITES, _SCSV))
    extensions = _server_name_extension(server_name)
    body = b"".join(
        (
            struct.pack("!H", version),
            random or os.urandom(32),
            b"\x00",  # no session id
            struct.pack("!H", len(suites)),
            suites,
            b"\x01\x00",  # null compression only
            struct.pack("!H", len(extensions)) + extensions if extensions else b"",
        )
    )
    message = struct.pack("!B", _CLIENT_HELLO) + len(body).to_bytes(3, "big") + body
    return struct.pack("!BHH", _HANDSHAKE, TLS1_0, len(message)) + message


def _server_name_extension(name: str) -> bytes:
    if not name or not name.isascii() or _is_ip_literal(name):
        return b""  # RFC 6066 section 3: no IP literals in SNI
    encoded = name.encode("ascii")
    entry = b"\x00" + struct.pack("!H", len(encoded)) + encoded
    listing = struct.pack("!H", len(entry)) + entry
    return struct.pack("!HH", 0, len(listing)) + listing


def _is_ip_literal(name: str) -> bool:
    return ":" in name or name.replace(".", "").isdigit()


class FlightReader:
    """Collects the server's records until its Certificate has arrived."""

    def __init__(self) -> None:
        self._records = bytearray()
        self._messages = bytearray()
        self._taken = 0
        self._hello: tuple[int, int] | None = None
        self._flight: ServerFlight | None = None

    @property
    def flight(self) -> ServerFlight | None:
        """The result once complete, else None."""
        return self._flight

    def receive_data(self, data: bytes) -> ServerFlight | None:
        """Take more of the server's answer; b"" means it closed. Raises
        `RemoteProtocolError` on anything that is not a TLS 1.0-1.2 server flight."""
        if self._flight is not None:
            return self._flight
        if not data:
            raise NotTls(f"the server closed the connection after {self._taken} bytes of TLS")
        self._taken += len(data)
        if self._taken > MAX_FLIGHT:
            raise NotTls(f"no Certificate within the first {MAX_FLIGHT} bytes of the answer")
        self._records += data
        while self._flight is None and self._next_record():
            self._flight = self._read_messages()
        return self._flight

    def _next_record(self) -> bool:
        if len(self._records) < 5:
            return False
        kind, version, length = struct.unpack_from("!BHH", self._records)
        if kind not in (_HANDSHAKE, _ALERT) or version >> 8 != 3 or length > _MAX_RECORD:
            raise NotTls("the answer is not a TLS record")
        if len(self._records) < 5 + length:
            return False
        payload = bytes(self._records[5 : 5 + length])
        del self._records[: 5 + length]
        if kind == _ALERT:
            if len(payload) < 2:
                raise NotTls("a TLS alert record too short to hold an alert")
            raise AlertReceived(payload[0], payload[1])
        self._messages += payload
        return True

    def _read_messages(self) -> ServerFlight | None:
        while len(self._messages) >= 4:
            kind = self._messages[0]
            length = int.from_bytes(self._messages[1:4], "big")
            if length > MAX_FLIGHT:
                raise NotTls(f"a handshake message of {length} bytes")
            if len(self._messages) < 4 + length:
                return None
            body = bytes(self._messages[4 : 4 + length])
            del self._messages[: 4 + length]
            flight = self._message(kind, body)
            if flight is not None:
                return flight
        return None

    def _message(self, kind: int, body: bytes) -> ServerFlight | None:
        if kind == _HELLO_REQUEST:
            return None
        if self._hello is None:
            if kind != _SERVER_HELLO:
                raise NotTls(f"handshake message {kind} where a ServerHello was expected")
            self._hello = parse_server_hello(body)
            return None
        if kind != _CERTIFICATE:
            # Anonymous suites are never offered; PSK-style servers skip the Certificate.
            raise NotTls(f"handshake message {kind} where the Certificate was expected")
        version, suite = self._hello
        return ServerFlight(version, suite, parse_certificate_list(body))


def parse_server_hello(body: bytes) -> tuple[int, int]:
    """(version, cipher suite) from a ServerHello body (RFC 5246 section 7.4.1.3)."""
    reader = _Cursor(body, "ServerHello")
    version = reader.uint(2)
    if version not in VERSION_NAMES:
        raise NotTls(f"the server chose version 0x{version:04X}, which hides its certificate")
    reader.take(32)  # server random
    reader.take(reader.uint(1))  # session id
    suite = reader.uint(2)
    if suite not in SUITES:
        raise NotTls(f"the server chose suite 0x{suite:04X}, which was not offered")
    if reader.uint(1) != 0:
        raise NotTls("the server chose a compression method that was not offered")
    return version, suite


def parse_certificate_list(body: bytes) -> tuple[bytes, ...]:
    """The DER certificates of a Certificate message (RFC 5246 section 7.4.2)."""
    outer = _Cursor(body, "Certificate")
    listing = _Cursor(outer.take(outer.uint(3)), "certificate list")
    outer.end()
    chain: list[bytes] = []
    while not listing.done:
        chain.append(listing.take(listing.uint(3)))
    if not chain:
        raise NotTls("the server's Certificate message holds no certificate")
    return tuple(chain)


class _Cursor:
    """Reads big-endian fields from `data`, refusing to run past its end."""

    def __init__(self, data: bytes, what: str) -> None:
        self._data = data
        self._at = 0
        self._what = what

    @property
    def done(self) -> bool:
        return self._at >= len(self._data)

    def take(self, count: int) -> bytes:
        if self._at + count > len(self._data):
            raise NotTls(f"the {self._what} ends inside a field")
        chunk = self._data[self._at : self._at + count]
        self._at += count
        return chunk

    def uint(self, size: int) -> int:
        return int.from_bytes(self.take(size), "big")

    def end(self) -> None:
        if not self.done:
            raise NotTls(f"the {self._what} has bytes after its end")
