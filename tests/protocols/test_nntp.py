from __future__ import annotations

import pytest

from portcall.protocols.base import (
    Done,
    PeerClosed,
    ProbeOptions,
    Send,
    ServiceRefused,
    StartTLSUnavailable,
    WrongProtocol,
)
from portcall.protocols.nntp import NntpClient
from tests.protocols.transcript import EOF_, TLS, C, S, play, play_both_ways

CAPABILITIES = b"CAPABILITIES\r\n"
EXCHANGE_GREETING = b"200 NNTP Service 6.0.3790.0 Version: 6.0.3790.0 Posting Allowed \r\n"
INN_GREETING = b"200 news.example.org InterNetNews NNRP server INN 2.7.1 ready (posting ok)\r\n"
INN_CAPABILITIES = (
    b"101 Capability list:\r\nVERSION 2\r\nIMPLEMENTATION INN 2.7.1\r\nHDR\r\n"
    b"LIST ACTIVE ACTIVE.TIMES COUNTS DISTRIB.PATS HEADERS NEWSGROUPS OVERVIEW.FMT\r\n"
    b"NEWNEWS\r\nOVER\r\nPOST\r\nREADER\r\nSTARTTLS\r\n.\r\n"
)
INN_CAPABILITIES_AFTER_TLS = (
    b"101 Capability list:\r\nVERSION 2\r\nIMPLEMENTATION INN 2.7.1\r\n"
    b"AUTHINFO USER\r\nREADER\r\n.\r\n"
)


def starttls_client() -> NntpClient:
    return NntpClient(ProbeOptions(starttls=True))


def sent_until_done(client: NntpClient) -> list[bytes]:
    """Everything the client sends before it is done; it must never wait for more data."""
    sent: list[bytes] = []
    while not isinstance(event := client.next_event(), Done):
        assert isinstance(event, Send), f"client asked for {event!r}"
        sent.append(event.data)
    return sent


def test_exchange_nntp_service_is_named_and_has_no_capabilities() -> None:
    steps = [S(EXCHANGE_GREETING), C(CAPABILITIES), S(b"500 command not recognized\r\n")]
    info = play_both_ways(NntpClient, steps)
    assert info.product == "Microsoft NNTP Service 6.0.3790.0"
    assert info.banner == "200 NNTP Service 6.0.3790.0 Version: 6.0.3790.0 Posting Allowed "
    assert info.capabilities == []
    assert info.details["posting_allowed"] is True
    assert info.starttls_offered is False


def test_exchange_nntp_without_starttls_fails_when_required() -> None:
    steps = [S(EXCHANGE_GREETING), C(CAPABILITIES), S(b"500 command not recognized\r\n")]
    with pytest.raises(StartTLSUnavailable, match="does not list STARTTLS"):
        play(starttls_client(), steps)


def test_missing_starttls_is_a_note_when_optional() -> None:
    steps = [S(EXCHANGE_GREETING), C(CAPABILITIES), S(b"500 command not recognized\r\n")]
    info = play(NntpClient(ProbeOptions(starttls=True, starttls_required=False)), steps)
    assert info.notes == ["STARTTLS not offered"]
    assert info.tls_upgraded is False


def test_inn_starttls_upgrade_replaces_capabilities() -> None:
    steps = [
        S(INN_GREETING),
        C(CAPABILITIES),
        S(INN_CAPABILITIES),
        C(b"STARTTLS\r\n"),
        S(b"382 Begin TLS negotiation now\r\n"),
        TLS,
        C(CAPABILITIES),
        S(INN_CAPABILITIES_AFTER_TLS),
        C(b"QUIT\r\n"),
    ]
    info = play_both_ways(starttls_client, steps)
    assert info.product == "INN 2.7.1"
    assert info.starttls_offered is True
    assert info.tls_upgraded is True
    assert info.capabilities == [
        "VERSION 2",
        "IMPLEMENTATION INN 2.7.1",
        "AUTHINFO USER",
        "READER",
    ]


