"""Probing over UDP: a reply proves the service, silence is `filtered` after the request was
sent three times, an ICMP port unreachable is `refused`, a lost datagram is sent again, and a
stranger's reply is named. Real datagrams on loopback, answered by small asyncio servers."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from dataclasses import replace
from typing import cast

import pytest

from portcall import Settings, check_async
from portcall.catalog import load_catalog
from portcall.probing.loop import run as on_loop
from portcall.probing.stream import DATAGRAM_SENDS
from portcall.protocols.dns import DnsServer
from portcall.verdicts import Result, Verdict

#: Every test here runs on asyncio's event loop and on uvloop's.
pytestmark = pytest.mark.usefixtures("each_loop")

DOMAIN = "example.test"
DNS_UDP = load_catalog("windows-dc").by_key("dns")
assert DNS_UDP is not None

Answer = Callable[[bytes, int], bytes | list[bytes] | None]


class _Server(asyncio.DatagramProtocol):
    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.heard: list[bytes] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.heard.append(data)
        reply = self.answer(data, len(self.heard))
        replies = [reply] if isinstance(reply, bytes) else reply or []
        for datagram in replies:
            if self.transport is not None:
                self.transport.sendto(datagram, addr)


def dns_answer(data: bytes, _count: int) -> bytes | None:
    return DnsServer(domain=DOMAIN, transport="udp").answer(data)


async def probe_with(answer: Answer, timeout: float = 1.0) -> tuple[Result, _Server]:
    loop = asyncio.get_running_loop()
    transport, server = await loop.create_datagram_endpoint(
        lambda: _Server(answer), local_addr=("127.0.0.1", 0)
    )
    port = transport.get_extra_info("sockname")[1]
    try:
        entry = replace(DNS_UDP, port=port)
        settings = Settings(timeout=timeout, domain=DOMAIN)
        [result] = await check_async(["127.0.0.1"], entries=[entry], settings=settings)
    finally:
        transport.close()
    return result, server


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_a_dns_server_over_udp_is_ok_with_its_facts() -> None:
    result, server = on_loop(probe_with(dns_answer))
    assert result.verdict is Verdict.OK, result.reason
    assert result.transport == "udp"
    assert result.where == f"{result.port}/udp"
    where = f"{result.port}/udp"
    assert result.reason.startswith(f"{where} ok: DNS answered; SOA dc1.example.test serial 1")
    assert result.details["domain"] == DOMAIN
    assert len(server.heard) == 2  # the SOA and the SRV question, once each


def test_a_closed_udp_port_is_refused_by_icmp() -> None:
    port = free_udp_port()
    entry = replace(DNS_UDP, port=port)
    started = time.perf_counter()
    [result] = on_loop(
        check_async(["127.0.0.1"], entries=[entry], settings=Settings(timeout=2, domain=DOMAIN))
    )
    assert result.verdict is Verdict.REFUSED
    assert "ICMP port unreachable" in result.reason
    assert time.perf_counter() - started < 1.0  # no waiting out the timeout


def test_silence_is_filtered_after_three_sends() -> None:
    started = time.perf_counter()
    result, server = on_loop(probe_with(lambda _data, _count: None, timeout=0.9))
    elapsed = time.perf_counter() - started
    assert result.verdict is Verdict.FILTERED
    assert "no reply to the UDP request within 0.9s" in result.reason
    assert "allow UDP" in result.reason
    assert len(server.heard) == DATAGRAM_SENDS
    assert len(set(server.heard)) == 1  # the same request again, not a new one
    assert 0.85 < elapsed < 1.5


def test_a_lost_datagram_is_sent_again() -> None:
    def drop_first(data: bytes, count: int) -> bytes | None:
        return None if count == 1 else dns_answer(data, count)

    result, server = on_loop(probe_with(drop_first, timeout=1.5))
    assert result.verdict is Verdict.OK, result.reason
    assert len(server.heard) == 3  # the SOA question twice, then the SRV question


def test_a_stranger_answering_udp_is_named() -> None:
    result, _server = on_loop(probe_with(lambda _data, _count: b"HTTP/1.1 400 Bad\r\n\r\n"))
    assert result.verdict is Verdict.WRONG_PROTOCOL
    assert "HTTP answered where DNS was expected" in result.reason


@pytest.mark.parametrize("garbage", [b"\x00", b"\xff" * 12, bytes(range(256)) * 4])
def test_garbage_over_udp_is_a_non_conforming_reply(garbage: bytes) -> None:
    result, _server = on_loop(probe_with(lambda _data, _count: garbage))
    assert result.verdict is Verdict.WRONG_PROTOCOL
    assert "internal_error" not in result.details, result.reason


def test_late_duplicates_of_an_earlier_reply_are_dropped() -> None:
    """A slow server answers the first question and its repeat: the second copy arrives while
    the client waits for the answer to its next question, and must not be taken for it."""

    def twice(data: bytes, count: int) -> list[bytes] | None:
        reply = dns_answer(data, count)
        return None if reply is None else [reply] * 3

    result, _server = on_loop(probe_with(twice))
    assert result.verdict is Verdict.OK, result.reason
    assert result.details["locator"]["targets"]


def test_a_flood_of_stray_replies_is_bounded() -> None:
    def flood(data: bytes, count: int) -> list[bytes] | None:
        reply = dns_answer(data, count)
        return None if reply is None else [reply] * 500

    started = time.perf_counter()
    result, _server = on_loop(probe_with(flood))
    assert result.verdict is Verdict.WRONG_PROTOCOL
    assert "is not the query's" in result.reason
    assert time.perf_counter() - started < 1.0
