from __future__ import annotations

import io
import random
from http.client import HTTPResponse
from typing import Any

import pytest

from portcall.protocols.base import ProbeOptions, ServerOptions
from portcall.protocols.http import MAX_FAILURES, MAX_REQUESTS, HttpClient, HttpServer
from portcall.protocols.http import server as http_server
from tests.protocols.pair import check_server, converse, play_server
from tests.protocols.transcript import EOF_, C, S, Step

HOST = "mail.example.test"
DATE = "Tue, 04 Mar 2008 10:00:00 GMT"
OWA_PATHS = ("/", "/exchange/", "/exchweb/bin/auth/owalogon.asp")


@pytest.fixture(autouse=True)
def fixed_date(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http_server, "formatdate", lambda usegmt: DATE)


def server(profile: str = "exchange2003", **options: Any) -> HttpServer:
    return HttpServer(ServerOptions(hostname=HOST, profile=profile, **options))


def get(path: str, method: str = "GET", *extra: str, version: str = "1.1") -> bytes:
    lines = [f"{method} {path} HTTP/{version}", f"Host: {HOST}", *extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class _Stream(io.BytesIO):
    def close(self) -> None:
        pass  # http.client closes its file after each body; the next response shares it


class _Wire:
    """Just enough of a socket for http.client to read responses from bytes."""

    def __init__(self, data: bytes) -> None:
        self.file = _Stream(data)

    def makefile(self, mode: str) -> io.BytesIO:
        return self.file


def parsed(data: bytes, methods: list[str]) -> list[tuple[HTTPResponse, bytes]]:
    """The responses in `data` (one per method at most), read by the standard library's parser,
    each with its body."""
    wire = _Wire(data)
    found = []
    for method in methods:
        if wire.file.tell() == len(data):
            break
        response = HTTPResponse(wire, method=method)  # type: ignore[arg-type]
        response.begin()
        found.append((response, response.read()))
    assert wire.file.read() == b"", "bytes left after the last response"
    return found


def exchange(hs: HttpServer, *requests: bytes) -> list[tuple[HTTPResponse, bytes]]:
    """Send each request once the server waits; every response, parsed."""
    happened = play_server(hs, [C(r) for r in requests])
    sent = b"".join(step.data for step in happened if isinstance(step, S))
    return parsed(sent, [r.split(b" ", 1)[0].decode() for r in requests])


# -- our own client against the server -----------------------------------------------------------


@pytest.mark.parametrize(
    ("profile", "product", "owa"),
    [
        ("exchange2003", "Microsoft IIS 6.0 (Outlook Web Access)", True),
        ("exchange2000", "Microsoft IIS 5.0 (Outlook Web Access)", True),
        ("neutral", None, False),
    ],
)
def test_our_client_names_each_profile(profile: str, product: str | None, owa: bool) -> None:
    hs = server(profile)
    info = converse(HttpClient(ProbeOptions(host=HOST, http_paths=OWA_PATHS)), hs).info
    assert info.product == product
    assert info.details["owa"] is owa
    statuses = [answer["status"] for answer in info.details["http"]]  # type: ignore[attr-defined]
    assert statuses == ([200, 401, 200] if owa else [200, 404, 404])
    assert info.banner == "HTTP/1.1 200 OK"
    if owa:
        # The 401 at /exchange/ offers NTLM: the client asks it again with a NEGOTIATE, and
        # the challenge names the responder.
        assert hs.heard == ["GET /", "GET /exchange/", "GET /exchange/", f"GET {OWA_PATHS[2]}"]
        ntlm = info.details["ntlm"]
        assert isinstance(ntlm, dict)
        assert (ntlm["netbios_computer"], ntlm["dns_computer"]) == ("MAIL", HOST)
    else:
        assert hs.heard == [f"GET {path}" for path in OWA_PATHS]
        assert "ntlm" not in info.details
    if owa:
        assert "Outlook Web Access: /exchange/ asks for BASIC, NEGOTIATE, NTLM authentication" in (
            info.notes
        )


# -- transcripts ---------------------------------------------------------------------------------

OWA_401_BODY = (
    b"<!DOCTYPE html>\n<html><head><title>You are not authorized to view this page</title></head>"
    b"<body><h1>You are not authorized to view this page</h1>"
    b"<p>Log on to read this mailbox.</p></body></html>\n"
)
OWA_401 = (
    b"HTTP/1.1 401 Unauthorized\r\nServer: Microsoft-IIS/6.0\r\nDate: " + DATE.encode() + b"\r\n"
    b"Content-Type: text/html; charset=utf-8\r\nContent-Length: "
    + str(len(OWA_401_BODY)).encode()
    + b"\r\nWWW-Authenticate: Negotiate\r\nWWW-Authenticate: NTLM\r\n"
    b'WWW-Authenticate: Basic realm="mail.example.test"\r\n\r\n' + OWA_401_BODY
)


def test_owa_challenge_transcript() -> None:
    steps: list[Step] = [C(get("/exchange/")), S(OWA_401), C(get("/exchange/", "HEAD"))]
    steps += [S(OWA_401[: -len(OWA_401_BODY)]), C(b""), EOF_]
    hs = check_server(server, steps)
    assert hs.heard == ["GET /exchange/", "HEAD /exchange/"]


BAD_REQUEST_BODY = (
    b"<!DOCTYPE html>\n<html><head><title>Bad Request</title></head><body><h1>Bad Request</h1>"
    b"<p>The request could not be read.</p></body></html>\n"
)
BAD_REQUEST = (
    b"HTTP/1.1 400 Bad Request\r\nServer: Microsoft-IIS/6.0\r\nDate: " + DATE.encode() + b"\r\n"
    b"Content-Type: text/html; charset=utf-8\r\nContent-Length: "
    + str(len(BAD_REQUEST_BODY)).encode()
    + b"\r\nConnection: close\r\n\r\n"
    + BAD_REQUEST_BODY
)


def test_malformed_request_transcript() -> None:
    hs = check_server(server, [C(b"HELO there\r\n\r\n"), S(BAD_REQUEST), EOF_])
    assert hs.heard == ["(malformed request)"]


# -- what each path answers ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("profile", "server_header"),
    [
        ("exchange2003", "Microsoft-IIS/6.0"),
        ("exchange2000", "Microsoft-IIS/5.0"),
        ("neutral", "portcall-responder"),
    ],
)
def test_home_page_names_the_responder_and_profile(profile: str, server_header: str) -> None:
    [(response, body)] = exchange(server(profile), get("/"))
    assert response.status == 200
    assert response.getheader("Server") == server_header
    assert response.getheader("Date") == DATE
    assert response.getheader("Content-Type") == "text/html; charset=utf-8"
    assert b"portcall responder" in body
    assert f"{profile} profile on {HOST}".encode() in body


