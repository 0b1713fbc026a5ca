"""HTTP/1.1 (RFC 9110, RFC 9112), client and server roles, with h11 doing all of the parsing.

A few GETs on one keep-alive connection show that HTTP answers and whether Outlook Web Access
lives at its Exchange 2000/2003 paths. Redirects are reported, never followed: where they lead is
a fact about the server, and following them could take the probe to another host.

The server role answers as IIS with Outlook Web Access answers a browser that has not logged on:
a home page, a 401 challenge at /exchange/ and the OWA logon form.
"""

from __future__ import annotations

import re
from collections.abc import Generator
from dataclasses import dataclass
from email.utils import formatdate
from html import escape
from http import HTTPStatus
from typing import Final
from urllib.parse import unquote, urlsplit

import h11

from portcall.protocols.base import (
    NEED_DATA,
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
    Steps,
)
from portcall.protocols.products import product_from_text

USER_AGENT: Final = "portcall"
STATUS_LINE_START: Final = b"HTTP/"
#: Where OWA 2000/2003 lives (nmap http-fingerprints); the logon form is under /exchweb/.
OWA_PATHS: Final = frozenset({"/exchange", "/exchweb"})
OWA_LOGON: Final = "/exchweb/"
OWA_AUTH_SCHEMES: Final = frozenset({"ntlm", "negotiate", "basic"})
CLOSED: Final = "server closed the connection"
UNUSABLE: Final = "the connection cannot carry another request"

# An auth-scheme is a token at the start of a challenge list or after a comma, and is never
# followed by "=" (that would make it an auth-param name); RFC 9110 section 11.6.1.
_SCHEME = re.compile(r"(?:^|,)\s*([!#$%&'*+.^_`|~0-9A-Za-z-]+)(?=\s|,|$)")


class _NotHttp(Exception):
    """The bytes that came back are not an HTTP response; the message is the evidence."""


class _Stop(Exception):
    """No further path can be asked on this connection.

    `reason` goes into each "not requested" note; `note`, when set, says what went wrong.
    """

    def __init__(self, reason: str, note: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.note = note


@dataclass(frozen=True)
class Answer:
    """What one path answered: the head of the response, the body is discarded."""

    path: str
    http_version: str
    status: int
    reason: str
    server: str | None
    location: str | None
    challenges: tuple[str, ...]

    def as_dict(self) -> dict[str, object]:
        return {
            "path": self.path,
            "status": self.status,
            "reason": self.reason,
            "server": self.server,
            "location": self.location,
            "www_authenticate": ", ".join(self.challenges) or None,
        }

    def auth_schemes(self) -> set[str]:
        return {m.lower() for value in self.challenges for m in _SCHEME.findall(value)}


class HttpClient(Handshake):
    protocol = "http"
    display_name = "HTTP"

    #: Set once the peer's end of stream has been fed to h11, so that we never wait again.
    _peer_closed: bool = False

    def run(self) -> Steps:
        info = ServiceInfo(protocol=self.protocol)
        # h11's own cap sits above ours (one pull past the limit), so that a head too long
        # ends in ReplyTooLong from `_read_head` rather than in an h11 parse error.
        conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=2 * self.options.reply_limit)
        answers: list[Answer] = []
        paths = self.options.http_paths
        for index, path in enumerate(paths):
            try:
                answers.append((yield from self._ask(conn, path, first=index == 0)))
                yield from self._drain_body(conn, path)
                _check_reusable(conn)
            except _Stop as stop:
                if stop.note:
                    info.notes.append(stop.note)
                info.notes.extend(f"not requested: {p} ({stop.reason})" for p in paths[index + 1 :])
                break
            conn.start_next_cycle()
        _record(info, answers)
        return info

    # -- one request and its response --------------------------------------------------

    def _ask(
        self, conn: h11.Connection, path: str, *, first: bool
    ) -> Generator[Event, None, Answer]:
        yield Send(self._request(conn, path))
        try:
            response = yield from self._read_head(conn)
        except (PeerClosed, ReplyTooLong, _NotHttp) as error:
            raise self._failed(path, error, first=first) from None
        return _answer(path, response)

    def _failed(self, path: str, error: Exception, *, first: bool) -> Exception:
        """A head that never came is fatal on the first path, and only a note after it."""
        if first:
            return self.wrong_protocol(str(error)) if isinstance(error, _NotHttp) else error
        if isinstance(error, PeerClosed):
            return _Stop(CLOSED, f"no answer to {path} ({CLOSED})")
        what = "no HTTP answer" if isinstance(error, _NotHttp) else "no usable answer"
        return _Stop(UNUSABLE, f"{what} to {path}: {error}")

    def _request(self, conn: h11.Connection, path: str) -> bytes:
        host = self.options.host
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"  # an IPv6 literal is bracketed in Host (RFC 9112 3.2, RFC 3986)
        headers = [("Host", host), ("User-Agent", USER_AGENT), ("Accept", "*/*")]
        head = conn.send(h11.Request(method="GET", target=path, headers=headers))
        end = conn.send(h11.EndOfMessage())  # a GET has no body: this adds no bytes
        return (head or b"") + (end or b"")

    def _read_head(self, conn: h11.Connection) -> Generator[Event, None, h11.Response]:
        """The status line and headers; interim 1xx responses are skipped."""
        seen = bytes(conn.trailing_data[0])
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as error:
                raise _NotHttp(str(error)) from None
            if isinstance(event, h11.Response):
                return event
            if isinstance(event, h11.InformationalResponse):
                continue
            if event is not h11.NEED_DATA:
                raise LocalProtocolError(f"h11 gave {event!r} while a response head was due")
            if len(seen) >= self.options.reply_limit:  # h11 still lacks the end of the head
                raise ReplyTooLong(self.options.reply_limit, seen[:512])
            data = yield from self._pull()
            if not data:
                raise PeerClosed(seen)
            seen += data
            if not _starts_like_status_line(seen):
                seen = yield from self.gather_evidence(seen)
                raise _NotHttp(f"reply {seen[:60]!r}")
            conn.receive_data(data)

    def _drain_body(self, conn: h11.Connection, path: str) -> Generator[Event, None, None]:
        """Read the body and throw it away, but never more than the reply limit of it."""
        limit = self.options.reply_limit
        seen = 0
        while True:
            event = yield from self._body_event(conn, path)
            if isinstance(event, h11.EndOfMessage):
                return
            if isinstance(event, h11.Data):
                seen += len(event.data)
                if seen >= limit:
                    note = f"the body of {path} passed {limit} bytes: reading stopped there"
                    raise _Stop("body limit reached", note)

    def _body_event(self, conn: h11.Connection, path: str) -> Generator[Event, None, h11.Event]:
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as error:
                raise _Stop(UNUSABLE, f"the body of {path} broke off: {error}") from None
            if isinstance(event, h11.Event):
                return event
            if event is not h11.NEED_DATA:
                raise LocalProtocolError(f"h11 gave {event!r} in the middle of a body")
            conn.receive_data((yield from self._pull()))

    def _pull(self) -> Generator[Event, None, bytes]:
        """What the peer sent next, at most one reply limit of it; b"" once it has closed."""
        if not self.buffered and not self._peer_closed:
            yield NEED_DATA
        if not self.buffered:
            self._peer_closed = True
            return b""
        return (yield from self.read_exactly(min(len(self.buffered), self.options.reply_limit)))


