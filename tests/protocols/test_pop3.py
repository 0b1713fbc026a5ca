from __future__ import annotations

import pytest

from portcall.protocols.base import (
    ProbeOptions,
    ServiceRefused,
    StartTLSUnavailable,
    WrongProtocol,
)
from portcall.protocols.pop3 import Pop3Client
from tests.protocols.transcript import EOF_, TLS, C, S, play, play_both_ways

EXCHANGE_2003 = (
    b"+OK Microsoft Exchange Server 2003 POP3 server version 6.5.7638.1"
    b" (mail.example.com) ready.\r\n"
)
CAPA_WITH_STLS = b"+OK\r\nTOP\r\nUSER\r\nSTLS\r\nUIDL\r\n.\r\n"


def starttls_client() -> Pop3Client:
    return Pop3Client(ProbeOptions(starttls=True))


def test_exchange_banner_capa_and_stls_upgrade() -> None:
    steps = [
        S(EXCHANGE_2003),
        C(b"CAPA\r\n"),
        S(CAPA_WITH_STLS),
        C(b"STLS\r\n"),
        S(b"+OK Begin TLS negotiation\r\n"),
        TLS,
        C(b"CAPA\r\n"),
        S(b"+OK\r\nTOP\r\nUSER\r\nUIDL\r\n.\r\n"),
    ]
    info = play_both_ways(starttls_client, steps)
    assert info.product == "Microsoft Exchange 2003 (6.5.7638.1)"
    assert info.starttls_offered is True
    assert info.tls_upgraded is True
    assert info.capabilities == ["TOP", "USER", "UIDL"]


def test_dovecot_without_starttls_request_reads_capabilities_only() -> None:
    steps = [S(b"+OK Dovecot (Debian) ready.\r\n"), C(b"CAPA\r\n"), S(CAPA_WITH_STLS)]
    info = play_both_ways(Pop3Client, steps)
    assert info.product == "Dovecot"
    assert info.tls_upgraded is False
    assert "STLS" in info.capabilities


def test_missing_stls_is_a_fault_when_required() -> None:
    steps = [S(b"+OK ready\r\n"), C(b"CAPA\r\n"), S(b"+OK\r\nUSER\r\n.\r\n")]
    with pytest.raises(StartTLSUnavailable, match="STLS"):
        play(starttls_client(), steps)


def test_stls_refused_after_being_listed() -> None:
    steps = [
        S(b"+OK ready\r\n"),
        C(b"CAPA\r\n"),
        S(CAPA_WITH_STLS),
        C(b"STLS\r\n"),
        S(b"-ERR TLS not configured\r\n"),
    ]
    with pytest.raises(StartTLSUnavailable, match="refused"):
        play(starttls_client(), steps)


def test_plaintext_after_stls_reply_is_discarded() -> None:
    # An injected CAPA answer sent in the same packet as "+OK" must not survive the upgrade.
    steps = [
        S(b"+OK ready\r\n"),
        C(b"CAPA\r\n"),
        S(CAPA_WITH_STLS),
        C(b"STLS\r\n"),
        S(b"+OK go\r\n+OK\r\nINJECTED\r\n.\r\n"),
        TLS,
        C(b"CAPA\r\n"),
        S(b"+OK\r\nUSER\r\n.\r\n"),
    ]
    info = play(starttls_client(), steps)
    assert info.capabilities == ["USER"]


def test_http_on_the_pop3_port_is_named() -> None:
    with pytest.raises(WrongProtocol) as caught:
        play(Pop3Client(), [S(b"HTTP/1.1 400 Bad Request\r\nServer: nginx\r\n\r\n")])
    assert caught.value.detected == "HTTP"


def test_err_greeting_is_a_refusal_by_the_service() -> None:
    with pytest.raises(ServiceRefused):
        play(Pop3Client(), [S(b"-ERR too many connections\r\n")])


def test_close_before_greeting() -> None:
    from portcall.protocols.base import PeerClosed

    with pytest.raises(PeerClosed):
        play(Pop3Client(), [EOF_])
