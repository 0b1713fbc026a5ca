from __future__ import annotations

import pytest

from portcall.protocols.base import (
    Done,
    PeerClosed,
    ProbeOptions,
    ReplyTooLong,
    Send,
    ServiceRefused,
    StartTLSUnavailable,
    WrongProtocol,
)
from portcall.protocols.imap import ImapClient
from tests.protocols.transcript import EOF_, TLS, C, S, play, play_both_ways

EXCHANGE_2003_GREETING = (
    b"* OK Microsoft Exchange Server 2003 IMAP4rev1 server version 6.5.7638.1"
    b" (mail.example.com) ready.\r\n"
)
EXCHANGE_CAPABILITY = (
    b"* CAPABILITY IMAP4 IMAP4rev1 AUTH=NTLM AUTH=GSSAPI LOGINDISABLED STARTTLS IDLE"
    b" NAMESPACE LITERAL+\r\na1 OK CAPABILITY completed.\r\n"
)
DOVECOT_GREETING = (
    b"* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ STARTTLS"
    b" LOGINDISABLED] Dovecot (Debian) ready.\r\n"
)
DOVECOT_CAPABILITY = (
    b"* CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ STARTTLS"
    b" LOGINDISABLED\r\na1 OK Pre-login capabilities listed, post-login capabilities have more.\r\n"
)
PLAIN_CAPABILITY = b"* CAPABILITY IMAP4rev1 IDLE\r\na1 OK done\r\n"


def starttls_client() -> ImapClient:
    return ImapClient(ProbeOptions(starttls=True))


def sent_until_done(client: ImapClient) -> list[bytes]:
    """Everything the client sends before it is done; it must never wait for more data."""
    sent: list[bytes] = []
    while not isinstance(event := client.next_event(), Done):
        assert isinstance(event, Send), f"client asked for {event!r}"
        sent.append(event.data)
    return sent


def test_exchange_2003_starttls_upgrade_replaces_capabilities() -> None:
    steps = [
        S(EXCHANGE_2003_GREETING),
        C(b"a1 CAPABILITY\r\n"),
        S(EXCHANGE_CAPABILITY),
        C(b"a2 STARTTLS\r\n"),
        S(b"a2 OK Begin TLS negotiation now.\r\n"),
        TLS,
        C(b"a3 CAPABILITY\r\n"),
        S(b"* CAPABILITY IMAP4 IMAP4rev1 AUTH=NTLM AUTH=GSSAPI AUTH=PLAIN IDLE\r\na3 OK done\r\n"),
        # AUTH=NTLM after TLS: the client asks for the NTLM identity on the final session.
        C(b"a4 AUTHENTICATE NTLM\r\n"),
        S(b"a4 NO AUTHENTICATE failed.\r\n"),
        C(b"a5 LOGOUT\r\n"),
    ]
    info = play_both_ways(starttls_client, steps)
    assert info.product == "Microsoft Exchange 2003 (6.5.7638.1)"
    assert info.banner == EXCHANGE_2003_GREETING.decode().rstrip("\r\n")
    assert info.starttls_offered is True
    assert info.tls_upgraded is True
    assert info.capabilities == [
        "IMAP4",
        "IMAP4rev1",
        "AUTH=NTLM",
        "AUTH=GSSAPI",
        "AUTH=PLAIN",
        "IDLE",
    ]
    assert any("LOGINDISABLED" in note for note in info.notes)


def test_dovecot_capabilities_without_starttls_request() -> None:
    steps = [S(DOVECOT_GREETING), C(b"a1 CAPABILITY\r\n"), S(DOVECOT_CAPABILITY)]
    info = play_both_ways(ImapClient, steps)
    assert info.product == "Dovecot"
    assert info.capabilities[:2] == ["IMAP4rev1", "SASL-IR"]
    assert info.capabilities[-2:] == ["STARTTLS", "LOGINDISABLED"]
    assert info.starttls_offered is True
    assert info.tls_upgraded is False


def test_logout_ends_the_conversation_without_waiting_for_a_reply() -> None:
    client = ImapClient()
    client.receive_data(DOVECOT_GREETING + DOVECOT_CAPABILITY)
    assert sent_until_done(client) == [b"a1 CAPABILITY\r\n", b"a2 LOGOUT\r\n"]


def test_dovecot_waiting_for_its_auth_process_then_greeting() -> None:
    steps = [
        S(b"* OK Waiting for authentication process to respond..\r\n"),
        S(DOVECOT_GREETING),
        C(b"a1 CAPABILITY\r\n"),
        S(DOVECOT_CAPABILITY),
    ]
    info = play_both_ways(ImapClient, steps)
    assert info.product == "Dovecot"
    assert info.banner is not None and info.banner.endswith("Dovecot (Debian) ready.")
    assert any("delayed" in note for note in info.notes)


def test_preauth_greeting_is_accepted_and_noted() -> None:
    steps = [S(b"* PREAUTH IMAP4rev1 server logged in as Smith\r\n"), C(b"a1 CAPABILITY\r\n")]
    steps.append(S(PLAIN_CAPABILITY))
    info = play(ImapClient(), steps)
    assert info.capabilities == ["IMAP4rev1", "IDLE"]
    assert any("PREAUTH" in note for note in info.notes)


