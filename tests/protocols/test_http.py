from __future__ import annotations

from typing import TypeVar

import pytest

from portcall.protocols.base import (
    PeerClosed,
    ProbeOptions,
    ReplyTooLong,
    Send,
    ServiceInfo,
    WrongProtocol,
)
from portcall.protocols.http import HttpClient
from portcall.protocols.ntlm import authorization_header
from tests.protocols.transcript import EOF_, C, S, Step, play, play_both_ways

GET_ROOT = b"GET / HTTP/1.1\r\nHost: localhost\r\nUser-Agent: portcall\r\nAccept: */*\r\n\r\n"
GET_EXCHANGE = (
    b"GET /exchange/ HTTP/1.1\r\nHost: localhost\r\nUser-Agent: portcall\r\nAccept: */*\r\n\r\n"
)

NGINX_200 = (
    b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nContent-Type: text/html\r\n"
    b"Content-Length: 14\r\n\r\n<h1>hello</h1>"
)
NGINX_404 = b"HTTP/1.1 404 Not Found\r\nServer: nginx/1.22.1\r\nContent-Length: 9\r\n\r\nnot found"
IIS_ROOT = b"HTTP/1.1 200 OK\r\nServer: Microsoft-IIS/6.0\r\nContent-Length: 4\r\n\r\nhome"
IIS_OWA_401 = (
    b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 13\r\nContent-Type: text/html\r\n"
    b"Server: Microsoft-IIS/6.0\r\nWWW-Authenticate: Negotiate\r\nWWW-Authenticate: NTLM\r\n"
    b"X-Powered-By: ASP.NET\r\n\r\nAccess denied"
)
SMTP_BANNER = (
    b"220 mail.example.com Microsoft ESMTP MAIL Service, Version: 6.0.3790.3959 ready at"
    b"  Thu, 1 Jan 2009 10:00:00 +0000 \r\n"
)
TLS_ALERT = b"\x15\x03\x01\x00\x02\x02\x46"


def two_paths(first: bytes, second: bytes) -> list[Step]:
    return [C(GET_ROOT), S(first), C(GET_EXCHANGE), S(second)]


E = TypeVar("E", bound=Exception)


def raises_both_ways(steps: list[Step], error: type[E]) -> list[E]:
    """Play `steps` whole and byte by byte; both must raise `error`. Returns the two errors."""
    caught: list[E] = []
    for split in (False, True):
        with pytest.raises(error) as info:
            play(HttpClient(), steps, byte_at_a_time=split)
        caught.append(info.value)
    return caught


def answers(info: ServiceInfo) -> list[dict[str, object]]:
    value = info.details["http"]
    assert isinstance(value, list)
    return value


def test_nginx_answers_root_and_404_at_exchange() -> None:
    info = play_both_ways(HttpClient, two_paths(NGINX_200, NGINX_404))
    assert info.protocol == "http"
    assert info.banner == "HTTP/1.1 200 OK"
    assert info.product == "nginx 1.22.1"
    assert info.details["http"] == [
        {
            "path": "/",
            "status": 200,
            "reason": "OK",
            "server": "nginx/1.22.1",
            "location": None,
            "www_authenticate": None,
        },
        {
            "path": "/exchange/",
            "status": 404,
            "reason": "Not Found",
            "server": "nginx/1.22.1",
            "location": None,
            "www_authenticate": None,
        },
    ]
    assert info.details["owa"] is False
    assert info.notes == []


def test_iis6_with_owa_behind_ntlm() -> None:
    # The 401 offers NTLM: the client asks again, on the same connection, with a NEGOTIATE.
    ntlm = GET_EXCHANGE.replace(
        b"\r\n\r\n", f"\r\nAuthorization: {authorization_header()}\r\n\r\n".encode()
    )
    steps = [*two_paths(IIS_ROOT, IIS_OWA_401), C(ntlm), S(IIS_OWA_401)]
    info = play_both_ways(HttpClient, steps)
    assert info.product == "Microsoft IIS 6.0 (Outlook Web Access)"
    assert info.details["owa"] is True
    assert answers(info)[1]["status"] == 401
    assert answers(info)[1]["www_authenticate"] == "Negotiate, NTLM"
    assert info.notes == [
        "NTLM: the 401 that answered the NTLM negotiation carried no challenge",
        "Outlook Web Access: /exchange/ asks for NEGOTIATE, NTLM authentication",
    ]


