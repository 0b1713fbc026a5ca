"""portcall's own responders under abuse: floods past the connection limits, slowloris
clients, overlong lines on every protocol, garbage around STARTTLS and plaintext smuggled
behind it. Through all of it a well-behaved client is served, memory stays flat, and no
connection ends in an internal error.

tests/responders/test_server.py covers each limit once with a scripted handshake; here the
real protocol servers take the abuse, many clients at once. Loopback only, bounded in count
and time.
"""

from __future__ import annotations

import asyncio
import gc
import os
import socket
import ssl
import time
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Final

import pytest

from portcall.catalog import PortEntry, load_catalog
from portcall.responders.log import HEARD_KEPT, HEARD_SHOWN, ConnectionRecord, format_record
from portcall.responders.server import Responder, ResponderConfig
from tests.hostile.zoo import ber
from tests.responders.running import LAB_HOST

CATALOG: Final = load_catalog()
#: The abusers connect from 127.0.0.1, the well-behaved client from here (loopback too).
GOOD_SOURCE: Final = "127.0.0.2"
#: What a well-behaved client may wait for its banner and one answer during the abuse.
SERVED_WITHIN: Final = 1.0


def rows(*keys: str) -> list[PortEntry]:
    found = [CATALOG.by_key(key) for key in keys]
    assert all(found), keys
    return [entry for entry in found if entry is not None]


@dataclass
class Abused:
    """A responder on ephemeral ports, its log, and what its event loop reported."""

    responder: Responder
    records: list[ConnectionRecord] = field(default_factory=list)
    loop_errors: list[dict[str, Any]] = field(default_factory=list)

    def port(self, key: str) -> int:
        return self.responder.ports[key]

    async def settle(self, count: int, within: float = 5.0) -> None:
        """Wait until `count` connections have been logged and none is open."""
        async with asyncio.timeout(within):
            while len(self.records) < count or self.responder.open_connections:
                await asyncio.sleep(0.02)

    def forget(self) -> None:
        """Check the log so far, then drop it (so that it does not count as memory growth)."""
        self.assert_unharmed()
        self.records.clear()

    def assert_unharmed(self) -> None:
        broken = [format_record(r) for r in self.records if r.ended.startswith("internal")]
        assert broken == []
        assert self.loop_errors == []


@asynccontextmanager
async def abused(
    entries: list[PortEntry], tls: dict[str, ssl.SSLContext] | None = None, **config: Any
) -> AsyncIterator[Abused]:
    loop = asyncio.get_running_loop()
    errors: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _, context: errors.append(context))
    settings = ResponderConfig(ephemeral=True, hostname=LAB_HOST, **config)
    records: list[ConnectionRecord] = []
    responder = Responder(entries, settings, tls=tls, on_connection=records.append)
    holder = Abused(responder, records, errors)
    async with responder:
        yield holder
    holder.assert_unharmed()


def run(scenario: Callable[[], Awaitable[None]], limit: float = 30.0) -> None:
    async def bounded() -> None:
        async with asyncio.timeout(limit):
            await scenario()

    asyncio.run(bounded())


async def connect(
    port: int, source: str = "127.0.0.1"
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))


async def ended_by_peer(reader: asyncio.StreamReader, within: float) -> bool:
    """Whether the responder closes the connection within `within` seconds."""
    try:
        async with asyncio.timeout(within):
            while await reader.read(64 * 1024):
                pass
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    return True


async def smtp_reply(reader: asyncio.StreamReader) -> list[bytes]:
    """One SMTP reply, all its lines (RFC 5321 section 4.2)."""
    lines = [await reader.readline()]
    while lines[-1][3:4] == b"-":
        lines.append(await reader.readline())
    return lines


async def well_behaved(port: int) -> float:
    """An SMTP client from another address: banner, EHLO, QUIT. Returns how long it took."""
    took = await _conversation(port)
    assert took is not None, "the well-behaved client was turned away"
    return took


async def served_within(port: int, within: float) -> float:
    """Like `well_behaved`, but a client turned away tries again until `within` has passed."""
    began = time.monotonic()
    while await _conversation(port) is None:
        assert time.monotonic() - began < within, f"turned away for {within:g}s"
        await asyncio.sleep(0.05)
    return time.monotonic() - began


