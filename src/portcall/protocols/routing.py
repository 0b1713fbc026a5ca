"""The Exchange 2000/2003 routing engine (RESvc) on TCP 691: read its banner (client role) or
say it (server role).

Servers of one routing group exchange link state over this port (Microsoft KB 842026). The
service speaks first, with one line (nmap-service-probes, NULL probe, service `resvc`):

    {0000004c} NODEINFO (5) {38}Version: <version> Microsoft Routing Server ready<CR><LF>

Binary link-state data may follow the line end (nmap's pattern expects two more bytes), so only
the line is read. The number in the second braces is not a byte count of the text that follows
it (that text is longer than 38 bytes for any version), so nothing here relies on it.

We send nothing: the traffic that follows the banner has no public description, and a made-up
message could upset a routing master that owns the group's link-state table. For the same reason
the server role says its banner and then only listens: it never interprets what a peer sends.
"""

from __future__ import annotations

import re
from collections.abc import Generator
from typing import Final

from portcall.protocols.base import (
    Event,
    Handshake,
    PeerClosed,
    Send,
    ServerEvent,
    ServerHandshake,
    ServerSteps,
    ServiceInfo,
    Steps,
)
from portcall.protocols.products import product_from_text

PRODUCT: Final = "Microsoft Exchange routing engine (RESvc)"

#: The fixed shape of the banner's opening; "#" stands for one hexadecimal digit.
HEAD_SHAPE: Final = b"{########} NODEINFO"
_HEX: Final = frozenset(b"0123456789abcdefABCDEF")

_NODE_INFO = re.compile(r"^\{[0-9A-Fa-f]{8}\} NODEINFO \((?P<node_info>\d+)\)")
_VERSION = re.compile(r"Version: (?P<version>\d[-.\w ]*?) Microsoft Routing Server")


class RoutingClient(Handshake):
    protocol = "routing"
    display_name = "Exchange routing"

    def run(self) -> Steps:
        head = yield from self._read_head()
        try:
            line = head + (yield from self.read_until(b"\n"))
        except PeerClosed as closed:
            raise PeerClosed(head + closed.received) from None
        banner = _printable(line)
        info = ServiceInfo(protocol=self.protocol, banner=banner)
        node_info = _NODE_INFO.match(banner)
        version = _VERSION.search(banner)
        info.details = {
            "node_info": int(node_info["node_info"]) if node_info else None,
            "version": version["version"] if version else None,
        }
        name = product_from_text(banner) or PRODUCT
        info.product = f"{name} {version['version']}" if version else name
        if version is None:
            info.notes.append("the banner names no version")
        return info

    def _read_head(self) -> Generator[Event, None, bytes]:
        """The banner's fixed opening, byte by byte, so that a stranger is caught at once."""
        head = b""
        while len(head) < len(HEAD_SHAPE):
            try:
                head += yield from self.read_exactly(1)
            except PeerClosed:
                if head:
                    raise PeerClosed(head) from None
                raise
            if not _fits(head):
                head = yield from self.gather_evidence(head)
                raise self.wrong_protocol(f"greeting {head[:60]!r}")
        return head


def _fits(head: bytes) -> bool:
    """Whether these first bytes can still open a routing banner."""
    for got, want in zip(head, HEAD_SHAPE, strict=False):
        if want == ord("#"):
            if got not in _HEX:
                return False
        elif got != want:
            return False
    return True


def _printable(line: bytes) -> str:
    text = line.rstrip(b"\r\n").decode("latin-1")
    return "".join(ch for ch in text if ch.isprintable())


# -- server role -----------------------------------------------------------------------------

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
