"""`Stream` on its own, against real sockets on 127.0.0.1: what its small TLS layer sends,
raises and keeps, where asyncio's streams would have done the same for it."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import socket
import ssl
import struct
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from portcall.probing.stream import HOLD_LIMIT, Stream, _Wire
from portcall.tls.context import client_context
from tests.probing.servers import server_context
from tests.tls.conftest import issue, make_ca

#: What one read of the event loop's socket transport may add to the held bytes.
TRANSPORT_READ = 256 * 1024


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> ssl.SSLContext:
    directory = tmp_path_factory.mktemp("stream-pki")
    cert, key = issue(make_ca()).write(directory, "leaf")
    return server_context(str(cert), str(key))


@contextlib.contextmanager
def one_connection(serve: Callable[[socket.socket], None]) -> Iterator[int]:
    """A listening socket on 127.0.0.1 whose first connection `serve` handles in a thread."""
    listener = socket.create_server(("127.0.0.1", 0))
    failures: list[BaseException] = []

    def run() -> None:
        try:
            conn, _ = listener.accept()
            with conn:
                serve(conn)
        except BaseException as exc:  # reported by the test, not lost in the thread
            failures.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        thread.join(10)
        listener.close()
    assert not failures, failures


@contextlib.contextmanager
def counted_writes(stream: Stream) -> Iterator[list[bytes]]:
    """What `stream` writes to its socket transport meanwhile, one item per write (asyncio's
    loop: uvloop's transport cannot be patched)."""
    transport = stream.wire.transport
    assert transport is not None
    writes: list[bytes] = []
    write = transport.write

    def counted(data: bytes | bytearray | memoryview) -> None:
        writes.append(bytes(data))
        write(data)

    transport.write = counted  # type: ignore[method-assign]
    try:
        yield writes
    finally:
        transport.write = write  # type: ignore[method-assign]


def test_a_peer_that_floods_is_held_to_the_limit() -> None:
    """A peer writing far more than is read fills at most `HOLD_LIMIT` (and one socket read)
    of memory; every byte still arrives, in order."""
    flood = bytes(range(256)) * (16 * 1024)  # 4 MiB

    def serve(conn: socket.socket) -> None:
        conn.sendall(flood)
        conn.shutdown(socket.SHUT_WR)

    async def go(port: int) -> tuple[bytes, int]:
        stream = await Stream.connect("127.0.0.1", port)
        got = bytearray()
        held = 0
        await asyncio.sleep(0.2)  # let the flood arrive before anything is read
        while chunk := await stream.receive():
            held = max(held, len(stream.wire.received))
            got += chunk
        await stream.close()
        return bytes(got), held

    with one_connection(serve) as port:
        got, held = asyncio.run(go(port))
    assert got == flood
    assert HOLD_LIMIT // 2 < held <= HOLD_LIMIT + TRANSPORT_READ


def test_bytes_sent_before_the_hello_fail_the_handshake(tls_server: ssl.SSLContext) -> None:
    """Plaintext a server sends unasked before the client's TLS hello is taken as TLS (and
    fails it), never handed out later as if it had come through TLS."""

    def serve(conn: socket.socket) -> None:
        conn.sendall(b"250 injected after STARTTLS\r\n")
        conn.recv(4096)  # the client's hello

    async def go(port: int) -> BaseException:
        stream = await Stream.connect("127.0.0.1", port)
        await asyncio.sleep(0.2)  # the unasked line is in before the upgrade starts
        with pytest.raises(ssl.SSLError) as caught:
            await stream.start_tls(client_context(verify=False, legacy=False), "")
        await stream.close()
        assert stream.broken
        return caught.value

    with one_connection(serve) as port:
        error = asyncio.run(go(port))
    assert "WRONG_VERSION_NUMBER" in str(error) or "record" in str(error).lower()


def test_a_close_during_the_handshake_is_a_reset() -> None:
    """As with asyncio's TLS protocol: the peer's end before its answer to the hello is a
    ConnectionResetError, which the probe reads as a dropped hello."""

    def serve(conn: socket.socket) -> None:
        conn.recv(4096)

    async def go(port: int) -> None:
        stream = await Stream.connect("127.0.0.1", port)
        with pytest.raises(ConnectionResetError):
            await stream.start_tls(client_context(verify=False, legacy=False), "")
        await stream.close()

    with one_connection(serve) as port:
        asyncio.run(go(port))


def test_tls_closes_with_close_notify(tls_server: ssl.SSLContext) -> None:
    """The server reads the client's close_notify (a clean TLS end, not a cut connection),
    and what it sent before its own close_notify is read in full."""
    ends: list[str] = []

    def serve(conn: socket.socket) -> None:
        with tls_server.wrap_socket(conn, server_side=True) as tls:
            tls.sendall(b"* OK ready\r\n")
            ends.append("clean" if tls.recv(4096) == b"" else "data")
            tls.unwrap()

    async def go(port: int) -> tuple[bytes, str | None]:
        context = client_context(verify=False, legacy=False)
        stream = await Stream.connect("127.0.0.1", port, tls=context)
        session = stream.tls_session()
        greeting = await stream.receive()
        await stream.close()
        return greeting, session.version if session else None

    with one_connection(serve) as port:
        greeting, version = asyncio.run(go(port))
    assert greeting == b"* OK ready\r\n"
    assert version in {"TLSv1.2", "TLSv1.3"}
    assert ends == ["clean"]


@pytest.mark.parametrize("library", ["pyopenssl", "ssl"])
def test_the_finished_leaves_with_the_first_request(
    library: str, tls_server: ssl.SSLContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """TLS 1.3: the client's Finished waits for the first request and leaves in the same
    write; the server still answers, and a peer that speaks first still gets it at once."""
    monkeypatch.setenv("PORTCALL_TLS", library)
    tls_server.minimum_version = ssl.TLSVersion.TLSv1_3

    def serve(conn: socket.socket) -> None:
        with tls_server.wrap_socket(conn, server_side=True) as tls:
            tls.sendall(b"echo: " + tls.recv(4096))

    async def go(port: int) -> tuple[bytes, int, bool]:
        context = client_context(verify=False, legacy=False)
        stream = await Stream.connect("127.0.0.1", port, tls=context)
        held = stream.wire.tls is not None and stream.wire.tls.unsent
        with counted_writes(stream) as writes:
            await stream.send(b"ping")
            reply = await stream.receive()
        await stream.close()
        return reply, len(writes), held

    try:
        with one_connection(serve) as port:
            reply, writes, held = asyncio.run(go(port))
    finally:
        tls_server.minimum_version = ssl.TLSVersion.TLSv1_2
    assert reply == b"echo: ping"
    assert held  # nothing written between the handshake's end and the request
    assert writes == 1  # the Finished and the request, in one segment


def test_an_alert_after_the_handshake_is_raised_by_receive(tls_server: ssl.SSLContext) -> None:
    """A TLS record that does not decrypt ends the stream with OpenSSL's error."""

    def serve(conn: socket.socket) -> None:
        with tls_server.wrap_socket(conn, server_side=True) as tls:
            tls.recv(1)  # the handshake is done once the client could send
            # A record nobody encrypted, under the TLS socket (which took over `conn`).
            os.write(tls.fileno(), b"\x17\x03\x03\x00\x20" + b"\x00" * 32)

    async def go(port: int) -> None:
        context = client_context(verify=False, legacy=False)
        stream = await Stream.connect("127.0.0.1", port, tls=context)
        await stream.send(b"x")
        with pytest.raises(ssl.SSLError):
            while await stream.receive():
                pass
        await stream.close()

    with one_connection(serve) as port:
        asyncio.run(go(port))


def test_closed_streams_leave_no_cycle_behind(tmp_path: Path) -> None:
    """Connections that end well, fail their handshake, or are reset are freed by reference
    counting alone: none waits in a cycle (asyncio's transport keeps a bound method of
    itself; an error kept for `receive` has frames that refer to its connection)."""
    cert, key = issue(make_ca()).write(tmp_path, "leaf")
    context = server_context(str(cert), str(key))
    (tmp_path / "other-ca.pem").write_bytes(make_ca().pem)
    verifying = client_context(verify=True, legacy=False, cafile=str(tmp_path / "other-ca.pem"))
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        for _ in range(3):  # two good TLS connections, one whose chain is refused
            conn, _ = listener.accept()
            with (
                conn,
                contextlib.suppress(OSError, ssl.SSLError),
                context.wrap_socket(conn, server_side=True) as tls,
            ):
                tls.sendall(b"* OK ready\r\n")
                tls.recv(4096)
                tls.unwrap()
        conn, _ = listener.accept()
        conn.recv(16)  # connected for the client too
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.sendall(b"+OK then a reset\r\n")
        conn.close()

    async def go(port: int) -> None:
        unverified = client_context(verify=False, legacy=False)
        for _ in range(2):
            stream = await Stream.connect("127.0.0.1", port, tls=unverified)
            await stream.receive()
            await stream.close()
        stream = await Stream.connect("127.0.0.1", port)
        with pytest.raises(ssl.SSLCertVerificationError):
            await stream.start_tls(verifying, "")
        await stream.close()
        stream = await Stream.connect("127.0.0.1", port)
        await stream.send(b"go\r\n")
        await asyncio.sleep(0.2)  # the reset is in before the greeting is read
        with pytest.raises(ConnectionResetError):
            while await stream.receive():
                pass
        await stream.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    gc.collect()
    gc.disable()
    try:
        asyncio.run(go(listener.getsockname()[1]))
        thread.join(10)
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        kinds = (Stream, _Wire, asyncio.BaseTransport, ssl.SSLObject, ssl.MemoryBIO, BaseException)
        left = [o for o in gc.garbage if isinstance(o, kinds)]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
        listener.close()
    assert not left, left[:5]


def test_a_last_command_leaves_with_the_close_notify(tls_server: ssl.SSLContext) -> None:
    """What is sent just before closing (QUIT, LOGOUT, an unbind) goes out in one write with
    the close_notify; a command the peer must answer goes out before the wait for it."""
    said: list[bytes] = []

    def serve(conn: socket.socket) -> None:
        with tls_server.wrap_socket(conn, server_side=True) as tls:
            tls.sendall(b"* OK ready\r\n")
            said.append(tls.recv(4096))
            tls.sendall(b"* CAPABILITY IMAP4rev1\r\n")
            said.append(tls.recv(4096))
            with contextlib.suppress(OSError, ssl.SSLError):
                tls.unwrap()

    async def go(port: int) -> list[bytes]:
        context = client_context(verify=False, legacy=False)
        stream = await Stream.connect("127.0.0.1", port, tls=context)
        await stream.receive()  # the greeting (the wait for it wrote the client's Finished)
        with counted_writes(stream) as writes:
            await stream.send(b"a1 CAPABILITY\r\n")
            assert writes == []  # held back until the stream waits for the answer
            await stream.receive()
            assert len(writes) == 1
            await stream.send(b"a2 LOGOUT\r\n")
            await stream.close()
        return writes

    with one_connection(serve) as port:
        writes = asyncio.run(go(port))
    assert len(writes) == 2  # the command, then LOGOUT and the close_notify together
    assert said == [b"a1 CAPABILITY\r\n", b"a2 LOGOUT\r\n"]
