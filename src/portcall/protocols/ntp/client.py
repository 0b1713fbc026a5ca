"""The client role: one mode-3 request whose only content is a random transmit timestamp, and
the server's mode-4 reply read field by field. The request carries no clock of ours: like
chrony, and as the NTP data-minimisation draft advises, the transmit timestamp is random, so it
says nothing about this host's time and still pairs the reply with the request, since the
server must echo it as its origin timestamp (RFC 5905 section 8)."""

from __future__ import annotations

import secrets
from typing import Any

from portcall.protocols.base import (
    Handshake,
    ProbeOptions,
    Send,
    ServiceInfo,
    Steps,
    WrongProtocol,
)
from portcall.protocols.ntp.messages import (
    KISS_CODES,
    LEAP_UNSYNCHRONISED,
    LEAPS,
    MODE_SERVER,
    PACKET_BYTES,
    STRATUM_KISS,
    STRATUM_UNSYNCHRONISED,
    VERSION,
    MalformedPacket,
    NotOurReply,
    NtpError,
    NtpFraming,
    Packet,
    ascii_id,
    iso,
    reference_text,
    short_seconds,
)
from portcall.protocols.sniff import identify

#: What the client notes for a server whose clock is not synchronised.
UNSYNCHRONISED_NOTE = "the server's clock is not synchronised (leap indicator 3 or stratum 16)"


class NtpClient(NtpFraming, Handshake):
    """Asks an NTP server for the time once; `transmit` fixes the random transmit timestamp
    (a 64-bit integer) for transcripts."""

    protocol = "ntp"
    display_name = "NTP"

    def __init__(
        self,
        options: ProbeOptions | None = None,
        *,
        transport: str | None = None,
        transmit: int | None = None,
    ) -> None:
        # Without options (a role used on its own) the only transport NTP has, UDP.
        self._set_udp(transport or (options.transport if options is not None else "udp"))
        self.transmit = secrets.randbits(64) if transmit is None else transmit
        super().__init__(options)

    def run(self) -> Steps:
        yield Send(Packet(transmit=self.transmit).encode())
        wire = yield from self.read_message()
        try:
            reply = Packet.decode(wire)
        except MalformedPacket:
            raise self._stranger(wire) from None
        self._check(reply, wire)
        return self._info(reply, len(wire) - PACKET_BYTES)

    def _stranger(self, wire: bytes, error: NtpError | None = None) -> WrongProtocol | NtpError:
        """Another protocol's reply, named from its own bytes when the sniffer knows them (a
        line of text is long enough to pass for a header), else `error`."""
        detected = identify(wire)
        if detected is not None:
            return WrongProtocol(self.display_name, detected, "no NTP packet")
        return error or MalformedPacket(f"a datagram of {len(wire)} bytes is no NTP packet")

    def _check(self, reply: Packet, wire: bytes) -> None:
        if not 1 <= reply.version <= VERSION:
            raise self._stranger(wire, MalformedPacket(f"a packet of NTP version {reply.version}"))
        if reply.mode != MODE_SERVER:
            wrong = NtpError(f"a packet of mode {reply.mode} where a server reply (mode 4) was due")
            raise self._stranger(wire, wrong)
        if reply.origin != self.transmit:
            raise NotOurReply("reply does not answer our request (its origin timestamp differs)")

    def _info(self, reply: Packet, extra: int) -> ServiceInfo:
        details: dict[str, Any] = {
            "transport": self.transport,
            "version": reply.version,
            "mode": reply.mode,
            "leap": reply.leap,
            "leap_meaning": LEAPS[reply.leap],
            "stratum": reply.stratum,
            "poll": reply.poll,
            "precision": reply.precision,
            "root_delay": short_seconds(reply.root_delay),
            "root_dispersion": short_seconds(reply.root_dispersion),
            "reference_id": reference_text(reply.stratum, reply.reference_id),
            "reference_time": iso(reply.reference),
            "receive_time": iso(reply.receive),
            "transmit_time": iso(reply.transmit),
        }
        if extra:
            details["extra_bytes"] = extra
        info = ServiceInfo(protocol=self.protocol, details=details)
        head = f"NTP v{reply.version} stratum {reply.stratum}"
        if reply.stratum == STRATUM_KISS:
            code = ascii_id(reply.reference_id)
            details["kiss_code"] = code
            meaning = KISS_CODES.get(code, "a kiss code this program does not know")
            info.notes.append(f"kiss-o'-death {code}: {meaning}; an NTP server answered")
            info.banner = f"{head} kiss-o'-death {code}"
            return info
        if reply.leap == LEAP_UNSYNCHRONISED or reply.stratum >= STRATUM_UNSYNCHRONISED:
            info.notes.append(UNSYNCHRONISED_NOTE)
        info.banner = f"{head} ref {details['reference_id']}"
        return info


__all__ = ["UNSYNCHRONISED_NOTE", "NtpClient"]
