"""The Exchange 2000/2003 routing engine (RESvc) on TCP 691, client role: read its banner.

Servers of one routing group exchange link state over this port (Microsoft KB 842026). The
service speaks first, with one line (nmap-service-probes, NULL probe, service `resvc`):

    {0000004c} NODEINFO (5) {38}Version: <version> Microsoft Routing Server ready<CR><LF>

Binary link-state data may follow the line end (nmap's pattern expects two more bytes), so only
the line is read. The number in the second braces is not a byte count of the text that follows
it (that text is longer than 38 bytes for any version), so nothing here relies on it.

We send nothing: the traffic that follows the banner has no public description, and a made-up
message could upset a routing master that owns the group's link-state table.
"""

from __future__ import annotations

import re
from collections.abc import Generator
from typing import Final

from portcall.protocols.base import Event, Handshake, PeerClosed, ServiceInfo, Steps
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
