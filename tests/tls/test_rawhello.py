"""portcall's own ClientHello and its reader of the server's answer, bytes in, facts out."""

from __future__ import annotations

import struct
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portcall.protocols.base import RemoteProtocolError
from portcall.tls.rawhello import (
    MAX_FLIGHT,
    TLS1_0,
    TLS1_2,
    AlertReceived,
    FlightReader,
    NotTls,
    ServerFlight,
    client_hello,
    parse_certificate_list,
    parse_server_hello,
)
from tests.tls.conftest import Issued
from tests.tls.fakes import (
    DES3_SHA,
    RC4_SHA,
    alert,
    handshake_record,
    parse_client_hello,
    server_flight,
)

SNI = 0


def test_the_hello_offers_rc4_and_3des_at_the_asked_version() -> None:
    hello = parse_client_hello(client_hello(TLS1_2, "mail.example.com"))
    assert hello.record_version == TLS1_0  # what old servers expect in the record header
    assert hello.version == TLS1_2
    assert {RC4_SHA, DES3_SHA, 0x00FF} <= set(hello.suites)
    assert hello.extensions[SNI].endswith(b"mail.example.com")
    assert parse_client_hello(client_hello(TLS1_0)).version == TLS1_0


@pytest.mark.parametrize("name", ["", "192.0.2.1", "2001:db8::1"])
def test_no_server_name_for_an_address_or_nothing(name: str) -> None:
    assert SNI not in parse_client_hello(client_hello(TLS1_2, name)).extensions


def flight_bytes(valid: Issued, suite: int = RC4_SHA, version: int = TLS1_0) -> bytes:
    return server_flight(version, suite, [valid.der, b"\x30\x03\x02\x01\x01"])


def test_a_whole_flight_gives_version_suite_and_chain(valid: Issued) -> None:
    flight = FlightReader().receive_data(flight_bytes(valid))
    assert flight == ServerFlight(TLS1_0, RC4_SHA, (valid.der, b"\x30\x03\x02\x01\x01"))
    assert (flight.version_name, flight.suite_name, flight.bits) == (
        "TLSv1",
        "TLS_RSA_WITH_RC4_128_SHA",
        128,
    )


def test_one_byte_at_a_time_reads_the_same(valid: Issued) -> None:
    reader = FlightReader()
    data = flight_bytes(valid, DES3_SHA, 0x0300)
    results = [reader.receive_data(data[i : i + 1]) for i in range(len(data))]
    # Complete at the Certificate's last byte; the 9-byte ServerHelloDone record is not needed.
    first = next(i for i, r in enumerate(results) if r is not None)
    assert first == len(data) - 9 - 1
    assert results[-1] is not None and results[-1].version_name == "SSLv3"
    assert results[-1].suite_name == "TLS_RSA_WITH_3DES_EDE_CBC_SHA"


def test_messages_split_across_records_and_sharing_one(valid: Issued) -> None:
    hello = struct.pack("!H", TLS1_0) + bytes(32) + b"\x00" + struct.pack("!HB", RC4_SHA, 0)
    listing = len(valid.der).to_bytes(3, "big") + valid.der
    certificate = len(listing).to_bytes(3, "big") + listing
    messages = b"\x02" + len(hello).to_bytes(3, "big") + hello
    messages += b"\x0b" + len(certificate).to_bytes(3, "big") + certificate
    cut = len(messages) - 100  # the Certificate spans two records
    records = b"".join(
        struct.pack("!BHH", 22, TLS1_0, len(part)) + part
        for part in (messages[:cut], messages[cut:])
    )
    flight = FlightReader().receive_data(records)
    assert flight is not None and flight.chain == (valid.der,)