def test_other_untagged_lines_and_literals_are_skipped() -> None:
    # The literal holds what looks like our tagged reply; reading it as a line would end
    # the command too early and lose the capabilities that follow.
    reply = (
        b"* OK [ALERT] maintenance tonight\r\n"
        b"* XINFO {14}\r\na1 OK forged\r\n trailer\r\n"
        b"* CAPABILITY IMAP4rev1\r\n* CAPABILITY STARTTLS\r\n"
        b"a1 OK CAPABILITY completed\r\n"
    )
    steps = [S(b"* OK ready\r\n"), C(b"a1 CAPABILITY\r\n"), S(reply)]
    info = play_both_ways(ImapClient, steps)
    assert info.capabilities == ["IMAP4rev1", "STARTTLS"]


def test_literal_larger_than_the_reply_limit() -> None:
    steps = [S(b"* OK ready\r\n"), C(b"a1 CAPABILITY\r\n"), S(b"* XINFO {99999999}\r\n")]
    with pytest.raises(ReplyTooLong):
        play(ImapClient(), steps)


@pytest.mark.parametrize("status", [b"BAD unknown command", b"NO not now"])
def test_capability_refused_gives_an_empty_list(status: bytes) -> None:
    steps = [S(b"* OK ready\r\n"), C(b"a1 CAPABILITY\r\n"), S(b"a1 " + status + b"\r\n")]
    info = play_both_ways(ImapClient, steps)
    assert info.capabilities == []
    assert info.starttls_offered is False


def test_missing_starttls_is_a_fault_when_required() -> None:
    steps = [S(b"* OK ready\r\n"), C(b"a1 CAPABILITY\r\n"), S(PLAIN_CAPABILITY)]
    with pytest.raises(StartTLSUnavailable, match="STARTTLS"):
        play(starttls_client(), steps)


def test_missing_starttls_is_a_note_when_optional() -> None:
    steps = [S(b"* OK ready\r\n"), C(b"a1 CAPABILITY\r\n"), S(PLAIN_CAPABILITY)]
    info = play(ImapClient(ProbeOptions(starttls=True, starttls_required=False)), steps)
    assert info.notes == ["STARTTLS not offered"]
    assert info.tls_upgraded is False


@pytest.mark.parametrize("refusal", [b"a2 NO TLS is not configured", b"a2 BAD no such command"])
def test_starttls_refused(refusal: bytes) -> None:
    steps = [
        S(DOVECOT_GREETING),
        C(b"a1 CAPABILITY\r\n"),
        S(DOVECOT_CAPABILITY),
        C(b"a2 STARTTLS\r\n"),
        S(refusal + b"\r\n"),
    ]
    with pytest.raises(StartTLSUnavailable, match=refusal[3:].decode()):
        play(starttls_client(), steps)


def test_plaintext_after_starttls_go_ahead_is_discarded() -> None:
    injected = b"a2 OK Begin TLS negotiation now.\r\n* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\na3 OK\r\n"
    steps = [
        S(DOVECOT_GREETING),
        C(b"a1 CAPABILITY\r\n"),
        S(DOVECOT_CAPABILITY),
        C(b"a2 STARTTLS\r\n"),
        S(injected),
        TLS,
        C(b"a3 CAPABILITY\r\n"),
        S(b"* CAPABILITY IMAP4rev1 IDLE\r\na3 OK done\r\n"),
    ]
    info = play(starttls_client(), steps)
    assert info.capabilities == ["IMAP4rev1", "IDLE"]


def test_bye_greeting_is_a_refusal() -> None:
    with pytest.raises(ServiceRefused, match="BYE"):
        play(ImapClient(), [S(b"* BYE Too many connections\r\n")])


def test_bye_instead_of_a_tagged_reply_is_a_refusal() -> None:
    steps = [S(b"* OK ready\r\n"), C(b"a1 CAPABILITY\r\n"), S(b"* BYE shutting down\r\n")]
    with pytest.raises(ServiceRefused, match="shutting down"):
        play(ImapClient(), steps)


@pytest.mark.parametrize(
    ("greeting", "detected"),
    [
        (b"HTTP/1.1 400 Bad Request\r\nServer: nginx\r\n\r\n", "HTTP"),
        (b"+OK Microsoft Exchange Server 2003 POP3 server version 6.5.7638.1 ready.\r\n", "POP3"),
        (b"220 mail.example.com ESMTP Postfix (Debian/GNU)\r\n", "SMTP"),
    ],
)
def test_another_protocol_answering_is_named(greeting: bytes, detected: str) -> None:
    with pytest.raises(WrongProtocol) as caught:
        play(ImapClient(), [S(greeting)])
    assert caught.value.detected == detected
    assert caught.value.expected == "IMAP4"


def test_close_before_greeting() -> None:
    with pytest.raises(PeerClosed):
        play(ImapClient(), [EOF_])


def test_close_before_the_tagged_reply() -> None:
    steps = [S(b"* OK ready\r\n"), C(b"a1 CAPABILITY\r\n"), S(b"* CAPABILITY IMAP4rev1\r\n"), EOF_]
    with pytest.raises(PeerClosed):
        play(ImapClient(), steps)
