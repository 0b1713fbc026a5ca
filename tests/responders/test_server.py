"""The responder's I/O: TLS both ways, faults, limits, timeouts, shutdown, bind errors.

Most tests drive a tiny scripted handshake (`Greeter`) so that they test the driver, not a
protocol; the load test uses the real SMTP responder.
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import ssl
import time
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from portcall.catalog import PortEntry, TlsMode
from portcall.protocols.base import PeerClosed, ReplyTooLong, Send, ServerHandshake, ServerOptions
from portcall.protocols.base import StartTLS as StartTLSEvent
from portcall.responders.binding import BindError, bind_error
from portcall.responders.channel import Channel
from portcall.responders.log import ConnectionRecord, format_record
from portcall.responders.server import Fault, Responder, ResponderConfig
from tests.responders.running import LAB_HOST

BANNER = b"220 greeter ready\r\n"


class Greeter(ServerHandshake):
    """Says hello, echoes each line as `250 <line>`, upgrades on STARTTLS, leaves on QUIT."""

    protocol = "smtp"
    display_name = "SMTP"

    def serve(self) -> Any:
        yield Send(BANNER)
        while True:
            try:
                line = yield from self.read_line()
            except PeerClosed:
                return
            except ReplyTooLong:
                yield Send(b"500 line too long\r\n")
                return
            self.heard.append(line)
            if line == "STARTTLS":
                yield Send(b"220 go ahead\r\n")
                yield StartTLSEvent()
            elif line == "QUIT":
                yield Send(b"221 bye\r\n")
                return
            else:
                yield Send(f"250 {line}\r\n".encode())


def row(key: str, port: int = 25, protocol: str = "smtp", tls: str = "none") -> PortEntry:
    return PortEntry(key, port, protocol, TlsMode(tls), "component", "description", "needs", "hint")


class Harness:
    """A responder around `Greeter` that remembers every record and every ServerOptions."""

    def __init__(self) -> None:
        self.records: list[ConnectionRecord] = []
        self.options: list[tuple[str, ServerOptions]] = []

    def factory(self, protocol: str, options: ServerOptions) -> ServerHandshake:
        self.options.append((protocol, options))
        return Greeter(options)

    def responder(self, entries: list[PortEntry], **kwargs: Any) -> Responder:
        config = kwargs.pop("config", None) or ResponderConfig(ephemeral=True, hostname=LAB_HOST)
        return Responder(
            entries,
            config,
            on_connection=self.records.append,
            handshake_factory=self.factory,
            **kwargs,
        )

    async def settle(self, count: int, deadline: float = 5.0) -> None:
        """Wait until `count` connections have been logged."""
        async with asyncio.timeout(deadline):
            while len(self.records) < count:
                await asyncio.sleep(0.01)


def run(make: Callable[[], Coroutine[Any, Any, None]], limit: float = 20.0) -> None:
    async def bounded() -> None:
        async with asyncio.timeout(limit):
            await make()

    asyncio.run(bounded())


async def connect(
    port: int, tls: ssl.SSLContext | None = None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(
        "127.0.0.1", port, ssl=tls, server_hostname=LAB_HOST if tls else None
    )


async def closed_by_peer(reader: asyncio.StreamReader, within: float) -> bool:
    async with asyncio.timeout(within):
        try:
            return await reader.read() == b""
        except ConnectionResetError:
            return True


# -- TLS -----------------------------------------------------------------------------------


def test_starttls_upgrades_server_side_and_drops_pipelined_plaintext(
    contexts: dict[str, ssl.SSLContext], client_tls: ssl.SSLContext
) -> None:
    harness = Harness()

    async def scenario() -> None:
        async with harness.responder([row("smtp", tls="starttls")], tls=contexts) as responder:
            reader, writer = await connect(responder.ports["smtp"])
            assert await reader.readline() == BANNER
            # A command smuggled behind STARTTLS in the same packet must never be executed
            # (RFC 3207 section 4.2, the CVE-2011-0411 family).
            writer.write(b"STARTTLS\r\nSMUGGLED\r\n")
            assert await reader.readline() == b"220 go ahead\r\n"
            await writer.start_tls(client_tls, server_hostname=LAB_HOST)
            writer.write(b"AFTER\r\nQUIT\r\n")
            assert await reader.readline() == b"250 AFTER\r\n"
            assert await reader.readline() == b"221 bye\r\n"
            writer.close()
            await harness.settle(1)

    run(scenario)
    (record,) = harness.records
    assert record.heard == ["STARTTLS", "AFTER", "QUIT"]
    assert record.tls in ("TLSv1.2", "TLSv1.3")
    assert record.ended == "the responder closed"
    assert harness.options[0][1].starttls is True


def test_implicit_tls_from_the_first_byte(
    contexts: dict[str, ssl.SSLContext], client_tls: ssl.SSLContext
) -> None:
    harness = Harness()

    async def scenario() -> None:
        async with harness.responder([row("smtps", 465, tls="implicit")], tls=contexts) as r:
            reader, writer = await connect(r.ports["smtps"], client_tls)
            assert await reader.readline() == BANNER
            writer.write(b"QUIT\r\n")
            assert await reader.readline() == b"221 bye\r\n"
            writer.close()
            await harness.settle(1)

    run(scenario)
    assert harness.records[0].tls is not None
    options = harness.options[0][1]
    assert options.implicit_tls is True and options.starttls is False


def test_expired_certificate_fault_is_refused_by_a_careful_client(
    contexts: dict[str, ssl.SSLContext], client_tls: ssl.SSLContext
) -> None:
    harness = Harness()
    faults = {"imaps": Fault(certificate="expired")}

    async def scenario() -> None:
        entries = [row("imaps", 993, "imap", "implicit")]
        async with harness.responder(entries, tls=contexts, faults=faults) as r:
            with pytest.raises(ssl.SSLCertVerificationError, match="expired"):
                await connect(r.ports["imaps"], client_tls)
            await harness.settle(1)

    run(scenario)
    (record,) = harness.records
    assert record.ended.startswith("TLS handshake")
    assert record.heard == [] and record.tls is None


def test_starttls_is_not_offered_without_a_certificate_or_when_a_fault_says_so(
    contexts: dict[str, ssl.SSLContext],
) -> None:
    harness = Harness()

    async def scenario() -> None:
        for tls, faults in ((None, {}), (contexts, {"pop3": Fault(starttls=False)})):
            entries = [row("pop3", 110, "pop3", "starttls")]
            async with harness.responder(entries, tls=tls, faults=faults) as r:
                reader, writer = await connect(r.ports["pop3"])
                await reader.readline()
                writer.close()

    run(scenario)
    assert [options.starttls for _, options in harness.options] == [False, False]


def test_implicit_row_without_a_certificate_is_rejected_up_front() -> None:
    with pytest.raises(ValueError, match="needs a certificate"):
        Responder([row("imaps", 993, "imap", "implicit")])


# -- faults and options ------------------------------------------------------------------------


def test_closed_fault_holds_the_port_but_refuses_connections() -> None:
    harness = Harness()

    async def scenario() -> None:
        async with harness.responder(
            [row("nntps", 563, "nntp")], faults={"nntps": Fault(closed=True)}
        ) as r:
            port = r.ports["nntps"]
            assert port > 0
            with pytest.raises(ConnectionRefusedError):
                await connect(port)
            # Nobody else can take the port while the demo needs it closed.
            with socket.socket() as other, pytest.raises(OSError):
                other.bind(("127.0.0.1", port))

    run(scenario)
    assert harness.records == []


def test_protocol_fault_serves_another_protocol_and_gc_rows_answer_as_global_catalog() -> None:
    harness = Harness()
    entries = [row("routing", 691, "routing"), row("gc", 3268, "ldap"), row("ldap", 389, "ldap")]

    async def scenario() -> None:
        faults = {"routing": Fault(protocol="smtp")}
        async with harness.responder(entries, faults=faults) as r:
            for key in ("routing", "gc", "ldap"):
                reader, writer = await connect(r.ports[key])
                await reader.readline()
                writer.close()
            await harness.settle(3)

    run(scenario)
    assert [proto for proto, _ in harness.options] == ["smtp", "ldap", "ldap"]
    assert [opts.global_catalog for _, opts in harness.options] == [False, True, False]
    assert {r.protocol for r in harness.records if r.key == "routing"} == {"smtp"}
    assert all(opts.peer_address == "127.0.0.1" for _, opts in harness.options)


def test_port_offset_moves_every_row() -> None:
    harness = Harness()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    entries = [row("smtp", free - 1000)]
    config = ResponderConfig(port_offset=1000)

    async def scenario() -> None:
        async with harness.responder(entries, config=config) as r:
            assert r.ports == {"smtp": free}
            reader, writer = await connect(free)
            assert await reader.readline() == BANNER
            writer.close()
            await harness.settle(1)

    run(scenario)
    record = harness.records[0]
    assert (record.port, record.bound_port) == (free - 1000, free)


def test_a_client_that_half_closes_still_gets_the_last_reply() -> None:
    harness = Harness()

    async def scenario() -> None:
        async with harness.responder([row("smtp")]) as r:
            reader, writer = await connect(r.ports["smtp"])
            await reader.readline()
            writer.write(b"QUIT\r\n")
            writer.write_eof()
            assert await reader.read() == b"221 bye\r\n"
            writer.close()
            await harness.settle(1)

    run(scenario)
    assert harness.records[0].heard == ["QUIT"]
    # The half-open state is asked for explicitly: asyncio would close the socket at the
    # client's FIN otherwise, and the goodbye could be lost when the FIN arrives first.
    assert Channel(lambda channel: None).eof_received() is True


def test_ipv6_loopback_and_the_peer_as_written_in_the_log() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 here")
    harness = Harness()
    config = ResponderConfig(binds=("::1",), ephemeral=True)

    async def scenario() -> None:
        async with harness.responder([row("smtp")], config=config) as r:
            reader, writer = await asyncio.open_connection("::1", r.ports["smtp"])
            assert await reader.readline() == BANNER
            writer.close()
            await harness.settle(1)

    try:
        run(scenario)
    except OSError as exc:
        pytest.skip(f"no IPv6 loopback here: {exc}")
    assert harness.records[0].peer.startswith("[::1]:")
    assert harness.options[0][1].peer_address == "::1"


# -- limits ----------------------------------------------------------------------------------


def test_connection_limit_closes_new_connections_at_once() -> None:
    harness = Harness()
    config = ResponderConfig(ephemeral=True, max_connections=2)

    async def scenario() -> None:
        async with harness.responder([row("smtp")], config=config) as r:
            port = r.ports["smtp"]
            kept = [await connect(port) for _ in range(2)]
            for reader, _ in kept:
                assert await reader.readline() == BANNER
            extra_reader, extra_writer = await connect(port)
            assert await closed_by_peer(extra_reader, within=2.0)
            assert r.turned_away == 1
            kept[0][1].close()
            await harness.settle(2)
            # A slot is free again: the next client is served.
            reader, writer = await connect(port)
            assert await reader.readline() == BANNER
            for _, w in (*kept, (extra_reader, extra_writer), (reader, writer)):
                w.close()

    run(scenario)
    assert any(rec.ended.startswith("turned away") for rec in harness.records)


def test_idle_timeout_closes_a_silent_client() -> None:
    harness = Harness()
    config = ResponderConfig(ephemeral=True, idle_timeout=0.3)

    async def scenario() -> None:
        async with harness.responder([row("smtp")], config=config) as r:
            reader, writer = await connect(r.ports["smtp"])
            began = time.monotonic()
            assert await reader.readline() == BANNER
            assert await closed_by_peer(reader, within=3.0)
            assert 0.25 < time.monotonic() - began < 2.0
            writer.close()
            await harness.settle(1)

    run(scenario)
    assert harness.records[0].ended == "idle for 0.3s"


def test_lifetime_cap_ends_a_chatty_client() -> None:
    harness = Harness()
    config = ResponderConfig(ephemeral=True, idle_timeout=5, lifetime=0.5)

    async def scenario() -> None:
        async with harness.responder([row("smtp")], config=config) as r:
            reader, writer = await connect(r.ports["smtp"])
            await reader.readline()
            began = time.monotonic()
            with pytest.raises((ConnectionError, AssertionError)):
                while time.monotonic() - began < 4:
                    writer.write(b"NOOP\r\n")
                    assert await reader.readline() == b"250 NOOP\r\n"
                    await asyncio.sleep(0.05)
            assert time.monotonic() - began < 2.0
            writer.close()
            await harness.settle(1)

    run(scenario)
    assert harness.records[0].ended == "closed at the 0.5s lifetime cap"


def test_a_flood_without_line_end_is_cut_at_the_line_limit() -> None:
    harness = Harness()
    config = ResponderConfig(ephemeral=True, line_limit=1024)

    async def scenario() -> None:
        async with harness.responder([row("smtp")], config=config) as r:
            reader, writer = await connect(r.ports["smtp"])
            await reader.readline()
            writer.write(b"A" * 200_000)
            assert await reader.readline() == b"500 line too long\r\n"
            assert await closed_by_peer(reader, within=2.0)
            writer.close()
            await harness.settle(1)

    run(scenario)
    assert harness.records[0].ended == "the responder closed"


# -- shutdown --------------------------------------------------------------------------------


def test_stop_ends_open_connections_and_frees_the_port() -> None:
    harness = Harness()

    async def scenario() -> None:
        responder = harness.responder([row("smtp")])
        port = (await responder.start())["smtp"]
        clients = [await connect(port) for _ in range(3)]
        for reader, _ in clients:
            await reader.readline()
        await responder.stop()
        assert responder.open_connections == 0
        for reader, writer in clients:
            assert await closed_by_peer(reader, within=2.0)
            writer.close()
        with pytest.raises(ConnectionRefusedError):
            await connect(port)

    run(scenario)
    assert [r.ended for r in harness.records] == ["the responder stopped"] * 3


# -- bind errors -----------------------------------------------------------------------------


def test_port_in_use_names_the_port_and_releases_what_was_bound() -> None:
    harness = Harness()

    async def scenario() -> None:
        with socket.create_server(("127.0.0.1", 0)) as taken:
            busy = taken.getsockname()[1]
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                free = probe.getsockname()[1]
            entries = [row("smtp", free), row("pop3", busy, "pop3")]
            responder = harness.responder(entries, config=ResponderConfig())
            with pytest.raises(BindError, match=f"port {busy} .*already taken") as caught:
                await responder.start()
            assert "--port-offset" in caught.value.hint
            # The row bound before the failure was let go again.
            with socket.create_server(("127.0.0.1", free)):
                pass

    run(scenario)


def test_permission_denied_suggests_an_offset_or_the_capability() -> None:
    denied = OSError(errno.EACCES, "error while attempting to bind: permission denied")
    error = bind_error(denied, row("smtp", 25), 25, ("0.0.0.0",))
    assert "no permission to listen on 0.0.0.0 port 25" in str(error)
    assert "--port-offset 10000" in error.hint
    assert "CAP_NET_BIND_SERVICE" in error.hint


def test_address_not_on_this_machine_is_explained() -> None:
    error = bind_error(OSError(errno.EADDRNOTAVAIL, "x"), row("smtp"), 25, ("192.0.2.1",))
    assert "not one of this machine's" in str(error)


def test_offset_past_the_last_port_is_a_bind_error() -> None:
    async def scenario() -> None:
        responder = Responder([row("gc", 3268, "ldap")], ResponderConfig(port_offset=64000))
        with pytest.raises(BindError, match="above 65535"):
            await responder.start()

    run(scenario)


# -- the log line ----------------------------------------------------------------------------


def test_log_line_escapes_what_the_peer_said() -> None:
    record = ConnectionRecord(
        started=datetime(2024, 3, 13, 12, 0, tzinfo=UTC),
        peer="[::1]:40000",
        key="smtp",
        port=25,
        bound_port=10025,
        protocol="smtp",
        tls="TLSv1.3",
        heard=["EHLO \x1b[2Jevil\r\nforged line"],
        ended="the client closed",
        duration=0.5,
    )
    line = format_record(record)
    assert "\x1b" not in line and "\n" not in line and "\r" not in line
    assert "\\x1b[2Jevil" in line
    assert "[::1]:40000 -> smtp 25 (on 10025): smtp over TLSv1.3;" in line
    assert line.endswith("ended: the client closed (0.50s)")


# -- load ------------------------------------------------------------------------------------


def _rss_kib() -> int:
    for line in Path(f"/proc/{os.getpid()}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


async def _greeted(port: int) -> bytes:
    reader, writer = await connect(port)
    try:
        return await reader.readline()
    finally:
        writer.write(b"QUIT\r\n")
        writer.close()


async def _round(port: int, clients: int) -> list[bytes]:
    return list(await asyncio.gather(*(_greeted(port) for _ in range(clients))))


def test_two_hundred_concurrent_smtp_clients_all_get_a_banner_with_flat_memory() -> None:
    records: list[ConnectionRecord] = []
    clients = 200

    async def scenario() -> None:
        config = ResponderConfig(ephemeral=True, hostname=LAB_HOST, max_connections=256)
        async with Responder([row("smtp")], config, on_connection=records.append) as r:
            port = r.ports["smtp"]
            began = time.monotonic()
            await _round(port, clients)  # warm-up: first-use allocations are not a leak
            baseline = _rss_kib()
            for _ in range(4):
                banners = await _round(port, clients)
                assert all(b.startswith(b"220 ") and b"ESMTP" in b for b in banners), banners[:3]
            assert time.monotonic() - began < 5.0
            growth = _rss_kib() - baseline
            assert growth < 8 * 1024, f"RSS grew by {growth} KiB over 800 connections"

    run(scenario, limit=30)
    assert len(records) >= 4 * clients
    assert not [r.ended for r in records if r.ended.startswith(("internal", "turned"))]