def _starts_like_status_line(seen: bytes) -> bool:
    # A reply that does not open with "HTTP/" will never complete an HTTP head: tell at once
    # rather than wait for a blank line that an SMTP or POP3 server never sends.
    head = seen[: len(STATUS_LINE_START)]
    return head == STATUS_LINE_START[: len(head)]


def _check_reusable(conn: h11.Connection) -> None:
    # h11 moves both sides to DONE only when the connection may carry another request: a
    # "Connection: close" or an HTTP/1.0 answer leaves MUST_CLOSE instead (RFC 9112 9.3).
    if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
        raise _Stop(CLOSED)


def _answer(path: str, response: h11.Response) -> Answer:
    def values(name: bytes) -> list[str]:
        # Field values are ISO-8859-1 at worst (RFC 9110 5.5); decoding so never fails.
        return [v.decode("iso-8859-1") for n, v in response.headers if n == name]

    return Answer(
        path=path,
        http_version=response.http_version.decode("ascii"),
        status=response.status_code,
        reason=response.reason.decode("iso-8859-1"),
        server=next(iter(values(b"server")), None),
        location=next(iter(values(b"location")), None),
        challenges=tuple(values(b"www-authenticate")),
    )


def _record(info: ServiceInfo, answers: list[Answer]) -> None:
    info.details["http"] = [answer.as_dict() for answer in answers]
    if not answers:
        return
    first = answers[0]
    info.banner = f"HTTP/{first.http_version} {first.status} {first.reason}".rstrip()
    server = next((a.server for a in answers if a.server), None)
    info.product = product_from_text(server)
    for answer in answers:
        if answer.location and 300 <= answer.status < 400:
            info.notes.append(f"{answer.path} redirects to {answer.location} (not followed)")
    _record_owa(info, answers)


