from __future__ import annotations

import pytest

from portcall.protocols.base import (
    Done,
    PeerClosed,
    ProbeOptions,
    RemoteProtocolError,
    Send,
    ServiceRefused,
    StartTLSUnavailable,
    WrongProtocol,
)
from portcall.protocols.smtp import SmtpClient
from tests.protocols.transcript import EOF_, TLS, C, S, play, play_both_ways

EHLO = b"EHLO portcall.invalid\r\n"
HELO = b"HELO portcall.invalid\r\n"

EXCHANGE_2003_BANNER = (
    b"220 mail.example.com Microsoft ESMTP MAIL Service, Version: 6.0.3790.3959 ready at "
    b" Thu, 6 Jan 2011 10:15:02 +0100 \r\n"
)
WINDOWS_2000_BANNER = (
    b"220 mail.example.com Microsoft ESMTP MAIL Service, Version: 5.0.2195.6713 ready at "
    b" Thu, 6 Jan 2011 10:15:02 +0100 \r\n"
)
EXCHANGE_EHLO = (
    b"250-mail.example.com Hello [192.0.2.7]\r\n"
    b"250-TURN\r\n250-ATRN\r\n250-SIZE 10240000\r\n250-ETRN\r\n250-PIPELINING\r\n"
    b"250-DSN\r\n250-ENHANCEDSTATUSCODES\r\n250-8bitmime\r\n250-BINARYMIME\r\n"
    b"250-CHUNKING\r\n250-VRFY\r\n250-X-EXPS GSSAPI NTLM LOGIN\r\n250-X-EXPS=LOGIN\r\n"
    b"250-AUTH GSSAPI NTLM LOGIN\r\n250-AUTH=LOGIN\r\n250-X-LINK2STATE\r\n"
    b"250-XEXCH50\r\n250 OK\r\n"
)
EXCHANGE_EHLO_WITH_STARTTLS = EXCHANGE_EHLO.replace(
    b"250-VRFY\r\n", b"250-VRFY\r\n250-STARTTLS\r\n"
)
POSTFIX_BANNER = b"220 mx.example.org ESMTP Postfix (Debian/GNU)\r\n"
POSTFIX_EHLO = (
    b"250-mx.example.org\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-VRFY\r\n"
    b"250-ETRN\r\n250-STARTTLS\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n"
    b"250-DSN\r\n250-SMTPUTF8\r\n250 CHUNKING\r\n"
)
POSTFIX_EHLO_AFTER_TLS = (
    b"250-mx.example.org\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n"
    b"250-AUTH PLAIN LOGIN\r\n250 CHUNKING\r\n"
)


def starttls_client() -> SmtpClient:
    return SmtpClient(ProbeOptions(starttls=True))


def optional_starttls_client() -> SmtpClient:
    return SmtpClient(ProbeOptions(starttls=True, starttls_required=False))


def test_exchange_2003_is_named_from_banner_and_ehlo() -> None:
    info = play_both_ways(SmtpClient, [S(EXCHANGE_2003_BANNER), C(EHLO), S(EXCHANGE_EHLO)])
    assert info.product == "Microsoft Exchange 2003 (SMTP service 6.0.3790.3959)"
    assert info.banner == EXCHANGE_2003_BANNER.decode().rstrip("\r\n")
    assert info.capabilities[:3] == ["TURN", "ATRN", "SIZE 10240000"]
    assert "AUTH GSSAPI NTLM LOGIN" in info.capabilities
    assert info.capabilities[-1] == "OK"
    assert info.details["auth"] == ["GSSAPI", "NTLM", "LOGIN"]
    assert info.details["exchange_verbs"] == ["X-LINK2STATE", "XEXCH50", "X-EXPS"]
    assert info.starttls_offered is False
    assert info.tls_upgraded is False


def test_exchange_on_windows_2000_could_be_either_release() -> None:
    info = play(SmtpClient(), [S(WINDOWS_2000_BANNER), C(EHLO), S(EXCHANGE_EHLO)])
    assert info.product == "Microsoft Exchange 2000 or 2003 (SMTP service 5.0.2195.6713)"


