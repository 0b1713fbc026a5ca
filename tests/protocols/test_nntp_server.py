from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from portcall.protocols import server_for
from portcall.protocols.base import (
    LocalProtocolError,
    ProbeOptions,
    ServerOptions,
    StartTLSUnavailable,
)
from portcall.protocols.nntp import MAX_ERRORS, NntpClient, NntpServer
from tests.protocols.pair import check_server, converse, merged, play_server
from tests.protocols.transcript import EOF_, TLS, C, S

OPTIONS = ServerOptions(hostname="news.example.com")
GREETING_2003 = b"200 NNTP Service 6.0.3790.3959 Version: 6.0.3790.3959 Posting Allowed \r\n"
GREETING_2000 = b"200 NNTP Service 5.0.2195.6713 Version: 5.0.2195.6713 Posting Allowed \r\n"
NEUTRAL_GREETING = b"200 portcall responder ready (posting ok)\r\n"
CAPABILITIES = (
    b"101 Capability list follows\r\nVERSION 2\r\nREADER\r\nLIST ACTIVE NEWSGROUPS\r\n.\r\n"
)
CAPABILITIES_WITH_STARTTLS = CAPABILITIES.replace(b"\r\n.\r\n", b"\r\nSTARTTLS\r\n.\r\n")
GOODBYE = b"205 closing connection\r\n"
UNKNOWN = b"500 Unknown command\r\n"


def server(profile: str = "exchange2003", **changes: object) -> Callable[[], NntpServer]:
    options = replace(OPTIONS, profile=profile, **changes)  # type: ignore[arg-type]
    stamp = datetime(2008, 2, 5, 23, 19, 40, tzinfo=timezone(timedelta(hours=-5)))
    return lambda: NntpServer(options, clock=lambda: stamp)


@pytest.mark.parametrize(
    ("profile", "greeting"),
    [
        ("exchange2003", GREETING_2003),
        ("exchange2000", GREETING_2000),
        ("neutral", NEUTRAL_GREETING),
    ],
)
def test_greeting_per_profile_then_quit(profile: str, greeting: bytes) -> None:
    check_server(server(profile), [S(greeting), C(b"QUIT\r\n"), S(GOODBYE), EOF_])


def test_capabilities_starttls_and_capabilities_again() -> None:
    steps = [
        S(GREETING_2003),
        C(b"CAPABILITIES\r\n"),
        S(CAPABILITIES_WITH_STARTTLS),
        C(b"starttls\r\n"),
        S(b"382 Continue with TLS negotiation\r\n"),
        TLS,
        C(b"CAPABILITIES\r\n"),
        S(CAPABILITIES),
        C(b"STARTTLS\r\n"),
        S(b"502 TLS is already active\r\n"),
    ]
    check_server(server(), steps)


def test_plaintext_pipelined_after_starttls_is_dropped() -> None:
    steps = [
        S(NEUTRAL_GREETING),
        C(b"STARTTLS\r\nPOST\r\n"),
        S(b"382 Continue with TLS negotiation\r\n"),
        TLS,
        C(b"MODE READER\r\n"),
        S(NEUTRAL_GREETING),
    ]
    responder = server("neutral")()
    assert play_server(responder, steps) == merged(steps)
    assert responder.heard == ["STARTTLS", "MODE READER"]


def test_starttls_unavailable_or_already_running() -> None:
    steps = [
        S(GREETING_2003),
        C(b"CAPABILITIES\r\n"),
        S(CAPABILITIES),
        C(b"STARTTLS\r\n"),
        S(b"580 Can not initiate TLS negotiation\r\n"),
    ]
    check_server(server(starttls=False), steps)
    steps[-1] = S(b"502 TLS is already active\r\n")
    check_server(server(implicit_tls=True), steps)


