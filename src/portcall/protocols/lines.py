"""Line handling shared by SMTP, POP3, IMAP4 and NNTP, in both roles.

Client role: numbered and dot-ended replies, capability names and the decision to upgrade.
Server role: `LineServer`, the greet-then-answer loop of a server whose client sends one
command a line, and `VerbServer`, the same for commands that start with their verb.
"""

from __future__ import annotations

import re
from abc import abstractmethod
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import ClassVar

from portcall.protocols.base import (
    Event,
    Handshake,
    PeerClosed,
    ReplyTooLong,
    Send,
    ServerEvent,
    ServerHandshake,
    ServerOptions,
    ServerSteps,
    ServiceInfo,
    StartTLSUnavailable,
)
from portcall.protocols.peertext import quoted

_CODE_LINE = re.compile(r"^(\d{3})([ -]?)(.*)$")

#: More lines than any honest capability list holds; a peer that sends more is cut off.
MAX_LINES = 500


@dataclass(frozen=True)
class CodeReply:
    """A numbered reply (SMTP, NNTP): the code and the text of each line."""

    code: int
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        return self.lines[0] if self.lines else ""

    @property
    def ok(self) -> bool:
        return 200 <= self.code < 400


def spend(hs: Handshake, used: int, line: str) -> int:
    """The bytes of one reply read so far, `line` included; ReplyTooLong once they pass the
    reply limit, which bounds a multi-line reply as a whole, not only each of its lines."""
    used += len(line) + 2
    if used > hs.reply_limit:
        raise ReplyTooLong(hs.reply_limit, line[:512].encode())
    return used


def read_code_reply(hs: Handshake) -> Generator[Event, None, CodeReply]:
    """A reply of one or more `NNN-text` lines ending with `NNN text` (RFC 5321 section 4.2)."""
    lines: list[str] = []
    used = 0
    while True:
        line = yield from hs.read_line()
        used = spend(hs, used, line)
        match = _CODE_LINE.match(line)
        if match is None:
            raise hs.wrong_protocol(f"unexpected reply {quoted(line)}")
        code, separator, text = match.groups()
        lines.append(text)
        if separator != "-":
            return CodeReply(int(code), tuple(lines))
        if len(lines) >= MAX_LINES:
            raise hs.wrong_protocol(f"a reply of more than {MAX_LINES} lines")


def read_dot_block(hs: Handshake) -> Generator[Event, None, list[str]]:
    """Lines up to a lone `.`, with dot-stuffing removed (RFC 1939 section 3, RFC 3977 3.1.1)."""
    lines: list[str] = []
    used = 0
    while True:
        line = yield from hs.read_line()
        used = spend(hs, used, line)
        if line == ".":
            return lines
        lines.append(line[1:] if line.startswith("..") else line)
        if len(lines) >= MAX_LINES:
            raise hs.wrong_protocol(f"a list of more than {MAX_LINES} lines")


def capability_names(capabilities: list[str]) -> set[str]:
    """The names of a POP3 CAPA or NNTP CAPABILITIES list: each line's first word."""
    return {line.split(" ", 1)[0].upper() for line in capabilities}


def may_upgrade(hs: Handshake, info: ServiceInfo, *, command: str, missing: str) -> bool:
    """Whether to send `command`: yes when the service offers it. A missing offer fails the
    handshake when the options require TLS (`missing` says why), and is only noted when not."""
    if info.starttls_offered:
        return True
    if hs.options.starttls_required:
        raise StartTLSUnavailable(missing)
    info.notes.append(f"{command} not offered")
    return False


# -- server role ---------------------------------------------------------------------------

#: Refused or unknown commands a client may send before the server says goodbye.
MAX_ERRORS = 20

#: A command handler: it gets what follows the verb and yields the answer.
Verb = Callable[[str], ServerSteps]


def split_command(line: str) -> tuple[str, str]:
    """The verb, in upper case, and the arguments of a `VERB arguments` command line."""
    verb, _, args = line.strip().partition(" ")
    return verb.upper(), args.strip()


def store_ready(name: str, options: ServerOptions) -> str:
    """The greeting text of the Exchange store's POP3 and IMAP4 services, which name their
    product and host; a neutral server names no host."""
    if options.profile == "neutral":
        return f"{name} ready."
    return f"{name} ({options.hostname}) ready."