async def _conversation(port: int) -> float | None:
    """How long banner, EHLO and QUIT took; None when the responder closed at once."""
    began = time.monotonic()
    reader, writer = await connect(port, GOOD_SOURCE)
    try:
        (banner,) = await smtp_reply(reader)
        if not banner:
            return None
        assert banner.startswith(b"220 ") and b"ESMTP" in banner, banner
        writer.write(b"EHLO good.example\r\n")
        assert (await smtp_reply(reader))[-1].startswith(b"250 ")
        writer.write(b"QUIT\r\n")
        assert (await reader.readline()).startswith(b"221")
    finally:
        writer.close()
    return time.monotonic() - began


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


# -- floods ------------------------------------------------------------------------------------


def test_a_flood_from_one_address_leaves_room_for_everyone_else() -> None:
    """200 connections held open from one address, against a limit of 32 a client: the 32
    get their banner, the rest are closed at once, and another client is served meanwhile."""
    flood, per_client = 200, 32

    async def scenario() -> None:
        before = open_descriptors()
        async with abused(
            rows("smtp"), max_connections=64, max_per_client=per_client, idle_timeout=5
        ) as abuse:
            port = abuse.port("smtp")
            clients = [await connect(port) for _ in range(flood)]
            began = time.monotonic()
            firsts = await asyncio.gather(*(_first_bytes(reader) for reader, _ in clients))
            served = [first for first in firsts if first.startswith(b"220 ")]
            assert len(served) == per_client
            assert firsts.count(b"") == flood - per_client  # closed, not left hanging
            assert time.monotonic() - began < 2.0
            assert abuse.responder.turned_away == flood - per_client
            assert await well_behaved(port) < SERVED_WITHIN
            for _, writer in clients:
                writer.close()
            await abuse.settle(flood + 1)
        # Every socket of the flood is gone again: nothing leaked.
        assert open_descriptors() <= before + 2
        away = {r.ended for r in abuse.records if r.ended.startswith("turned away")}
        assert away == {f"turned away: {per_client} connections already open from 127.0.0.1"}

    run(scenario)


def test_a_per_client_limit_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="max_per_client"):
        ResponderConfig(max_per_client=0)


async def _first_bytes(reader: asyncio.StreamReader) -> bytes:
    try:
        async with asyncio.timeout(2.0):
            return await reader.readline()
    except ConnectionResetError:
        return b""


def test_waves_of_connections_past_the_limit_leave_memory_flat() -> None:
    """Ten waves of 100 connections against a limit of 40, each client leaving after its
    banner or its rejection: the traced memory after the waves is about what it was after
    the first, and the well-behaved client is served between waves."""

    async def wave(port: int) -> None:
        clients = await asyncio.gather(*(connect(port) for _ in range(100)))
        await asyncio.gather(*(_first_bytes(reader) for reader, _ in clients))
        for _, writer in clients:
            writer.close()

    async def scenario() -> None:
        async with abused(rows("smtp"), max_connections=40) as abuse:
            port = abuse.port("smtp")
            await wave(port)  # first-use allocations are not a leak
            await abuse.settle(100)
            abuse.forget()
            gc.collect()
            tracemalloc.start()
            try:
                baseline = tracemalloc.get_traced_memory()[0]
                for _ in range(9):
                    await wave(port)
                    await abuse.settle(100)
                    assert await well_behaved(port) < SERVED_WITHIN
                    await abuse.settle(101)
                    abuse.forget()
                gc.collect()  # asyncio leaves cycles (tasks, exceptions) to the collector
                growth = tracemalloc.get_traced_memory()[0] - baseline
            finally:
                tracemalloc.stop()
            assert abuse.responder.turned_away >= 9 * 60 - 50  # most waves overflowed
            # 900 connections came and went; about 60 KiB stays (small strings, growing
            # slower than the connections). A leaked connection would keep its buffers,
            # ~100 KiB each.
            assert growth < 256 * 1024, f"traced memory grew by {growth} bytes"

    run(scenario)