def test_windows_smtp_service_without_exchange_verbs_is_not_exchange() -> None:
    ehlo = b"250-mail.example.com Hello [192.0.2.7]\r\n250-SIZE 2097152\r\n250 OK\r\n"
    info = play(SmtpClient(), [S(EXCHANGE_2003_BANNER), C(EHLO), S(ehlo)])
    assert info.product == "Microsoft SMTP Service 6.0.3790.3959 (Windows Server 2003)"
    assert "exchange_verbs" not in info.details
    assert "auth" not in info.details


def test_postfix_starttls_upgrade_replaces_capabilities() -> None:
    steps = [
        S(POSTFIX_BANNER),
        C(EHLO),
        S(POSTFIX_EHLO),
        C(b"STARTTLS\r\n"),
        S(b"220 2.0.0 Ready to start TLS\r\n"),
        TLS,
        C(EHLO),
        S(POSTFIX_EHLO_AFTER_TLS),
    ]
    info = play_both_ways(starttls_client, steps)
    assert info.product == "Postfix"
    assert info.starttls_offered is True
    assert info.tls_upgraded is True
    assert info.capabilities == ["PIPELINING", "SIZE 10240000", "AUTH PLAIN LOGIN", "CHUNKING"]
    assert info.details["auth"] == ["PLAIN", "LOGIN"]


def test_postfix_banner_with_version() -> None:
    steps = [S(b"220 mx.example.org ESMTP Postfix (3.7.11)\r\n"), C(EHLO), S(POSTFIX_EHLO)]
    assert play(SmtpClient(), steps).product == "Postfix 3.7.11"


def test_multi_line_greeting() -> None:
    greeting = b"220-mx.example.org ESMTP Postfix (Debian/GNU)\r\n220-No UCE.\r\n220 Welcome\r\n"
    info = play_both_ways(SmtpClient, [S(greeting), C(EHLO), S(POSTFIX_EHLO)])
    assert info.banner == (
        "220-mx.example.org ESMTP Postfix (Debian/GNU)\n220-No UCE.\n220 Welcome"
    )
    assert info.product == "Postfix"
    assert "STARTTLS" in info.capabilities


def test_ehlo_rejected_falls_back_to_helo() -> None:
    steps = [
        S(b"220 old.example.net SMTP ready\r\n"),
        C(EHLO),
        S(b"500 Command unrecognized\r\n"),
        C(HELO),
        S(b"250 old.example.net\r\n"),
    ]
    info = play_both_ways(SmtpClient, steps)
    assert info.capabilities == []
    assert info.starttls_offered is False
    assert any("HELO" in note for note in info.notes)


def test_helo_rejected_too_is_a_refusal() -> None:
    steps = [
        S(b"220 old.example.net SMTP ready\r\n"),
        C(EHLO),
        S(b"502 Not implemented\r\n"),
        C(HELO),
        S(b"550 Access denied\r\n"),
    ]
    with pytest.raises(ServiceRefused, match="HELO"):
        play(SmtpClient(), steps)


def test_ehlo_answered_with_a_nonsense_code() -> None:
    steps = [S(POSTFIX_BANNER), C(EHLO), S(b"354 go ahead\r\n")]
    with pytest.raises(RemoteProtocolError, match="EHLO") as caught:
        play(SmtpClient(), steps)
    assert not isinstance(caught.value, ServiceRefused)


def test_missing_starttls_is_a_fault_when_required() -> None:
    steps = [S(EXCHANGE_2003_BANNER), C(EHLO), S(EXCHANGE_EHLO)]
    with pytest.raises(StartTLSUnavailable, match="does not offer STARTTLS"):
        play(starttls_client(), steps)


def test_missing_starttls_is_a_note_when_optional() -> None:
    steps = [
        *(S(EXCHANGE_2003_BANNER), C(EHLO), S(EXCHANGE_EHLO)),
        # The EHLO lists AUTH NTLM: the client asks for the NTLM identity before leaving.
        *(C(b"AUTH NTLM\r\n"), S(b"504 5.7.4 Unrecognized authentication type\r\n")),
    ]
    info = play_both_ways(optional_starttls_client, steps)
    assert info.notes == [
        "STARTTLS not offered",
        'NTLM: AUTH NTLM was answered with "504 5.7.4 Unrecognized authentication type"',
    ]
    assert info.tls_upgraded is False