def test_iis_without_owa_keeps_the_plain_product_name() -> None:
    iis_404 = b"HTTP/1.1 404 Not Found\r\nServer: Microsoft-IIS/6.0\r\nContent-Length: 0\r\n\r\n"
    info = play_both_ways(HttpClient, two_paths(IIS_ROOT, iis_404))
    assert info.product == "Microsoft IIS 6.0"
    assert info.details["owa"] is False


def test_redirects_are_reported_not_followed() -> None:
    # The second request must be the next configured path, not the redirect target.
    to_https = (
        b"HTTP/1.1 302 Found\r\nLocation: https://mail.example.com/exchange/\r\n"
        b"Content-Length: 0\r\n\r\n"
    )
    to_logon = (
        b"HTTP/1.1 302 Object moved\r\nServer: Microsoft-IIS/6.0\r\n"
        b"Location: /exchweb/bin/auth/owalogon.asp?url=/exchange/\r\nContent-Length: 0\r\n\r\n"
    )
    info = play_both_ways(HttpClient, two_paths(to_https, to_logon))
    assert answers(info)[0]["location"] == "https://mail.example.com/exchange/"
    assert info.banner == "HTTP/1.1 302 Found"
    assert "/ redirects to https://mail.example.com/exchange/ (not followed)" in info.notes
    assert info.details["owa"] is True  # the redirect leads into the OWA logon form
    assert info.product == "Microsoft IIS 6.0 (Outlook Web Access)"