def _record_owa(info: ServiceInfo, answers: list[Answer]) -> None:
    asked = [a for a in answers if a.path.lower().rstrip("/") in OWA_PATHS]
    if not asked:
        return
    evidence = next((e for e in map(_owa_evidence, asked) if e), None)
    info.details["owa"] = evidence is not None
    if evidence is None:
        return
    info.notes.append(f"Outlook Web Access: {evidence}")
    if info.product and info.product.startswith("Microsoft IIS"):
        info.product += " (Outlook Web Access)"


def _owa_evidence(answer: Answer) -> str | None:
    """Why this answer at an OWA path shows Outlook Web Access, or None when it does not."""
    if answer.status == 200:
        return f"{answer.path} answers 200"
    schemes = sorted(answer.auth_schemes() & OWA_AUTH_SCHEMES)
    if answer.status == 401 and schemes:
        return f"{answer.path} asks for {', '.join(schemes).upper()} authentication"
    location = (answer.location or "").lower()
    if 300 <= answer.status < 400 and OWA_LOGON in location:
        return f"{answer.path} redirects to the OWA logon at {answer.location}"
    return None


# -- server role -----------------------------------------------------------------------------

#: Requests one connection may carry; the last answer says "Connection: close".
MAX_REQUESTS: Final = 100
#: Refused requests (404, 405) one connection may make before the responder hangs up.
MAX_FAILURES: Final = 20
ALLOWED_METHODS: Final = ("GET", "HEAD")
OWA_LOGON_PAGE: Final = "/exchweb/bin/auth/owalogon.asp"
#: The Server header of each profile: IIS 6.0 ships with Windows Server 2003, IIS 5.0 with
#: Windows 2000, where Exchange 2003 and 2000 put Outlook Web Access.
SERVER_HEADERS: Final = {
    "exchange2003": "Microsoft-IIS/6.0",
    "exchange2000": "Microsoft-IIS/5.0",
    "neutral": "portcall-responder",
}


@dataclass(frozen=True)
class _Page:
    status: int
    body: str
    headers: tuple[tuple[str, str], ...] = ()


class _BodyTooLarge(Exception):
    pass


