"""The server role: an NTP server of a fixed stratum whose time is its clock's. It answers a
client request (mode 3) with a server reply (mode 4) whose origin timestamp is the request's
transmit timestamp, and, as real servers do, stays silent at anything else: a client that
sent something else simply times out."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from portcall.protocols.base import (
    PeerClosed,
    Send,
    ServerHandshake,
    ServerOptions,
    ServerSteps,
)
from portcall.protocols.ntp.messages import (
    MODE_CLIENT,
    MODE_SERVER,
    VERSION,
    MalformedPacket,
    NtpFraming,
    Packet,
    reference_bytes,
    to_timestamp,
)

#: Datagrams one server role reads before it ends (each datagram usually gets its own role).
MAX_REQUESTS = 20
DEFAULT_STRATUM = 3
#: The reference a server of stratum 2 or more names by default: the local clock's address.
DEFAULT_REFERENCE = "127.127.1.0"
#: log2 of the clock's precision in seconds: about a microsecond.
PRECISION = -20
#: Root dispersion claimed, in 1/65536 s: about 10 ms.
ROOT_DISPERSION = 655


class NtpServer(NtpFraming, ServerHandshake):
    """An NTP server of `stratum` (1 to 15) naming `reference` (four letters at stratum 1, an
    IPv4 address above it); `clock` gives the time it serves (UTC)."""

    protocol = "ntp"
    display_name = "NTP"

    def __init__(
        self,
        options: ServerOptions | None = None,
        *,
        transport: str | None = None,
        stratum: int = DEFAULT_STRATUM,
        reference: str | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._set_udp(transport or (options.transport if options is not None else "udp"))
        self.stratum = stratum
        default = "LOCL" if stratum <= 1 else DEFAULT_REFERENCE
        self.reference = reference_bytes(stratum, reference or default)
        self._clock = clock or (lambda: datetime.now(UTC))
        super().__init__(options)

    def serve(self) -> ServerSteps:
        for _ in range(MAX_REQUESTS):
            try:
                wire = yield from self.read_message()
            except PeerClosed:
                return
            reply = self.answer(wire)
            if reply is not None:
                yield Send(reply)

    def answer(self, wire: bytes) -> bytes | None:
        """The reply to one datagram, or None when it deserves none."""
        try:
            request = Packet.decode(wire)
        except MalformedPacket:
            self.heard.append(f"(ignored a datagram of {len(wire)} bytes)")
            return None
        if request.mode != MODE_CLIENT or not 1 <= request.version <= VERSION:
            self.heard.append(f"(ignored mode {request.mode} version {request.version})")
            return None
        self.heard.append(f"NTP v{request.version} client request")
        now = to_timestamp(self._clock())
        return Packet(
            version=request.version,
            mode=MODE_SERVER,
            stratum=self.stratum,
            poll=request.poll,
            precision=PRECISION,
            root_dispersion=ROOT_DISPERSION,
            reference_id=self.reference,
            reference=now,
            origin=request.transmit,
            receive=now,
            transmit=now,
        ).encode()


__all__ = ["DEFAULT_REFERENCE", "DEFAULT_STRATUM", "MAX_REQUESTS", "NtpServer"]
