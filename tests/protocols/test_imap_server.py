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
from portcall.protocols.imap import MAX_ERRORS, ImapClient, ImapServer
from tests.protocols.pair import check_server, converse, merged, play_server
from tests.protocols.transcript import EOF_, TLS, C, S

OPTIONS = ServerOptions(hostname="mail.example.com")
EXCHANGE_2003 = b"Microsoft Exchange Server 2003 IMAP4rev1 server version 6.5.7638.1"
EXCHANGE_2000 = b"Microsoft Exchange 2000 IMAP4rev1 server version 6.0.6249.0"
GREETING_2003 = b"* OK " + EXCHANGE_2003 + b" (mail.example.com) ready.\r\n"
NEUTRAL_GREETING = b"* OK portcall responder ready.\r\n"
EXCHANGE_WORDS = (
    b"IMAP4 IMAP4rev1 IDLE LOGIN-REFERRALS MAILBOX-REFERRALS NAMESPACE LITERAL+ UIDPLUS"
    b" CHILDREN AUTH=NTLM"
)


def capability(tag: bytes, words: bytes) -> bytes:
    return b"* CAPABILITY " + words + b"\r\n" + tag + b" OK CAPABILITY completed.\r\n"


def server(profile: str = "exchange2003", **changes: object) -> Callable[[], ImapServer]:
    options = replace(OPTIONS, profile=profile, **changes)  # type: ignore[arg-type]
    return lambda: ImapServer(options)


@pytest.mark.parametrize(
    ("profile", "greeting", "bye"),
    [
        ("exchange2003", GREETING_2003, b"* BYE " + EXCHANGE_2003 + b" signing off.\r\n"),
        (
            "exchange2000",
            b"* OK " + EXCHANGE_2000 + b" (mail.example.com) ready.\r\n",
            b"* BYE " + EXCHANGE_2000 + b" signing off.\r\n",
        ),
        ("neutral", NEUTRAL_GREETING, b"* BYE portcall responder signing off.\r\n"),
    ],
)
def test_greeting_and_logout_per_profile(profile: str, greeting: bytes, bye: bytes) -> None:
    steps = [S(greeting), C(b"z9 LOGOUT\r\n"), S(bye + b"z9 OK LOGOUT completed.\r\n"), EOF_]
    check_server(server(profile), steps)


def test_capability_starttls_and_capability_again() -> None:
    steps = [
        S(GREETING_2003),
        C(b"a1 CAPABILITY\r\n"),
        S(capability(b"a1", EXCHANGE_WORDS + b" STARTTLS LOGINDISABLED")),
        C(b"a2 starttls\r\n"),
        S(b"a2 OK Begin TLS negotiation now.\r\n"),
        TLS,
        C(b"a3 CAPABILITY\r\n"),
        S(capability(b"a3", EXCHANGE_WORDS)),
        C(b"a4 STARTTLS\r\n"),
        S(b"a4 BAD Protocol Error: TLS is already active.\r\n"),
        C(b"a5 NOOP\r\n"),
        S(b"a5 OK NOOP completed.\r\n"),
    ]
    check_server(server(), steps)


def test_plaintext_pipelined_after_starttls_is_dropped() -> None:
    steps = [
        S(NEUTRAL_GREETING),
        C(b"a1 STARTTLS\r\na2 CAPABILITY\r\n"),
        S(b"a1 OK Begin TLS negotiation now.\r\n"),
        TLS,
        C(b"a3 CAPABILITY\r\n"),
        S(capability(b"a3", b"IMAP4rev1 LITERAL+")),
    ]
    responder = server("neutral")()
    assert play_server(responder, steps) == merged(steps)
    assert responder.heard == ["STARTTLS", "CAPABILITY"]


def test_without_starttls_offer_and_on_implicit_tls() -> None:
    plain = [
        S(NEUTRAL_GREETING),
        C(b"a1 CAPABILITY\r\n"),
        S(capability(b"a1", b"IMAP4rev1 LITERAL+ LOGINDISABLED")),
        C(b"a2 STARTTLS\r\n"),
        S(b"a2 BAD Protocol Error: STARTTLS is not available.\r\n"),
    ]
    check_server(server("neutral", starttls=False), plain)
    implicit = [
        S(GREETING_2003),
        C(b"a1 CAPABILITY\r\n"),
        S(capability(b"a1", EXCHANGE_WORDS)),
        C(b"a2 LOGIN alice s3cret\r\n"),
        S(b"a2 NO Logon failure: unknown user name or bad password.\r\n"),
    ]
    check_server(server(implicit_tls=True), implicit)


