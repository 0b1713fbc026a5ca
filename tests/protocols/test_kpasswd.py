"""kpasswd client and server roles: transcripts whose DER is written out by hand here (and one
reply recorded from Samba 4.17's kpasswd service), each error path, the two roles together, and
a fuzz of both."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portcall.protocols import client_for, server_for
from portcall.protocols.base import (
    CLOSE,
    NEED_DATA,
    Done,
    PeerClosed,
    ProbeOptions,
    RemoteProtocolError,
    Send,
    ServerOptions,
    WrongProtocol,
)
from portcall.protocols.kerberos import MalformedMessage
from portcall.protocols.kpasswd import (
    AUTH_NOTE,
    BARE_ERROR_NOTE,
    CODE_IS_RESULT_NOTE,
    MAX_REQUESTS,
    KpasswdClient,
    KpasswdServer,
    MalformedReply,
)
from tests.protocols.feeding import feed_client, feed_server
from tests.protocols.pair import check_server, converse, play_server
from tests.protocols.test_fuzz_protocols import FUZZ, STRANGERS, bounded, chunked
from tests.protocols.test_kerberos import ctx, integer, krb_error, name, string, tcp, time_, tlv
from tests.protocols.transcript import C, S, Step, play, play_both_ways

REALM = "PORTCALL.TEST"
CIPHER = bytes(range(48))
NOW = datetime(2026, 11, 30, 20, 3, 25, 487041, tzinfo=UTC)


# -- messages written out by hand (RFC 3244 section 2, RFC 4120 5.5.1 and 5.7.1) ------------


def header(version: int, first: bytes, rest: bytes) -> bytes:
    total = 6 + len(first) + len(rest)
    return total.to_bytes(2, "big") + version.to_bytes(2, "big") + len(first).to_bytes(2, "big")


def kpasswd(version: int, first: bytes, rest: bytes) -> bytes:
    return header(version, first, rest) + first + rest


def encrypted(cipher: bytes = CIPHER) -> bytes:
    return tlv(0x30, ctx(0, integer(18)), ctx(2, tlv(0x04, cipher)))


TICKET = tlv(
    0x61,
    tlv(
        0x30,
        ctx(0, integer(5)),
        ctx(1, string(REALM)),
        ctx(2, name(2, "kadmin", "changepw")),
        ctx(3, encrypted()),
    ),
)
AP_REQ_WIRE = tlv(
    0x6E,
    tlv(
        0x30,
        ctx(0, integer(5)),
        ctx(1, integer(14)),
        ctx(2, tlv(0x03, b"\x00\x00\x00\x00\x00")),
        ctx(3, TICKET),
        ctx(4, encrypted()),
    ),
)
KRB_PRIV_WIRE = tlv(0x75, tlv(0x30, ctx(0, integer(5)), ctx(1, integer(21)), ctx(3, encrypted())))
REQUEST = kpasswd(0xFF80, AP_REQ_WIRE, KRB_PRIV_WIRE)

#: Samba 4.17's answer to REQUEST over UDP, as recorded from the lab's DC: version 1, no AP-REP,
#: a KRB-ERROR whose error code is the result code 2 (HARDERROR), from kadmin/changepw with
#: name type 1, the result string in the e-data.
SAMBA_REPLY = bytes.fromhex(
    "009a000100007e819130818ea003020105a10302011ea411180f32303236313133303230303332355aa5050203"
    "076e81a603020102a90f1b0d504f525443414c4c2e54455354aa1d301ba003020101a11430121b066b61646d"
    "696e1b086368616e67657077ac330431000267656e7365635f757064617465206661696c6564202d204e545f"
    "5354415455535f4c4f474f4e5f4641494c5552450a"
)


def refusal(code: int, result: int, note: str, realm: str = REALM) -> bytes:
    """A KRB-ERROR as our server sends one: kadmin/changepw of `realm`, the result in e-data."""
    return tlv(
        0x7E,
        tlv(
            0x30,
            ctx(0, integer(5)),
            ctx(1, integer(30)),
            ctx(4, time_("20261130200325Z")),
            ctx(5, integer(487041)),
            ctx(6, integer(code)),
            ctx(9, string(realm)),
            ctx(10, name(2, "kadmin", "changepw")),
            ctx(12, tlv(0x04, result.to_bytes(2, "big") + note.encode())),
        ),
    )


def reply(error: bytes, version: int = 1) -> bytes:
    return kpasswd(version, b"", error)


def client(transport: str = "udp") -> KpasswdClient:
    return KpasswdClient(domain="portcall.test", transport=transport, cipher=CIPHER)


def framed(wire: bytes, transport: str) -> bytes:
    return tcp(wire) if transport == "tcp" else wire


def exchange(answer: bytes, transport: str = "udp") -> list[Step]:
    return [C(framed(REQUEST, transport)), S(framed(answer, transport))]


# -- client ---------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_client_reads_samba_s_refusal(transport: str) -> None:
    # Over TCP also one byte at a time; over UDP each piece fed is a datagram of its own.
    steps = exchange(SAMBA_REPLY, transport)
    if transport == "tcp":
        info = play_both_ways(lambda: client(transport), steps)
    else:
        info = play(client(transport), steps)
    assert info.protocol == "kpasswd"
    assert info.banner == f"kpasswd realm {REALM} (KRB-ERROR 2; result 2 KRB5_KPASSWD_HARDERROR)"
    assert info.details == {
        "transport": transport,
        "realm_asked": REALM,
        "version": 1,
        "msg_type": 30,
        "error_code": 2,
        "error_name": "error 2",
        "error_meaning": "an error code this program does not know",
        "realm": REALM,
        "server": "kadmin/changepw",
        "server_time": "2026-11-30T20:03:25.487041+00:00",
        "result_code": 2,
        "result_name": "KRB5_KPASSWD_HARDERROR",
        "result_meaning": "the server failed while processing the request",
        "result_string": "gensec_update failed - NT_STATUS_LOGON_FAILURE",
    }
    assert info.notes == [CODE_IS_RESULT_NOTE]


def test_client_reads_an_authentication_refusal() -> None:
    info = play(client(), exchange(reply(refusal(41, 3, AUTH_NOTE))))
    assert info.banner == (
        f"kpasswd realm {REALM} (KRB-ERROR 41 KRB_AP_ERR_MODIFIED; result 3 KRB5_KPASSWD_AUTHERROR)"
    )
    assert (info.details["result_code"], info.details["result_string"]) == (3, AUTH_NOTE)
    assert info.notes == []


def test_client_accepts_a_bare_krb_error_with_a_note() -> None:
    info = play(client("tcp"), exchange(krb_error(60, REALM), "tcp"))
    assert info.notes == [BARE_ERROR_NOTE]
    assert info.banner == f"kpasswd realm {REALM} (KRB-ERROR 60 KRB_ERR_GENERIC)"
    assert "version" not in info.details and "result_code" not in info.details


def test_client_takes_a_reply_of_version_ff80_and_an_error_without_e_data() -> None:
    info = play(client(), exchange(reply(krb_error(41, "OTHER.TEST"), version=0xFF80)))
    assert info.details["version"] == 0xFF80
    assert info.details["realm"] == "OTHER.TEST"
    assert "result_code" not in info.details


def test_client_names_an_unknown_result_code() -> None:
    info = play(client(), exchange(reply(refusal(41, 99, "\x00odd\n"))))
    assert (info.details["result_name"], info.details["result_string"]) == ("result 99", "?odd")


def test_client_sends_random_bytes_and_no_password() -> None:
    first, second = KpasswdClient(domain="x.test"), KpasswdClient(domain="x.test")
    assert first.cipher != second.cipher and len(first.cipher) == 48
    event = client().next_event()
    assert isinstance(event, Send) and event.data == REQUEST


def test_client_and_server_for_take_their_options() -> None:
    made = client_for("kpasswd", ProbeOptions(host="dc1.corp.test", transport="udp"))
    assert isinstance(made, KpasswdClient)
    assert (made.realm, made.transport) == ("CORP.TEST", "udp")
    served = server_for("kpasswd", ServerOptions(hostname="dc1.corp.test", transport="tcp"))
    assert isinstance(served, KpasswdServer)
    assert (served.realm, served.transport) == ("CORP.TEST", "tcp")
    assert KpasswdServer(ServerOptions(domain="lab.test")).realm == "LAB.TEST"


def _with_length(wire: bytes, total: int) -> bytes:
    return total.to_bytes(2, "big") + wire[2:]


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (reply(krb_error(41), version=5), MalformedReply),
        (_with_length(reply(krb_error(41)), 300), MalformedReply),
        (kpasswd(1, b"\x6f\x00", krb_error(41)), MalformedReply),
        (kpasswd(1, b"", b"\x75\x00"), MalformedReply),
        (reply(krb_error(41)[:-1]), MalformedMessage),
        (reply(krb_error(41)[:-1] + b"\x00\x00"), MalformedMessage),
        (b"\x00\x10\x00\x01\xff\xff", MalformedReply),
        (b"\x00\x03", MalformedReply),
        (b"\x7e\x03\x30\x01\x00", MalformedMessage),
    ],
)
def test_client_rejects_a_broken_reply(answer: bytes, error: type) -> None:
    outcome = feed_client(client(), [answer])
    assert isinstance(outcome, error), outcome


@pytest.mark.parametrize(
    ("chunks", "error", "detected"),
    [
        ([b"HTTP/1.1 400 Bad Request\r\n\r\n"], WrongProtocol, "HTTP"),
        ([tcp(bytes.fromhex("300c020101600702010304008000"))], WrongProtocol, "LDAP"),
        ([tcp(b"SSH-2.0-OpenSSH_9.2\r\n")], WrongProtocol, "SSH"),
        ([b"\x80\x00\x00\x10"], MalformedMessage, None),
        ([b"\x00\x00"], PeerClosed, None),
        ([], PeerClosed, None),
    ],
)
def test_client_over_tcp_names_strangers(chunks: list[bytes], error: type, detected: str) -> None:
    outcome = feed_client(client("tcp"), chunks)
    assert isinstance(outcome, error), outcome
    if detected:
        assert isinstance(outcome, WrongProtocol) and outcome.detected == detected


# -- server role ----------------------------------------------------------------------------


def server(transport: str = "udp") -> KpasswdServer:
    return KpasswdServer(realm=REALM, transport=transport, clock=lambda: NOW)


REFUSED = reply(refusal(41, 3, AUTH_NOTE))


def check_both(steps: list[Step]) -> KpasswdServer:
    """Play `steps` over UDP (each client step one datagram) and over TCP (framed, also one
    byte at a time); the UDP run's server is returned for its `heard` list."""
    udp = server("udp")
    assert play_server(udp, steps) == steps
    tcp_steps: list[Step] = [
        C(tcp(step.data)) if isinstance(step, C) else S(tcp(step.data))
        for step in steps
        if isinstance(step, C | S)
    ]
    tcp_server = check_server(lambda: server("tcp"), tcp_steps)
    assert tcp_server.heard == udp.heard
    return udp


