"""SMTP (RFC 5321) with STARTTLS (RFC 3207): client and server roles."""

from __future__ import annotations

import re
from collections.abc import Callable, Generator
from datetime import datetime
from email.utils import format_datetime

from portcall.protocols.base import (
    Event,
    Handshake,
    RemoteProtocolError,
    Send,
    ServerOptions,
    ServerSteps,
    ServiceInfo,
    ServiceRefused,
    StartTLS,
    StartTLSUnavailable,
    Steps,
)
from portcall.protocols.lines import MAX_ERRORS as MAX_ERRORS
from portcall.protocols.lines import (
    CodeReply,
    Verb,
    VerbServer,
    may_upgrade,
    read_code_reply,
)
from portcall.protocols.products import exchange_smtp_product, product_from_text
from portcall.protocols.sniff import identify

#: Service ready; also the go-ahead for TLS after STARTTLS (RFC 3207 section 4).
READY = 220
#: Requested action completed: the EHLO/HELO answer.
COMPLETED = 250
#: Closing the transmission channel; a server may say it instead of a greeting (RFC 5321 3.8).
CLOSING = 421
#: "No SMTP service here" in place of a greeting (RFC 5321 section 3.1).
NO_SERVICE = 554
#: Further reply codes the server role uses (RFC 5321 section 4.2.3 unless noted).
CANNOT_VERIFY = 252
HELP_MESSAGE = 214
SERVICE_CLOSING = 221
TLS_NOT_AVAILABLE = 454  # RFC 3207 section 4
UNRECOGNIZED = 500
SYNTAX_ERROR = 501
NOT_IMPLEMENTED = 502
BAD_SEQUENCE = 503
PARAMETER_NOT_IMPLEMENTED = 504
AUTH_REQUIRED = 530  # RFC 4954 section 6
AUTH_FAILED = 535  # RFC 4954 section 6
MAILBOX_UNAVAILABLE = 550
SIZE_EXCEEDED = 552

#: Verbs only Exchange 2000/2003 advertises: routing link state, the MAPI property blob and
#: its own SASL exchange between Exchange servers.
EXCHANGE_VERBS: tuple[str, ...] = ("X-LINK2STATE", "XEXCH50", "X-EXPS")
#: Of those, the two that Exchange itself adds to the Windows SMTP service; X-EXPS proves less.
_EXCHANGE_PROOF = frozenset({"X-LINK2STATE", "XEXCH50"})


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
        yield Send(b"QUIT\r\n")
        return info

    def _greeting(self) -> Generator[Event, None, CodeReply]:
        reply = yield from read_code_reply(self)
        if reply.code in (CLOSING, NO_SERVICE):
            raise ServiceRefused(f"the SMTP service turned us away: {_render(reply)[:120]}")
        # FTP greets with 220 too; the sniffer tells it apart by the words of the banner.
        if reply.code != READY or identify(self.first_bytes) == "FTP":
            raise self.wrong_protocol(f"greeting {_render(reply)[:60]!r}")
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
        if _EXCHANGE_PROOF & keywords:
            info.product = exchange_smtp_product(info.banner)

    def _upgrade(self, info: ServiceInfo) -> Steps:
        missing = "the SMTP service does not offer STARTTLS in its EHLO reply"
        if not may_upgrade(self, info, command="STARTTLS", missing=missing):
            return info
        yield Send(b"STARTTLS\r\n")
        answer = yield from read_code_reply(self)
        if answer.code != READY:
            raise StartTLSUnavailable(f"STARTTLS was refused: {_render(answer)[:120]}")
        yield StartTLS()
        info.tls_upgraded = True
        # RFC 3207 section 4.2: forget what was learnt in plaintext and ask again.
        yield from self._hello(info)
        return info


def _unexpected(command: str, reply: CodeReply) -> RemoteProtocolError:
    if 400 <= reply.code < 600:
        return ServiceRefused(f"the SMTP service refused {command}: {_render(reply)[:120]}")
    return RemoteProtocolError(f"unexpected answer to {command}: {_render(reply)[:120]}")


def _render(reply: CodeReply) -> str:
    """The reply as the server wrote it, one line per line, without line ends."""
    last = len(reply.lines) - 1
    return "\n".join(
        f"{reply.code}{' ' if i == last else '-'}{line}" for i, line in enumerate(reply.lines)
    )


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


# -- server role ---------------------------------------------------------------------------

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
            verbs["X-EXPS"] = self._auth
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
        mechanism = args.split(" ", 1)[0].upper()
        if not self._greeted:
            yield self._reply(BAD_SEQUENCE, "5.5.2 Send hello first")
        elif not mechanism:
            yield self._reply(SYNTAX_ERROR, "5.5.4 Syntax: AUTH mechanism")
        elif mechanism in _SASL_MECHANISMS:
            # There are no accounts here: every attempt fails as a wrong password would.
            yield self._reply(AUTH_FAILED, "5.7.3 Authentication unsuccessful")
        else:
            yield self._reply(PARAMETER_NOT_IMPLEMENTED, "5.7.4 Unrecognized authentication type")

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