@pytest.mark.parametrize(
    "path",
    [
        "/exchange/",
        "/exchange",
        "/Exchange/",
        "/EXCHANGE",
        "/exchange/jsmith/Inbox/",
        "/exchange?x",
    ],
)
def test_every_owa_path_asks_for_a_logon(path: str) -> None:
    [(response, _)] = exchange(server(), get(path))
    assert response.status == 401
    assert response.reason == "Unauthorized"
    assert response.headers.get_all("WWW-Authenticate") == [
        "Negotiate",
        "NTLM",
        f'Basic realm="{HOST}"',
    ]


def test_absolute_form_targets_are_understood() -> None:
    [(response, _)] = exchange(server(), get(f"http://{HOST}/exchange/"))
    assert response.status == 401


def test_owa_logon_form() -> None:
    [(response, body)] = exchange(
        server("exchange2000"), get("/exchweb/bin/auth/owalogon.asp?url=/")
    )
    assert response.status == 200
    assert b"Microsoft Outlook Web Access" in body
    assert b'name="password" type="password"' in body


@pytest.mark.parametrize("path", ["/exchange/", "/exchweb/bin/auth/owalogon.asp"])
def test_neutral_profile_has_no_owa(path: str) -> None:
    [(response, _)] = exchange(server("neutral"), get(path))
    assert response.status == 404
    assert response.getheader("WWW-Authenticate") is None


def test_unknown_paths_are_not_found() -> None:
    [(response, body)] = exchange(server(), get("/iisstart.htm"))
    assert (response.status, response.reason) == (404, "Not Found")
    assert b"Not found" in body


def test_head_sends_the_head_of_get() -> None:
    [(got, body), (head, nothing)] = exchange(server(), get("/"), get("/", "HEAD"))
    assert nothing == b""
    assert head.getheader("Content-Length") == str(len(body))
    assert head.getheaders() == got.getheaders()


@pytest.mark.parametrize("method", ["POST", "PUT", "OPTIONS", "PROPFIND", "DELETE"])
def test_other_methods_are_not_allowed(method: str) -> None:
    request = get("/exchange/", method, "Content-Length: 5") + b"hello"
    [(response, _), (after, _)] = exchange(server(), request, get("/"))
    assert response.status == 405
    assert response.getheader("Allow") == "GET, HEAD"
    assert after.status == 200  # the body was read and the connection kept


