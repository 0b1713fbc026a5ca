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
from portcall.protocols.smtp import MAX_ERRORS, MESSAGE_SIZE_LIMIT, SmtpClient, SmtpServer
from tests.protocols.pair import check_server, converse, merged, play_server
from tests.protocols.transcript import EOF_, TLS, C, S

OPTIONS = ServerOptions(hostname="mail.example.com", peer_address="192.0.2.7")
STAMP = datetime(2008, 2, 5, 10, 19, 40, tzinfo=timezone(timedelta(hours=-5)))

EXCHANGE_2003_BANNER = (
    b"220 mail.example.com Microsoft ESMTP MAIL Service, Version: 6.0.3790.3959 ready at "
    b" Tue, 05 Feb 2008 10:19:40 -0500\r\n"
)
EXCHANGE_2000_BANNER = EXCHANGE_2003_BANNER.replace(b"6.0.3790.3959", b"5.0.2195.6713")
NEUTRAL_BANNER = b"220 mail.example.com ESMTP portcall responder ready\r\n"
EHLO = b"EHLO client.example.net\r\n"
EXCHANGE_EHLO = (
    b"250-mail.example.com Hello [192.0.2.7]\r\n"
    b"250-TURN\r\n250-ATRN\r\n250-SIZE 10485760\r\n250-ETRN\r\n250-PIPELINING\r\n"
    b"250-DSN\r\n250-ENHANCEDSTATUSCODES\r\n250-8bitmime\r\n250-BINARYMIME\r\n"
    b"250-CHUNKING\r\n250-VRFY\r\n250-X-EXPS GSSAPI NTLM LOGIN\r\n250-X-EXPS=LOGIN\r\n"
    b"250-AUTH GSSAPI NTLM LOGIN\r\n250-AUTH=LOGIN\r\n250-X-LINK2STATE\r\n"
    b"250-XEXCH50\r\n250 OK\r\n"
)
EXCHANGE_EHLO_WITH_STARTTLS = EXCHANGE_EHLO.replace(
    b"250-VRFY\r\n", b"250-VRFY\r\n250-STARTTLS\r\n"
)
NEUTRAL_EHLO = (
    b"250-mail.example.com Hello [192.0.2.7]\r\n250-PIPELINING\r\n250-SIZE 10485760\r\n"
    b"250-8BITMIME\r\n250-STARTTLS\r\n250 ENHANCEDSTATUSCODES\r\n"
)
READY_FOR_TLS = b"220 2.0.0 SMTP server ready\r\n"
GOODBYE = b"221 2.0.0 mail.example.com Service closing transmission channel\r\n"
NOT_AUTHENTICATED = b"530 5.7.1 Client was not authenticated\r\n"
NEED_MAIL = b"503 5.5.2 Need mail command\r\n"
UNRECOGNIZED = b"500 5.3.3 Unrecognized command\r\n"


def server(profile: str = "exchange2003", **changes: object) -> Callable[[], SmtpServer]:
    options = replace(OPTIONS, profile=profile, **changes)  # type: ignore[arg-type]
    return lambda: SmtpServer(options, clock=lambda: STAMP)


@pytest.mark.parametrize(
    ("profile", "banner"),
    [
        ("exchange2003", EXCHANGE_2003_BANNER),
        ("exchange2000", EXCHANGE_2000_BANNER),
        ("neutral", NEUTRAL_BANNER),
    ],
)
def test_banner_per_profile_then_quit(profile: str, banner: bytes) -> None:
    check_server(server(profile), [S(banner), C(b"QUIT\r\n"), S(GOODBYE), EOF_])


def test_exchange_starttls_then_the_session_starts_over() -> None:
    steps = [
        S(EXCHANGE_2003_BANNER),
        C(EHLO),
        S(EXCHANGE_EHLO_WITH_STARTTLS),
        C(b"STARTTLS\r\n"),
        S(READY_FOR_TLS),
        TLS,
        # RFC 3207 section 4.2: the EHLO from before the upgrade no longer counts.
        C(b"MAIL FROM:<a@example.net>\r\n"),
        S(b"503 5.5.2 Send hello first\r\n"),
        C(EHLO),
        S(EXCHANGE_EHLO),
        C(b"STARTTLS\r\n"),
        S(b"503 5.5.1 TLS already active\r\n"),
        C(b"MAIL FROM:<a@example.net>\r\n"),
        S(NOT_AUTHENTICATED),
    ]
    check_server(server(), steps)