def test_server_refuses_a_change_as_a_kdc_does() -> None:
    kpasswd_server = check_both([C(REQUEST), S(REFUSED)])
    assert kpasswd_server.heard == [f"kpasswd v0xff80 for kadmin/changepw@{REALM}: refused"]


@pytest.mark.parametrize(
    ("request_", "code", "result", "note", "heard"),
    [
        (b"hello\r\n", 60, 1, "malformed request", "(not a kpasswd request)"),
        (kpasswd(7, AP_REQ_WIRE, KRB_PRIV_WIRE), 60, 6, "unknown version", "(kpasswd version"),
        (kpasswd(1, b"\x6e\x00", KRB_PRIV_WIRE), 60, 1, "malformed AP-REQ", "(malformed AP-REQ)"),
    ],
)
def test_server_refuses_what_it_cannot_read(
    request_: bytes, code: int, result: int, note: str, heard: str
) -> None:
    kpasswd_server = check_both([C(request_), S(reply(refusal(code, result, note)))])
    assert kpasswd_server.heard[0].startswith(heard)


def test_server_takes_the_older_change_protocol_version() -> None:
    kpasswd_server = check_both([C(kpasswd(1, AP_REQ_WIRE, KRB_PRIV_WIRE)), S(REFUSED)])
    assert kpasswd_server.heard == [f"kpasswd v0x0001 for kadmin/changepw@{REALM}: refused"]


