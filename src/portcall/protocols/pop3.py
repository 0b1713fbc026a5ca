"""POP3 (RFC 1939) with CAPA and STLS (RFC 2449, RFC 2595), client role."""

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
from portcall.protocols.lines import read_dot_block
from portcall.protocols.products import product_from_text

OK: bytes = b"+OK"
ERR: bytes = b"-ERR"


class Pop3Client(Handshake):
    protocol = "pop3"
    display_name = "POP3"

    def run(self) -> Steps:
        banner = yield from self.read_line()
        if banner.startswith("-ERR"):
            raise ServiceRefused(f"the POP3 service turned us away: {banner[:120]}")
        if not banner.startswith("+OK"):
            raise self.wrong_protocol(f"greeting {banner[:60]!r}")
        info = ServiceInfo(protocol=self.protocol, banner=banner)
        info.product = product_from_text(banner)
        info.capabilities = yield from self._capa()
        info.starttls_offered = "STLS" in _names(info.capabilities)
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
        if not info.starttls_offered and self.options.starttls_required:
            raise StartTLSUnavailable("the POP3 service does not offer STLS in its CAPA list")
        if not info.starttls_offered:
            info.notes.append("STLS not offered")
            return info
        yield Send(b"STLS\r\n")
        answer = yield from self.read_line()
        if not answer.startswith("+OK"):
            raise StartTLSUnavailable(f"STLS was refused: {answer[:120]}")
        yield StartTLS()
        info.tls_upgraded = True
        info.capabilities = yield from self._capa()
        return info


def _names(capabilities: list[str]) -> set[str]:
    return {line.split(" ", 1)[0].upper() for line in capabilities}