def test_starttls_refused_with_454() -> None:
    steps = [
        S(EXCHANGE_2003_BANNER),
        C(EHLO),
        S(EXCHANGE_EHLO_WITH_STARTTLS),
        C(b"STARTTLS\r\n"),
        S(b"454 5.7.3 Client does not have permission to submit mail to this server.\r\n"),
    ]
    with pytest.raises(StartTLSUnavailable, match=r"454 5\.7\.3 Client does not have permission"):
        play(starttls_client(), steps)


def test_exchange_upgrade_keeps_the_exchange_facts() -> None:
    steps = [
        S(EXCHANGE_2003_BANNER),
        C(EHLO),
        S(EXCHANGE_EHLO_WITH_STARTTLS),
        C(b"STARTTLS\r\n"),
        S(b"220 2.0.0 SMTP server ready\r\n"),
        TLS,
        C(EHLO),
        S(EXCHANGE_EHLO),
    ]
    info = play_both_ways(starttls_client, steps)
    assert info.tls_upgraded is True
    assert "STARTTLS" not in info.capabilities
    assert info.product == "Microsoft Exchange 2003 (SMTP service 6.0.3790.3959)"


def test_plaintext_after_starttls_go_ahead_is_discarded() -> None:
    # A man in the middle appends a forged EHLO answer to the go-ahead (RFC 3207 section 6).
    injected = b"220 go ahead\r\n250-evil.example\r\n250 AUTH PLAIN\r\n"
    steps = [
        S(POSTFIX_BANNER),
        C(EHLO),
        S(POSTFIX_EHLO),
        C(b"STARTTLS\r\n"),
        S(injected),
        TLS,
        C(EHLO),
        S(b"250-mx.example.org\r\n250 SIZE 10240000\r\n"),
    ]
    info = play(starttls_client(), steps)
    assert info.capabilities == ["SIZE 10240000"]
    assert "auth" not in info.details


@pytest.mark.parametrize("greeting", [b"421 4.3.2 Service not available\r\n", b"554 No SMTP\r\n"])
def test_refusing_greeting(greeting: bytes) -> None:
    with pytest.raises(ServiceRefused, match=greeting[:3].decode()):
        play(SmtpClient(), [S(greeting)])


@pytest.mark.parametrize(
    ("greeting", "detected"),
    [
        (b"HTTP/1.1 400 Bad Request\r\nServer: nginx\r\n\r\n", "HTTP"),
        (b"200 news.example.com InterNetNews NNRP server INN 2.7.1 ready (posting ok)\r\n", "NNTP"),
        (b"+OK Dovecot (Debian) ready.\r\n", "POP3"),
        (b"* OK [CAPABILITY IMAP4rev1] Dovecot ready.\r\n", "IMAP4"),
        (b"220 Microsoft FTP Service\r\n", "FTP"),
    ],
)
def test_another_protocol_answering_is_named(greeting: bytes, detected: str) -> None:
    with pytest.raises(WrongProtocol) as caught:
        play(SmtpClient(), [S(greeting)])
    assert caught.value.detected == detected
    assert caught.value.expected == "SMTP"


def test_close_before_greeting() -> None:
    with pytest.raises(PeerClosed):
        play(SmtpClient(), [EOF_])


def test_close_in_the_middle_of_the_ehlo_reply() -> None:
    steps = [S(POSTFIX_BANNER), C(EHLO), S(b"250-mx.example.org\r\n250-PIPEL"), EOF_]
    with pytest.raises(PeerClosed) as caught:
        play(SmtpClient(), steps)
    assert caught.value.received == b"250-PIPEL"


def test_quit_ends_the_conversation_without_waiting_for_a_reply() -> None:
    client = SmtpClient()
    client.receive_data(POSTFIX_BANNER + POSTFIX_EHLO)
    assert sent_until_done(client) == [EHLO, b"QUIT\r\n"]


def sent_until_done(client: SmtpClient) -> list[bytes]:
    """Everything the client sends before it is done; it must never wait for more data."""
    sent: list[bytes] = []
    while not isinstance(event := client.next_event(), Done):
        assert isinstance(event, Send), f"client asked for {event!r}"
        sent.append(event.data)
    return sent
