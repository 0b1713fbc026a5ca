"""The client role: reads the greeting, asks CAPA and upgrades with STLS when asked."""

from __future__ import annotations

from collections.abc import Generator

from portcall.protocols.base import (
    Event,
    Handshake,
    Send,
    ServiceInfo,
    ServiceRefused,
    StartTLS,
    StartTLSUnavailable,
    Steps,
)
from portcall.protocols.lines import (
    capability_names,
    may_upgrade,
    read_dot_block,
)
from portcall.protocols.peertext import quoted
from portcall.protocols.products import product_from_text


class Pop3Client(Handshake):
    protocol = "pop3"
    display_name = "POP3"

    def run(self) -> Steps:
        banner = yield from self.read_line()
        if banner.startswith("-ERR"):
            raise ServiceRefused(f"the POP3 service turned us away: {quoted(banner)}")
        if not banner.startswith("+OK"):
            raise self.wrong_protocol(f"greeting {quoted(banner)}")
        info = ServiceInfo(protocol=self.protocol, banner=banner)
        info.product = product_from_text(banner)
        info.capabilities = yield from self._capa()
        info.starttls_offered = "STLS" in capability_names(info.capabilities)
        if self.options.starttls:
            yield from self._upgrade(info)
        yield Send(b"QUIT\r\n")
        return info

    def _capa(self) -> Generator[Event, None, list[str]]:
        yield Send(b"CAPA\r\n")
        status = yield from self.read_line()
        if not status.startswith("+OK"):
            return []  # CAPA is an extension (RFC 2449); old servers answer -ERR.
        return (yield from read_dot_block(self))

    def _upgrade(self, info: ServiceInfo) -> Steps:
        missing = "the POP3 service does not offer STLS in its CAPA list"
        if not may_upgrade(self, info, command="STLS", missing=missing):
            return info
        yield Send(b"STLS\r\n")
        answer = yield from self.read_line()
        if not answer.startswith("+OK"):
            raise StartTLSUnavailable(f"STLS was refused: {quoted(answer)}")
        yield StartTLS()
        info.tls_upgraded = True
        info.capabilities = yield from self._capa()
        return info
