"""The client role: a few GETs on one keep-alive connection, to show that HTTP answers and
whether Outlook Web Access lives at its Exchange 2000/2003 paths. The first 401 that offers
NTLM or Negotiate is asked once more, on the same connection, with an NTLM NEGOTIATE_MESSAGE:
the CHALLENGE_MESSAGE in the next 401 names the server. No credentials are ever sent."""

from __future__ import annotations

import re
from collections.abc import Generator
from dataclasses import dataclass
from typing import Final

import h11

from portcall.protocols import spnego
from portcall.protocols.base import (
    NEED_DATA,
    Event,
    Handshake,
    LocalProtocolError,
    PeerClosed,
    ReplyTooLong,
    Send,
    ServiceInfo,
    Steps,
)
from portcall.protocols.ntlm import (
    SIGNATURE,
    NtlmError,
    authorization_header,
    decode_token,
    note_ntlm,
    parse_challenge,
)
from portcall.protocols.peertext import quoted
from portcall.protocols.products import product_from_text

USER_AGENT: Final = "portcall"
STATUS_LINE_START: Final = b"HTTP/"
#: Where OWA 2000/2003 lives (nmap http-fingerprints); the logon form is under /exchweb/.
OWA_PATHS: Final = frozenset({"/exchange", "/exchweb"})
OWA_LOGON: Final = "/exchweb/"
OWA_AUTH_SCHEMES: Final = frozenset({"ntlm", "negotiate", "basic"})
CLOSED: Final = "server closed the connection"
UNUSABLE: Final = "the connection cannot carry another request"
#: The most bytes of a response head (status line and headers) read. h11 spends some
#: microseconds on each header line, so a 64 KiB head of the shortest headers costs it 30 ms;
#: 16 KiB bounds that near 7 ms and is still twice what common servers accept in one header
#: block (8 KiB in Apache, nginx and IIS by default).
HEAD_LIMIT: Final = 16 * 1024

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
        # h11's own cap sits above ours, so that a head too long ends in ReplyTooLong from
        # `_read_head` rather than in an h11 parse error.
        conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=2 * self._head_limit)
        answers: list[Answer] = []
        paths = self.options.http_paths
        ntlm_asked = False
        for index, path in enumerate(paths):
            try:
                answer = yield from self._ask(conn, path, first=index == 0)
                answers.append(answer)
                yield from self._drain_body(conn, path)
                scheme = _ntlm_scheme(answer)
                if scheme and not ntlm_asked:
                    ntlm_asked = True
                    yield from self._ntlm(conn, info, path, scheme)
                _check_reusable(conn)
            except _Stop as stop:
                if stop.note:
                    info.notes.append(stop.note)
                info.notes.extend(f"not requested: {p} ({stop.reason})" for p in paths[index + 1 :])
                break
            conn.start_next_cycle()
        _record(info, answers)
        return info

    # -- NTLM --------------------------------------------------------------------------

    def _ntlm(
        self, conn: h11.Connection, info: ServiceInfo, path: str, scheme: str
    ) -> Generator[Event, None, None]:
        """Ask `path` again with a NEGOTIATE_MESSAGE and read the CHALLENGE_MESSAGE the 401
        carries. NTLM authenticates the connection, not the request, so the second request
        must ride the connection of the first; when the server closed it, NTLM is not tried."""
        if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
            note_ntlm(info, f"the server closed the connection after the 401 at {path}")
            raise _Stop(CLOSED)
        conn.start_next_cycle()
        yield Send(self._request(conn, path, authorization=authorization_header(scheme)))
        try:
            response = yield from self._read_head(conn)
        except (PeerClosed, ReplyTooLong, _NotHttp) as error:
            note_ntlm(info, f"no answer to the NTLM negotiation at {path}: {error}")
            raise _Stop(CLOSED if isinstance(error, PeerClosed) else UNUSABLE) from None
        reply = _answer(path, response)
        if reply.status == 401:
            _record_challenge(info, reply.challenges)
        else:
            note_ntlm(info, f"the NTLM negotiation at {path} was answered {reply.status}")
        yield from self._drain_body(conn, path)

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

    def _request(self, conn: h11.Connection, path: str, *, authorization: str = "") -> bytes:
        host = self.options.host
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"  # an IPv6 literal is bracketed in Host (RFC 9112 3.2, RFC 3986)
        port = self.options.port
        default = 443 if self.options.implicit_tls else 80
        if port is not None and port != default:
            host = f"{host}:{port}"  # RFC 9112 section 3.2: the port unless it is the default
        headers = [("Host", host), ("User-Agent", USER_AGENT), ("Accept", "*/*")]
        if authorization:
            headers.append(("Authorization", authorization))
        head = conn.send(h11.Request(method="GET", target=path, headers=headers))
        end = conn.send(h11.EndOfMessage())  # a GET has no body: this adds no bytes
        return (head or b"") + (end or b"")

    def _read_head(self, conn: h11.Connection) -> Generator[Event, None, h11.Response]:
        """The status line and headers; interim 1xx responses are skipped."""
        seen = bytearray(conn.trailing_data[0])  # grows in place: linear on a one-byte drip
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
            if len(seen) >= self._head_limit:  # h11 still lacks the end of the head
                raise ReplyTooLong(self._head_limit, bytes(seen[:512]))
            # Never more than the head limit reaches h11 while it looks for a head: it parses
            # all it holds at once, so what it holds bounds the work.
            data = yield from self._pull(self._head_limit - len(seen))
            if not data:
                raise PeerClosed(bytes(seen))
            seen += data
            if not _starts_like_status_line(seen):
                evidence = yield from self.gather_evidence(bytes(seen))
                raise _NotHttp(f"reply {quoted(evidence)}")
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

    @property
    def _head_limit(self) -> int:
        return min(HEAD_LIMIT, self.options.reply_limit)

    def _pull(self, most: int | None = None) -> Generator[Event, None, bytes]:
        """What the peer sent next, at most `most` bytes of it (one reply limit by default);
        b"" once it has closed."""
        if not self._buffer and not self._peer_closed:
            yield NEED_DATA
        if not self._buffer:
            self._peer_closed = True
            return b""
        most = self.options.reply_limit if most is None else most
        return (yield from self.read_exactly(min(len(self._buffer), most)))