# -- slowloris -------------------------------------------------------------------------------


def test_slowloris_clients_are_cut_while_others_are_served() -> None:
    """As many clients as the responder takes, each sending one byte every 0.1 s and never
    finishing a line: the idle timeout counts from the last reply, not the last byte, so each
    is cut after it, and a client turned away meanwhile is served soon after."""
    count, idle = 24, 0.5

    async def trickle(port: int) -> float:
        reader, writer = await connect(port)
        began = time.monotonic()
        await reader.readline()
        try:
            while time.monotonic() - began < 10:
                writer.write(b"E")
                await writer.drain()
                await asyncio.sleep(0.1)
                if reader.at_eof():
                    break
        except ConnectionError:
            pass
        writer.close()
        return time.monotonic() - began

    async def scenario() -> None:
        async with abused(rows("smtp"), max_connections=count, idle_timeout=idle) as abuse:
            port = abuse.port("smtp")
            slow = [asyncio.create_task(trickle(port)) for _ in range(count)]
            await asyncio.sleep(0.2)
            assert await served_within(port, idle + SERVED_WITHIN) < idle + SERVED_WITHIN
            held = await asyncio.gather(*slow)
            assert max(held) < idle + 1.0, held
            await abuse.settle(count + 1)
        cut = [r for r in abuse.records if r.peer.startswith("127.0.0.1:")]
        assert len(cut) == count
        ends = {r.ended.split(" (")[0] for r in cut}
        assert ends == {f"no whole command within {idle:g}s"}, ends

    run(scenario)


def test_a_client_that_never_reads_its_replies_is_cut_with_memory_bounded() -> None:
    """Two clients pipeline HELP (a 200-byte answer to 6 bytes) without end and never read:
    the responder stops reading once its replies back up, so its buffers stay small, it
    closes them once its replies have waited the idle timeout, and another is served."""
    idle = 0.5

    async def amplify(port: int) -> None:
        # A small receive window, so that the replies back up sooner (the responder's own
        # send buffer still takes some 25,000 of them on loopback).
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        reader, writer = await asyncio.open_connection(sock=sock)
        await smtp_reply(reader)
        # Write until the responder gives up on us and resets the connection.
        with pytest.raises(ConnectionError):
            async with asyncio.timeout(10):
                while True:
                    writer.write(b"HELP\r\n" * 5000)
                    await writer.drain()
        writer.transport.abort()

    async def scenario() -> None:
        async with abused(rows("smtp"), idle_timeout=idle) as abuse:
            port = abuse.port("smtp")
            tracemalloc.start()
            try:
                clients = [asyncio.create_task(amplify(port)) for _ in range(2)]
                await asyncio.sleep(0.2)
                assert await well_behaved(port) < SERVED_WITHIN
                await asyncio.gather(*clients)
                peak = tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
            await abuse.settle(3)
        # A connection holds at most one read of asyncio's (256 KiB) three times over (our
        # inbox, its copy, the handshake's buffer) and 64 KiB of queued replies: ~0.8 MiB,
        # ~2.5 MiB for the three clients (2.3 MiB measured). Answering every HELP into memory
        # would queue ~50 MiB; keeping every command heard, and a timer a reply, took 10 MiB.
        assert peak < 4 * 1024 * 1024, f"peak {peak / 2**20:.1f} MiB"
        amplifiers = [r for r in abuse.records if r.peer.startswith("127.0.0.1:")]
        assert {r.ended for r in amplifiers} == {f"our reply unread for {idle:g}s"}, amplifiers
        # Thousands of commands were heard on each; the record keeps the first and counts.
        for record in amplifiers:
            assert len(record.heard) == HEARD_KEPT and record.heard_more > 1000, record
            assert f"… and {HEARD_KEPT - HEARD_SHOWN + record.heard_more} more" in format_record(
                record
            )

    run(scenario)


