"""NNTP (RFC 3977) with STARTTLS (RFC 4642), client role."""

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
from portcall.protocols.lines import CodeReply, read_code_reply, read_dot_block
from portcall.protocols.products import product_from_text

#: Greetings (RFC 3977 section 5.1.1): posting allowed, posting prohibited.
POSTING_ALLOWED = 200
POSTING_PROHIBITED = 201
#: Greetings that turn the client away: temporarily, permanently.
SERVICE_UNAVAILABLE = 400
SERVICE_REFUSED = 502
#: The capability list follows (RFC 3977 section 5.2.2).
CAPABILITY_LIST = 101
#: Go ahead with the TLS handshake (RFC 4642 section 2.2.2).
CONTINUE_WITH_TLS = 382


class NntpClient(Handshake):
    protocol = "nntp"
    display_name = "NNTP"

    def run(self) -> Steps:
        greeting = yield from self._greeting()
        info = ServiceInfo(protocol=self.protocol, banner=_render(greeting))
        info.details["posting_allowed"] = greeting.code == POSTING_ALLOWED
        info.capabilities = yield from self._capabilities()
        info.product = product_from_text(info.banner) or _implementation(info.capabilities)
        info.starttls_offered = "STARTTLS" in _names(info.capabilities)
        if self.options.starttls:
            yield from self._upgrade(info)
        yield Send(b"QUIT\r\n")
        return info

    def _greeting(self) -> Generator[Event, None, CodeReply]:
        reply = yield from read_code_reply(self)
        if reply.code in (SERVICE_UNAVAILABLE, SERVICE_REFUSED):
            raise ServiceRefused(f"the NNTP service turned us away: {_render(reply)[:120]}")
        if reply.code not in (POSTING_ALLOWED, POSTING_PROHIBITED):
            raise self.wrong_protocol(f"greeting {_render(reply)[:60]!r}")
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
        if not info.starttls_offered and self.options.starttls_required:
            raise StartTLSUnavailable("the NNTP service does not list STARTTLS in CAPABILITIES")
        if not info.starttls_offered:
            info.notes.append("STARTTLS not offered")
            return info
        yield Send(b"STARTTLS\r\n")
        answer = yield from read_code_reply(self)
        if answer.code != CONTINUE_WITH_TLS:
            raise StartTLSUnavailable(f"STARTTLS was refused: {_render(answer)[:120]}")
        yield StartTLS()
        info.tls_upgraded = True
        # RFC 4642 section 2.2.2: the capability list may change once TLS is in place.
        info.capabilities = yield from self._capabilities()
        return info


def _render(reply: CodeReply) -> str:
    return f"{reply.code} {reply.text}"


def _names(capabilities: list[str]) -> set[str]:
    return {line.split(" ", 1)[0].upper() for line in capabilities}


def _implementation(capabilities: list[str]) -> str | None:
    """The server's own description (RFC 3977 section 5.2.2), named as a product if known."""
    for line in capabilities:
        keyword, _, text = line.partition(" ")
        if keyword.upper() == "IMPLEMENTATION" and text.strip():
            return product_from_text(text) or text.strip()
    return None
