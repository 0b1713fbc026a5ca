"""The server role: says the routing engine's banner, then only listens."""

from __future__ import annotations

from collections.abc import Generator
from typing import Final

from portcall.protocols.base import (
    PeerClosed,
    Send,
    ServerEvent,
    ServerHandshake,
    ServerSteps,
)

#: The banner's opening exactly as nmap's `resvc` match spells it; the numbers do not change
#: with the version, so they are copied rather than computed.
BANNER_OPENING: Final = b"{0000004c} NODEINFO (5) {38}"
#: The routing engine's build: the Exchange build of each release (6.5 is 2003, 6.0 is 2000).
ROUTING_VERSIONS: Final = {"exchange2003": "6.5.7638.1", "exchange2000": "6.0.6249.0"}
#: What nmap's match expects after the line end: two more bytes, spaces in the sample it holds.
BANNER_TAIL: Final = b"  "
#: Bytes a peer may send before the responder hangs up; none of them is read for meaning.
DISCARD_LIMIT: Final = 64 * 1024


def routing_banner(profile: str) -> bytes:
    """The banner of `profile`. The neutral one keeps the NODEINFO frame, which is all a client
    of port 691 can recognise, but names neither product nor version."""
    version = ROUTING_VERSIONS.get(profile)
    text = (
        f"Version: {version} Microsoft Routing Server ready"
        if version
        else "portcall responder ready"
    )
    return BANNER_OPENING + text.encode("ascii") + b"\r\n" + BANNER_TAIL


class RoutingServer(ServerHandshake):
    """Says the routing engine's banner, then reads and discards whatever the peer sends until
    it closes or `DISCARD_LIMIT` bytes have come."""

    protocol = "routing"
    display_name = "Exchange routing"

    def serve(self) -> ServerSteps:
        yield Send(routing_banner(self.options.profile))
        received = 0
        try:
            while received < DISCARD_LIMIT:
                received += len((yield from self._some_bytes()))
        except PeerClosed:
            pass
        if received:
            self.heard.append(f"{received} bytes of link-state traffic (not interpreted)")

    def _some_bytes(self) -> Generator[ServerEvent, None, bytes]:
        """At least one byte, and whatever else has already arrived."""
        first = yield from self.read_exactly(1)
        rest = self.read_exactly(min(len(self.buffered), self.options.line_limit))
        return first + (yield from rest)
