"""The client role: reads the greeting, asks CAPABILITIES and upgrades with STARTTLS when
asked."""

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
    CodeReply,
    capability_names,
    may_upgrade,
    read_code_reply,
    read_dot_block,
)
from portcall.protocols.nntp.messages import (
    CAPABILITY_LIST,
    CONTINUE_WITH_TLS,
    POSTING_ALLOWED,
    POSTING_PROHIBITED,
    SERVICE_REFUSED,
    SERVICE_UNAVAILABLE,
)
from portcall.protocols.peertext import quoted
from portcall.protocols.products import product_from_text


class NntpClient(Handshake):
    protocol = "nntp"
    display_name = "NNTP"

    def run(self) -> Steps:
        greeting = yield from self._greeting()
        info = ServiceInfo(protocol=self.protocol, banner=_render(greeting))
        info.details["posting_allowed"] = greeting.code == POSTING_ALLOWED
        info.capabilities = yield from self._capabilities()
        info.product = product_from_text(info.banner) or _implementation(info.capabilities)
        info.starttls_offered = "STARTTLS" in capability_names(info.capabilities)
        if self.options.starttls:
            yield from self._upgrade(info)
        yield Send(b"QUIT\r\n")
        return info

    def _greeting(self) -> Generator[Event, None, CodeReply]:
        reply = yield from read_code_reply(self)
        if reply.code in (SERVICE_UNAVAILABLE, SERVICE_REFUSED):
            raise ServiceRefused(f"the NNTP service turned us away: {quoted(_render(reply))}")
        if reply.code not in (POSTING_ALLOWED, POSTING_PROHIBITED):
            raise self.wrong_protocol(f"greeting {quoted(_render(reply))}")
        return reply

    def _capabilities(self) -> Generator[Event, None, list[str]]:
        yield Send(b"CAPABILITIES\r\n")
        status = yield from read_code_reply(self)
        if status.code != CAPABILITY_LIST:
            # RFC 977 servers (the IIS NNTP service among them) answer 500; others may want
            # authentication first (480, RFC 4643).
            return []
        return (yield from read_dot_block(self))

    def _upgrade(self, info: ServiceInfo) -> Steps:
        missing = "the NNTP service does not list STARTTLS in CAPABILITIES"
        if not may_upgrade(self, info, command="STARTTLS", missing=missing):
            return info
        yield Send(b"STARTTLS\r\n")
        answer = yield from read_code_reply(self)
        if answer.code != CONTINUE_WITH_TLS:
            raise StartTLSUnavailable(f"STARTTLS was refused: {quoted(_render(answer))}")
        yield StartTLS()
        info.tls_upgraded = True
        # RFC 4642 section 2.2.2: the capability list may change once TLS is in place.
        info.capabilities = yield from self._capabilities()
        return info


def _render(reply: CodeReply) -> str:
    return f"{reply.code} {reply.text}"


def _implementation(capabilities: list[str]) -> str | None:
    """The server's own description (RFC 3977 section 5.2.2), named as a product if known."""
    for line in capabilities:
        keyword, _, text = line.partition(" ")
        if keyword.upper() == "IMPLEMENTATION" and text.strip():
            return product_from_text(text) or text.strip()
    return None
