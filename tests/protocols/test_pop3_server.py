from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest

from portcall.protocols import server_for
from portcall.protocols.base import (
    LocalProtocolError,
    ProbeOptions,
    ServerOptions,
    StartTLSUnavailable,
)
from portcall.protocols.pop3 import MAX_ERRORS, Pop3Client, Pop3Server
from tests.protocols.pair import check_server, converse, merged, play_server
from tests.protocols.transcript import EOF_, TLS, C, S

OPTIONS = ServerOptions(hostname="mail.example.com")
EXCHANGE_2003 = b"Microsoft Exchange Server 2003 POP3 server version 6.5.7638.1"
EXCHANGE_2000 = b"Microsoft Exchange 2000 POP3 server version 6.0.6249.0"
GREETING_2003 = b"+OK " + EXCHANGE_2003 + b" (mail.example.com) ready.\r\n"
NEUTRAL_GREETING = b"+OK portcall responder ready.\r\n"
CAPA_WITH_STLS = b"+OK Capability list follows\r\nTOP\r\nUSER\r\nUIDL\r\nSTLS\r\n.\r\n"
CAPA = b"+OK Capability list follows\r\nTOP\r\nUSER\r\nUIDL\r\n.\r\n"
LOGON_FAILURE = b"-ERR Logon failure: unknown user name or bad password.\r\n"


def server(profile: str = "exchange2003", **changes: object) -> Callable[[], Pop3Server]:
    options = replace(OPTIONS, profile=profile, **changes)  # type: ignore[arg-type]
    return lambda: Pop3Server(options)


@pytest.mark.parametrize(
    ("profile", "greeting", "farewell"),
    [
        ("exchange2003", GREETING_2003, b"+OK " + EXCHANGE_2003 + b" signing off.\r\n"),
        (
            "exchange2000",
            b"+OK " + EXCHANGE_2000 + b" (mail.example.com) ready.\r\n",
            b"+OK " + EXCHANGE_2000 + b" signing off.\r\n",
        ),
        ("neutral", NEUTRAL_GREETING, b"+OK portcall responder signing off.\r\n"),
    ],
)
def test_greeting_and_farewell_per_profile(profile: str, greeting: bytes, farewell: bytes) -> None:
    check_server(server(profile), [S(greeting), C(b"QUIT\r\n"), S(farewell), EOF_])


def test_capa_stls_and_capa_again_without_stls() -> None:
    steps = [
        S(GREETING_2003),
        C(b"CAPA\r\n"),
        S(CAPA_WITH_STLS),
        C(b"stls\r\n"),
        S(b"+OK Begin TLS negotiation\r\n"),
        TLS,
        C(b"CAPA\r\n"),
        S(CAPA),
        C(b"STLS\r\n"),
        S(b"-ERR Command not permitted when TLS is active.\r\n"),
    ]
    check_server(server(), steps)


def test_plaintext_pipelined_after_stls_is_dropped() -> None:
    steps = [
        S(NEUTRAL_GREETING),
        C(b"STLS\r\nCAPA\r\n"),
        S(b"+OK Begin TLS negotiation\r\n"),
        TLS,
        C(b"NOOP\r\n"),
        S(b"-ERR Command is not valid in this state.\r\n"),
    ]
    responder = server("neutral")()
    assert play_server(responder, steps) == merged(steps)
    assert responder.heard == ["STLS", "NOOP"]


@pytest.mark.parametrize("changes", [{"starttls": False}, {"implicit_tls": True}])
def test_stls_neither_listed_nor_accepted_when_unavailable(changes: dict[str, bool]) -> None:
    refusal = (
        b"-ERR STLS is not available.\r\n"
        if "starttls" in changes
        else b"-ERR Command not permitted when TLS is active.\r\n"
    )
    steps = [S(GREETING_2003), C(b"CAPA\r\n"), S(CAPA), C(b"STLS\r\n"), S(refusal)]
    check_server(server(**changes), steps)


def test_logons_fail_and_no_credential_is_kept() -> None:
    steps = [
        S(GREETING_2003),
        C(b"USER alice\r\n"),
        S(LOGON_FAILURE),
        C(b"PASS s3cret\r\n"),
        S(LOGON_FAILURE),
        C(b"APOP alice c4c9334bac560ecc979e58001b3e22fb\r\n"),
        S(LOGON_FAILURE),
        C(b"AUTH PLAIN AGFsaWNlAHMzY3JldA==\r\n"),
        S(LOGON_FAILURE),
        C(b"STAT\r\n"),
        S(b"-ERR Command is not valid in this state.\r\n"),
        C(b"XTND XMIT\r\n"),
        S(b"-ERR Unknown command.\r\n"),
        C(b"STLS now\r\n"),
        S(b"-ERR STLS takes no arguments.\r\n"),
    ]
    heard = check_server(server(), steps).heard
    assert heard == [
        "USER ***",
        "PASS ***",
        "APOP ***",
        "AUTH PLAIN ***",
        "STAT",
        "XTND",
        "STLS now",
    ]


def test_line_too_long_is_refused_and_closes() -> None:
    line = b"USER " + b"a" * OPTIONS.line_limit + b"\r\n"
    check_server(server(), [S(GREETING_2003), C(line), S(b"-ERR Line too long.\r\n"), EOF_])


def test_too_many_errors_end_the_session() -> None:
    steps = [S(NEUTRAL_GREETING)]
    for _ in range(MAX_ERRORS - 1):
        steps += [C(b"LIST\r\n"), S(b"-ERR Command is not valid in this state.\r\n")]
    closing = b"-ERR Too many errors, closing the connection.\r\n"
    steps += [C(b"LIST\n"), S(b"-ERR Command is not valid in this state.\r\n" + closing), EOF_]
    check_server(server("neutral"), steps)


def test_client_hanging_up_ends_quietly() -> None:
    check_server(server(), [S(GREETING_2003), C(b"CA"), C(b""), EOF_])


@pytest.mark.parametrize(
    ("profile", "product"),
    [
        ("exchange2003", "Microsoft Exchange 2003 (6.5.7638.1)"),
        ("exchange2000", "Microsoft Exchange 2000 (6.0.6249.0)"),
        ("neutral", None),
    ],
)
def test_our_client_recognises_each_profile(profile: str, product: str | None) -> None:
    talk = converse(Pop3Client(ProbeOptions(starttls=True)), server(profile)())
    assert talk.info.product == product
    assert talk.info.starttls_offered is True
    assert talk.info.tls_upgraded is True
    assert talk.info.capabilities == ["TOP", "USER", "UIDL"]
    assert talk.server_sent.endswith(b"signing off.\r\n")


def test_our_client_reports_missing_stls() -> None:
    with pytest.raises(StartTLSUnavailable):
        converse(Pop3Client(ProbeOptions(starttls=True)), server(starttls=False)())


def test_registry_and_profile_check() -> None:
    assert isinstance(server_for("pop3", OPTIONS), Pop3Server)
    with pytest.raises(LocalProtocolError, match="profile"):
        Pop3Server(replace(OPTIONS, profile="exchange5.5"))