def test_logons_fail_and_no_credential_is_kept() -> None:
    steps = [
        S(GREETING_2003),
        C(b"a1 LOGIN alice s3cret\r\n"),
        S(b"a1 NO LOGIN is disabled on an unencrypted connection.\r\n"),
        C(b"a2 LOGIN\r\n"),
        S(b"a2 BAD Protocol Error: LOGIN needs a user name and a password.\r\n"),
        C(b"a3 AUTHENTICATE NTLM TlRMTVNTUAABAAAA\r\n"),
        S(b"a3 NO AUTHENTICATE failed.\r\n"),
        C(b"a4 AUTHENTICATE\r\n"),
        S(b"a4 BAD Protocol Error: AUTHENTICATE needs a mechanism.\r\n"),
    ]
    heard = check_server(server(), steps).heard
    assert heard == ["LOGIN ***", "LOGIN", "AUTHENTICATE NTLM ***", "AUTHENTICATE"]


def test_literals_are_read_as_part_of_the_command() -> None:
    # A synchronizing literal gets a go-ahead first; a LITERAL+ one (RFC 7888) does not.
    steps = [
        S(GREETING_2003),
        C(b"a1 LOGIN {5}\r\n"),
        S(b"+ Ready for additional command text.\r\n"),
        C(b"alice {6+}\r\ns3cret\r\n"),
        S(b"a1 NO LOGIN is disabled on an unencrypted connection.\r\n"),
        C(b"a2 NOOP\r\n"),
        S(b"a2 OK NOOP completed.\r\n"),
    ]
    assert check_server(server(), steps).heard == ["LOGIN ***", "NOOP"]


def test_wrong_state_unknown_and_untagged_lines() -> None:
    steps = [
        S(NEUTRAL_GREETING),
        C(b"a1 SELECT INBOX\r\n"),
        S(b"a1 BAD Protocol Error: the command is not valid in this state.\r\n"),
        C(b"a2 FROBNICATE\r\n"),
        S(b"a2 BAD Protocol Error: unknown command.\r\n"),
        C(b"a3\r\n"),
        S(b"a3 BAD Protocol Error: the command is missing.\r\n"),
        C(b"\r\n"),
        S(b"* BAD Protocol Error: a command must start with a tag.\r\n"),
        C(b"+go NOOP\n"),
        S(b"* BAD Protocol Error: a command must start with a tag.\r\n"),
    ]
    heard = check_server(server("neutral"), steps).heard
    assert heard == ["SELECT INBOX", "FROBNICATE", "", "", "+go"]


def test_line_or_literal_too_long_is_refused_and_closes() -> None:
    limit = OPTIONS.line_limit
    for line in (b"a1 NOOP " + b"x" * limit + b"\r\n", f"a1 LOGIN {{{limit}+}}\r\n".encode()):
        steps = [S(GREETING_2003), C(line), S(b"* BYE Line too long.\r\n"), EOF_]
        check_server(server(), steps)


def test_too_many_errors_end_the_session() -> None:
    steps = [S(NEUTRAL_GREETING)]
    bad = b"x BAD Protocol Error: unknown command.\r\n"
    for _ in range(MAX_ERRORS - 1):
        steps += [C(b"x JUNK\r\n"), S(bad)]
    closing = b"* BYE Too many protocol errors, closing the connection.\r\n"
    steps += [C(b"x JUNK\r\n"), S(bad + closing), EOF_]
    check_server(server("neutral"), steps)


def test_client_hanging_up_ends_quietly() -> None:
    go_ahead = b"+ Ready for additional command text.\r\n"
    steps = [S(GREETING_2003), C(b"a1 LOGIN {5}\r\n"), S(go_ahead), C(b"al"), C(b""), EOF_]
    check_server(server(), steps)
    check_server(server(), [S(GREETING_2003), C(b"a1 CAP"), C(b""), EOF_])


@pytest.mark.parametrize(
    ("profile", "product"),
    [
        ("exchange2003", "Microsoft Exchange 2003 (6.5.7638.1)"),
        ("exchange2000", "Microsoft Exchange 2000 (6.0.6249.0)"),
        ("neutral", None),
    ],
)
def test_our_client_recognises_each_profile(profile: str, product: str | None) -> None:
    talk = converse(ImapClient(ProbeOptions(starttls=True)), server(profile)())
    assert talk.info.product == product
    assert talk.info.starttls_offered is True
    assert talk.info.tls_upgraded is True
    assert "IMAP4rev1" in talk.info.capabilities
    assert "LOGINDISABLED" not in talk.info.capabilities
    assert any("LOGINDISABLED" in note for note in talk.info.notes)
    assert talk.server_sent.endswith(b"OK LOGOUT completed.\r\n")


def test_our_client_reports_missing_starttls() -> None:
    with pytest.raises(StartTLSUnavailable):
        converse(ImapClient(ProbeOptions(starttls=True)), server(starttls=False)())


def test_registry_and_profile_check() -> None:
    assert isinstance(server_for("imap", OPTIONS), ImapServer)
    with pytest.raises(LocalProtocolError, match="profile"):
        ImapServer(replace(OPTIONS, profile="exchange5.5"))
