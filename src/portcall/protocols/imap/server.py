"""The server role: answers as the Exchange store's IMAP4 service, where no logon succeeds."""

from __future__ import annotations

import re
from collections.abc import Callable, Generator

from portcall.protocols.base import (
    ReplyTooLong,
    Send,
    ServerEvent,
    ServerOptions,
    ServerSteps,
    StartTLS,
)
from portcall.protocols.lines import MAX_ERRORS as MAX_ERRORS
from portcall.protocols.lines import (
    LineServer,
    split_command,
    store_ready,
)
from portcall.protocols.ntlm import CANCELLED, NtlmChallenger, host_identity

#: How the Exchange store's IMAP4 service names itself, per profile (nmap-service-probes).
_PRODUCTS: dict[str, str] = {
    "exchange2003": "Microsoft Exchange Server 2003 IMAP4rev1 server version 6.5.7638.1",
    "exchange2000": "Microsoft Exchange 2000 IMAP4rev1 server version 6.0.6249.0",
}
_NEUTRAL_NAME = "portcall responder"
#: The CAPABILITY words of Exchange 2000/2003, in its order, before STARTTLS/LOGINDISABLED.
_EXCHANGE_CAPABILITIES: tuple[str, ...] = (
    *("IMAP4", "IMAP4rev1", "IDLE", "LOGIN-REFERRALS", "MAILBOX-REFERRALS", "NAMESPACE"),
    *("LITERAL+", "UIDPLUS", "CHILDREN", "AUTH=NTLM"),
)
_NEUTRAL_CAPABILITIES: tuple[str, ...] = ("IMAP4rev1", "LITERAL+")
#: Commands of the authenticated and selected states (RFC 3501 sections 6.3, 6.4, and the
#: extensions Exchange lists); no client ever gets there.
_LATER_STATES = (
    *("SELECT", "EXAMINE", "CREATE", "DELETE", "RENAME", "SUBSCRIBE", "UNSUBSCRIBE", "LIST"),
    *("LSUB", "STATUS", "APPEND", "CHECK", "CLOSE", "EXPUNGE", "SEARCH", "FETCH", "STORE"),
    *("COPY", "UID", "IDLE", "NAMESPACE"),
)
#: A literal announced at the end of a command line: `{n}` waits for our go-ahead, `{n+}`
#: (LITERAL+, RFC 7888) does not.
_CLIENT_LITERAL = re.compile(rb"\{(\d{1,10})(\+?)\}$")
#: Characters a tag cannot hold (RFC 3501 section 9: tag is 1*<ASTRING-CHAR except "+">).
_NOT_IN_TAG = frozenset('(){%*"\\+')
#: The go-ahead for a synchronizing literal (RFC 3501 section 7.5).
_CONTINUE = b"+ Ready for additional command text.\r\n"

_Verb = Callable[[str, str], ServerSteps]


