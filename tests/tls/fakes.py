"""TLS peers of the 2000/2003 era, built from bytes: a ClientHello reader, the answer of a
server that offers only RC4/3DES, and a front that drops hellos newer than TLS 1.0.

Written independently of `portcall.tls.rawhello` (its own struct code, from RFC 5246), so that
the tests of portcall's reader do not check it against itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import ssl
import struct
import threading
import warnings
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

TLS10, TLS12 = 0x0301, 0x0303
RC4_SHA, DES3_SHA, AES128_SHA = 0x0005, 0x000A, 0x002F
#: What a Windows Server 2003 without the AES update offers, in its order.
SCHANNEL_2003 = (RC4_SHA, 0x0004, DES3_SHA)
SUPPORTED_VERSIONS = 43


@dataclass
class Hello:
    record_version: int
    version: int
    suites: list[int]
    extensions: dict[int, bytes]

    @property
    def highest(self) -> int:
        """The highest version the hello offers, supported_versions included."""
        offered = self.extensions.get(SUPPORTED_VERSIONS)
        if offered is None:
            return self.version
        listing = offered[1:]
        return max(struct.unpack(f"!{len(listing) // 2}H", listing))


def parse_client_hello(record: bytes) -> Hello:
    kind, record_version, length = struct.unpack_from("!BHH", record)
    assert kind == 22 and len(record) == 5 + length, record[:16]
    body = record[9:]
    assert record[5] == 1  # client_hello
    version = struct.unpack_from("!H", body)[0]
    at = 2 + 32
    at += 1 + body[at]
    (count,) = struct.unpack_from("!H", body, at)
    suites = list(struct.unpack_from(f"!{count // 2}H", body, at + 2))
    at += 2 + count
    at += 1 + body[at]
    extensions: dict[int, bytes] = {}
    if at < len(body):
        (total,) = struct.unpack_from("!H", body, at)
        at += 2
        end = at + total
        while at < end:
            kind, size = struct.unpack_from("!HH", body, at)
            extensions[kind] = body[at + 4 : at + 4 + size]
            at += 4 + size
    return Hello(record_version, version, suites, extensions)


async def read_record(reader: asyncio.StreamReader) -> bytes:
    header = await reader.readexactly(5)
    return header + await reader.readexactly(struct.unpack("!H", header[3:])[0])


def handshake_record(kind: int, body: bytes, version: int = TLS10) -> bytes:
    message = bytes([kind]) + len(body).to_bytes(3, "big") + body
    return struct.pack("!BHH", 22, version, len(message)) + message


def server_flight(version: int, suite: int, chain: list[bytes]) -> bytes:
    """ServerHello + Certificate + ServerHelloDone, as one server write."""
    hello = struct.pack("!H", version) + os.urandom(32) + b"\x00" + struct.pack("!HB", suite, 0)
    listing = b"".join(len(der).to_bytes(3, "big") + der for der in chain)
    certificate = len(listing).to_bytes(3, "big") + listing
    return b"".join(
        (
            handshake_record(2, hello, version),
            handshake_record(11, certificate, version),
            handshake_record(14, b"", version),
        )
    )


def alert(description: int = 40) -> bytes:
    return struct.pack("!BHHBB", 21, TLS10, 2, 2, description)


@dataclass
class Rc4OnlyServer:
    """The TLS part of a Windows Server 2003 without the AES update: a hello that offers none
    of `suites` gets a handshake_failure alert; otherwise ServerHello with the first of them
    the client offers, the `chain`, ServerHelloDone. It never finishes a handshake."""

    chain: list[bytes]
    suites: tuple[int, ...] = SCHANNEL_2003
    hellos: list[Hello] = field(default_factory=list)
    answered: int = 0

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        hello = parse_client_hello(await read_record(reader))
        self.hellos.append(hello)
        chosen = [s for s in self.suites if s in hello.suites]
        if not chosen:
            writer.write(alert(40))
        else:
            self.answered += 1
            writer.write(server_flight(min(hello.version, TLS10), chosen[0], self.chain))
        await writer.drain()
        await reader.read(4096)


@dataclass
class IntolerantFront:
    """A TCP front of a version-intolerant TLS 1.0 stack: relays to `backend_port`, but a
    ClientHello that offers more than TLS 1.0 (hello version or supported_versions) makes it
    reset the connection (or close it, with `close=True`), sending no alert."""

    backend_port: int
    close: bool = False
    dropped: int = 0
    passed: int = 0

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.backend_port)
        down = asyncio.ensure_future(_pipe(up_reader, writer))
        try:
            await self._upstream(reader, writer, up_writer)
        finally:
            up_writer.close()  # the backend sees the end too, which ends `down`
        await down

    async def _upstream(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        up_writer: asyncio.StreamWriter,
    ) -> None:
        seen_hello = False
        while True:
            head = await reader.read(1)
            if not head:
                return
            chunk = head
            if head == b"\x16" and not seen_hello:
                seen_hello = True
                rest = await reader.readexactly(4)
                body = await reader.readexactly(struct.unpack("!H", rest[2:])[0])
                chunk = head + rest + body
                if parse_client_hello(chunk).highest > TLS10:
                    self.dropped += 1
                    self._drop(writer)
                    return
                self.passed += 1
            else:
                chunk += await _available(reader)
            up_writer.write(chunk)
            await up_writer.drain()

    def _drop(self, writer: asyncio.StreamWriter) -> None:
        if self.close:
            writer.close()
            return
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()


async def _available(reader: asyncio.StreamReader) -> bytes:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(0.01):
            return await reader.read(4096)
    return b""


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError):
        while data := await reader.read(4096):
            writer.write(data)
            await writer.drain()
    with contextlib.suppress(OSError):
        writer.close()


def tls10_server_context(cert: str, key: str) -> ssl.SSLContext:
    """A server that speaks TLS 1.0 and nothing newer, at security level 0 (as Schannel on
    Windows 2000/2003 did)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TLS 1.0 is the point here
        context.minimum_version = ssl.TLSVersion.TLSv1
        context.maximum_version = ssl.TLSVersion.TLSv1
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    context.load_cert_chain(cert, key)
    return context


