"""The server role: answers as the SMTP service of Exchange 2000/2003, or a neutral one,
and takes no mail."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from email.utils import format_datetime

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
)
from portcall.protocols.ntlm import CANCELLED, NtlmChallenger, host_identity
from portcall.protocols.smtp.messages import (
    AUTH_CONTINUE,
    AUTH_FAILED,
    AUTH_REQUIRED,
    BAD_SEQUENCE,
    CANNOT_VERIFY,
    CLOSING,
    COMPLETED,
    HELP_MESSAGE,
    MAILBOX_UNAVAILABLE,
    NOT_IMPLEMENTED,
    PARAMETER_NOT_IMPLEMENTED,
    READY,
    SERVICE_CLOSING,
    SIZE_EXCEEDED,
    SYNTAX_ERROR,
    TLS_NOT_AVAILABLE,
    UNRECOGNIZED,
)

#: The Windows SMTP service build each profile names in its greeting (KB 257569 shows the
#: form): Windows Server 2003 SP2 for Exchange 2003, Windows 2000 SP4 for Exchange 2000.
SMTP_SERVICE_BUILDS: dict[str, str] = {
    "exchange2003": "6.0.3790.3959",
    "exchange2000": "5.0.2195.6713",
}
#: A message size limit in bytes (RFC 1870). Unverified: chosen near the 10,240 KB default
#: remembered for Exchange 2003 SP2; no source at hand confirms Exchange's exact SIZE value.
MESSAGE_SIZE_LIMIT = 10 * 1024 * 1024

#: Exchange's EHLO keywords in its own order and spelling (TechNet bb124688, KB 257569),
#: split where it lists STARTTLS when a certificate is installed.
_EXCHANGE_EXTENSIONS: tuple[tuple[str, ...], tuple[str, ...]] = (
    (
        *("TURN", "ATRN", f"SIZE {MESSAGE_SIZE_LIMIT}", "ETRN", "PIPELINING", "DSN"),
        *("ENHANCEDSTATUSCODES", "8bitmime", "BINARYMIME", "CHUNKING", "VRFY"),
    ),
    (
        *("X-EXPS GSSAPI NTLM LOGIN", "X-EXPS=LOGIN", "AUTH GSSAPI NTLM LOGIN", "AUTH=LOGIN"),
        *("X-LINK2STATE", "XEXCH50", "OK"),
    ),
)
_NEUTRAL_EXTENSIONS: tuple[tuple[str, ...], tuple[str, ...]] = (
    ("PIPELINING", f"SIZE {MESSAGE_SIZE_LIMIT}", "8BITMIME"),
    ("ENHANCEDSTATUSCODES",),
)
_EXCHANGE_HELP = "HELO EHLO STARTTLS RCPT DATA RSET MAIL QUIT HELP AUTH TURN ETRN BDAT VRFY"
_NEUTRAL_HELP = "HELO EHLO STARTTLS MAIL RCPT DATA RSET NOOP QUIT HELP VRFY"
#: The SASL mechanisms Exchange lists after AUTH and X-EXPS.
_SASL_MECHANISMS = frozenset({"GSSAPI", "NTLM", "LOGIN"})


class SmtpServer(VerbServer):
    """Answers like the SMTP service of Exchange 2000/2003, or a neutral one, and takes no
    mail: every transaction is refused, so a responder can never become a relay."""

    protocol = "smtp"
    display_name = "SMTP"
    #: The log keeps the mechanism name, never the SASL initial response after it (RFC 4954).
    hidden_after_first = frozenset({"AUTH", "X-EXPS"})

    def __init__(
        self,
        options: ServerOptions | None = None,
        *,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        super().__init__(options)
        self._clock = clock or _local_now
        self._greeted = False
        self.challenger = NtlmChallenger(host_identity(self.options))

    @property
    def _exchange(self) -> bool:
        return self.options.profile != "neutral"

    def _greeting_reply(self) -> Send:
        return self._reply(READY, self._banner())

    def _too_many_errors_reply(self) -> Send:
        host = self.options.hostname
        return self._reply(CLOSING, f"4.7.0 {host} Too many errors, closing channel")

    def _line_too_long_reply(self) -> Send:
        return self._reply(UNRECOGNIZED, "5.5.2 Line too long")

    def _reply(self, code: int, *lines: str) -> Send:
        """One reply, multi-line when given several lines (RFC 5321 section 4.2.1)."""
        if code >= UNRECOGNIZED:
            self._errors += 1
        last = len(lines) - 1
        text = "".join(
            f"{code}{' ' if i == last else '-'}{line}\r\n" for i, line in enumerate(lines)
        )
        return Send(text.encode("utf-8"))

    def _banner(self) -> str:
        host = self.options.hostname
        build = SMTP_SERVICE_BUILDS.get(self.options.profile)
        if build is None:
            return f"{host} ESMTP portcall responder ready"
        # Two spaces after "at", as the Windows SMTP service writes it (KB 257569).
        stamp = format_datetime(self._clock())
        return f"{host} Microsoft ESMTP MAIL Service, Version: {build} ready at  {stamp}"

    def _verb_table(self) -> dict[str, Verb]:
        verbs: dict[str, Verb] = {
            "EHLO": self._ehlo,
            "HELO": self._helo,
            "MAIL": self._mail,
            "RCPT": self._no_transaction,
            "DATA": self._no_transaction,
            "RSET": self._rset,
            "NOOP": self._noop,
            "HELP": self._help,
            "VRFY": self._vrfy,
            "STARTTLS": self._starttls,
            "QUIT": self._quit,
        }
        for verb in ("EXPN", "SEND", "SOML", "SAML", "TURN", "ATRN", "ETRN", "BDAT", "AUTH"):
            verbs[verb] = self._not_implemented
        if self._exchange:
            verbs.update(BDAT=self._bdat, AUTH=self._auth)
            verbs["X-EXPS"] = self._x_exps
            for verb in ("TURN", "ATRN", "ETRN", "X-LINK2STATE", "XEXCH50"):
                verbs[verb] = self._needs_auth
        return verbs

    # -- the verbs -----------------------------------------------------------------------

    def _ehlo(self, args: str) -> ServerSteps:
        if not args:
            yield self._reply(SYNTAX_ERROR, "5.5.4 Syntax: EHLO hostname")
            return
        self._greeted = True
        yield self._reply(COMPLETED, self._hello_text(), *self._extensions())

    def _helo(self, args: str) -> ServerSteps:
        if not args:
            yield self._reply(SYNTAX_ERROR, "5.5.4 Syntax: HELO hostname")
            return
        self._greeted = True
        yield self._reply(COMPLETED, self._hello_text())

    def _hello_text(self) -> str:
        peer = self.options.peer_address
        return f"{self.options.hostname} Hello" + (f" [{peer}]" if peer else "")

    def _extensions(self) -> tuple[str, ...]:
        before, after = _EXCHANGE_EXTENSIONS if self._exchange else _NEUTRAL_EXTENSIONS
        tls = ("STARTTLS",) if self._offers_tls() else ()
        return before + tls + after

    def _starttls(self, args: str) -> ServerSteps:
        if args:
            yield self._reply(SYNTAX_ERROR, "5.5.4 Syntax: STARTTLS takes no parameters")
        elif self._tls:
            yield self._reply(BAD_SEQUENCE, "5.5.1 TLS already active")
        elif not self.options.starttls:
            yield self._reply(TLS_NOT_AVAILABLE, "4.7.0 TLS not available")
        else:
            yield self._reply(READY, "2.0.0 SMTP server ready")
            yield StartTLS()
            # RFC 3207 section 4.2: the session starts over and the client must EHLO again.
            self._tls, self._greeted = True, False

    def _mail(self, args: str) -> ServerSteps:
        if not self._greeted:
            yield self._reply(BAD_SEQUENCE, "5.5.2 Send hello first")
        elif not args.upper().startswith("FROM:"):
            yield self._reply(SYNTAX_ERROR, "5.5.4 Syntax: MAIL FROM:<address>")
        elif self._exchange:
            yield self._reply(AUTH_REQUIRED, "5.7.1 Client was not authenticated")
        else:
            yield self._reply(MAILBOX_UNAVAILABLE, "5.7.1 This responder accepts no mail")

    def _no_transaction(self, args: str) -> ServerSteps:
        # MAIL is never accepted, so RCPT, DATA and BDAT always come out of order.
        if not self._greeted:
            yield self._reply(BAD_SEQUENCE, "5.5.2 Send hello first")
        else:
            yield self._reply(BAD_SEQUENCE, "5.5.2 Need mail command")

    def _bdat(self, args: str) -> ServerSteps:
        words = args.upper().split()
        size = words[0] if words else ""
        if not (size.isascii() and size.isdigit()) or words[1:] not in ([], ["LAST"]):
            yield self._reply(SYNTAX_ERROR, "5.5.4 Syntax: BDAT size [LAST]")
        elif int(size) > MESSAGE_SIZE_LIMIT:
            # Skipping a chunk this large would mean reading it all: the session ends here.
            yield self._reply(SIZE_EXCEEDED, "5.3.4 Message size exceeds fixed maximum")
            self._closing = True
        else:
            yield from self._discard(int(size))
            yield from self._no_transaction(args)

    def _discard(self, count: int) -> ServerSteps:
        # RFC 3030 section 2: the chunk follows its BDAT whatever the answer will be, so it
        # is read and dropped to keep the command stream in step.
        while count:
            chunk = yield from self.read_exactly(min(count, self.options.line_limit))
            count -= len(chunk)

    def _auth(self, args: str) -> ServerSteps:
        yield from self._sasl(args, ntlm=True)

    def _x_exps(self, args: str) -> ServerSteps:
        # Exchange's own server-to-server SASL verb: no identity is told there.
        yield from self._sasl(args, ntlm=False)

    def _sasl(self, args: str, *, ntlm: bool) -> ServerSteps:
        mechanism, _, initial = args.partition(" ")
        mechanism = mechanism.upper()
        if not self._greeted:
            yield self._reply(BAD_SEQUENCE, "5.5.2 Send hello first")
        elif not mechanism:
            yield self._reply(SYNTAX_ERROR, "5.5.4 Syntax: AUTH mechanism")
        elif mechanism == "NTLM" and ntlm:
            yield from self._ntlm(initial.strip())
        elif mechanism in _SASL_MECHANISMS:
            # There are no accounts here: every attempt fails as a wrong password would.
            yield self._reply(AUTH_FAILED, "5.7.3 Authentication unsuccessful")
        else:
            yield self._reply(PARAMETER_NOT_IMPLEMENTED, "5.7.4 Unrecognized authentication type")

    def _ntlm(self, initial: str) -> ServerSteps:
        """NTLM as far as the challenge (MS-SMTPNTLM 2.2.1: "334" and any text, then the
        challenge in a 334): it names this host, as Exchange's names its server. The client's
        next word can only be "*" (501, RFC 4954 section 4) or credentials, which fail as a
        wrong password would."""
        if initial in ("", "="):  # "=" is an empty initial response (RFC 4954 section 4)
            yield self._reply(AUTH_CONTINUE, "NTLM supported")
            response = yield from self.read_command_line()
        else:
            response = initial.encode()
        if response == CANCELLED:
            yield self._reply(SYNTAX_ERROR, "5.7.0 Authentication cancelled")
            return
        challenge = self.challenger.answer_line(response)
        if challenge is None:
            yield self._reply(AUTH_FAILED, "5.7.3 Authentication unsuccessful")
            return
        yield self._reply(AUTH_CONTINUE, challenge)
        response = yield from self.read_command_line()
        if response == CANCELLED:
            yield self._reply(SYNTAX_ERROR, "5.7.0 Authentication cancelled")
        else:
            yield self._reply(AUTH_FAILED, "5.7.3 Authentication unsuccessful")

    def _needs_auth(self, args: str) -> ServerSteps:
        yield self._reply(AUTH_REQUIRED, "5.7.1 Client was not authenticated")

    def _vrfy(self, args: str) -> ServerSteps:
        if not args:
            yield self._reply(SYNTAX_ERROR, "5.5.4 Syntax: VRFY address")
        else:
            # RFC 5321 section 3.5.3: 252 answers without confirming or denying the user.
            yield self._reply(CANNOT_VERIFY, "2.1.5 Cannot VRFY user")

    def _help(self, args: str) -> ServerSteps:
        verbs = (_EXCHANGE_HELP if self._exchange else _NEUTRAL_HELP).split()
        if not self._offers_tls():
            verbs.remove("STARTTLS")
        text = "This server supports the following commands:"
        yield self._reply(HELP_MESSAGE, text, " ".join(verbs))

    def _rset(self, args: str) -> ServerSteps:
        yield self._reply(COMPLETED, "2.0.0 Resetting")

    def _noop(self, args: str) -> ServerSteps:
        yield self._reply(COMPLETED, "2.0.0 OK")

    def _quit(self, args: str) -> ServerSteps:
        host = self.options.hostname
        yield self._reply(SERVICE_CLOSING, f"2.0.0 {host} Service closing transmission channel")
        self._closing = True

    def _not_implemented(self, args: str) -> ServerSteps:
        yield self._reply(NOT_IMPLEMENTED, "5.3.3 Command not implemented")

    def _unknown(self, args: str) -> ServerSteps:
        yield self._reply(UNRECOGNIZED, "5.3.3 Unrecognized command")


def _local_now() -> datetime:
    return datetime.now().astimezone()
