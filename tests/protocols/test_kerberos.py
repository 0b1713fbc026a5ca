"""Kerberos client and server roles: transcripts whose DER is written out by hand here, the two
roles together, a fuzz of both, and the server role checked by MIT kinit over UDP and TCP."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portcall.protocols.base import (
    CLOSE,
    NEED_DATA,
    Done,
    PeerClosed,
    RemoteProtocolError,
    Send,
    WrongProtocol,
)
from portcall.protocols.kerberos import (
    AS_REP_NOTE,
    KDC_ERR_C_PRINCIPAL_UNKNOWN,
    KDC_ERR_WRONG_REALM,
    KRB_AP_ERR_MSG_TYPE,
    KRB_ERR_FIELD_TOOLONG,
    KRB_ERR_GENERIC,
    PROBE_PREFIX,
    KerberosClient,
    KerberosServer,
    MalformedMessage,
    decode,
)
from portcall.protocols.kerberos.schema import KRBError
from tests.protocols.dc_serving import run_tool, serving
from tests.protocols.feeding import feed_client, feed_server
from tests.protocols.pair import converse
from tests.protocols.test_fuzz_protocols import FUZZ, STRANGERS, bounded, chunked
from tests.protocols.transcript import C, S, Step, play, play_both_ways

REALM = "EXAMPLE.TEST"
PROBE = "portcall-probe-0123456789abcdef"
NONCE = 0x01020304
NOW = datetime(2026, 11, 30, 19, 0, 0, 727596, tzinfo=UTC)


# -- DER written out by hand, so that the schema is checked against RFC 4120, not itself -----


def tlv(tag: int, *parts: bytes) -> bytes:
    body = b"".join(parts)
    if len(body) < 0x80:
        return bytes([tag, len(body)]) + body
    if len(body) < 0x100:
        return bytes([tag, 0x81, len(body)]) + body
    return bytes([tag, 0x82]) + len(body).to_bytes(2, "big") + body


def ctx(number: int, *parts: bytes) -> bytes:
    return tlv(0xA0 + number, *parts)


def integer(value: int) -> bytes:
    return tlv(0x02, value.to_bytes((value.bit_length() + 8) // 8, "big", signed=True))


def string(text: str) -> bytes:
    return tlv(0x1B, text.encode())


def time_(text: str) -> bytes:
    return tlv(0x18, text.encode())


def name(name_type: int, *parts: str) -> bytes:
    return tlv(0x30, ctx(0, integer(name_type)), ctx(1, tlv(0x30, *map(string, parts))))


AS_REQ_WIRE = tlv(
    0x6A,
    tlv(
        0x30,
        ctx(1, integer(5)),
        ctx(2, integer(10)),
        ctx(
            4,
            tlv(
                0x30,
                ctx(0, tlv(0x03, b"\x00\x00\x00\x00\x00")),
                ctx(1, name(1, PROBE)),
                ctx(2, string(REALM)),
                ctx(3, name(2, "krbtgt", REALM)),
                ctx(5, time_("20370913024805Z")),
                ctx(7, integer(NONCE)),
                ctx(8, tlv(0x30, integer(18), integer(17), integer(23))),
            ),
        ),
    ),
)


def krb_error(code: int, realm: str = REALM, e_text: str | None = None) -> bytes:
    """A KRB-ERROR as Active Directory sends one (no ctime, no cname)."""
    extra = [ctx(11, string(e_text))] if e_text is not None else []
    return tlv(
        0x7E,
        tlv(
            0x30,
            ctx(0, integer(5)),
            ctx(1, integer(30)),
            ctx(4, time_("20261130190000Z")),
            ctx(5, integer(727596)),
            ctx(6, integer(code)),
            ctx(9, string(realm)),
            ctx(10, name(2, "krbtgt", realm)),
            *extra,
        ),
    )


def tcp(wire: bytes) -> bytes:
    return len(wire).to_bytes(4, "big") + wire


def client(transport: str = "tcp") -> KerberosClient:
    return KerberosClient(domain="example.test", transport=transport, probe_name=PROBE, nonce=NONCE)


def exchange(answer: bytes, transport: str = "tcp") -> list[Step]:
    frame = tcp if transport == "tcp" else (lambda wire: wire)
    return [C(frame(AS_REQ_WIRE)), S(frame(answer))]


# -- client ---------------------------------------------------------------------------------


def test_client_reads_principal_unknown_over_tcp_whole_and_byte_by_byte() -> None:
    info = play_both_ways(client, exchange(krb_error(6)))
    assert info.protocol == "kerberos"
    assert info.banner == "KRB-ERROR KDC_ERR_C_PRINCIPAL_UNKNOWN from realm EXAMPLE.TEST"
    assert info.details == {
        "transport": "tcp",
        "realm_asked": REALM,
        "principal": f"{PROBE}@{REALM}",
        "msg_type": 30,
        "error_code": 6,
        "error_name": "KDC_ERR_C_PRINCIPAL_UNKNOWN",
        "error_meaning": "the KDC does not know the client principal",
        "realm": REALM,
        "server": f"krbtgt/{REALM}",
        "server_time": "2026-11-30T19:00:00.727596+00:00",
    }


def test_client_over_udp() -> None:
    info = play(client("udp"), exchange(krb_error(25), "udp"))
    assert info.details["error_name"] == "KDC_ERR_PREAUTH_REQUIRED"
    assert info.details["transport"] == "udp"


def test_client_reports_a_wrong_realm_and_the_error_text() -> None:
    info = play(client(), exchange(krb_error(68, "CORP.TEST", e_text="WRONG_REALM")))
    assert (info.details["error_name"], info.details["realm"]) == (
        "KDC_ERR_WRONG_REALM",
        "CORP.TEST",
    )
    assert info.details["e_text"] == "WRONG_REALM"


def test_client_names_an_unknown_error_code() -> None:
    info = play(client(), exchange(krb_error(99)))
    assert info.details["error_name"] == "error 99"


def test_client_notes_an_as_rep() -> None:
    info = play(client(), exchange(tlv(0x6B, tlv(0x30, ctx(0, integer(5))))))
    assert info.details["msg_type"] == 11 and info.notes == [AS_REP_NOTE]


def test_client_probe_principal_is_random_and_marked() -> None:
    first = KerberosClient(domain="corp.example.")
    second = KerberosClient(domain="corp.example.")
    assert first.realm == "CORP.EXAMPLE"
    assert first.probe_name.startswith(PROBE_PREFIX) and second.probe_name.startswith(PROBE_PREFIX)
    assert first.probe_name != second.probe_name
    assert KerberosClient(domain="x", probe_name="alice").probe_name == PROBE_PREFIX + "alice"


def test_client_never_sends_pre_authentication() -> None:
    event = client().next_event()
    assert isinstance(event, Send) and event.data == tcp(AS_REQ_WIRE)


@pytest.mark.parametrize(
    ("chunks", "error", "detected"),
    [
        ([b"HTTP/1.1 400 Bad Request\r\n\r\n"], WrongProtocol, "HTTP"),
        ([tcp(bytes.fromhex("300c020101600702010304008000"))], WrongProtocol, "LDAP"),
        ([tcp(b"\x7e\x03\x30\x01\x00")], MalformedMessage, None),
        ([tcp(krb_error(6)[:-1])], MalformedMessage, None),
        ([b"\x80\x00\x00\x10"], MalformedMessage, None),
        ([b"\x00\x00"], PeerClosed, None),
    ],
)
def test_client_rejects(chunks: list[bytes], error: type, detected: str | None) -> None:
    outcome = feed_client(client(), chunks)
    assert isinstance(outcome, error), outcome
    if detected:
        assert isinstance(outcome, WrongProtocol) and outcome.detected == detected


def test_client_rejects_a_wrong_version() -> None:
    wrong = bytearray(krb_error(6))
    wrong[8] = 4  # pvno
    assert isinstance(feed_client(client("udp"), [bytes(wrong)]), MalformedMessage)


# -- server role ----------------------------------------------------------------------------


def server(transport: str = "udp", realm: str = REALM) -> KerberosServer:
    return KerberosServer(realm=realm, transport=transport, clock=lambda: NOW)


def answers(kdc: KerberosServer, chunks: list[bytes]) -> list[bytes]:
    events = feed_server(kdc, chunks)
    assert events[-1] is CLOSE
    return [e.data for e in events if isinstance(e, Send)]


def error_of(wire: bytes) -> tuple[int, str, str]:
    error = decode(wire, KRBError())
    return (
        int(error["error-code"]),
        str(error["realm"]),
        str(error["e-text"]) if error["e-text"].isValue else "",
    )


@pytest.mark.parametrize("transport", ["udp", "tcp"])
@pytest.mark.parametrize(("realm", "code"), [(REALM, 6), ("CORP.TEST", 68)])
def test_client_against_server(transport: str, realm: str, code: int) -> None:
    kdc = server(transport, realm)
    info = converse(KerberosClient(domain="example.test", transport=transport), kdc).info
    assert info.details["error_code"] == code and info.details["realm"] == realm
    assert info.details["server_time"] == NOW.isoformat()
    assert kdc.heard == [
        f"{info.details['principal']}: {info.details['error_name']}".join(["AS-REQ ", ""])
    ]


def test_server_echoes_the_client_and_answers_its_realm() -> None:
    (reply,) = answers(server(), [AS_REQ_WIRE])
    error = decode(reply, KRBError())
    assert int(error["error-code"]) == KDC_ERR_C_PRINCIPAL_UNKNOWN
    assert [str(part) for part in error["cname"]["name-string"]] == [PROBE]
    assert (str(error["crealm"]), str(error["stime"])) == (REALM, "20261130190000Z")
    assert int(error["susec"]) == 727596
    (other,) = answers(server(realm="CORP.TEST"), [AS_REQ_WIRE])
    assert error_of(other)[:2] == (KDC_ERR_WRONG_REALM, "CORP.TEST")


def test_server_answers_other_messages_with_errors() -> None:
    tgs_req = b"\x6c\x03\x30\x01\x00"
    assert error_of(answers(server(), [tgs_req])[0])[0] == KRB_AP_ERR_MSG_TYPE
    assert error_of(answers(server(), [b"\x6a\x03\x30\x01\x00"])[0])[0] == KRB_ERR_GENERIC
    wrong_type = AS_REQ_WIRE.replace(ctx(2, integer(10)), ctx(2, integer(12)))
    assert error_of(answers(server(), [wrong_type])[0])[0] == KRB_AP_ERR_MSG_TYPE


def test_server_over_tcp_takes_several_requests_then_refuses_a_long_one() -> None:
    replies = answers(server("tcp"), [tcp(AS_REQ_WIRE) * 2, b"\x80\x00\x00\x01"])
    assert len(replies) == 3
    assert [error_of(r[4:])[0] for r in replies] == [6, 6, KRB_ERR_FIELD_TOOLONG]
    assert all(int.from_bytes(r[:4], "big") == len(r) - 4 for r in replies)


def test_server_ignores_the_close_before_a_request() -> None:
    assert feed_server(server("tcp"), [b"\x00\x00"]) == [NEED_DATA, NEED_DATA, CLOSE]


# -- fuzz -----------------------------------------------------------------------------------

CLIENT_PIECES = [krb_error(6), krb_error(68, "X"), tlv(0x6B, b""), b"\x7e\x84\xff\xff\xff\xff"]
SERVER_PIECES = [AS_REQ_WIRE, b"\x6c\x00", b"\x6a\x84\x7f\xff\xff\xff", b"\x30\x80\x30\x80"]


def _framed(pieces: list[bytes]) -> list[bytes]:
    return pieces + [tcp(p) for p in pieces] + STRANGERS


@FUZZ
@given(st.sampled_from(["udp", "tcp"]), chunked(_framed(CLIENT_PIECES)))
def test_fuzz_kerberos_client(transport: str, chunks: list[bytes]) -> None:
    outcome = bounded(lambda: feed_client(client(transport), chunks))
    assert isinstance(outcome, Done | RemoteProtocolError)
    if isinstance(outcome, Done):
        assert outcome.info.protocol == "kerberos"


@FUZZ
@given(st.sampled_from(["udp", "tcp"]), chunked(_framed(SERVER_PIECES)))
def test_fuzz_kerberos_server(transport: str, chunks: list[bytes]) -> None:
    events = bounded(lambda: feed_server(server(transport), chunks))
    assert isinstance(events, list) and events[-1] is CLOSE
    assert all(isinstance(e, Send) or e in (NEED_DATA, CLOSE) for e in events)


# -- MIT kinit against the server role ------------------------------------------------------


def _krb5_conf(path: Path, port: int, transport: str) -> Path:
    """A configuration of the test's own: the realm's KDC on loopback, and no DNS look-ups (so
    that kinit sends nothing beyond loopback). udp_preference_limit 1 makes kinit use TCP."""
    limit = 1 if transport == "tcp" else 1465
    conf = path / f"krb5-{transport}.conf"
    conf.write_text(
        "[libdefaults]\n"
        f" default_realm = {REALM}\n"
        f" udp_preference_limit = {limit}\n"
        " dns_lookup_kdc = false\n dns_lookup_realm = false\n dns_uri_lookup = false\n"
        " rdns = false\n\n"
        "[realms]\n"
        f" {REALM} = {{\n"
        f"  kdc = 127.0.0.1:{port}\n"
        f"  primary_kdc = 127.0.0.1:{port}\n"
        " }\n"
    )
    return conf


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_kinit_finds_the_principal_unknown(transport: str, tmp_path: Path) -> None:
    async def main() -> tuple[int, str, list[tuple[str, list[str]]]]:
        async with serving(lambda t: KerberosServer(realm=REALM, transport=t)) as ports:
            port = ports.udp if transport == "udp" else ports.tcp
            env = {
                "KRB5_CONFIG": str(_krb5_conf(tmp_path, port, transport)),
                "KRB5CCNAME": f"FILE:{tmp_path}/ccache",
                "KRB5_TRACE": "/dev/stdout",
            }
            status, output = await run_tool("kinit", f"nobody@{REALM}", env=env)
            return status, output, [(s.transport, s.heard) for s in ports.served]

    status, output, served = asyncio.run(main())
    assert status != 0
    assert f"Client 'nobody@{REALM}' not found in Kerberos database" in output, output
    wanted = "UDP request to dgram" if transport == "udp" else "TCP request to stream"
    assert wanted in output, output
    assert served == [(transport, [f"AS-REQ nobody@{REALM}: KDC_ERR_C_PRINCIPAL_UNKNOWN"])]