@contextlib.asynccontextmanager
async def listening(handler: object) -> AsyncIterator[int]:
    """Serve `handler` on 127.0.0.1; yields the port."""

    async def guarded(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Cancelled too: a fake still waiting when the test's loop ends has done its part.
        with contextlib.suppress(
            OSError, ssl.SSLError, asyncio.IncompleteReadError, asyncio.CancelledError
        ):
            await handler(reader, writer)  # type: ignore[operator]
        writer.close()

    server = await asyncio.start_server(guarded, "127.0.0.1", 0)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        server.close()
        await server.wait_closed()


@contextlib.contextmanager
def blocking_pop3s(context: ssl.SSLContext) -> Iterator[int]:
    """A POP3-over-TLS server on a plain thread; yields its port. The blocking ssl module
    writes its alert when a handshake fails (an asyncio server drops it unsent), as Schannel
    and OpenSSL servers do."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.05)
    stop = threading.Event()
    thread = threading.Thread(target=_pop3s_loop, args=(listener, context, stop))
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stop.set()
        thread.join(timeout=10)
        listener.close()


def _pop3s_loop(listener: socket.socket, context: ssl.SSLContext, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            connection, _ = listener.accept()
        except TimeoutError:
            continue
        with connection, contextlib.suppress(OSError):
            connection.settimeout(2.0)
            with context.wrap_socket(connection, server_side=True) as tls:
                _pop3_session(tls.makefile("rwb"))


def _pop3_session(stream: Any) -> None:
    stream.write(b"+OK Dovecot ready.\r\n")
    stream.flush()
    for line in stream:
        verb = line.strip().upper()
        stream.write(b"+OK\r\nUSER\r\n.\r\n" if verb == b"CAPA" else b"+OK bye\r\n")
        stream.flush()
        if verb == b"QUIT":
            return


#: Seconds a `listener` waits for a connection, and each connection lasts at most.
LISTEN_TIMEOUT = 10.0


@contextlib.contextmanager
def listener(handle: Callable[[socket.socket], None], connections: int = 1) -> Iterator[int]:
    """Accept `connections` connections on an ephemeral loopback port, each given to `handle`;
    the thread ends by itself once they are served or the accept times out."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(LISTEN_TIMEOUT)

    def serve() -> None:
        with server:
            for _ in range(connections):
                try:
                    conn, _ = server.accept()
                except OSError:
                    return
                with conn:
                    conn.settimeout(LISTEN_TIMEOUT)
                    handle(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        thread.join(LISTEN_TIMEOUT * (connections + 1))
        assert not thread.is_alive(), "the test server did not stop"
