"""NTP client and server roles: packets written out by hand here (RFC 5905 section 7.3), each
error path, the two roles together, and a fuzz of both."""

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
    LocalProtocolError,
    PeerClosed,
    ProbeOptions,
    RemoteProtocolError,
    Send,
    ServerOptions,
    WrongProtocol,
)
from portcall.protocols.ntp import (
    MAX_REQUESTS,
    UNSYNCHRONISED_NOTE,
    MalformedPacket,
    NotOurReply,
    NtpClient,
    NtpError,
    NtpServer,
)
from tests.protocols.feeding import feed_client, feed_server
from tests.protocols.pair import converse, play_server
from tests.protocols.test_fuzz_protocols import FUZZ, STRANGERS, bounded, chunked
from tests.protocols.transcript import C, S, Step, play

TRANSMIT = bytes.fromhex("0123456789abcdef")
#: 2026-11-30T20:00:00.5Z and 2026-11-30T19:59:00Z as NTP timestamps (era 0).
HALF_PAST = bytes.fromhex("eeb8544080000000")
MINUTE_BEFORE = bytes.fromhex("eeb8540400000000")
NOW = datetime(2026, 11, 30, 20, 0, 0, 500000, tzinfo=UTC)

#: The client's request: LI 0, version 4, mode 3, every field zero but the transmit timestamp.
REQUEST = b"\x23" + bytes(39) + TRANSMIT


def packet(
    first: int = 0x24,
    stratum: int = 8,
    poll: int = 0,
    precision: int = 0xE6,
    delay: bytes = b"\x00\x00\x80\x00",
    dispersion: bytes = b"\x00\x01\x00\x00",
    refid: bytes = b"\x7f\x7f\x01\x01",
    reference: bytes = MINUTE_BEFORE,
    origin: bytes = TRANSMIT,
    receive: bytes = HALF_PAST,
    transmit: bytes = HALF_PAST,
) -> bytes:
    head = bytes([first, stratum, poll, precision]) + delay + dispersion + refid
    return head + reference + origin + receive + transmit


def client() -> NtpClient:
    return NtpClient(transmit=int.from_bytes(TRANSMIT, "big"))


def exchange(answer: bytes) -> list[Step]:
    return [C(REQUEST), S(answer)]


# -- client ---------------------------------------------------------------------------------


def test_client_reads_a_server_reply() -> None:
    info = play(client(), exchange(packet()))
    assert info.protocol == "ntp"
    assert info.banner == "NTP v4 stratum 8 ref 127.127.1.1"
    assert info.details == {
        "transport": "udp",
        "version": 4,
        "mode": 4,
        "leap": 0,
        "leap_meaning": "no warning",
        "stratum": 8,
        "poll": 0,
        "precision": -26,
        "root_delay": 0.5,
        "root_dispersion": 1.0,
        "reference_id": "127.127.1.1",
        "reference_time": "2026-11-30T19:59:00+00:00",
        "receive_time": "2026-11-30T20:00:00.500000+00:00",
        "transmit_time": "2026-11-30T20:00:00.500000+00:00",
    }
    assert info.notes == []


def test_client_reads_a_primary_server_s_reference_and_counts_a_mac() -> None:
    info = play(client(), exchange(packet(stratum=1, refid=b"GPS\0") + bytes(20)))
    assert info.banner == "NTP v4 stratum 1 ref GPS"
    assert info.details["extra_bytes"] == 20


def test_client_notes_a_kiss_o_death() -> None:
    info = play(client(), exchange(packet(first=0xE4, stratum=0, refid=b"RATE")))
    assert info.banner == "NTP v4 stratum 0 kiss-o'-death RATE"
    assert info.details["kiss_code"] == "RATE"
    assert info.notes == [
        "kiss-o'-death RATE: rate exceeded: the server asks the client to slow down; "
        "an NTP server answered"
    ]


def test_client_notes_an_unsynchronised_server() -> None:
    wire = packet(first=0xE4, stratum=16, refid=b"INIT", reference=bytes(8))
    info = play(client(), exchange(wire))
    assert info.notes == [UNSYNCHRONISED_NOTE]
    assert info.details["reference_id"] == "INIT"
    assert info.details["reference_time"] is None
    assert info.details["leap_meaning"] == "the clock is not synchronised"


def test_client_reads_a_version_3_reply_and_a_time_after_2036() -> None:
    # RFC 4330 section 3: a timestamp with its top bit clear is in era 1.
    info = play(client(), exchange(packet(first=0x1C, transmit=bytes.fromhex("0754fd0000000000"))))
    assert info.details["version"] == 3
    assert info.details["transmit_time"] == "2040-01-01T00:00:00+00:00"


def test_client_request_is_random_and_carries_no_clock() -> None:
    first, second = NtpClient(), NtpClient()
    assert first.transmit != second.transmit
    event = client().next_event()
    assert isinstance(event, Send) and event.data == REQUEST