class ImapServer(LineServer):
    """Answers like the IMAP4 service of the Exchange 2000/2003 store, or a neutral one, in
    the not-authenticated state it never leaves: no logon ever succeeds."""

    protocol = "imap"
    display_name = "IMAP4"
    #: The log never keeps LOGIN's name and password, and of AUTHENTICATE only the mechanism.
    hidden = frozenset({"LOGIN"})
    hidden_after_first = frozenset({"AUTHENTICATE"})

    def __init__(self, options: ServerOptions | None = None) -> None:
        super().__init__(options)
        self._name = _PRODUCTS.get(self.options.profile, _NEUTRAL_NAME)
        self.challenger = NtlmChallenger(host_identity(self.options))
        self._verbs: dict[str, _Verb] = {
            "CAPABILITY": self._capability,
            "NOOP": self._noop,
            "LOGOUT": self._logout,
            "STARTTLS": self._starttls,
            "LOGIN": self._login,
            "AUTHENTICATE": self._authenticate,
        }
        for verb in _LATER_STATES:
            self._verbs[verb] = self._wrong_state

    def _greeting_reply(self) -> Send:
        return self._line(f"* OK {store_ready(self._name, self.options)}")

    def _too_many_errors_reply(self) -> Send:
        return self._line("* BYE Too many protocol errors, closing the connection.")

    def _line_too_long_reply(self) -> Send:
        return self._line("* BYE Line too long.")

    def _dispatch(self, line: str) -> ServerSteps:
        tag, _, rest = line.partition(" ")
        verb, args = split_command(rest)
        if not _valid_tag(tag):
            self._hear(tag, "", known=False)
            yield self._bad("*", "Protocol Error: a command must start with a tag.")
            return
        self._hear(verb, args, known=verb in self._verbs)
        if not verb:
            yield self._bad(tag, "Protocol Error: the command is missing.")
        else:
            yield from self._verbs.get(verb, self._unknown)(tag, args)

    def read_command(self) -> Generator[ServerEvent, None, str]:
        """One command with the literals it carries (RFC 3501 section 4.3) inlined."""
        piece = yield from self.read_command_line()
        command = piece
        while match := _CLIENT_LITERAL.search(piece):
            size = int(match.group(1))
            if len(command) + size > self.options.line_limit:
                raise ReplyTooLong(self.options.line_limit, command[:512])
            if not match.group(2):
                yield Send(_CONTINUE)
            data = yield from self.read_exactly(size)
            piece = yield from self.read_command_line(len(command) + size)
            command += data + piece
        return command.decode("utf-8", "replace")

    def _line(self, text: str) -> Send:
        return Send(f"{text}\r\n".encode())

    def _bad(self, tag: str, text: str) -> Send:
        self._errors += 1
        return self._line(f"{tag} BAD {text}")

    def _no(self, tag: str, text: str) -> Send:
        self._errors += 1
        return self._line(f"{tag} NO {text}")

    # -- the verbs -----------------------------------------------------------------------

    def _capability(self, tag: str, args: str) -> ServerSteps:
        yield self._line(f"* CAPABILITY {' '.join(self._capabilities())}")
        yield self._line(f"{tag} OK CAPABILITY completed.")

    def _capabilities(self) -> tuple[str, ...]:
        neutral = self.options.profile == "neutral"
        names = _NEUTRAL_CAPABILITIES if neutral else _EXCHANGE_CAPABILITIES
        if self._offers_tls():
            names += ("STARTTLS",)
        if not self._tls:
            # No logon succeeds anyway; in plaintext, say so up front (RFC 3501 6.2.3).
            names += ("LOGINDISABLED",)
        return names

    def _noop(self, tag: str, args: str) -> ServerSteps:
        yield self._line(f"{tag} OK NOOP completed.")

    def _logout(self, tag: str, args: str) -> ServerSteps:
        yield self._line(f"* BYE {self._name} signing off.")
        yield self._line(f"{tag} OK LOGOUT completed.")
        self._closing = True

    def _starttls(self, tag: str, args: str) -> ServerSteps:
        if args:
            yield self._bad(tag, "Protocol Error: STARTTLS takes no arguments.")
        elif self._tls:
            yield self._bad(tag, "Protocol Error: TLS is already active.")
        elif not self.options.starttls:
            yield self._bad(tag, "Protocol Error: STARTTLS is not available.")
        else:
            yield self._line(f"{tag} OK Begin TLS negotiation now.")
            yield StartTLS()
            self._tls = True

    def _login(self, tag: str, args: str) -> ServerSteps:
        if len(args.split()) < 2:
            yield self._bad(tag, "Protocol Error: LOGIN needs a user name and a password.")
        elif not self._tls:
            yield self._no(tag, "LOGIN is disabled on an unencrypted connection.")
        else:
            yield self._no(tag, "Logon failure: unknown user name or bad password.")

    def _authenticate(self, tag: str, args: str) -> ServerSteps:
        if not args:
            yield self._bad(tag, "Protocol Error: AUTHENTICATE needs a mechanism.")
        elif args.upper() == "NTLM" and "AUTH=NTLM" in self._capabilities():
            # An initial response after the mechanism is not taken: SASL-IR is not offered.
            yield from self._ntlm(tag)
        else:
            # RFC 3501 section 6.2.2: NO covers both an unknown mechanism and bad credentials.
            yield self._no(tag, "AUTHENTICATE failed.")

    def _ntlm(self, tag: str) -> ServerSteps:
        """NTLM as far as the challenge, which names this host as Exchange's names its
        server. "*" gets the tagged BAD RFC 3501 section 6.2.2 asks for; credentials fail."""
        yield self._line("+ ")
        response = yield from self.read_command_line()
        challenge = None if response == CANCELLED else self.challenger.answer_line(response)
        if challenge is not None:
            yield self._line(f"+ {challenge}")
            response = yield from self.read_command_line()
        if response == CANCELLED:
            yield self._bad(tag, "Authentication cancelled.")
        else:
            yield self._no(tag, "AUTHENTICATE failed.")

    def _wrong_state(self, tag: str, args: str) -> ServerSteps:
        yield self._bad(tag, "Protocol Error: the command is not valid in this state.")

    def _unknown(self, tag: str, args: str) -> ServerSteps:
        yield self._bad(tag, "Protocol Error: unknown command.")


def _valid_tag(tag: str) -> bool:
    return bool(tag) and tag.isascii() and tag.isprintable() and not _NOT_IN_TAG & set(tag)
