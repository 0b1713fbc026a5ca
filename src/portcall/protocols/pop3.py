"""POP3 (RFC 1939) with CAPA and STLS (RFC 2449, RFC 2595): client and server roles."""

from __future__ import annotations

from collections.abc import Callable, Generator

from portcall.protocols.base import (
    Event,
    Handshake,
    LocalProtocolError,
    PeerClosed,
    ReplyTooLong,
    Send,
    ServerEvent,
    ServerHandshake,
    ServerOptions,
    ServerSteps,
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


# -- server role ---------------------------------------------------------------------------

#: How the Exchange store's POP3 service names itself, per profile (nmap-service-probes).
_PRODUCTS: dict[str, str] = {
    "exchange2003": "Microsoft Exchange Server 2003 POP3 server version 6.5.7638.1",
    "exchange2000": "Microsoft Exchange 2000 POP3 server version 6.0.6249.0",
}
_NEUTRAL_NAME = "portcall responder"
PROFILES = frozenset({*_PRODUCTS, "neutral"})
#: Refused or unknown commands a client may send before the server says goodbye.
MAX_ERRORS = 20
#: The CAPA list (RFC 2449 section 6) without STLS, which is added while it can be used.
_CAPABILITIES = ("TOP", "USER", "UIDL")
#: Commands of the TRANSACTION state (RFC 1939 section 5); no one ever reaches it here.
_TRANSACTION = ("STAT", "LIST", "RETR", "DELE", "NOOP", "RSET", "TOP", "UIDL", "LAST")
#: Commands that carry a name or credentials; the log keeps only the verb (and mechanism).
_SECRET_VERBS = frozenset({"USER", "PASS", "APOP", "AUTH"})

_Verb = Callable[[str], ServerSteps]


class Pop3Server(ServerHandshake):
    """Answers like the POP3 service of the Exchange 2000/2003 store, or a neutral one. No
    mailbox exists, so every logon fails the way a wrong password would."""

    protocol = "pop3"
    display_name = "POP3"

    def __init__(self, options: ServerOptions | None = None) -> None:
        super().__init__(options)
        if self.options.profile not in PROFILES:
            raise LocalProtocolError(f"unknown responder profile {self.options.profile!r}")
        self._name = _PRODUCTS.get(self.options.profile, _NEUTRAL_NAME)
        self._tls = self.options.implicit_tls
        self._closing = False
        self._errors = 0
        self._verbs: dict[str, _Verb] = {"CAPA": self._capa, "STLS": self._stls}
        self._verbs.update(QUIT=self._quit)
        for verb in ("USER", "PASS", "APOP", "AUTH"):
            self._verbs[verb] = self._logon
        for verb in _TRANSACTION:
            self._verbs[verb] = self._wrong_state

    def serve(self) -> ServerSteps:
        yield self._ok(self._greeting())
        try:
            yield from self._session()
        except PeerClosed:
            return
        except ReplyTooLong:
            yield self._err("Line too long.")

    def _greeting(self) -> str:
        if self.options.profile == "neutral":
            return f"{self._name} ready."
        return f"{self._name} ({self.options.hostname}) ready."

    def _session(self) -> ServerSteps:
        while not self._closing:
            if self._errors >= MAX_ERRORS:
                yield self._err("Too many errors, closing the connection.")
                return
            line = yield from self._read_command()
            verb, _, args = line.strip().partition(" ")
            verb, args = verb.upper(), args.strip()
            self.heard.append(_heard(verb, args, known=verb in self._verbs))
            yield from self._verbs.get(verb, self._unknown)(args)

    def _read_command(self) -> Generator[ServerEvent, None, str]:
        # The base's read helpers only ever yield NEED_DATA, but are typed with client events.
        raw = yield from self.read_until(b"\n")
        if len(raw) > self.options.line_limit:
            raise ReplyTooLong(self.options.line_limit, raw[:512])
        return raw.rstrip(b"\r\n").decode("utf-8", "replace")

    def _ok(self, text: str) -> Send:
        return Send(f"+OK {text}\r\n".encode())

    def _err(self, text: str) -> Send:
        self._errors += 1
        return Send(f"-ERR {text}\r\n".encode())

    # -- the verbs -----------------------------------------------------------------------

    def _capa(self, args: str) -> ServerSteps:
        names = [*_CAPABILITIES, *(["STLS"] if self._offers_tls() else [])]
        lines = "".join(f"{name}\r\n" for name in names)
        yield Send(f"+OK Capability list follows\r\n{lines}.\r\n".encode())

    def _offers_tls(self) -> bool:
        return self.options.starttls and not self._tls

    def _stls(self, args: str) -> ServerSteps:
        if args:
            yield self._err("STLS takes no arguments.")
        elif self._tls:
            yield self._err("Command not permitted when TLS is active.")
        elif not self.options.starttls:
            yield self._err("STLS is not available.")
        else:
            yield self._ok("Begin TLS negotiation")
            yield StartTLS()
            self._tls = True

    def _logon(self, args: str) -> ServerSteps:
        yield self._err("Logon failure: unknown user name or bad password.")

    def _wrong_state(self, args: str) -> ServerSteps:
        yield self._err("Command is not valid in this state.")

    def _quit(self, args: str) -> ServerSteps:
        yield self._ok(f"{self._name} signing off.")
        self._closing = True

    def _unknown(self, args: str) -> ServerSteps:
        yield self._err("Unknown command.")


def _heard(verb: str, args: str, *, known: bool) -> str:
    """What the log keeps of a command: never a name or password, only an AUTH mechanism,
    and only the verb of an unknown command (a stray line may be a credential)."""
    if verb in _SECRET_VERBS:
        head, _, rest = args.partition(" ") if verb == "AUTH" else ("", "", args)
        args = f"{head} ***".strip() if rest else head
    elif not known:
        verb, args = verb[:16], ""
    text = f"{verb} {args}".strip()
    return "".join(ch if ch.isprintable() else "?" for ch in text)[:120]