class HttpServer(ServerHandshake):
    """Answers as IIS with Outlook Web Access answers an anonymous browser (neutral profile: as
    a plain web server), over keep-alive connections, with h11 doing all of the framing."""

    protocol = "http"
    display_name = "HTTP"

    def __init__(self, options: ServerOptions | None = None) -> None:
        super().__init__(options)
        self._failures = 0
        self._server = SERVER_HEADERS.get(self.options.profile, SERVER_HEADERS["neutral"])
        self._client_closed = False

    @property
    def _limit(self) -> int:
        """Bytes a request head, or a request body, may take."""
        return self.options.line_limit * 4

    def serve(self) -> ServerSteps:
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=self._limit)
        try:
            yield from self._requests(conn)
        except h11.RemoteProtocolError as error:
            if self._client_closed:
                return  # it left in the middle of a request: nobody is there to read an answer
            self.heard.append("(malformed request)")
            yield Send(self._error(conn, error.error_status_hint))
        except _BodyTooLarge:
            self.heard.append("(request body too large)")
            yield Send(self._error(conn, 413))

    def _requests(self, conn: h11.Connection) -> Generator[ServerEvent, None, None]:
        for number in range(1, MAX_REQUESTS + 1):
            request = yield from self._read_head(conn)
            if request is None:
                return
            # A client waiting for "100 Continue" gets the final answer at once and the door
            # (RFC 9110 section 10.1.1): its body is never read.
            early = conn.they_are_waiting_for_100_continue
            if not early:
                yield from self._drain_body(conn)
            yield Send(self._respond(conn, request, closing=early or number == MAX_REQUESTS))
            if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                return  # "Connection: close", HTTP/1.0 or an unread body: h11 says we are done
            conn.start_next_cycle()

    # -- reading -------------------------------------------------------------------------

    def _read_head(self, conn: h11.Connection) -> Generator[ServerEvent, None, h11.Request | None]:
        """The next request's head, or None when the client has closed between requests."""
        while True:
            event = conn.next_event()
            if isinstance(event, h11.Request):
                return event
            if isinstance(event, h11.ConnectionClosed):
                return None
            if event is not h11.NEED_DATA:
                raise LocalProtocolError(f"h11 gave {event!r} while a request head was due")
            conn.receive_data((yield from self._pull()))

    def _drain_body(self, conn: h11.Connection) -> Generator[ServerEvent, None, None]:
        seen = 0
        while True:
            event = conn.next_event()
            if isinstance(event, h11.EndOfMessage):
                return
            if isinstance(event, h11.Data):
                seen += len(event.data)
                if seen > self._limit:
                    raise _BodyTooLarge
            elif event is h11.NEED_DATA:
                conn.receive_data((yield from self._pull()))
            else:
                raise LocalProtocolError(f"h11 gave {event!r} in the middle of a request body")

    def _pull(self) -> Generator[ServerEvent, None, bytes]:
        """What the client sent next, b"" once it has closed."""
        if not self.buffered:
            yield NEED_DATA
        if not self.buffered:
            self._client_closed = True
            return b""
        count = min(len(self.buffered), self.options.line_limit)
        return (yield from self.read_exactly(count))

    # -- answering -----------------------------------------------------------------------

    def _respond(self, conn: h11.Connection, request: h11.Request, *, closing: bool) -> bytes:
        method = request.method.decode("ascii", "replace")
        target = request.target.decode("ascii", "replace")
        self.heard.append(f"{method} {target[:200]}")
        page = self._page(method, target)
        if page.status in (404, 405):
            self._failures += 1
        closing = closing or self._failures >= MAX_FAILURES
        return self._send_page(conn, page, head_only=method == "HEAD", closing=closing)

    def _page(self, method: str, target: str) -> _Page:
        if method not in ALLOWED_METHODS:
            allow = (("Allow", ", ".join(ALLOWED_METHODS)),)
            return _Page(405, _html("Method not allowed", f"{method} is not allowed here."), allow)
        path = _path(target)
        exchange = self.options.profile in ("exchange2003", "exchange2000")
        if exchange:
            path = path.lower()  # IIS paths are case-insensitive, as Windows file names are
        if path == "/":
            return _Page(200, self._home())
        if exchange and (path == "/exchange" or path.startswith("/exchange/")):
            return self._owa_challenge()
        if exchange and path == OWA_LOGON_PAGE:
            return _Page(200, _OWA_LOGON)
        return _Page(404, _html("Not found", "Nothing lives at this address."))

    def _home(self) -> str:
        what = f"the {self.options.profile} profile on {self.options.hostname}"
        return _html("portcall responder", f"portcall responder: HTTP answers here as {what}.")

    def _owa_challenge(self) -> _Page:
        """What OWA 2003 on IIS 6 (and 2000 on IIS 5) says to a browser that has not logged on:
        401 with one challenge per scheme the virtual directory allows, Kerberos first."""
        realm = self.options.hostname.replace('"', "")
        challenges = (
            ("WWW-Authenticate", "Negotiate"),
            ("WWW-Authenticate", "NTLM"),
            ("WWW-Authenticate", f'Basic realm="{realm}"'),
        )
        body = _html("You are not authorized to view this page", "Log on to read this mailbox.")
        return _Page(401, body, challenges)

    def _send_page(
        self, conn: h11.Connection, page: _Page, *, head_only: bool, closing: bool
    ) -> bytes:
        body = page.body.encode()
        # An origin server with a clock sends Date (RFC 9110 section 6.6.1).
        headers = [
            ("Server", self._server),
            ("Date", formatdate(usegmt=True)),
            ("Content-Type", "text/html; charset=utf-8"),
            ("Content-Length", str(len(body))),
            *page.headers,
        ]
        if closing:
            headers.append(("Connection", "close"))
        reason = HTTPStatus(page.status).phrase
        data = conn.send(h11.Response(status_code=page.status, reason=reason, headers=headers))
        if not head_only:  # HEAD: the same head, no body (RFC 9110 section 9.3.2)
            data = (data or b"") + (conn.send(h11.Data(data=body)) or b"")
        return (data or b"") + (conn.send(h11.EndOfMessage()) or b"")

    def _error(self, conn: h11.Connection, status: int) -> bytes:
        """The answer to a request h11 could not read (400, 431) or a body too long (413);
        the connection closes after it."""
        page = _Page(status, _html(HTTPStatus(status).phrase, "The request could not be read."))
        try:
            return self._send_page(conn, page, head_only=False, closing=True)
        except h11.LocalProtocolError:
            return b""  # h11 cannot frame an answer in this state: just close


def _path(target: str) -> str:
    """The path of an origin-form or absolute-form request target (RFC 9112 section 3.2)."""
    path = urlsplit(target).path if "://" in target else target.split("?", 1)[0]
    return unquote(path) or "/"


def _html(title: str, text: str) -> str:
    return (
        f"<!DOCTYPE html>\n<html><head><title>{escape(title)}</title></head>"
        f"<body><h1>{escape(title)}</h1><p>{escape(text)}</p></body></html>\n"
    )


_OWA_LOGON: Final = (
    "<!DOCTYPE html>\n<html><head><title>Microsoft Outlook Web Access</title></head><body>"
    '<form action="/exchweb/bin/auth/owaauth.dll" method="POST">'
    '<p>Domain\\user name: <input name="username"></p>'
    '<p>Password: <input name="password" type="password"></p>'
    '<p><input type="submit" value="Log On"></p></form></body></html>\n'
)