def test_a_client_waiting_for_100_continue_gets_the_answer_and_the_door() -> None:
    request = get("/exchange/", "POST", "Content-Length: 5", "Expect: 100-continue")
    happened = play_server(server(), [C(request)])
    assert happened[-1] is EOF_
    [(response, _)] = parsed(happened[1].data, ["POST"])  # type: ignore[union-attr]
    assert response.status == 405
    assert response.getheader("Connection") == "close"


# -- the connection ------------------------------------------------------------------------------


def test_keep_alive_carries_many_requests() -> None:
    hs = server()
    found = exchange(hs, get("/"), get("/exchange/"), get("/nowhere"), get("/"))
    assert [response.status for response, _ in found] == [200, 401, 404, 200]
    assert all(response.getheader("Connection") is None for response, _ in found)
    assert hs.heard == ["GET /", "GET /exchange/", "GET /nowhere", "GET /"]


@pytest.mark.parametrize(
    "request_bytes",
    [get("/", "GET", "Connection: close"), get("/", version="1.0")],
    ids=["connection-close", "http-1.0"],
)
def test_the_client_may_end_the_connection(request_bytes: bytes) -> None:
    happened = play_server(server(), [C(request_bytes), C(get("/"))])
    assert [type(step).__name__ for step in happened[:2]] == ["C", "S"]
    assert happened[2:] == [EOF_]
    assert b"Connection: close\r\n" in happened[1].data  # type: ignore[union-attr]


def test_at_most_max_requests_per_connection() -> None:
    requests = [get("/")] * (MAX_REQUESTS + 1)
    happened = play_server(server(), [C(r) for r in requests])
    replies = [step.data for step in happened if isinstance(step, S)]
    assert happened[-1] is EOF_
    assert len(replies) == MAX_REQUESTS
    assert b"Connection: close\r\n" in replies[-1]
    assert b"Connection: close\r\n" not in replies[-2]


def test_too_many_refusals_end_the_connection() -> None:
    happened = play_server(server(), [C(get(f"/no/{n}")) for n in range(MAX_FAILURES + 1)])
    replies = [step.data for step in happened if isinstance(step, S)]
    assert happened[-1] is EOF_
    assert len(replies) == MAX_FAILURES
    assert b"Connection: close\r\n" in replies[-1]


def test_a_401_is_not_a_refusal() -> None:
    requests = [get("/exchange/")] * (MAX_FAILURES + 1)
    assert len(exchange(server(), *requests)) == MAX_FAILURES + 1


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GARBAGE\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\n\r\n", 400),  # HTTP/1.1 without Host (RFC 9112 section 3.2)
        (get("/", "GET", "X-Long: " + "a" * 10_000), 431),
        (get("/", "POST", "Content-Length: 5000") + b"a" * 5000, 413),
    ],
    ids=["garbage", "no-host", "head-too-long", "body-too-long"],
)
def test_bad_requests_get_an_error_and_the_door(request_bytes: bytes, status: int) -> None:
    hs = server(line_limit=1024)
    happened = play_server(hs, [C(request_bytes)])
    assert happened[-1] is EOF_
    [(response, _)] = parsed(happened[1].data, ["GET"])  # type: ignore[union-attr]
    assert response.status == status
    assert response.getheader("Connection") == "close"


def test_closing_between_requests_is_quiet() -> None:
    hs = check_server(server, [C(get("/")), S(_home_bytes()), C(b""), EOF_])
    assert hs.heard == ["GET /"]


def test_closing_in_the_middle_of_a_request_is_quiet() -> None:
    hs = check_server(server, [C(b"GET / HTTP/1.1\r\nHo"), C(b""), EOF_])
    assert hs.heard == []


def _home_bytes() -> bytes:
    happened = play_server(server(), [C(get("/"))])
    return happened[1].data  # type: ignore[union-attr]


def test_credentials_are_never_heard() -> None:
    hs = server()
    exchange(hs, get("/exchange/", "GET", "Authorization: Basic dXNlcjpTM2NyZXQh"))
    assert hs.heard == ["GET /exchange/"]


def test_mangled_requests_never_break_the_server() -> None:
    # Random damage to real requests: each must end in answers and a close, never in an
    # exception, whatever h11 makes of the bytes.
    seeds = [
        get("/"),
        get("/exchange/", "POST", "Content-Length: 5") + b"hello",
        get("/x", "GET", "Transfer-Encoding: chunked") + b"5\r\nhello\r\n0\r\n\r\n",
    ]
    rng = random.Random(2000)
    for _ in range(2000):
        data = bytearray(rng.choice(seeds) * rng.randint(1, 3))
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        assert play_server(server(), [C(bytes(data)), C(b"")])[-1] is EOF_
