"""The server role: answers as IIS with Outlook Web Access answers a browser that has not
logged on: a home page, a 401 challenge at /exchange/ (and to an NTLM NEGOTIATE_MESSAGE there,
the CHALLENGE_MESSAGE naming this host) and the OWA logon form."""

from __future__ import annotations

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
    LocalProtocolError,
    Send,
    ServerEvent,
    ServerHandshake,
    ServerOptions,
    ServerSteps,
)
from portcall.protocols.ntlm import NtlmChallenger, host_identity

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
        self.challenger = NtlmChallenger(host_identity(self.options))

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
        authorization = next((v for n, v in request.headers if n == b"authorization"), b"")
        page = self._page(method, target, authorization)
        if page.status in (404, 405):
            self._failures += 1
        closing = closing or self._failures >= MAX_FAILURES
        return self._send_page(conn, page, head_only=method == "HEAD", closing=closing)

    def _page(self, method: str, target: str, authorization: bytes = b"") -> _Page:
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
            return self._owa_challenge(authorization)
        if exchange and path == OWA_LOGON_PAGE:
            return _Page(200, _OWA_LOGON)
        return _Page(404, _html("Not found", "Nothing lives at this address."))

    def _home(self) -> str:
        what = f"the {self.options.profile} profile on {self.options.hostname}"
        return _html("portcall responder", f"portcall responder: HTTP answers here as {what}.")

    def _owa_challenge(self, authorization: bytes) -> _Page:
        """What OWA 2003 on IIS 6 (and 2000 on IIS 5) says to a browser that has not logged on:
        401 with one challenge per scheme the virtual directory allows, Kerberos first. To a
        NEGOTIATE_MESSAGE (in NTLM or Negotiate) it is a 401 carrying the CHALLENGE_MESSAGE in
        the same scheme; anything else, credentials included, starts over."""
        body = _html("You are not authorized to view this page", "Log on to read this mailbox.")
        scheme, _, token = authorization.decode("latin-1").strip().partition(" ")
        if scheme.lower() in ("ntlm", "negotiate"):
            challenge = self.challenger.answer_line(token.strip().encode("latin-1"))
            if challenge is not None:
                answer = "NTLM" if scheme.lower() == "ntlm" else "Negotiate"
                header = ("WWW-Authenticate", f"{answer} {challenge}")
                return _Page(401, body, (header,))
        realm = self.options.hostname.replace('"', "")
        challenges = (
            ("WWW-Authenticate", "Negotiate"),
            ("WWW-Authenticate", "NTLM"),
            ("WWW-Authenticate", f'Basic realm="{realm}"'),
        )
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
