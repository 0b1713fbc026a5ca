"""The client role: reads the greeting, asks CAPA and upgrades with STLS when asked; when the
server offers NTLM, it starts NTLM to read the server's identity and cancels before any
credential."""

from __future__ import annotations

from collections.abc import Generator

from portcall.protocols.base import (
    Event,
    Handshake,
    RemoteProtocolError,
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
from portcall.protocols.ntlm import POP3, Answer, exchange, is_continuation, note_ntlm
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
        # On the final session only: capabilities from before TLS no longer hold.
        try:
            if (yield from self._offers_ntlm(info)):
                yield from self._ntlm(info)
        except RemoteProtocolError as error:
            # The greeting has been answered already: a peer that breaks off here only
            # loses us its NTLM identity, and the session is beyond a polite QUIT.
            note_ntlm(info, f"the exchange broke off: {error}")
            return info
        yield Send(b"QUIT\r\n")
        return info

    def _offers_ntlm(self, info: ServiceInfo) -> Generator[Event, None, bool]:
        """NTLM among the SASL mechanisms of CAPA (RFC 5034 section 3), or of an AUTH line
        some servers write there instead. A Microsoft server whose CAPA names no mechanism is
        asked a bare AUTH, which it answers with the list of its mechanisms (MS-POP3 2.2.1)."""
        listed = _mechanisms(info.capabilities)
        if listed is not None:
            return "NTLM" in listed
        if "microsoft" not in (info.banner or "").lower():
            return False
        yield Send(b"AUTH\r\n")
        status = yield from self.read_line()
        if not status.startswith("+OK"):
            return False
        names = yield from read_dot_block(self)
        return "NTLM" in {name.strip().upper() for name in names}

    def _ntlm(self, info: ServiceInfo) -> Generator[Event, None, None]:
        """AUTH NTLM through `ntlm.exchange`; "+" is the continuation (RFC 5034 section 4)."""
        yield from exchange(info, "AUTH NTLM", POP3.start, self._ntlm_answer)

    def _ntlm_answer(self) -> Generator[Event, None, Answer]:
        line = yield from self.read_line()
        if is_continuation(POP3, line.encode()):
            return Answer(more=True, text=line[1:])
        return Answer(more=False, text=quoted(line))

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


def _mechanisms(capabilities: list[str]) -> set[str] | None:
    """The mechanisms of the CAPA lines `SASL ...` and `AUTH ...`; None when there are none."""
    found: set[str] | None = None
    for line in capabilities:
        name, *words = line.upper().split() or [""]
        if name in ("SASL", "AUTH"):
            found = (found or set()) | set(words)
    return found