def answers(kpasswd_server: KpasswdServer, chunks: list[bytes]) -> list[bytes]:
    events = feed_server(kpasswd_server, chunks)
    assert events[-1] is CLOSE
    return [e.data for e in events if isinstance(e, Send)]


def test_server_over_tcp_refuses_a_long_request_then_hangs_up() -> None:
    replies = answers(server("tcp"), [tcp(REQUEST) * 2, b"\x80\x00\x00\x01", tcp(REQUEST)])
    assert replies == [tcp(REFUSED), tcp(REFUSED), tcp(reply(refusal(61, 1, "")))]


def test_server_over_tcp_stops_after_max_requests() -> None:
    replies = answers(server("tcp"), [tcp(REQUEST) * (MAX_REQUESTS + 5)])
    assert replies == [tcp(REFUSED)] * MAX_REQUESTS


def test_server_closes_quietly_when_the_client_leaves_first() -> None:
    assert feed_server(server("tcp"), [b"\x00\x00"]) == [NEED_DATA, NEED_DATA, CLOSE]


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_client_against_server(transport: str) -> None:
    kpasswd_server = KpasswdServer(realm="CORP.TEST", transport=transport)
    info = converse(KpasswdClient(domain="corp.test", transport=transport), kpasswd_server).info
    assert info.details["realm"] == "CORP.TEST"
    assert (info.details["error_code"], info.details["result_code"]) == (41, 3)
    assert kpasswd_server.heard == ["kpasswd v0xff80 for kadmin/changepw@CORP.TEST: refused"]


