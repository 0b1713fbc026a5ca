"""The client role: reads the greeting, asks EHLO (HELO when EHLO is refused), upgrades
with STARTTLS when asked and names the server from its greeting and extensions; when AUTH
lists NTLM, it starts NTLM to read the server's identity and cancels before any credential."""

from __future__ import annotations

import re
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
    CodeReply,
    may_upgrade,
    read_code_reply,
)
from portcall.protocols.ntlm import SMTP, Answer, exchange, note_ntlm
from portcall.protocols.peertext import quoted
from portcall.protocols.products import exchange_smtp_product, product_from_text
from portcall.protocols.smtp.messages import (
    AUTH_CONTINUE,
    CLOSING,
    COMPLETED,
    EXCHANGE_PROOF,
    EXCHANGE_VERBS,
    NO_SERVICE,
    READY,
)
from portcall.protocols.sniff import identify


class SmtpClient(Handshake):
    protocol = "smtp"
    display_name = "SMTP"

    def run(self) -> Steps:
        greeting = yield from self._greeting()
        info = ServiceInfo(protocol=self.protocol, banner=_render(greeting))
        info.product = product_from_text(info.banner)
        yield from self._hello(info)
        info.starttls_offered = "STARTTLS" in _keywords(info.capabilities)
        if self.options.starttls:
            yield from self._upgrade(info)
        # On the final session only: what was said before TLS no longer counts (RFC 3207).
        if "NTLM" in _as_list(info.details.get("auth")):
            try:
                yield from self._ntlm(info)
            except RemoteProtocolError as error:
                # The service has answered EHLO already: a peer that breaks off here only
                # loses us its NTLM identity, and the session is beyond a polite QUIT.
                note_ntlm(info, f"the exchange broke off: {error}")
                return info
        yield Send(b"QUIT\r\n")
        return info

    def _ntlm(self, info: ServiceInfo) -> Generator[Event, None, None]:
        """AUTH NTLM through `ntlm.exchange`; 334 is the continuation (RFC 4954 section 4)."""
        yield from exchange(info, "AUTH NTLM", SMTP.start, self._ntlm_answer)

    def _ntlm_answer(self) -> Generator[Event, None, Answer]:
        reply = yield from read_code_reply(self)
        if reply.code == AUTH_CONTINUE:
            return Answer(more=True, text=reply.text)
        return Answer(more=False, text=quoted(_render(reply)))

    def _greeting(self) -> Generator[Event, None, CodeReply]:
        reply = yield from read_code_reply(self)
        if reply.code in (CLOSING, NO_SERVICE):
            raise ServiceRefused(f"the SMTP service turned us away: {quoted(_render(reply))}")
        # FTP greets with 220 too; the sniffer tells it apart by the words of the banner.
        if reply.code != READY or identify(self.first_bytes) == "FTP":
            raise self.wrong_protocol(f"greeting {quoted(_render(reply))}")
        return reply

    def _hello(self, info: ServiceInfo) -> Generator[Event, None, None]:
        yield Send(f"EHLO {self.options.client_name}\r\n".encode())
        reply = yield from read_code_reply(self)
        if reply.code == COMPLETED:
            # The first line greets us back; each further line is one extension.
            self._learn(info, list(reply.lines[1:]))
        elif 500 <= reply.code < 600:
            yield from self._helo(info, reply)
        else:
            raise _unexpected("EHLO", reply)

    def _helo(self, info: ServiceInfo, refusal: CodeReply) -> Generator[Event, None, None]:
        # RFC 5321 section 3.2: a client whose EHLO is refused falls back to HELO.
        yield Send(f"HELO {self.options.client_name}\r\n".encode())
        reply = yield from read_code_reply(self)
        if reply.code != COMPLETED:
            raise _unexpected("HELO", reply)
        self._learn(info, [])
        info.notes.append(f"EHLO refused ({refusal.code}); HELO accepted, so no extensions")

    def _learn(self, info: ServiceInfo, extensions: list[str]) -> None:
        info.capabilities = extensions
        info.details.pop("auth", None)
        info.details.pop("exchange_verbs", None)
        keywords = _keywords(extensions)
        if "AUTH" in keywords:
            info.details["auth"] = _auth_mechanisms(extensions)
        verbs = [verb for verb in EXCHANGE_VERBS if verb in keywords]
        if verbs:
            info.details["exchange_verbs"] = verbs
        if EXCHANGE_PROOF & keywords:
            info.product = exchange_smtp_product(info.banner)

    def _upgrade(self, info: ServiceInfo) -> Steps:
        missing = "the SMTP service does not offer STARTTLS in its EHLO reply"
        if not may_upgrade(self, info, command="STARTTLS", missing=missing):
            return info
        yield Send(b"STARTTLS\r\n")
        answer = yield from read_code_reply(self)
        if answer.code != READY:
            raise StartTLSUnavailable(f"STARTTLS was refused: {quoted(_render(answer))}")
        yield StartTLS()
        info.tls_upgraded = True
        # RFC 3207 section 4.2: forget what was learnt in plaintext and ask again.
        yield from self._hello(info)
        return info


def _unexpected(command: str, reply: CodeReply) -> RemoteProtocolError:
    if 400 <= reply.code < 600:
        return ServiceRefused(f"the SMTP service refused {command}: {quoted(_render(reply))}")
    return RemoteProtocolError(f"unexpected answer to {command}: {quoted(_render(reply))}")


def _render(reply: CodeReply) -> str:
    """The reply as the server wrote it, one line per line, without line ends."""
    last = len(reply.lines) - 1
    return "\n".join(
        f"{reply.code}{' ' if i == last else '-'}{line}" for i, line in enumerate(reply.lines)
    )


def _as_list(value: object) -> list[object]:
    return value if isinstance(value, list) else []


def _keywords(extensions: list[str]) -> set[str]:
    # Servers also list the pre-standard "AUTH=LOGIN" form for old clients: "=" acts as a space.
    return {re.split(r"[ =]", line, maxsplit=1)[0].upper() for line in extensions if line}


def _auth_mechanisms(extensions: list[str]) -> list[str]:
    """SASL mechanisms of every AUTH line (RFC 4954 section 3), in order, without repeats."""
    mechanisms: list[str] = []
    for line in extensions:
        keyword, *names = re.split(r"[ =]+", line.strip())
        if keyword.upper() == "AUTH":
            mechanisms += [name.upper() for name in names]
    return list(dict.fromkeys(mechanisms))