def test_a_command_pipelined_after_starttls_is_never_executed() -> None:
    # Whole only: fed a byte at a time, HELP would arrive after the upgrade, legitimately.
    steps = [
        S(NEUTRAL_BANNER),
        C(b"STARTTLS\r\nHELP\r\n"),
        S(READY_FOR_TLS),
        TLS,
        C(b"NOOP\r\n"),
        S(b"250 2.0.0 OK\r\n"),
    ]
    responder = server("neutral")()
    assert play_server(responder, steps) == merged(steps)
    assert responder.heard == ["STARTTLS", "NOOP"]


def test_starttls_is_neither_listed_nor_accepted_when_not_offered() -> None:
    steps = [
        S(NEUTRAL_BANNER),
        C(EHLO),
        S(NEUTRAL_EHLO.replace(b"250-STARTTLS\r\n", b"")),
        C(b"STARTTLS\r\n"),
        S(b"454 4.7.0 TLS not available\r\n"),
    ]
    check_server(server("neutral", starttls=False), steps)


def test_no_starttls_on_implicit_tls() -> None:
    steps = [
        S(EXCHANGE_2003_BANNER),
        C(EHLO),
        S(EXCHANGE_EHLO),
        C(b"STARTTLS\r\n"),
        S(b"503 5.5.1 TLS already active\r\n"),
        C(b"STARTTLS now\r\n"),
        S(b"501 5.5.4 Syntax: STARTTLS takes no parameters\r\n"),
    ]
    check_server(server(implicit_tls=True), steps)


def test_no_mail_is_ever_accepted() -> None:
    steps = [
        S(NEUTRAL_BANNER),
        C(b"MAIL FROM:<a@example.net>\r\n"),
        S(b"503 5.5.2 Send hello first\r\n"),
        C(b"HELO client.example.net\r\n"),
        S(b"250 mail.example.com Hello [192.0.2.7]\r\n"),
        C(b"MAIL FROM:<a@example.net>\r\n"),
        S(b"550 5.7.1 This responder accepts no mail\r\n"),
        C(b"MAIL a@example.net\r\n"),
        S(b"501 5.5.4 Syntax: MAIL FROM:<address>\r\n"),
        C(b"RCPT TO:<b@example.com>\r\n"),
        S(NEED_MAIL),
        C(b"DATA\r\n"),
        S(NEED_MAIL),
        C(b"BDAT 4 LAST\r\n"),
        S(b"502 5.3.3 Command not implemented\r\n"),
    ]
    check_server(server("neutral"), steps)


def test_bdat_chunk_is_skipped_not_run_as_commands() -> None:
    steps = [
        S(EXCHANGE_2003_BANNER),
        C(EHLO),
        S(EXCHANGE_EHLO_WITH_STARTTLS),
        C(b"BDAT 12 LAST\r\nQUIT\r\nQUIT\r\n"),
        S(NEED_MAIL),
        C(b"NOOP\r\n"),
        S(b"250 2.0.0 OK\r\n"),
        C(b"BDAT ten\r\n"),
        S(b"501 5.5.4 Syntax: BDAT size [LAST]\r\n"),
        C(f"BDAT {MESSAGE_SIZE_LIMIT + 1}\r\n".encode()),
        S(b"552 5.3.4 Message size exceeds fixed maximum\r\n"),
        EOF_,
    ]
    check_server(server(), steps)


def test_auth_always_fails_and_keeps_no_credentials() -> None:
    steps = [
        S(EXCHANGE_2003_BANNER),
        C(EHLO),
        S(EXCHANGE_EHLO_WITH_STARTTLS),
        C(b"AUTH LOGIN dXNlcg==\r\n"),
        S(b"535 5.7.3 Authentication unsuccessful\r\n"),
        C(b"AUTH PLAIN AHVzZXIAc2VjcmV0\r\n"),
        S(b"504 5.7.4 Unrecognized authentication type\r\n"),
        C(b"X-EXPS NTLM\r\n"),
        S(b"535 5.7.3 Authentication unsuccessful\r\n"),
    ]
    heard = check_server(server(), steps).heard
    assert heard == ["EHLO client.example.net", "AUTH LOGIN ***", "AUTH PLAIN ***", "X-EXPS NTLM"]