def test_implementation_names_the_product_when_the_banner_does_not() -> None:
    steps = [S(b"201 news.example.org ready\r\n"), C(CAPABILITIES), S(INN_CAPABILITIES)]
    info = play_both_ways(NntpClient, steps)
    assert info.product == "INN 2.7.1"
    assert info.details["posting_allowed"] is False


def test_unknown_implementation_is_reported_as_written() -> None:
    capabilities = b"101 list\r\nVERSION 2\r\nIMPLEMENTATION Leafnode 2.0.0\r\nREADER\r\n.\r\n"
    steps = [S(b"200 news.example.org ready\r\n"), C(CAPABILITIES), S(capabilities)]
    assert play(NntpClient(), steps).product == "Leafnode 2.0.0"


def test_capabilities_behind_authentication_gives_an_empty_list() -> None:
    steps = [S(INN_GREETING), C(CAPABILITIES), S(b"480 Authentication required\r\n")]
    info = play(NntpClient(), steps)
    assert info.capabilities == []
    assert info.product == "INN 2.7.1"


def test_quit_ends_the_conversation_without_waiting_for_a_reply() -> None:
    client = NntpClient()
    client.receive_data(INN_GREETING + INN_CAPABILITIES)
    assert sent_until_done(client) == [CAPABILITIES, b"QUIT\r\n"]


@pytest.mark.parametrize(
    "refusal", [b"580 Can not initiate TLS negotiation", b"502 Command unavailable"]
)
def test_starttls_refused(refusal: bytes) -> None:
    steps = [
        S(INN_GREETING),
        C(CAPABILITIES),
        S(INN_CAPABILITIES),
        C(b"STARTTLS\r\n"),
        S(refusal + b"\r\n"),
    ]
    with pytest.raises(StartTLSUnavailable, match=refusal.decode()):
        play(starttls_client(), steps)


def test_plaintext_after_starttls_go_ahead_is_discarded() -> None:
    injected = b"382 go ahead\r\n101 list\r\nVERSION 2\r\nINJECTED\r\n.\r\n"
    steps = [
        S(INN_GREETING),
        C(CAPABILITIES),
        S(INN_CAPABILITIES),
        C(b"STARTTLS\r\n"),
        S(injected),
        TLS,
        C(CAPABILITIES),
        S(b"101 list\r\nVERSION 2\r\nREADER\r\n.\r\n"),
    ]
    info = play(starttls_client(), steps)
    assert info.capabilities == ["VERSION 2", "READER"]


@pytest.mark.parametrize(
    "greeting", [b"400 NNTP server unavailable\r\n", b"502 You have no permission to talk.\r\n"]
)
def test_refusing_greeting(greeting: bytes) -> None:
    with pytest.raises(ServiceRefused, match=greeting[:3].decode()):
        play(NntpClient(), [S(greeting)])


@pytest.mark.parametrize(
    ("greeting", "detected"),
    [
        (b"HTTP/1.1 400 Bad Request\r\nServer: nginx\r\n\r\n", "HTTP"),
        (b"220 mail.example.com Microsoft ESMTP MAIL Service, Version: 6.0.3790.3959\r\n", "SMTP"),
        (b"+OK POP3 ready\r\n", "POP3"),
        (b"* OK IMAP4rev1 ready\r\n", "IMAP4"),
    ],
)
def test_another_protocol_answering_is_named(greeting: bytes, detected: str) -> None:
    with pytest.raises(WrongProtocol) as caught:
        play(NntpClient(), [S(greeting)])
    assert caught.value.detected == detected
    assert caught.value.expected == "NNTP"


def test_close_before_greeting() -> None:
    with pytest.raises(PeerClosed):
        play(NntpClient(), [EOF_])


def test_close_inside_the_capability_list() -> None:
    steps = [S(INN_GREETING), C(CAPABILITIES), S(b"101 list\r\nVERSION 2\r\n"), EOF_]
    with pytest.raises(PeerClosed):
        play(NntpClient(), steps)
