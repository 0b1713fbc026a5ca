"""NTLM identity over SMTP, IMAP4, POP3 and HTTP: each client starts NTLM when the service
offers it, reads the CHALLENGE_MESSAGE into `details["ntlm"]` and cancels; each responder of an
Exchange profile answers with a challenge naming its host; neither ever sends credentials.

Transcripts pin the wire; hypothesis feeds any bytes where the challenge is due; the clients
meet the responders in memory and over loopback sockets, through the whole probe.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portcall.catalog import load_catalog
from portcall.probing.probe import Endpoint, Settings, probe
from portcall.protocols import spnego
from portcall.protocols.base import (
    Done,
    Handshake,
    ProbeOptions,
    RemoteProtocolError,
    ServerHandshake,
    ServerOptions,
)
from portcall.protocols.http import HttpClient, HttpServer
from portcall.protocols.imap import ImapClient, ImapServer
from portcall.protocols.ntlm import (
    Identity,
    NtlmChallenger,
    Version,
    authorization_header,
    encode_token,
    host_identity,
    negotiate_line,
    parse_challenge,
)
from portcall.protocols.pop3 import Pop3Client, Pop3Server
from portcall.protocols.smtp import SmtpClient, SmtpServer
from portcall.responders.certs import LabCertificates, ensure_lab, server_context
from portcall.verdicts import Verdict
from tests.protocols.feeding import feed_client, feed_server
from tests.protocols.pair import check_server, converse
from tests.protocols.transcript import EOF_, TLS, C, S, Step, play_both_ways
from tests.responders.running import LAB_HOST, Served

WHEN = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
SERVER_CHALLENGE = bytes.fromhex("0123456789abcdef")
#: The Exchange 2003 server the client transcripts talk to.
EXCH1 = Identity(
    netbios_computer="EXCH1",
    netbios_domain="CONTOSO",
    dns_computer="exch1.contoso.test",
    dns_domain="contoso.test",
    dns_forest="contoso.test",
    version=Version(5, 2, 3790),
)
NEGOTIATE = negotiate_line()
NEGOTIATE_MESSAGE = base64.b64decode(NEGOTIATE.strip())
CHALLENGE_MESSAGE = NtlmChallenger(
    EXCH1, clock=lambda: WHEN, random=lambda n: SERVER_CHALLENGE
).answer(NEGOTIATE_MESSAGE)
CHALLENGE = encode_token(CHALLENGE_MESSAGE)
#: What every client must report of that challenge: the SMB client's shape, field for field.
EXCH1_FACTS: dict[str, object] = {
    "target_name": "CONTOSO",
    "netbios_domain": "CONTOSO",
    "netbios_computer": "EXCH1",
    "dns_domain": "contoso.test",
    "dns_computer": "exch1.contoso.test",
    "dns_forest": "contoso.test",
    "timestamp": "2026-11-30T12:00:00+00:00",
    "os_version": "5.2.3790",
    "os": "Windows Server 2003",
}
HOST = "mail.example.test"


def test_the_fixture_challenge_names_exch1() -> None:
    assert parse_challenge(CHALLENGE_MESSAGE).identity() == EXCH1_FACTS


def ntlm_of(info: Any) -> dict[str, object]:
    facts = info.details["ntlm"]
    assert isinstance(facts, dict)
    return facts


# -- SMTP client ---------------------------------------------------------------------------

SMTP_BANNER = (
    b"220 exch1.contoso.test Microsoft ESMTP MAIL Service, Version: 6.0.3790.3959 ready at"
    b"  Thu, 1 Jan 2009 10:00:00 +0000 \r\n"
)
EHLO = b"EHLO portcall.invalid\r\n"
SMTP_EHLO_NTLM = (
    b"250-exch1.contoso.test Hello [192.0.2.1]\r\n250-PIPELINING\r\n"
    b"250-AUTH GSSAPI NTLM LOGIN\r\n250-AUTH=LOGIN\r\n250 OK\r\n"
)
SMTP_EHLO_TLS = SMTP_EHLO_NTLM.replace(b"250-PIPELINING", b"250-PIPELINING\r\n250-STARTTLS")
SMTP_NTLM: list[Step] = [
    C(b"AUTH NTLM\r\n"),
    S(b"334 NTLM supported\r\n"),
    C(NEGOTIATE),
    S(b"334 " + CHALLENGE.encode() + b"\r\n"),
    C(b"*\r\n"),
    S(b"501 5.7.0 Authentication cancelled\r\n"),
    C(b"QUIT\r\n"),
]


def test_smtp_client_reads_the_identity_and_cancels() -> None:
    steps: list[Step] = [S(SMTP_BANNER), C(EHLO), S(SMTP_EHLO_NTLM), *SMTP_NTLM]
    info = play_both_ways(SmtpClient, steps)
    assert ntlm_of(info) == EXCH1_FACTS
    assert info.details["auth"] == ["GSSAPI", "NTLM", "LOGIN"]
    assert "ntlm_error" not in info.details
    assert info.notes == []


def test_smtp_client_asks_only_on_the_session_after_starttls() -> None:
    steps: list[Step] = [
        *(S(SMTP_BANNER), C(EHLO), S(SMTP_EHLO_TLS)),
        *(C(b"STARTTLS\r\n"), S(b"220 2.0.0 SMTP server ready\r\n"), TLS),
        *(C(EHLO), S(SMTP_EHLO_NTLM), *SMTP_NTLM),
    ]
    info = play_both_ways(lambda: SmtpClient(ProbeOptions(starttls=True)), steps)
    assert info.tls_upgraded is True
    assert ntlm_of(info) == EXCH1_FACTS


def test_smtp_client_without_ntlm_in_ehlo_goes_straight_to_quit() -> None:
    ehlo = b"250-mx.example.test\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n"
    info = play_both_ways(SmtpClient, [S(SMTP_BANNER), C(EHLO), S(ehlo), C(b"QUIT\r\n")])
    assert "ntlm" not in info.details


def test_smtp_client_notes_a_broken_challenge_and_still_cancels() -> None:
    steps: list[Step] = [
        *(S(SMTP_BANNER), C(EHLO), S(SMTP_EHLO_NTLM), C(b"AUTH NTLM\r\n"), S(b"334 \r\n")),
        *(C(NEGOTIATE), S(b"334 TlRMTVNTUAACAAAA\r\n"), C(b"*\r\n"), S(b"501 cancelled\r\n")),
        C(b"QUIT\r\n"),
    ]
    info = play_both_ways(SmtpClient, steps)
    assert "ntlm" not in info.details
    assert str(info.details["ntlm_error"]).startswith("the NTLM challenge could not be read")
    assert info.banner is not None and info.banner.startswith("220 exch1")


def test_smtp_client_notes_a_refusal() -> None:
    steps: list[Step] = [
        *(S(SMTP_BANNER), C(EHLO), S(SMTP_EHLO_NTLM), C(b"AUTH NTLM\r\n")),
        *(S(b"504 5.7.4 Unrecognized authentication type\r\n"), C(b"QUIT\r\n")),
    ]
    info = play_both_ways(SmtpClient, steps)
    assert info.details["ntlm_error"] == (
        'AUTH NTLM was answered with "504 5.7.4 Unrecognized authentication type"'
    )


def test_smtp_client_survives_a_server_that_hangs_up_mid_ntlm() -> None:
    steps: list[Step] = [
        S(SMTP_BANNER),
        C(EHLO),
        S(SMTP_EHLO_NTLM),
        C(b"AUTH NTLM\r\n"),
        S(b"334 \r\n"),
    ]
    steps += [C(NEGOTIATE), EOF_]
    info = play_both_ways(SmtpClient, steps)
    assert info.details["ntlm_error"] == "the exchange broke off: the peer closed the connection"


# -- IMAP client ---------------------------------------------------------------------------

IMAP_GREETING = (
    b"* OK Microsoft Exchange Server 2003 IMAP4rev1 server version 6.5.7638.1 ready.\r\n"
)
IMAP_CAPABILITY = b"* CAPABILITY IMAP4 IMAP4rev1 IDLE AUTH=NTLM LITERAL+\r\na1 OK done\r\n"


def test_imap_client_reads_the_identity_and_cancels() -> None:
    steps: list[Step] = [
        *(S(IMAP_GREETING), C(b"a1 CAPABILITY\r\n"), S(IMAP_CAPABILITY)),
        *(C(b"a2 AUTHENTICATE NTLM\r\n"), S(b"+ \r\n"), C(NEGOTIATE)),
        *(S(b"* OK still here\r\n+ " + CHALLENGE.encode() + b"\r\n"), C(b"*\r\n")),
        *(S(b"a2 BAD Authentication cancelled.\r\n"), C(b"a3 LOGOUT\r\n")),
    ]
    info = play_both_ways(ImapClient, steps)
    assert ntlm_of(info) == EXCH1_FACTS


def test_imap_client_notes_a_refused_mechanism() -> None:
    steps: list[Step] = [
        *(S(IMAP_GREETING), C(b"a1 CAPABILITY\r\n"), S(IMAP_CAPABILITY)),
        *(C(b"a2 AUTHENTICATE NTLM\r\n"), S(b"a2 NO AUTHENTICATE failed.\r\n")),
        C(b"a3 LOGOUT\r\n"),
    ]
    info = play_both_ways(ImapClient, steps)
    assert (
        info.details["ntlm_error"]
        == 'AUTHENTICATE NTLM was answered with "NO AUTHENTICATE failed."'
    )


def test_imap_client_without_auth_ntlm_asks_nothing() -> None:
    capability = b"* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\na1 OK done\r\n"
    steps: list[Step] = [
        S(IMAP_GREETING),
        C(b"a1 CAPABILITY\r\n"),
        S(capability),
        C(b"a2 LOGOUT\r\n"),
    ]
    assert "ntlm" not in play_both_ways(ImapClient, steps).details


# -- POP3 client ---------------------------------------------------------------------------

POP3_GREETING = b"+OK Microsoft Exchange Server 2003 POP3 server version 6.5.7638.1 ready.\r\n"
POP3_NTLM: list[Step] = [
    *(C(b"AUTH NTLM\r\n"), S(b"+ \r\n"), C(NEGOTIATE), S(b"+ " + CHALLENGE.encode() + b"\r\n")),
    *(C(b"*\r\n"), S(b"-ERR Authentication cancelled.\r\n"), C(b"QUIT\r\n")),
]


def test_pop3_client_reads_the_identity_from_a_sasl_capability() -> None:
    capa = b"+OK\r\nUSER\r\nSASL PLAIN NTLM\r\n.\r\n"
    steps: list[Step] = [S(b"+OK ready\r\n"), C(b"CAPA\r\n"), S(capa), *POP3_NTLM]
    info = play_both_ways(Pop3Client, steps)
    assert ntlm_of(info) == EXCH1_FACTS


def test_pop3_client_asks_a_bare_auth_of_exchange_whose_capa_names_no_mechanism() -> None:
    # MS-POP3 2.2.1: a bare AUTH lists the mechanisms, NTLM among them.
    steps: list[Step] = [
        *(S(POP3_GREETING), C(b"CAPA\r\n"), S(b"+OK\r\nTOP\r\nUSER\r\nUIDL\r\n.\r\n")),
        *(C(b"AUTH\r\n"), S(b"+OK The operation completed successfully.\r\nNTLM\r\n.\r\n")),
        *POP3_NTLM,
    ]
    info = play_both_ways(Pop3Client, steps)
    assert ntlm_of(info) == EXCH1_FACTS


def test_pop3_client_asks_nothing_of_others_whose_capa_names_no_mechanism() -> None:
    steps: list[Step] = [S(b"+OK Dovecot ready.\r\n"), C(b"CAPA\r\n"), S(b"+OK\r\nUSER\r\n.\r\n")]
    steps.append(C(b"QUIT\r\n"))
    assert "ntlm" not in play_both_ways(Pop3Client, steps).details


# -- HTTP client ---------------------------------------------------------------------------


def get(path: str, authorization: str = "") -> bytes:
    extra = f"Authorization: {authorization}\r\n" if authorization else ""
    return (
        f"GET {path} HTTP/1.1\r\nHost: localhost\r\nUser-Agent: portcall\r\nAccept: */*\r\n"
        f"{extra}\r\n"
    ).encode()


def unauthorized(*challenges: str, close: bool = False) -> bytes:
    lines = [f"WWW-Authenticate: {value}\r\n" for value in challenges]
    lines += ["Connection: close\r\n"] if close else []
    return ("HTTP/1.1 401 Unauthorized\r\nContent-Length: 6\r\n" + "".join(lines)).encode() + (
        b"\r\ndenied"
    )


OK_ROOT = b"HTTP/1.1 200 OK\r\nServer: Microsoft-IIS/6.0\r\nContent-Length: 2\r\n\r\nok"


def test_http_client_asks_the_401_again_on_the_same_connection() -> None:
    steps: list[Step] = [
        *(C(get("/")), S(OK_ROOT), C(get("/exchange/"))),
        S(unauthorized("Negotiate", "NTLM", 'Basic realm="x"')),
        C(get("/exchange/", authorization_header("NTLM"))),
        S(unauthorized(f"NTLM {CHALLENGE}")),
    ]
    info = play_both_ways(HttpClient, steps)
    assert ntlm_of(info) == EXCH1_FACTS
    assert [answer["status"] for answer in info.details["http"]] == [200, 401]  # type: ignore[attr-defined]


def test_http_client_reads_a_spnego_wrapped_challenge_under_negotiate() -> None:
    wrapped = encode_token(spnego.wrap_response(CHALLENGE_MESSAGE))
    steps: list[Step] = [
        *(C(get("/")), S(unauthorized("Negotiate"))),
        *(C(get("/", authorization_header("Negotiate"))), S(unauthorized(f"Negotiate {wrapped}"))),
    ]
    info = play_both_ways(lambda: HttpClient(ProbeOptions(http_paths=("/",))), steps)
    assert ntlm_of(info) == EXCH1_FACTS


def test_http_client_never_reconnects_when_the_401_closes() -> None:
    steps: list[Step] = [C(get("/")), S(unauthorized("NTLM", close=True))]
    info = play_both_ways(HttpClient, steps)
    assert info.details["ntlm_error"] == "the server closed the connection after the 401 at /"
    assert "not requested: /exchange/ (server closed the connection)" in info.notes
    assert "ntlm" not in info.details


def test_http_client_asks_only_once() -> None:
    steps: list[Step] = [
        *(C(get("/")), S(unauthorized("NTLM")), C(get("/", authorization_header()))),
        *(S(unauthorized("NTLM")), C(get("/exchange/")), S(unauthorized("NTLM"))),
    ]
    info = play_both_ways(HttpClient, steps)
    assert info.details["ntlm_error"] == (
        "the 401 that answered the NTLM negotiation carried no challenge"
    )


# -- the responders --------------------------------------------------------------------------


def fixed(server: Any) -> Any:
    """`server` with a challenger whose clock and random bytes are fixed."""
    server.challenger = NtlmChallenger(
        host_identity(server.options), clock=lambda: WHEN, random=lambda n: SERVER_CHALLENGE
    )
    return server


def responder_challenge(profile: str = "exchange2003") -> str:
    options = ServerOptions(hostname=HOST, profile=profile)
    challenger = NtlmChallenger(
        host_identity(options), clock=lambda: WHEN, random=lambda n: SERVER_CHALLENGE
    )
    return encode_token(challenger.answer(NEGOTIATE_MESSAGE))


def options(profile: str = "exchange2003") -> ServerOptions:
    return ServerOptions(hostname=HOST, profile=profile, starttls=False)


def test_responder_identity_follows_the_host_name_and_profile() -> None:
    facts = parse_challenge(base64.b64decode(responder_challenge())).identity()
    assert facts == {
        "target_name": "EXAMPLE",
        "netbios_domain": "EXAMPLE",
        "netbios_computer": "MAIL",
        "dns_domain": "example.test",
        "dns_computer": HOST,
        "dns_forest": "example.test",
        "timestamp": "2026-11-30T12:00:00+00:00",
        "os_version": "5.2.3790",
        "os": "Windows Server 2003",
    }
    old = parse_challenge(base64.b64decode(responder_challenge("exchange2000")))
    assert old.identity()["os"] == "Windows 2000"


def test_smtp_responder_challenges_and_takes_the_cancel() -> None:
    challenge = responder_challenge().encode()

    def server() -> SmtpServer:
        made: SmtpServer = fixed(SmtpServer(options(), clock=lambda: WHEN))
        return made

    hs = server()
    greeting = hs._greeting_reply().data
    ehlo = hs._reply(250, "mail.example.test Hello", *hs._extensions()).data
    steps: list[Step] = [
        *(S(greeting), C(b"EHLO client\r\n"), S(ehlo)),
        *(C(b"AUTH NTLM\r\n"), S(b"334 NTLM supported\r\n"), C(NEGOTIATE)),
        *(S(b"334 " + challenge + b"\r\n"), C(b"*\r\n")),
        S(b"501 5.7.0 Authentication cancelled\r\n"),
        # With the negotiation as the initial response, the challenge comes at once; the
        # AUTHENTICATE_MESSAGE of a client that goes on is refused as bad credentials.
        *(C(b"AUTH NTLM " + NEGOTIATE), S(b"334 " + challenge + b"\r\n")),
        *(C(b"TlRMTVNTUAADAAAA\r\n"), S(b"535 5.7.3 Authentication unsuccessful\r\n")),
        *(C(b"AUTH NTLM\r\n"), S(b"334 NTLM supported\r\n"), C(b"*\r\n")),
        S(b"501 5.7.0 Authentication cancelled\r\n"),
        *(C(b"AUTH NTLM\r\n"), S(b"334 NTLM supported\r\n"), C(b"bm90IG50bG0=\r\n")),
        S(b"535 5.7.3 Authentication unsuccessful\r\n"),
    ]
    heard = check_server(server, steps).heard
    assert heard == ["EHLO client", "AUTH NTLM", "AUTH NTLM ***", "AUTH NTLM", "AUTH NTLM"]


def test_smtp_responder_x_exps_tells_no_identity() -> None:
    def server() -> SmtpServer:
        made: SmtpServer = fixed(SmtpServer(options(), clock=lambda: WHEN))
        return made

    hs = server()
    greeting = hs._greeting_reply().data
    ehlo = hs._reply(250, "mail.example.test Hello", *hs._extensions()).data
    steps: list[Step] = [
        *(S(greeting), C(b"EHLO client\r\n"), S(ehlo)),
        *(C(b"X-EXPS NTLM\r\n"), S(b"535 5.7.3 Authentication unsuccessful\r\n")),
    ]
    check_server(server, steps)


def test_neutral_smtp_responder_offers_no_ntlm() -> None:
    info = converse(SmtpClient(), SmtpServer(options("neutral"))).info
    assert "ntlm" not in info.details
    assert "AUTH" not in " ".join(info.capabilities)


def test_imap_responder_challenges_and_takes_the_cancel() -> None:
    challenge = responder_challenge().encode()

    def server() -> ImapServer:
        made: ImapServer = fixed(ImapServer(options()))
        return made

    greeting = server()._greeting_reply().data
    steps: list[Step] = [
        *(S(greeting), C(b"t1 AUTHENTICATE NTLM\r\n"), S(b"+ \r\n"), C(NEGOTIATE)),
        *(S(b"+ " + challenge + b"\r\n"), C(b"*\r\n"), S(b"t1 BAD Authentication cancelled.\r\n")),
        *(C(b"t2 AUTHENTICATE NTLM\r\n"), S(b"+ \r\n"), C(b"*\r\n")),
        S(b"t2 BAD Authentication cancelled.\r\n"),
        *(C(b"t3 AUTHENTICATE ntlm\r\n"), S(b"+ \r\n"), C(NEGOTIATE)),
        *(S(b"+ " + challenge + b"\r\n"), C(b"TlRMTVNTUAADAAAA\r\n")),
        S(b"t3 NO AUTHENTICATE failed.\r\n"),
    ]
    check_server(server, steps)


def test_pop3_responder_lists_and_challenges_as_ms_pop3_says() -> None:
    challenge = responder_challenge().encode()

    def server() -> Pop3Server:
        made: Pop3Server = fixed(Pop3Server(options()))
        return made

    greeting = server()._greeting_reply().data
    steps: list[Step] = [
        *(S(greeting), C(b"AUTH\r\n")),
        S(b"+OK The operation completed successfully.\r\nNTLM\r\n.\r\n"),
        *(C(b"AUTH NTLM\r\n"), S(b"+ \r\n"), C(NEGOTIATE), S(b"+ " + challenge + b"\r\n")),
        *(C(b"*\r\n"), S(b"-ERR Authentication cancelled.\r\n")),
        *(C(b"AUTH NTLM\r\n"), S(b"+ \r\n"), C(b"TlRMTVNTUAADAAAA\r\n")),
        S(b"-ERR Logon failure: unknown user name or bad password.\r\n"),
    ]
    heard = check_server(server, steps).heard
    assert heard == ["AUTH", "AUTH NTLM", "AUTH NTLM"]


def test_http_responder_answers_the_negotiation_with_its_challenge() -> None:
    hs = fixed(HttpServer(options()))
    request = get("/exchange/", authorization_header("NTLM"))
    sent = b"".join(e.data for e in feed_server(hs, [request]) if hasattr(e, "data"))
    assert b"HTTP/1.1 401 Unauthorized\r\n" in sent
    assert f"WWW-Authenticate: NTLM {responder_challenge()}\r\n".encode() in sent
    assert b"Basic" not in sent


def test_http_responder_starts_over_on_anything_but_a_negotiation() -> None:
    hs = fixed(HttpServer(options()))
    request = get("/exchange/", "NTLM TlRMTVNTUAADAAAA")
    sent = b"".join(e.data for e in feed_server(hs, [request]) if hasattr(e, "data"))
    assert b"WWW-Authenticate: NTLM\r\n" in sent
    assert b'WWW-Authenticate: Basic realm="mail.example.test"\r\n' in sent


# -- our clients against our responders, in memory ---------------------------------------------

CLIENTS: dict[str, tuple[Callable[[ProbeOptions], Handshake], Callable[[ServerOptions], Any]]] = {
    "smtp": (SmtpClient, SmtpServer),
    "imap": (ImapClient, ImapServer),
    "pop3": (Pop3Client, Pop3Server),
    "http": (HttpClient, HttpServer),
}


@pytest.mark.parametrize("protocol", sorted(CLIENTS))
@pytest.mark.parametrize("profile", ["exchange2003", "exchange2000", "neutral"])
def test_our_clients_read_our_responders(protocol: str, profile: str) -> None:
    client, server = CLIENTS[protocol]
    hs: ServerHandshake = server(options(profile))
    info = converse(client(ProbeOptions(host=HOST)), hs).info
    if profile == "neutral":
        assert "ntlm" not in info.details
        assert "ntlm_error" not in info.details
        return
    facts = ntlm_of(info)
    assert (facts["netbios_computer"], facts["netbios_domain"]) == ("MAIL", "EXAMPLE")
    assert (facts["dns_computer"], facts["dns_domain"]) == (HOST, "example.test")
    assert facts["os"] == ("Windows Server 2003" if profile == "exchange2003" else "Windows 2000")
    assert "ntlm_error" not in info.details


# -- fuzzing ---------------------------------------------------------------------------------

#: Each client's transcript up to the moment the challenge is due.
BEFORE_CHALLENGE: dict[str, list[bytes]] = {
    "smtp": [SMTP_BANNER, SMTP_EHLO_NTLM, b"334 NTLM supported\r\n"],
    "imap": [IMAP_GREETING, IMAP_CAPABILITY, b"+ \r\n"],
    "pop3": [POP3_GREETING, b"+OK\r\nSASL NTLM\r\n.\r\n", b"+ \r\n"],
    "http": [OK_ROOT, unauthorized("NTLM")],
}
CONTINUATION = {"smtp": b"334 ", "imap": b"+ ", "pop3": b"+ ", "http": b""}
FUZZ_CLIENTS: dict[str, Callable[[], Handshake]] = {
    "smtp": SmtpClient,
    "imap": ImapClient,
    "pop3": Pop3Client,
    "http": lambda: HttpClient(ProbeOptions(http_paths=("/", "/exchange/"))),
}


def _challenge_bytes() -> st.SearchStrategy[bytes]:
    """A real challenge with bytes flipped and cut, or anything at all."""
    real = CHALLENGE_MESSAGE
    flipped = st.tuples(st.integers(0, len(real) - 1), st.integers(0, 255)).map(
        lambda at: real[: at[0]] + bytes([at[1]]) + real[at[0] + 1 :]
    )
    cut = st.integers(0, len(real)).map(lambda n: real[:n])
    return st.one_of(flipped, cut, st.binary(max_size=300))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(sorted(FUZZ_CLIENTS)),
    st.one_of(
        _challenge_bytes().map(lambda raw: ("token", raw)),
        st.binary(max_size=300).map(lambda raw: ("raw", raw)),
    ),
    st.binary(max_size=60),
)
def test_fuzz_any_challenge_ends_in_a_result_or_a_clean_error(
    protocol: str, reply: tuple[str, bytes], after: bytes
) -> None:
    kind, raw = reply
    if kind == "token":
        token = encode_token(raw)
        if protocol == "http":
            data = unauthorized(f"NTLM {token}")
        else:
            data = CONTINUATION[protocol] + token.encode() + b"\r\n"
    else:
        data = raw
    outcome = feed_client(FUZZ_CLIENTS[protocol](), [*BEFORE_CHALLENGE[protocol], data, after])
    assert isinstance(outcome, Done | RemoteProtocolError)
    if isinstance(outcome, Done):
        info = outcome.info
        # The service answered before NTLM began: whatever the challenge, the info stands.
        assert info.protocol == protocol
        # NTLM was started, so either an identity or the reason for none is on record.
        assert "ntlm" in info.details or "ntlm_error" in info.details


SERVERS: dict[str, Callable[[ServerOptions], ServerHandshake]] = {
    "smtp": SmtpServer,
    "imap": ImapServer,
    "pop3": Pop3Server,
}
SERVER_START = {
    "smtp": [b"EHLO c\r\n", b"AUTH NTLM\r\n"],
    "imap": [b"a AUTHENTICATE NTLM\r\n"],
    "pop3": [b"AUTH NTLM\r\n"],
}


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(sorted(SERVERS)), st.lists(st.binary(max_size=200), max_size=4))
def test_fuzz_responders_take_any_ntlm_response(protocol: str, chunks: list[bytes]) -> None:
    hs = SERVERS[protocol](options())
    events = feed_server(hs, [*SERVER_START[protocol], *chunks])
    assert events[-1] is not None


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_fuzz_http_responder_takes_any_authorization(token: bytes) -> None:
    value = token.decode("latin-1").replace("\r", "").replace("\n", "")
    request = get("/exchange/").replace(b"\r\n\r\n", b"\r\nAuthorization: NTLM ")
    request += value.encode("latin-1") + b"\r\n\r\n"
    feed_server(HttpServer(options()), [request])


# -- over loopback sockets, through the whole probe ------------------------------------------

CATALOG = load_catalog()
LOCAL = Endpoint("127.0.0.1", "127.0.0.1", is_address=True)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> LabCertificates:
    return ensure_lab(tmp_path_factory.mktemp("ntlm-lab"), LAB_HOST)


@pytest.fixture(scope="module", params=["exchange2003", "exchange2000"])
def served(request: pytest.FixtureRequest, lab: LabCertificates) -> Iterator[Served]:
    contexts = {
        "host": server_context(lab.host_cert, lab.host_key),
        "expired": server_context(lab.expired_cert, lab.expired_key),
    }
    with Served(contexts, profile=request.param) as running:
        yield running


@pytest.mark.parametrize("key", ["smtp", "imap", "pop3", "http"])
def test_probe_reads_the_responders_identity_over_loopback(
    served: Served, lab: LabCertificates, key: str
) -> None:
    entry = CATALOG.by_key(key)
    assert entry is not None
    row = dataclasses.replace(entry, port=served.port(key))
    options = Settings(timeout=10.0, cafile=str(lab.ca_cert), servername=LAB_HOST)
    result = asyncio.run(probe(LOCAL, row, options))
    assert result.verdict is Verdict.OK, result.reason
    facts = result.details["ntlm"]
    assert isinstance(facts, dict), result.details
    assert (facts["netbios_computer"], facts["dns_computer"]) == ("MAIL", LAB_HOST)
    assert facts["dns_domain"] == "example.test"
    windows = "Windows Server 2003" if served.responder.config.profile == "exchange2003" else None
    assert facts["os"] == (windows or "Windows 2000")
    if entry.tls.value == "starttls":
        assert result.tls is not None  # the NTLM step ran on the session after STARTTLS