def test_exchange_verbs_want_authentication_and_are_unknown_to_neutral() -> None:
    for verb in (b"XEXCH50 1 2", b"X-LINK2STATE FIRST CHUNK=x", b"ETRN example.net"):
        exchange = [S(EXCHANGE_2003_BANNER), C(verb + b"\r\n"), S(NOT_AUTHENTICATED)]
        check_server(server(), exchange)
    neutral = [S(NEUTRAL_BANNER), C(b"XEXCH50 1 2\r\n"), S(UNRECOGNIZED)]
    assert check_server(server("neutral"), neutral).heard == ["XEXCH50"]


def test_small_talk() -> None:
    steps = [
        S(EXCHANGE_2003_BANNER),
        C(b"help\r\n"),
        S(
            b"214-This server supports the following commands:\r\n"
            b"214 HELO EHLO STARTTLS RCPT DATA RSET MAIL QUIT HELP AUTH TURN ETRN BDAT VRFY\r\n"
        ),
        C(b"NOOP\n"),
        S(b"250 2.0.0 OK\r\n"),
        C(b"RSET\r\n"),
        S(b"250 2.0.0 Resetting\r\n"),
        C(b"VRFY postmaster\r\n"),
        S(b"252 2.1.5 Cannot VRFY user\r\n"),
        C(b"EXPN staff\r\n"),
        S(b"502 5.3.3 Command not implemented\r\n"),
        C(b"EHLO\r\n"),
        S(b"501 5.5.4 Syntax: EHLO hostname\r\n"),
        C(b"\r\n"),
        S(UNRECOGNIZED),
    ]
    check_server(server(), steps)


def test_line_too_long_is_refused_and_closes() -> None:
    limit = OPTIONS.line_limit
    for line in (b"NOOP " + b"x" * limit + b"\r\n", b"x" * (limit + 1)):
        steps = [S(NEUTRAL_BANNER), C(line), S(b"500 5.5.2 Line too long\r\n"), EOF_]
        check_server(server("neutral"), steps)


def test_too_many_errors_end_the_session() -> None:
    steps = [S(NEUTRAL_BANNER)]
    for _ in range(MAX_ERRORS - 1):
        steps += [C(b"XYZZY\r\n"), S(UNRECOGNIZED)]
    closing = b"421 4.7.0 mail.example.com Too many errors, closing channel\r\n"
    steps += [C(b"XYZZY\r\n"), S(UNRECOGNIZED + closing), EOF_]
    check_server(server("neutral"), steps)


def test_client_hanging_up_ends_quietly() -> None:
    check_server(server(), [S(EXCHANGE_2003_BANNER), C(b"NOO"), C(b""), EOF_])


@pytest.mark.parametrize(
    ("profile", "product"),
    [
        ("exchange2003", "Microsoft Exchange 2003 (SMTP service 6.0.3790.3959)"),
        ("exchange2000", "Microsoft Exchange 2000 or 2003 (SMTP service 5.0.2195.6713)"),
        ("neutral", None),
    ],
)
def test_our_client_recognises_each_profile(profile: str, product: str | None) -> None:
    client = SmtpClient(ProbeOptions(starttls=True))
    talk = converse(client, server(profile)())
    assert talk.info.product == product
    assert talk.info.starttls_offered is True
    assert talk.info.tls_upgraded is True
    assert "STARTTLS" not in talk.info.capabilities
    assert ("XEXCH50" in talk.info.capabilities) == (profile != "neutral")
    assert talk.server_sent.endswith(GOODBYE)


def test_our_client_reports_missing_starttls() -> None:
    with pytest.raises(StartTLSUnavailable):
        converse(SmtpClient(ProbeOptions(starttls=True)), server(starttls=False)())


def test_registry_and_profile_check() -> None:
    assert isinstance(server_for("smtp", OPTIONS), SmtpServer)
    with pytest.raises(LocalProtocolError, match="profile"):
        SmtpServer(replace(OPTIONS, profile="exchange5.5"))