def test_half_a_client_hello_is_cut_at_the_idle_timeout(
    contexts: dict[str, ssl.SSLContext], client_tls: ssl.SSLContext
) -> None:
    """Twenty clients send half a TLS ClientHello to an implicit-TLS row and stall: each is
    dropped at the idle timeout, and a client with a whole handshake is served meanwhile."""
    idle = 0.5
    half_hello = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(32)

    async def stall(port: int) -> float:
        reader, writer = await connect(port)
        began = time.monotonic()
        writer.write(half_hello)
        assert await ended_by_peer(reader, within=idle + 2.0)
        writer.close()
        return time.monotonic() - began

    async def scenario() -> None:
        async with abused(rows("pop3s"), tls=contexts, idle_timeout=idle) as abuse:
            port = abuse.port("pop3s")
            stalls = [asyncio.create_task(stall(port)) for _ in range(20)]
            await asyncio.sleep(0.1)
            began = time.monotonic()
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", port, ssl=client_tls, server_hostname=LAB_HOST
            )
            assert (await reader.readline()).startswith(b"+OK")
            writer.write(b"QUIT\r\n")
            assert (await reader.readline()).startswith(b"+OK")
            writer.close()
            assert time.monotonic() - began < SERVED_WITHIN
            held = await asyncio.gather(*stalls)
            assert idle - 0.1 < min(held) and max(held) < idle + 1.0, held
            await abuse.settle(21)
        failed = [r for r in abuse.records if r.tls is None]
        assert len(failed) == 20
        assert all(r.ended.startswith("TLS handshake failed") for r in failed), failed

    run(scenario)


# -- overlong lines --------------------------------------------------------------------------

#: Each protocol's responder, and what it says before the client does (None: nothing).
SPEAKS_FIRST: Final = {"smtp", "pop3", "imap", "nntp", "routing"}


@pytest.mark.parametrize("key", ["smtp", "pop3", "imap", "nntp", "http", "ldap", "routing"])
def test_overlong_lines_end_the_connection_on_every_protocol(key: str) -> None:
    """Ten clients each send 1 MiB without a line end (for LDAP, a BER header claiming it)
    while another is served; each is answered or closed, memory stays bounded."""
    limit = 1024
    chunk = (b"\x30\x84\x00\x10\x00\x00" if key == "ldap" else b"") + b"A" * (64 * 1024 - 6)

    async def flood(port: int) -> bool:
        reader, writer = await connect(port)
        try:
            for _ in range(16):
                writer.write(chunk)
                await asyncio.wait_for(writer.drain(), 2.0)
        except (ConnectionError, TimeoutError):
            pass
        closed = await ended_by_peer(reader, within=3.0)
        writer.close()
        return closed

    async def scenario() -> None:
        async with abused(rows(key, "smtp"), line_limit=limit, idle_timeout=2) as abuse:
            tracemalloc.start()
            try:
                floods = [asyncio.create_task(flood(abuse.port(key))) for _ in range(10)]
                assert await well_behaved(abuse.port("smtp")) < SERVED_WITHIN
                closed = await asyncio.gather(*floods)
                peak = tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
            assert all(closed), closed
            await abuse.settle(11)
            # 10 MiB were sent; the responder keeps at most its read buffer (64 KiB) per
            # client, the clients their 64 KiB chunk.
            assert peak < 4 * 1024 * 1024, f"peak {peak / 2**20:.1f} MiB"
        ends = {r.ended for r in abuse.records if r.key == key}
        assert ends <= {"the responder closed", "the client closed"}, ends

    run(scenario)


# -- STARTTLS --------------------------------------------------------------------------------