@pytest.mark.parametrize(
    ("answer", "error", "words"),
    [
        (packet(origin=bytes(8)), NotOurReply, "reply does not answer our request"),
        (packet(first=0x23), NtpError, "mode 3"),
        (packet(first=0x04), MalformedPacket, "version 0"),
        (packet(first=0x3C), MalformedPacket, "version 7"),
        (packet()[:47], MalformedPacket, "47 bytes"),
        (b"HTTP/1.1 400 Bad Request\r\n\r\n", WrongProtocol, "HTTP"),
        (b"SSH-2.0-OpenSSH_9.2\r\n", WrongProtocol, "SSH"),
        # Text long enough to pass for a header is still named for what it is.
        (b"220 mail.example.test Microsoft ESMTP MAIL Service ready\r\n", WrongProtocol, "SMTP"),
    ],
)
def test_client_rejects(answer: bytes, error: type, words: str) -> None:
    outcome = feed_client(client(), [answer])
    assert isinstance(outcome, error), outcome
    assert words in str(outcome)


def test_client_fails_when_the_socket_closes() -> None:
    assert isinstance(feed_client(client(), []), PeerClosed)


def test_tcp_is_our_mistake() -> None:
    with pytest.raises(LocalProtocolError, match="udp only"):
        NtpClient(transport="tcp")
    with pytest.raises(LocalProtocolError, match="udp only"):
        client_for("ntp", ProbeOptions(transport="tcp"))
    with pytest.raises(LocalProtocolError, match="udp only"):
        NtpServer(ServerOptions(transport="tcp"))
    assert isinstance(client_for("ntp", ProbeOptions(transport="udp")), NtpClient)
    assert isinstance(server_for("ntp", ServerOptions(transport="udp")), NtpServer)


# -- server role ----------------------------------------------------------------------------


def server(stratum: int = 3, reference: str | None = None) -> NtpServer:
    return NtpServer(stratum=stratum, reference=reference, clock=lambda: NOW)


def served(ntp_server: NtpServer, datagrams: list[bytes]) -> list[Step]:
    return play_server(ntp_server, [C(d) for d in datagrams])


def test_server_answers_a_client_request() -> None:
    ntp_server = server()
    want = packet(
        stratum=3,
        precision=0xEC,
        delay=bytes(4),
        dispersion=b"\x00\x00\x02\x8f",
        refid=b"\x7f\x7f\x01\x00",
        reference=HALF_PAST,
    )
    assert served(ntp_server, [REQUEST]) == [C(REQUEST), S(want)]
    assert ntp_server.heard == ["NTP v4 client request"]


def test_server_echoes_the_version_and_poll_and_names_its_reference() -> None:
    request = b"\x1b\x00\x06" + bytes(37) + TRANSMIT
    (_, answer) = served(server(stratum=1, reference="GPS"), [request])
    assert isinstance(answer, S)
    assert answer.data[:4] == b"\x1c\x01\x06\xec" and answer.data[12:16] == b"GPS\0"
    assert answer.data[24:32] == TRANSMIT


@pytest.mark.parametrize(
    ("datagram", "heard"),
    [
        (packet(), "(ignored mode 4 version 4)"),
        (b"\x03" + bytes(47), "(ignored mode 3 version 0)"),
        (REQUEST[:47], "(ignored a datagram of 47 bytes)"),
        (b"GET / HTTP/1.0\r\n", "(ignored a datagram of 16 bytes)"),
    ],
)
def test_server_stays_silent_at_what_is_no_client_request(datagram: bytes, heard: str) -> None:
    ntp_server = server()
    assert served(ntp_server, [datagram]) == [C(datagram)]
    assert ntp_server.heard == [heard]


def test_server_reads_at_most_max_requests_datagrams() -> None:
    events = feed_server(server(), [REQUEST] * (MAX_REQUESTS + 3))
    assert sum(isinstance(e, Send) for e in events) == MAX_REQUESTS
    assert events[-1] is CLOSE


def test_server_refuses_a_reference_that_is_no_address() -> None:
    with pytest.raises(LocalProtocolError, match="IPv4 address"):
        NtpServer(stratum=2, reference="GPS")


def test_client_against_server() -> None:
    info = converse(NtpClient(), NtpServer(stratum=2, reference="192.0.2.7")).info
    assert info.banner == "NTP v4 stratum 2 ref 192.0.2.7"
    assert info.notes == []


# -- fuzz -----------------------------------------------------------------------------------

CLIENT_PIECES = [packet(), packet(stratum=0, refid=b"DENY"), packet(origin=bytes(8)), HALF_PAST]
SERVER_PIECES = [REQUEST, packet(), b"\x23", bytes(48)]


@FUZZ
@given(st.booleans(), chunked(CLIENT_PIECES + STRANGERS))
def test_fuzz_ntp_client(echo: bool, chunks: list[bytes]) -> None:
    # With `echo`, every datagram carries our transmit timestamp as its origin, so that the
    # fuzzer gets past the pairing check.
    if echo:
        chunks = [c[:24] + TRANSMIT + c[32:] if len(c) >= 48 else c for c in chunks]
    outcome = bounded(lambda: feed_client(client(), chunks))
    assert isinstance(outcome, Done | RemoteProtocolError)
    if isinstance(outcome, Done):
        assert outcome.info.protocol == "ntp"


@FUZZ
@given(chunked(SERVER_PIECES + STRANGERS))
def test_fuzz_ntp_server(chunks: list[bytes]) -> None:
    events = bounded(lambda: feed_server(server(), chunks))
    assert isinstance(events, list) and events[-1] is CLOSE
    assert all(isinstance(e, Send) or e in (NEED_DATA, CLOSE) for e in events)
