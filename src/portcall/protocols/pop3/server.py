"""The server role: answers as the Exchange store's POP3 service, where no logon succeeds."""

from __future__ import annotations

from portcall.protocols.base import (
    Send,
    ServerOptions,
    ServerSteps,
    StartTLS,
)
from portcall.protocols.lines import MAX_ERRORS as MAX_ERRORS
from portcall.protocols.lines import (
    Verb,
    VerbServer,
    store_ready,
)
from portcall.protocols.ntlm import CANCELLED, NtlmChallenger, host_identity

#: How the Exchange store's POP3 service names itself, per profile (nmap-service-probes).
_PRODUCTS: dict[str, str] = {
    "exchange2003": "Microsoft Exchange Server 2003 POP3 server version 6.5.7638.1",
    "exchange2000": "Microsoft Exchange 2000 POP3 server version 6.0.6249.0",
}
_NEUTRAL_NAME = "portcall responder"
#: The CAPA list (RFC 2449 section 6) without STLS, which is added while it can be used.
_CAPABILITIES = ("TOP", "USER", "UIDL")
#: Commands of the TRANSACTION state (RFC 1939 section 5); no one ever reaches it here.
_TRANSACTION = ("STAT", "LIST", "RETR", "DELE", "NOOP", "RSET", "TOP", "UIDL", "LAST")


class Pop3Server(VerbServer):
    """Answers like the POP3 service of the Exchange 2000/2003 store, or a neutral one. No
    mailbox exists, so every logon fails the way a wrong password would.

    Unverified: whether Exchange's POP3 lists STLS; the responder offers it whenever it has
    a certificate, so that STARTTLS can be tested through a firewall.
    """

    protocol = "pop3"
    display_name = "POP3"
    #: The log never keeps a user name or password, and of AUTH only the mechanism.
    hidden = frozenset({"USER", "PASS", "APOP"})
    hidden_after_first = frozenset({"AUTH"})

    def __init__(self, options: ServerOptions | None = None) -> None:
        super().__init__(options)
        self._name = _PRODUCTS.get(self.options.profile, _NEUTRAL_NAME)
        self.challenger = NtlmChallenger(host_identity(self.options))

    def _verb_table(self) -> dict[str, Verb]:
        verbs: dict[str, Verb] = {"CAPA": self._capa, "STLS": self._stls, "QUIT": self._quit}
        for verb in ("USER", "PASS", "APOP", "AUTH"):
            verbs[verb] = self._logon
        if self.options.profile != "neutral":
            verbs["AUTH"] = self._auth
        for verb in _TRANSACTION:
            verbs[verb] = self._wrong_state
        return verbs

    def _greeting_reply(self) -> Send:
        return self._ok(store_ready(self._name, self.options))

    def _too_many_errors_reply(self) -> Send:
        return self._err("Too many errors, closing the connection.")

    def _line_too_long_reply(self) -> Send:
        return self._err("Line too long.")

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

    def _auth(self, args: str) -> ServerSteps:
        """Exchange's NTLM (MS-POP3 2.2.1): a bare AUTH lists NTLM, AUTH NTLM goes as far as
        the challenge, which names this host. "*" gets the -ERR RFC 5034 section 4 asks for;
        credentials fail as a wrong password would."""
        mechanism = args.split()[0].upper() if args.split() else ""
        if not mechanism:
            yield Send(b"+OK The operation completed successfully.\r\nNTLM\r\n.\r\n")
            return
        if mechanism != "NTLM":
            yield from self._logon(args)
            return
        yield Send(b"+ \r\n")
        response = yield from self.read_command_line()
        challenge = None if response == CANCELLED else self.challenger.answer_line(response)
        if challenge is not None:
            yield Send(f"+ {challenge}\r\n".encode())
            response = yield from self.read_command_line()
        if response == CANCELLED:
            yield self._err("Authentication cancelled.")
        else:
            yield self._err("Logon failure: unknown user name or bad password.")

    def _wrong_state(self, args: str) -> ServerSteps:
        yield self._err("Command is not valid in this state.")

    def _quit(self, args: str) -> ServerSteps:
        yield self._ok(f"{self._name} signing off.")
        self._closing = True

    def _unknown(self, args: str) -> ServerSteps:
        yield self._err("Unknown command.")