# -- fuzz -----------------------------------------------------------------------------------

CLIENT_PIECES = [
    SAMBA_REPLY,
    REFUSED,
    krb_error(6),
    b"\x00\x06\x00\x01\x00\x00",
    b"\x7e\x84\xff\xff\xff\xff",
    b"\x00\x10\x00\x01\x00\x04\x6f\x00",
]
SERVER_PIECES = [REQUEST, AP_REQ_WIRE, b"\x00\x0a\xff\x80\x00\x04\x6e\x84\x7f\xff", b"\x30\x80"]


def _framed(pieces: list[bytes]) -> list[bytes]:
    return pieces + [tcp(p) for p in pieces] + STRANGERS


@FUZZ
@given(st.sampled_from(["udp", "tcp"]), chunked(_framed(CLIENT_PIECES)))
def test_fuzz_kpasswd_client(transport: str, chunks: list[bytes]) -> None:
    outcome = bounded(lambda: feed_client(client(transport), chunks))
    assert isinstance(outcome, Done | RemoteProtocolError)
    if isinstance(outcome, Done):
        assert outcome.info.protocol == "kpasswd"


@FUZZ
@given(st.sampled_from(["udp", "tcp"]), chunked(_framed(SERVER_PIECES)))
def test_fuzz_kpasswd_server(transport: str, chunks: list[bytes]) -> None:
    events = bounded(lambda: feed_server(server(transport), chunks))
    assert isinstance(events, list) and events[-1] is CLOSE
    assert all(isinstance(e, Send) or e in (NEED_DATA, CLOSE) for e in events)
