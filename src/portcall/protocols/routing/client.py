"""The client role: reads the routing engine's banner line, and sends nothing."""

from __future__ import annotations

from collections.abc import Generator
from typing import Final

from portcall.protocols.base import (
    Event,
    Handshake,
    PeerClosed,
    ServiceInfo,
    Steps,
)
from portcall.protocols.peertext import quoted
from portcall.protocols.products import product_from_text
from portcall.protocols.routing.messages import (
    HEAD_SHAPE,
    HEX_DIGITS,
    NODE_INFO,
    PRODUCT,
    VERSION_TEXT,
)


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
        node_info = NODE_INFO.match(banner)
        version = VERSION_TEXT.search(banner)
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
                raise self.wrong_protocol(f"greeting {quoted(head)}")
        return head


def _fits(head: bytes) -> bool:
    """Whether these first bytes can still open a routing banner."""
    for got, want in zip(head, HEAD_SHAPE, strict=False):
        if want == ord("#"):
            if got not in HEX_DIGITS:
                return False
        elif got != want:
            return False
    return True


#: Every latin-1 character that is not printable, mapped to nothing: `str.translate` drops
#: them in one pass at C speed, where a Python loop over a long banner costs milliseconds.
_UNPRINTABLE: Final = {code: None for code in range(256) if not chr(code).isprintable()}


def _printable(line: bytes) -> str:
    return line.rstrip(b"\r\n").decode("latin-1").translate(_UNPRINTABLE)