async def _smtp_to_starttls(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await smtp_reply(reader)
    writer.write(b"EHLO client.example\r\n")
    await smtp_reply(reader)


def test_garbage_before_starttls_is_refused_and_the_upgrade_still_works(
    contexts: dict[str, ssl.SSLContext], client_tls: ssl.SSLContext
) -> None:
    garbage = [b"\x00\xff\xfe\x1b[2J\r\n", b"\x16\x03\x01\x00\x05hello\r\n", b"MAIL\tFROM\r\n"]

    async def scenario() -> None:
        async with abused(rows("smtp"), tls=contexts) as abuse:
            reader, writer = await connect(abuse.port("smtp"))
            await _smtp_to_starttls(reader, writer)
            for line in garbage:
                writer.write(line)
                (reply,) = await smtp_reply(reader)
                assert reply[:1] == b"5", (line, reply)
            writer.write(b"STARTTLS\r\n")
            assert (await reader.readline()).startswith(b"220 ")
            await writer.start_tls(client_tls, server_hostname=LAB_HOST)
            writer.write(b"EHLO client.example\r\n")
            assert (await smtp_reply(reader))[-1].startswith(b"250 ")
            writer.write(b"QUIT\r\n")
            assert (await reader.readline()).startswith(b"221")
            writer.close()
            await abuse.settle(1)
        (record,) = abuse.records
        assert record.tls in ("TLSv1.2", "TLSv1.3")
        assert "\x1b" not in format_record(record)

    run(scenario)


@dataclass(frozen=True)
class Upgrade:
    """How one protocol asks for STARTTLS, and a command to smuggle behind it."""

    #: Sent before the upgrade (after the greeting), its reply read by `settle`.
    ask: bytes
    #: The start of the server's go-ahead.
    go_ahead: bytes
    #: Pipelined behind `ask`: must never be answered.
    smuggled: bytes
    #: How the smuggled command shows in an answer and in the log.
    marker: bytes
    #: Sent after TLS is up; then the client closes and reads everything the server said.
    after: bytes


TEXT_UPGRADES: Final = {
    "smtp": Upgrade(
        b"STARTTLS\r\n", b"220 ", b"HELP\r\n", b"214", b"EHLO client.example\r\nQUIT\r\n"
    ),
    "pop3": Upgrade(b"STLS\r\n", b"+OK", b"STAT\r\n", b"STAT", b"CAPA\r\nQUIT\r\n"),
    "imap": Upgrade(
        b"a STARTTLS\r\n", b"a OK", b"s1 NOOP\r\n", b"s1", b"b CAPABILITY\r\nc LOGOUT\r\n"
    ),
    "nntp": Upgrade(b"STARTTLS\r\n", b"382", b"HELP\r\n", b"100", b"CAPABILITIES\r\nQUIT\r\n"),
}


async def _greeting(key: str, reader: asyncio.StreamReader) -> None:
    if key == "smtp":
        await smtp_reply(reader)
    else:
        await reader.readline()


async def _read_all(reader: asyncio.StreamReader) -> bytes:
    said = b""
    async with asyncio.timeout(3.0):
        while chunk := await reader.read(64 * 1024):
            said += chunk
    return said


@pytest.mark.parametrize("key", sorted(TEXT_UPGRADES))
def test_garbage_instead_of_a_client_hello_ends_only_that_connection(
    key: str, contexts: dict[str, ssl.SSLContext]
) -> None:
    """Ten clients ask for STARTTLS and send garbage where the ClientHello belongs: each
    connection ends with a failed handshake, and an SMTP client is served meanwhile."""
    upgrade = TEXT_UPGRADES[key]

    async def scenario() -> None:
        async with abused(rows(key, "smtp"), tls=contexts, idle_timeout=1.0) as abuse:
            victims = []
            for _ in range(10):
                reader, writer = await connect(abuse.port(key))
                await _greeting(key, reader)
                writer.write(upgrade.ask)
                assert (await reader.readline()).startswith(upgrade.go_ahead)
                writer.write(b"\x99 not a TLS record \xff" * 200)
                victims.append((reader, writer))
            assert await well_behaved(abuse.port("smtp")) < SERVED_WITHIN
            for reader, writer in victims:
                assert await ended_by_peer(reader, within=2.0)
                writer.close()
            await abuse.settle(11)
        failed = [r.ended for r in abuse.records if r.peer.startswith("127.0.0.1:")]
        assert len(failed) == 10
        assert all(ended.startswith("TLS handshake failed") for ended in failed), failed

    run(scenario)


@pytest.mark.parametrize("separately", [False, True], ids=["same-packet", "next-packet"])
@pytest.mark.parametrize("key", sorted(TEXT_UPGRADES))
def test_plaintext_pipelined_after_starttls_is_never_answered(
    key: str, separately: bool, contexts: dict[str, ssl.SSLContext], client_tls: ssl.SSLContext
) -> None:
    """RFC 3207 section 4.2 (and RFC 2595 section 3.1 for IMAP and POP3, RFC 4642 for NNTP):
    a command the client pipelined behind STARTTLS in plaintext must be thrown away."""
    upgrade = TEXT_UPGRADES[key]

    async def scenario() -> None:
        async with abused(rows(key), tls=contexts) as abuse:
            reader, writer = await connect(abuse.port(key))
            await _greeting(key, reader)
            if separately:
                writer.write(upgrade.ask)
                await writer.drain()
                writer.write(upgrade.smuggled)
            else:
                writer.write(upgrade.ask + upgrade.smuggled)
            go_ahead = await reader.readline()
            assert go_ahead.startswith(upgrade.go_ahead), go_ahead
            try:
                await writer.start_tls(client_tls, server_hostname=LAB_HOST)
            except (ssl.SSLError, ConnectionError):
                # The smuggled bytes reached the server after it turned to TLS and spoiled
                # the handshake: thrown away as well, the other way RFC 3207 allows.
                assert separately
                writer.close()
            else:
                writer.write(upgrade.after)
                said = await _read_all(reader)
                assert upgrade.marker not in said, said
                assert said, "nothing answered after the upgrade"
                writer.close()
            await abuse.settle(1)
        (record,) = abuse.records
        heard = " ".join(record.heard).encode()
        assert upgrade.smuggled.split()[-1] not in heard, record.heard

    run(scenario)


# -- LDAP StartTLS ---------------------------------------------------------------------------

STARTTLS_OID: Final = b"1.3.6.1.4.1.1466.20037"


def _ldap_message(message_id: int, op: bytes) -> bytes:
    return ber(0x30, ber(0x02, bytes([message_id])) + op)


def _rootdse_search(message_id: int) -> bytes:
    """A base search of the rootDSE for (objectClass=*) (RFC 4511 section 4.5.1)."""
    body = ber(0x04, b"") + ber(0x0A, b"\x00") + ber(0x0A, b"\x00")
    body += ber(0x02, b"\x00") + ber(0x02, b"\x00") + ber(0x01, b"\x00")
    body += ber(0x87, b"objectClass") + ber(0x30, b"")
    return _ldap_message(message_id, ber(0x63, body))


def _message_ids(said: bytes) -> list[int]:
    """The messageID of each LDAPMessage in `said` (definite lengths, one-octet IDs)."""
    ids = []
    while said:
        assert said[0] == 0x30, said[:16]
        first = said[1]
        count = first & 0x7F if first & 0x80 else 0
        length = int.from_bytes(said[2 : 2 + count], "big") if count else first
        start = 2 + count
        assert said[start : start + 2] == b"\x02\x01", said[start : start + 4]
        ids.append(said[start + 2])
        said = said[start + length :]
    return ids


@pytest.mark.parametrize("separately", [False, True], ids=["same-packet", "next-packet"])
def test_ldap_search_pipelined_after_starttls_is_never_answered(
    separately: bool, contexts: dict[str, ssl.SSLContext], client_tls: ssl.SSLContext
) -> None:
    ask = _ldap_message(1, ber(0x77, ber(0x80, STARTTLS_OID)))
    smuggled = _rootdse_search(2)

    async def scenario() -> None:
        async with abused(rows("ldap"), tls=contexts) as abuse:
            reader, writer = await connect(abuse.port("ldap"))
            if separately:
                writer.write(ask)
                await writer.drain()
                writer.write(smuggled)
            else:
                writer.write(ask + smuggled)
            head = await reader.readexactly(2)
            response = head + await reader.readexactly(head[1])
            assert _message_ids(response) == [1]
            try:
                await writer.start_tls(client_tls, server_hostname=LAB_HOST)
            except (ssl.SSLError, ConnectionError):
                assert separately
                writer.close()
            else:
                writer.write(_rootdse_search(3) + _ldap_message(4, ber(0x42, b"")))
                ids = _message_ids(await _read_all(reader))
                assert 2 not in ids and 3 in ids, ids
                writer.close()
            await abuse.settle(1)

    run(scenario)