def _starts_like_status_line(seen: bytes | bytearray) -> bool:
    # A reply that does not open with "HTTP/" will never complete an HTTP head: tell at once
    # rather than wait for a blank line that an SMTP or POP3 server never sends.
    head = seen[: len(STATUS_LINE_START)]
    return head == STATUS_LINE_START[: len(head)]


def _check_reusable(conn: h11.Connection) -> None:
    # h11 moves both sides to DONE only when the connection may carry another request: a
    # "Connection: close" or an HTTP/1.0 answer leaves MUST_CLOSE instead (RFC 9112 9.3).
    if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
        raise _Stop(CLOSED)


def _ntlm_scheme(answer: Answer) -> str | None:
    """The scheme to start NTLM with after a 401: NTLM when offered, else Negotiate, which
    Windows servers accept a raw NTLMSSP token in."""
    if answer.status != 401:
        return None
    schemes = answer.auth_schemes()
    if "ntlm" in schemes:
        return "NTLM"
    return "Negotiate" if "negotiate" in schemes else None


def _record_challenge(info: ServiceInfo, values: tuple[str, ...]) -> None:
    """The identity in the first NTLM or Negotiate challenge that carries a token: raw
    NTLMSSP, or (from a server that wraps it) inside a SPNEGO negTokenResp."""
    for value in values:
        scheme, _, token = value.strip().partition(" ")
        if scheme.lower() not in ("ntlm", "negotiate") or not token.strip():
            continue
        try:
            raw = decode_token(token)
            if not raw.startswith(SIGNATURE):
                raw = spnego.response_token(raw)
            info.details["ntlm"] = parse_challenge(raw).identity()
        except (NtlmError, spnego.SpnegoError) as error:
            note_ntlm(info, f"the NTLM challenge could not be read: {error}")
        return
    note_ntlm(info, "the 401 that answered the NTLM negotiation carried no challenge")


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