def test_an_alert_is_named() -> None:
    with pytest.raises(AlertReceived, match="fatal handshake_failure alert"):
        FlightReader().receive_data(alert(40))


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"220 mail.example.com ESMTP ready\r\n", "not a TLS record"),
        (struct.pack("!BHH", 22, TLS1_0, 30000), "not a TLS record"),
        (b"\x15\x03\x01\x00\x01\x02", "too short"),
        (handshake_record(14, b""), "where a ServerHello was expected"),
        (struct.pack("!BHH", 22, TLS1_0, 4) + b"\x02\xff\xff\xff", "handshake message of"),
    ],
    ids=["plaintext", "record-too-long", "short-alert", "no-server-hello", "huge-message"],
)
def test_garbage_is_a_remote_protocol_error(data: bytes, words: str) -> None:
    with pytest.raises(NotTls, match=words):
        FlightReader().receive_data(data)


def test_a_close_before_the_certificate_is_an_error(valid: Issued) -> None:
    reader = FlightReader()
    assert reader.receive_data(flight_bytes(valid)[:60]) is None
    with pytest.raises(NotTls, match="closed the connection after 60 bytes"):
        reader.receive_data(b"")


def test_the_answer_is_capped() -> None:
    reader = FlightReader()
    # HelloRequests are legal and ignored: a server could send them forever.
    filler = handshake_record(0, b"") * 1000
    with pytest.raises(NotTls, match=f"first {MAX_FLIGHT} bytes"):
        for _ in range(MAX_FLIGHT // len(filler) + 2):
            reader.receive_data(filler)


def test_work_is_linear_in_the_input() -> None:
    # 60 KiB of four-byte messages in one record each, fed one byte at a time.
    data = handshake_record(0, b"") * (60 * 1024 // 9)
    reader = FlightReader()
    started = time.perf_counter()
    for i in range(len(data)):
        reader.receive_data(data[i : i + 1])
    assert time.perf_counter() - started < 2.0


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (struct.pack("!H", 0x0304) + bytes(40), "version 0x0304"),
        (struct.pack("!H", TLS1_0) + bytes(33) + struct.pack("!HB", 0x1301, 0), "not offered"),
        (struct.pack("!H", TLS1_0) + bytes(33) + struct.pack("!HB", RC4_SHA, 1), "compression"),
        (struct.pack("!H", TLS1_0) + bytes(32) + b"\x20", "ends inside a field"),
    ],
)
def test_server_hello_refusals(body: bytes, words: str) -> None:
    with pytest.raises(NotTls, match=words):
        parse_server_hello(body)


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"\x00\x00\x00", "holds no certificate"),
        (b"\x00\x00\x06\x00\x00\x09abc", "ends inside a field"),
        (b"\x00\x00\x04\x00\x00\x01a\xff", "bytes after its end"),
        (b"\x00\x01", "ends inside a field"),
    ],
)
def test_certificate_list_refusals(body: bytes, words: str) -> None:
    with pytest.raises(NotTls, match=words):
        parse_certificate_list(body)


def outcome(chunks: list[bytes]) -> ServerFlight | RemoteProtocolError | None:
    reader = FlightReader()
    try:
        for chunk in chunks:
            flight = reader.receive_data(chunk)
            if flight is not None:
                return flight
    except RemoteProtocolError as refused:
        return refused
    return None


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=64), max_size=12))
def test_random_bytes_are_refused_cleanly(chunks: list[bytes]) -> None:
    # Anything else escaping (IndexError, struct.error) would fail the test.
    result = outcome([*chunks, b""])
    assert isinstance(result, RemoteProtocolError) or (
        isinstance(result, ServerFlight) and result.chain
    )


FLIGHT = server_flight(TLS1_0, RC4_SHA, [b"\x30\x03\x02\x01\x01"])


@settings(max_examples=300, deadline=None)
@given(st.integers(0, len(FLIGHT) - 1), st.integers(0, 255), st.integers(1, 16))
def test_a_damaged_flight_is_read_or_refused_cleanly(at: int, value: int, step: int) -> None:
    damaged = FLIGHT[:at] + bytes([value]) + FLIGHT[at + 1 :]
    chunks = [damaged[i : i + step] for i in range(0, len(damaged), step)]
    result = outcome([*chunks, b""])
    assert isinstance(result, RemoteProtocolError | ServerFlight)