def heard_entry(
    verb: str,
    args: str,
    *,
    known: bool,
    hidden: frozenset[str] = frozenset(),
    hidden_after_first: frozenset[str] = frozenset(),
) -> str:
    """What the log keeps of a command: for a verb in `hidden`, `***` in place of any
    arguments; for one in `hidden_after_first`, the first word (a SASL mechanism, an AUTHINFO
    subcommand) and `***` for any more; for an unknown command, only the verb, since a stray
    line may be a credential."""
    if verb in hidden:
        args = "***" if args else ""
    elif verb in hidden_after_first:
        first, _, secret = args.partition(" ")
        args = f"{first} ***" if secret else first
    elif not known:
        verb, args = verb[:16], ""
    text = f"{verb} {args}".strip()
    return "".join(ch if ch.isprintable() else "?" for ch in text)[:120]


class LineServer(ServerHandshake):
    """Server role of a protocol whose client sends one command a line: greet, then answer
    commands until the client leaves or hangs up, errs `MAX_ERRORS` times, or sends a line
    longer than `line_limit`.

    Subclasses say the three fixed replies and how to answer a command line. They count
    refusals in `_errors`, set `_closing` when the session is to end and `_tls` once the
    connection is upgraded.
    """

    #: Verbs whose arguments are all credentials (a user name, a password): see `heard_entry`.
    hidden: ClassVar[frozenset[str]] = frozenset()
    #: Verbs whose credentials follow a first word the log may keep: see `heard_entry`.
    hidden_after_first: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, options: ServerOptions | None = None) -> None:
        super().__init__(options)
        self._tls = self.options.implicit_tls
        self._closing = False
        self._errors = 0

    def serve(self) -> ServerSteps:
        yield self._greeting_reply()
        try:
            yield from self._session()
        except PeerClosed:
            return
        except ReplyTooLong:
            yield self._line_too_long_reply()

    def _session(self) -> ServerSteps:
        while not self._closing:
            if self._errors >= MAX_ERRORS:
                yield self._too_many_errors_reply()
                return
            line = yield from self.read_command()
            yield from self._dispatch(line)

    @abstractmethod
    def _greeting_reply(self) -> Send:
        """What the server says as the client connects."""

    @abstractmethod
    def _too_many_errors_reply(self) -> Send:
        """The goodbye once the client has erred `MAX_ERRORS` times."""

    @abstractmethod
    def _line_too_long_reply(self) -> Send:
        """The last word to a client whose line is longer than `line_limit`."""

    @abstractmethod
    def _dispatch(self, line: str) -> ServerSteps:
        """Answer one command line (without its line end)."""

    def read_command(self) -> Generator[ServerEvent, None, str]:
        """The next command line, decoded, without its line end."""
        raw = yield from self.read_command_line()
        return raw.decode("utf-8", "replace")

    def read_command_line(self, used: int = 0) -> Generator[ServerEvent, None, bytes]:
        """One line without its line end; ReplyTooLong when it and the `used` bytes of the
        command read before it are longer than `line_limit`."""
        raw = yield from self.read_until(b"\n")
        limit = self.options.line_limit
        if used + len(raw) > limit:
            raise ReplyTooLong(limit, raw[:512])
        return raw.rstrip(b"\r\n")

    def _hear(self, verb: str, args: str, *, known: bool) -> None:
        entry = heard_entry(
            verb, args, known=known, hidden=self.hidden, hidden_after_first=self.hidden_after_first
        )
        self.heard.append(entry)

    def _offers_tls(self) -> bool:
        # Never on implicit TLS or once upgraded: RFC 3207 section 4.2 says so for SMTP, and the
        # other protocols' servers follow the same rule.
        return self.options.starttls and not self._tls


class VerbServer(LineServer):
    """A `LineServer` whose commands start with their verb, with no tag (SMTP, POP3, NNTP):
    the verb, in any case, picks its handler from `_verb_table()`, and `_unknown` answers
    any other."""

    def __init__(self, options: ServerOptions | None = None) -> None:
        super().__init__(options)
        self._verbs = self._verb_table()

    @abstractmethod
    def _verb_table(self) -> dict[str, Verb]:
        """Each verb the server knows, in upper case, and its handler."""

    @abstractmethod
    def _unknown(self, args: str) -> ServerSteps:
        """The answer to a verb the table lacks."""

    def _dispatch(self, line: str) -> ServerSteps:
        verb, args = split_command(line)
        self._hear(verb, args, known=verb in self._verbs)
        yield from self._verbs.get(verb, self._unknown)(args)
