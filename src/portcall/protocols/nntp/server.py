"""The server role: answers as the Windows NNTP service of Exchange 2000/2003, or a neutral
one, with no articles to give."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

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
from portcall.protocols.nntp.messages import (
    CAPABILITY_LIST,
    CLOSING_CONNECTION,
    COMMAND_UNAVAILABLE,
    CONTINUE_WITH_TLS,
    HELP_FOLLOWS,
    LIST_FOLLOWS,
    NEW_GROUPS_FOLLOW,
    NO_GROUP_SELECTED,
    NO_SUCH_ARTICLE,
    NO_SUCH_GROUP,
    NOT_WANTED,
    POSTING_ALLOWED,
    POSTING_NOT_PERMITTED,
    SERVER_DATE,
    SERVICE_UNAVAILABLE,
    SYNTAX_ERROR,
    TLS_NOT_POSSIBLE,
    UNKNOWN_COMMAND,
)

#: The IIS NNTP service build each profile names (nmap-service-probes shows the form): the
#: Windows Server 2003 SP2 build, and the Windows 2000 SP4 build the SMTP greeting names too.
#: Unverified: the Exchange 2000 build in an NNTP greeting, and whether Exchange's NNTP
#: offers STARTTLS at all; the responder offers it whenever it has a certificate.
NNTP_SERVICE_BUILDS: dict[str, str] = {
    "exchange2003": "6.0.3790.3959",
    "exchange2000": "5.0.2195.6713",
}
#: The capability list (RFC 3977 section 5.2) without STARTTLS, added while it can be used.
_CAPABILITIES = ("VERSION 2", "READER", "LIST ACTIVE NEWSGROUPS")
#: Codes whose status line a block of lines follows, even an empty one.
_MULTI_LINE = frozenset({CAPABILITY_LIST, HELP_FOLLOWS, LIST_FOLLOWS, NEW_GROUPS_FOLLOW})
_HELP_TEXT = (
    "CAPABILITIES",
    "DATE",
    "GROUP newsgroup",
    "HELP",
    "LIST [ACTIVE|NEWSGROUPS] [wildmat]",
    "MODE READER",
    "NEWGROUPS [yy]yymmdd hhmmss [GMT]",
    "QUIT",
    "STARTTLS",
)


class NntpServer(VerbServer):
    """Answers like the IIS NNTP service under Exchange 2000/2003, or a neutral one. It
    carries no newsgroups and takes no articles."""

    protocol = "nntp"
    display_name = "NNTP"
    #: The log keeps the AUTHINFO subcommand, never the name or password (RFC 4643).
    hidden_after_first = frozenset({"AUTHINFO"})

    def __init__(
        self,
        options: ServerOptions | None = None,
        *,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        super().__init__(options)
        self._clock = clock or _utc_now

    def _greeting_reply(self) -> Send:
        build = NNTP_SERVICE_BUILDS.get(self.options.profile)
        if build is None:
            return self._reply(POSTING_ALLOWED, "portcall responder ready (posting ok)")
        # The IIS service ends its greeting with a space (nmap-service-probes).
        text = f"NNTP Service {build} Version: {build} Posting Allowed "
        return self._reply(POSTING_ALLOWED, text)

    def _too_many_errors_reply(self) -> Send:
        return self._reply(SERVICE_UNAVAILABLE, "Too many errors, closing connection")

    def _line_too_long_reply(self) -> Send:
        return self._reply(SYNTAX_ERROR, "Line too long")

    def _reply(self, code: int, text: str, *block: str) -> Send:
        """A status line, and for a multi-line code the `block` lines, dot-stuffed and ended
        by a lone dot (RFC 3977 section 3.1.1)."""
        if code >= UNKNOWN_COMMAND:
            self._errors += 1
        lines = [f"{code} {text}"]
        if code in _MULTI_LINE:
            lines += [f".{line}" if line.startswith(".") else line for line in block] + ["."]
        return Send("".join(f"{line}\r\n" for line in lines).encode())

    def _verb_table(self) -> dict[str, Verb]:
        verbs: dict[str, Verb] = {
            "CAPABILITIES": self._capabilities,
            "MODE": self._mode,
            "STARTTLS": self._starttls,
            "QUIT": self._quit,
            "HELP": self._help,
            "DATE": self._date,
            "LIST": self._list,
            "NEWGROUPS": self._newgroups,
            "GROUP": self._group,
            "LISTGROUP": self._group,
            "POST": self._post,
            "IHAVE": self._ihave,
            "AUTHINFO": self._unavailable,
        }
        for verb in ("ARTICLE", "HEAD", "BODY", "STAT", "NEXT", "LAST"):
            verbs[verb] = self._article
        return verbs

    # -- the verbs -----------------------------------------------------------------------

    def _capabilities(self, args: str) -> ServerSteps:
        tls = ("STARTTLS",) if self._offers_tls() else ()
        yield self._reply(CAPABILITY_LIST, "Capability list follows", *_CAPABILITIES, *tls)

    def _starttls(self, args: str) -> ServerSteps:
        if args:
            yield self._reply(SYNTAX_ERROR, "STARTTLS takes no arguments")
        elif self._tls:
            # RFC 4642 section 2.2.2: a second upgrade is refused with 502.
            yield self._reply(COMMAND_UNAVAILABLE, "TLS is already active")
        elif not self.options.starttls:
            yield self._reply(TLS_NOT_POSSIBLE, "Can not initiate TLS negotiation")
        else:
            yield self._reply(CONTINUE_WITH_TLS, "Continue with TLS negotiation")
            yield StartTLS()
            self._tls = True

    def _mode(self, args: str) -> ServerSteps:
        if args.upper() != "READER":
            yield self._reply(SYNTAX_ERROR, "Unknown MODE variant")
        elif self.options.profile == "neutral":
            yield self._reply(POSTING_ALLOWED, "portcall responder ready (posting ok)")
        else:
            yield self._reply(POSTING_ALLOWED, "Posting Allowed")

    def _quit(self, args: str) -> ServerSteps:
        yield self._reply(CLOSING_CONNECTION, "closing connection")
        self._closing = True

    def _help(self, args: str) -> ServerSteps:
        yield self._reply(HELP_FOLLOWS, "Help text follows", *_HELP_TEXT)

    def _date(self, args: str) -> ServerSteps:
        # RFC 3977 section 7.1: the server's clock in UTC, yyyymmddhhmmss.
        yield self._reply(SERVER_DATE, self._clock().astimezone(UTC).strftime("%Y%m%d%H%M%S"))

    def _list(self, args: str) -> ServerSteps:
        keyword = args.split(" ", 1)[0].upper()
        if keyword not in ("", "ACTIVE", "NEWSGROUPS"):
            yield self._reply(SYNTAX_ERROR, "Unknown LIST keyword")
        else:
            yield self._reply(LIST_FOLLOWS, "list of newsgroups follows")

    def _newgroups(self, args: str) -> ServerSteps:
        if len(args.split()) not in (2, 3):
            yield self._reply(SYNTAX_ERROR, "Syntax: NEWGROUPS date time [GMT]")
        else:
            yield self._reply(NEW_GROUPS_FOLLOW, "list of new newsgroups follows")

    def _group(self, args: str) -> ServerSteps:
        # LISTGROUP without a name lists the selected group, and none is ever selected.
        if args:
            yield self._reply(NO_SUCH_GROUP, "No such newsgroup")
        else:
            yield self._reply(NO_GROUP_SELECTED, "No newsgroup selected")

    def _article(self, args: str) -> ServerSteps:
        if args.startswith("<"):
            yield self._reply(NO_SUCH_ARTICLE, "No article with that message-id")
        else:
            yield self._reply(NO_GROUP_SELECTED, "No newsgroup selected")

    def _post(self, args: str) -> ServerSteps:
        yield self._reply(POSTING_NOT_PERMITTED, "Posting not permitted")

    def _ihave(self, args: str) -> ServerSteps:
        yield self._reply(NOT_WANTED, "Article not wanted")

    def _unavailable(self, args: str) -> ServerSteps:
        yield self._reply(COMMAND_UNAVAILABLE, "Command unavailable")

    def _unknown(self, args: str) -> ServerSteps:
        yield self._reply(UNKNOWN_COMMAND, "Unknown command")


def _utc_now() -> datetime:
    return datetime.now(UTC)