@pytest.mark.parametrize(
    "closing",
    [
        [S(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok")],
        [S(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")],
        [S(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nthe body ends with the stream"), EOF_],
    ],
    ids=["connection-close", "http-1.0", "close-delimited"],
)
def test_second_path_is_not_asked_once_the_server_closes(closing: list[Step]) -> None:
    # Had the client sent the second GET anyway, it would meet the end of the stream and note
    # "no answer to /exchange/" instead.
    info = play_both_ways(HttpClient, [C(GET_ROOT), *closing])
    assert info.notes == ["not requested: /exchange/ (server closed the connection)"]
    assert len(answers(info)) == 1


def test_chunked_body_is_read_to_its_end_and_the_connection_reused() -> None:
    chunked = (
        b"HTTP/1.1 200 OK\r\nServer: nginx\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nX-Trailer: yes\r\n\r\n"
    )
    info = play_both_ways(HttpClient, two_paths(chunked, NGINX_404))
    assert [a["status"] for a in answers(info)] == [200, 404]
    assert info.product == "nginx"
    assert info.notes == []


def test_body_over_the_limit_stops_reading_and_asking() -> None:
    big = b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n" + b"x" * 5000

    def client() -> HttpClient:
        return HttpClient(ProbeOptions(reply_limit=200))

    info = play_both_ways(client, [C(GET_ROOT), S(big)])
    assert info.banner == "HTTP/1.1 200 OK"
    assert info.notes == [
        "the body of / passed 200 bytes: reading stopped there",
        "not requested: /exchange/ (body limit reached)",
    ]


def test_head_over_the_limit_is_too_long() -> None:
    head = b"HTTP/1.1 200 OK\r\n" + b"X-Filler: " + b"y" * 300 + b"\r\n\r\n"
    for split in (False, True):
        with pytest.raises(ReplyTooLong):
            play(
                HttpClient(ProbeOptions(reply_limit=200)),
                [C(GET_ROOT), S(head)],
                byte_at_a_time=split,
            )


def test_smtp_banner_on_the_http_port_is_named() -> None:
    errors = raises_both_ways([C(GET_ROOT), S(SMTP_BANNER)], WrongProtocol)
    assert [e.detected for e in errors] == ["SMTP", "SMTP"]
    assert "220 mail.example.com" in str(errors[1])


def test_tls_on_the_http_port_is_named() -> None:
    errors = raises_both_ways([C(GET_ROOT), S(TLS_ALERT)], WrongProtocol)
    assert [e.detected for e in errors] == ["TLS", "TLS"]


def test_a_broken_http_head_is_a_non_conforming_http_service() -> None:
    broken = b"HTTP/1.1 200 OK\r\nServer nginx without a colon\r\n\r\n"
    errors = raises_both_ways([C(GET_ROOT), S(broken)], WrongProtocol)
    assert errors[0].detected == "a non-conforming HTTP service"


def test_close_before_any_response() -> None:
    raises_both_ways([C(GET_ROOT), EOF_], PeerClosed)


def test_close_in_the_middle_of_the_first_head() -> None:
    errors = raises_both_ways([C(GET_ROOT), S(b"HTTP/1.1 200 OK\r\nServ"), EOF_], PeerClosed)
    assert errors[0].received == b"HTTP/1.1 200 OK\r\nServ"


def test_failures_on_the_second_path_are_only_notes() -> None:
    info = play_both_ways(HttpClient, two_paths(NGINX_200, b"SSH-2.0-OpenSSH_9.2\r\n"))
    assert info.product == "nginx 1.22.1"
    assert info.notes == ['no HTTP answer to /exchange/: reply "SSH-2.0-OpenSSH_9.2"']
    closed = play_both_ways(HttpClient, [C(GET_ROOT), S(NGINX_200), C(GET_EXCHANGE), EOF_])
    assert closed.notes == ["no answer to /exchange/ (server closed the connection)"]
    assert "owa" not in closed.details  # /exchange/ never answered: nothing known either way


def test_interim_100_continue_is_skipped() -> None:
    info = play_both_ways(
        HttpClient, two_paths(b"HTTP/1.1 100 Continue\r\n\r\n" + NGINX_200, NGINX_404)
    )
    assert info.banner == "HTTP/1.1 200 OK"


def test_request_bytes_for_an_ipv6_literal_and_custom_paths() -> None:
    options = ProbeOptions(host="2001:db8::25", http_paths=("/exchweb/",))
    request = (
        b"GET /exchweb/ HTTP/1.1\r\nHost: [2001:db8::25]\r\nUser-Agent: portcall\r\n"
        b"Accept: */*\r\n\r\n"
    )
    ok = b"HTTP/1.1 200 OK\r\nServer: Microsoft-IIS/5.0\r\nContent-Length: 0\r\n\r\n"
    info = play(HttpClient(options), [C(request), S(ok)])
    assert info.details["owa"] is True
    assert info.product == "Microsoft IIS 5.0 (Outlook Web Access)"


def test_named_host_goes_into_host_unbracketed() -> None:
    options = ProbeOptions(host="mail.example.com", http_paths=("/",))
    request = GET_ROOT.replace(b"localhost", b"mail.example.com")
    info = play(HttpClient(options), [C(request), S(NGINX_404)])
    assert info.banner == "HTTP/1.1 404 Not Found"
    assert "owa" not in info.details


def test_host_header_names_a_port_off_the_default() -> None:
    def first_request(options: ProbeOptions) -> bytes:
        event = HttpClient(options).next_event()
        assert isinstance(event, Send)
        return event.data

    assert b"Host: mail.example.com:8080\r\n" in first_request(
        ProbeOptions(host="mail.example.com", port=8080)
    )
    assert b"Host: mail.example.com\r\n" in first_request(
        ProbeOptions(host="mail.example.com", port=443, implicit_tls=True)
    )
    assert b"Host: [2001:db8::1]:8443\r\n" in first_request(
        ProbeOptions(host="2001:db8::1", port=8443, implicit_tls=True)
    )
