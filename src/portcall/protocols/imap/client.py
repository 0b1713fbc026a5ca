"""The client role: reads the greeting, asks CAPABILITY and upgrades with STARTTLS when
asked; when CAPABILITY lists AUTH=NTLM, it starts NTLM to read the server's identity and
cancels before any credential."""

from __future__ import annotations

from collections.abc import Generator

from portcall.protocols.base import (
    Event,
    Handshake,
    ProbeOptions,
    RemoteProtocolError,
    ReplyTooLong,
    Send,
    ServiceInfo,
    ServiceRefused,
    StartTLS,
    StartTLSUnavailable,
    Steps,
)
from portcall.protocols.imap.messages import (
    AUTH_WAITING,
    LITERAL_END,
    MAX_LITERALS,
    Completion,
)
from portcall.protocols.lines import (
    MAX_LINES,
    may_upgrade,
    spend,
)
from portcall.protocols.ntlm import Answer, exchange, note_ntlm
from portcall.protocols.peertext import quoted
from portcall.protocols.products import product_from_text


class ImapClient(Handshake):
    protocol = "imap"
    display_name = "IMAP4"

    def __init__(self, options: ProbeOptions | None = None) -> None:
        self._tags = 0
        self._literals = 0
        super().__init__(options)

    def run(self) -> Steps:
        info = yield from self._greeting()
        info.capabilities = yield from self._capability()
        names = {name.upper() for name in info.capabilities}
        info.starttls_offered = "STARTTLS" in names
        if "LOGINDISABLED" in names and not self.options.implicit_tls:
            info.notes.append("LOGINDISABLED: no plaintext LOGIN before TLS")
        if self.options.starttls:
            yield from self._upgrade(info)
        # On the final session only: capabilities from before TLS no longer hold.
        if "AUTH=NTLM" in {name.upper() for name in info.capabilities}:
            try:
                yield from self._ntlm(info)
            except RemoteProtocolError as error:
                # CAPABILITY has been answered already: a peer that breaks off here only
                # loses us its NTLM identity, and the session is beyond a polite LOGOUT.
                note_ntlm(info, f"the exchange broke off: {error}")
                return info
        yield Send(f"{self._next_tag()} LOGOUT\r\n".encode())
        return info

    def _ntlm(self, info: ServiceInfo) -> Generator[Event, None, None]:
        """AUTHENTICATE NTLM through `ntlm.exchange`; "+" is the continuation, and the tagged
        completion ends the command (RFC 3501 section 6.2.2)."""
        tag = self._next_tag()
        start = f"{tag} AUTHENTICATE NTLM\r\n".encode()
        yield from exchange(info, "AUTHENTICATE NTLM", start, lambda: self._ntlm_answer(tag))

    def _ntlm_answer(self, tag: str) -> Generator[Event, None, Answer]:
        answer = yield from self._continuation(tag)
        if isinstance(answer, Completion):
            return Answer(more=False, text=_completion(answer))
        return Answer(more=True, text=answer)

    def _continuation(self, tag: str) -> Generator[Event, None, str | Completion]:
        """The text of the next continuation request ("+ text"), or the tagged completion
        that ends the command instead; untagged lines in between are passed over."""
        untagged: list[str] = []
        used = 0
        for _ in range(MAX_LINES):
            line = yield from self._response_line()
            used = spend(self, used, line)
            head, _, rest = line.partition(" ")
            if head == "+":
                return rest
            if head == tag:
                status, _, text = rest.partition(" ")
                return Completion(status.upper(), text, tuple(untagged))
            if head == "*" and rest[:3].upper() == "BYE":
                raise ServiceRefused(f"the IMAP4 service closed the session: {quoted(line)}")
            untagged.append(rest)
        raise self.wrong_protocol(f"no continuation within {MAX_LINES} lines")

    def _greeting(self) -> Generator[Event, None, ServiceInfo]:
        info = ServiceInfo(protocol=self.protocol)
        kind, line = yield from self._greeting_line()
        for _ in range(3):
            if not (kind == "OK" and line[5:].startswith(AUTH_WAITING)):
                break
            info.notes.append(f"the greeting was delayed: {line[5:80]}")
            kind, line = yield from self._greeting_line()
        info.banner = line
        info.product = product_from_text(line)
        if kind == "PREAUTH":
            info.notes.append("PREAUTH: the server logged us in without credentials")
        return info

    def _greeting_line(self) -> Generator[Event, None, tuple[str, str]]:
        # RFC 3501 section 7.1: an untagged OK, PREAUTH or BYE.
        line = yield from self.read_line()
        kind = line[2:].split(" ", 1)[0].upper() if line.startswith("* ") else ""
        if kind == "BYE":
            raise ServiceRefused(f"the IMAP4 service turned us away: {quoted(line)}")
        if kind not in ("OK", "PREAUTH"):
            raise self.wrong_protocol(f"greeting {quoted(line)}")
        return kind, line

    def _capability(self) -> Generator[Event, None, list[str]]:
        reply = yield from self._command("CAPABILITY")
        if reply.status != "OK":
            return []
        words: list[str] = []
        for line in reply.untagged:
            name, *rest = line.split() or [""]
            if name.upper() == "CAPABILITY":
                words += rest
        return words

    def _command(self, command: str) -> Generator[Event, None, Completion]:
        tag = self._next_tag()
        yield Send(f"{tag} {command}\r\n".encode())
        untagged: list[str] = []
        used = 0
        for _ in range(MAX_LINES):
            line = yield from self._response_line()
            used = spend(self, used, line)
            head, _, rest = line.partition(" ")
            if head == tag:
                status, _, text = rest.partition(" ")
                return Completion(status.upper(), text, tuple(untagged))
            if head != "*":
                continue  # a continuation request or a stray line: nothing we asked for
            if rest[:3].upper() == "BYE":
                raise ServiceRefused(f"the IMAP4 service closed the session: {quoted(line)}")
            untagged.append(rest)
        raise self.wrong_protocol(f"no tagged reply to {command} within {MAX_LINES} lines")

    def _response_line(self) -> Generator[Event, None, str]:
        """One response line, with any literals it carries (RFC 3501 section 4.3) inlined."""
        piece = yield from self.read_line()
        pieces, used = [piece], len(piece)
        # Only the newest piece can announce the next literal: searching it alone keeps a
        # reply of many small literals linear.
        while match := LITERAL_END.search(piece):
            self._literals += 1
            if self._literals > MAX_LITERALS:
                raise self.wrong_protocol(f"more than {MAX_LITERALS} literals in its responses")
            if used > self.options.reply_limit:
                raise ReplyTooLong(self.options.reply_limit, "".join(pieces)[:512].encode())
            data = yield from self.read_exactly(int(match.group(1)))
            piece = yield from self.read_line()
            pieces += [data.decode("utf-8", "replace"), piece]
            used += len(data) + len(piece)
        return "".join(pieces)

    def _upgrade(self, info: ServiceInfo) -> Steps:
        missing = "the IMAP4 service does not list STARTTLS in CAPABILITY"
        if not may_upgrade(self, info, command="STARTTLS", missing=missing):
            return info
        reply = yield from self._command("STARTTLS")
        if reply.status != "OK":
            raise StartTLSUnavailable(
                f"STARTTLS was refused: {quoted(f'{reply.status} {reply.text}')}"
            )
        yield StartTLS()
        info.tls_upgraded = True
        # RFC 3501 section 6.2.1: capabilities learnt before TLS no longer hold.
        info.capabilities = yield from self._capability()
        return info

    def _next_tag(self) -> str:
        self._tags += 1
        return f"a{self._tags}"


def _completion(reply: Completion) -> str:
    return quoted(f"{reply.status} {reply.text}".strip())