def test_reader_commands_find_nothing_and_accept_nothing() -> None:
    steps = [
        S(GREETING_2003),
        C(b"MODE READER\r\n"),
        S(b"200 Posting Allowed\r\n"),
        C(b"MODE STREAM\r\n"),
        S(b"501 Unknown MODE variant\r\n"),
        C(b"DATE\r\n"),
        S(b"111 20080206041940\r\n"),
        C(b"LIST\r\n"),
        S(b"215 list of newsgroups follows\r\n.\r\n"),
        C(b"LIST OVERVIEW.FMT\r\n"),
        S(b"501 Unknown LIST keyword\r\n"),
        C(b"NEWGROUPS 20080101 000000 GMT\r\n"),
        S(b"231 list of new newsgroups follows\r\n.\r\n"),
        C(b"GROUP misc.test\r\n"),
        S(b"411 No such newsgroup\r\n"),
        C(b"LISTGROUP\r\n"),
        S(b"412 No newsgroup selected\r\n"),
        C(b"ARTICLE <a@example.com>\r\n"),
        S(b"430 No article with that message-id\r\n"),
        C(b"HEAD 1\r\n"),
        S(b"412 No newsgroup selected\r\n"),
        C(b"POST\r\n"),
        S(b"440 Posting not permitted\r\n"),
        C(b"IHAVE <a@example.com>\r\n"),
        S(b"435 Article not wanted\r\n"),
    ]
    check_server(server(), steps)


def test_help_and_errors() -> None:
    steps = [
        S(NEUTRAL_GREETING),
        C(b"HELP\r\n"),
        S(
            b"100 Help text follows\r\nCAPABILITIES\r\nDATE\r\nGROUP newsgroup\r\nHELP\r\n"
            b"LIST [ACTIVE|NEWSGROUPS] [wildmat]\r\nMODE READER\r\n"
            b"NEWGROUPS [yy]yymmdd hhmmss [GMT]\r\nQUIT\r\nSTARTTLS\r\n.\r\n"
        ),
        C(b"XYZZY\n"),
        S(UNKNOWN),
        C(b"NEWGROUPS yesterday\r\n"),
        S(b"501 Syntax: NEWGROUPS date time [GMT]\r\n"),
        C(b"AUTHINFO USER alice\r\n"),
        S(b"502 Command unavailable\r\n"),
        C(b"AUTHINFO PASS s3cret\r\n"),
        S(b"502 Command unavailable\r\n"),
    ]
    heard = check_server(server("neutral"), steps).heard
    assert heard[-2:] == ["AUTHINFO USER ***", "AUTHINFO PASS ***"]
    assert heard[1] == "XYZZY"


def test_line_too_long_is_refused_and_closes() -> None:
    line = b"GROUP " + b"g" * OPTIONS.line_limit + b"\r\n"
    check_server(server(), [S(GREETING_2003), C(line), S(b"501 Line too long\r\n"), EOF_])


def test_too_many_errors_end_the_session() -> None:
    steps = [S(NEUTRAL_GREETING)]
    for _ in range(MAX_ERRORS - 1):
        steps += [C(b"XYZZY\r\n"), S(UNKNOWN)]
    closing = b"400 Too many errors, closing connection\r\n"
    steps += [C(b"XYZZY\r\n"), S(UNKNOWN + closing), EOF_]
    check_server(server("neutral"), steps)


def test_client_hanging_up_ends_quietly() -> None:
    check_server(server(), [S(GREETING_2003), C(b"QU"), C(b""), EOF_])


@pytest.mark.parametrize(
    ("profile", "product"),
    [
        ("exchange2003", "Microsoft NNTP Service 6.0.3790.3959"),
        ("exchange2000", "Microsoft NNTP Service 5.0.2195.6713"),
        ("neutral", None),
    ],
)
def test_our_client_recognises_each_profile(profile: str, product: str | None) -> None:
    talk = converse(NntpClient(ProbeOptions(starttls=True)), server(profile)())
    assert talk.info.product == product
    assert talk.info.details["posting_allowed"] is True
    assert talk.info.starttls_offered is True
    assert talk.info.tls_upgraded is True
    assert talk.info.capabilities == ["VERSION 2", "READER", "LIST ACTIVE NEWSGROUPS"]
    assert talk.server_sent.endswith(GOODBYE)


def test_our_client_reports_missing_starttls() -> None:
    with pytest.raises(StartTLSUnavailable):
        converse(NntpClient(ProbeOptions(starttls=True)), server(starttls=False)())


def test_registry_and_profile_check() -> None:
    assert isinstance(server_for("nntp", OPTIONS), NntpServer)
    with pytest.raises(LocalProtocolError, match="profile"):
        NntpServer(replace(OPTIONS, profile="exchange5.5"))
