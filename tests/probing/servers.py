"""Small scripted servers on loopback for probing tests: each answers one way, on purpose."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import struct
import threading
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from portcall.responders.certs import server_context as responder_context

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
_T = TypeVar("_T")


@contextlib.asynccontextmanager
async def serve(handler: Handler, tls: ssl.SSLContext | None = None) -> AsyncIterator[int]:
    """Run `handler` for each connection on 127.0.0.1; yields the port."""

    async def guarded(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, ssl.SSLError, asyncio.IncompleteReadError):
            await handler(reader, writer)
        writer.close()

    server = await asyncio.start_server(guarded, "127.0.0.1", 0, ssl=tls)
    port = server.sockets[0].getsockname()[1]
    try:
        yield port
    finally:
        server.close()
        await server.wait_closed()


def scripted(greeting: bytes, replies: dict[bytes, bytes]) -> Handler:
    """Say `greeting`, then answer each line whose start is a key of `replies`."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(greeting)
        await writer.drain()
        while line := await reader.readline():
            for start, answer in replies.items():
                if line.upper().startswith(start):
                    writer.write(answer)
                    await writer.drain()
                    break

    return handler


async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read()


def unused_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- additions for the loopback probe and command-line tests --------------------------------


def server_context(cert: str, key: str, *, client_ca: str | None = None) -> ssl.SSLContext:
    """The responders' TLS server context presenting `cert`; with `client_ca`, it demands a
    client certificate issued by that CA (which a probe never has)."""
    context = responder_context(cert, key)
    if client_ca is not None:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cafile=client_ca)
    return context


def pop3(
    greeting: bytes = b"+OK Dovecot ready.\r\n",
    *,
    stls: ssl.SSLContext | None = None,
    capabilities: tuple[bytes, ...] = (b"TOP", b"USER", b"UIDL"),
    patience: float | None = None,
    pause: float = 0.0,
) -> Handler:
    """A POP3 service (RFC 1939, CAPA per RFC 2449); with `stls`, it lists STLS and upgrades
    with that context (RFC 2595 section 4), and lists STLS no more once TLS runs. With
    `patience`, a client silent that long after the greeting is dropped (as INN's nnrpd drops
    one after 10 s); `pause` is a think time before each answer."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(greeting)
        await writer.drain()
        upgraded = False
        try:
            line = await asyncio.wait_for(reader.readline(), patience)
        except TimeoutError:
            return
        while line:
            await asyncio.sleep(pause)
            verb = line.strip().upper()
            if verb == b"STLS" and stls is not None and not upgraded:
                writer.write(b"+OK Begin TLS negotiation\r\n")
                await writer.drain()
                await writer.start_tls(stls)
                upgraded = True
                line = await reader.readline()
                continue
            writer.write(
                _pop3_answer(verb, capabilities, offer_stls=stls is not None and not upgraded)
            )
            await writer.drain()
            if verb == b"QUIT":
                return
            line = await reader.readline()

    return handler


def _pop3_answer(verb: bytes, capabilities: tuple[bytes, ...], *, offer_stls: bool) -> bytes:
    if verb == b"CAPA":
        names = [*capabilities, *([b"STLS"] if offer_stls else [])]
        return b"+OK Capability list follows\r\n" + b"".join(n + b"\r\n" for n in names) + b".\r\n"
    if verb == b"QUIT":
        return b"+OK bye\r\n"
    return b"-ERR unknown command\r\n"


async def http_ish(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """An HTTP server: silent until a request comes, then a 400 for anything it cannot parse."""
    await reader.read(4096)
    writer.write(b"HTTP/1.1 400 Bad Request\r\nServer: test\r\nContent-Length: 0\r\n\r\n")
    await writer.drain()


async def reset_after_hello(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Read the first bytes (a TLS ClientHello), then abort the connection with a TCP RST."""
    await reader.read(4096)
    sock = writer.get_extra_info("socket")
    # SO_LINGER on with a zero timeout makes close() send RST instead of FIN.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


def held(handler: Handler, seconds: float) -> Handler:
    """`handler`, after keeping the client waiting `seconds` first."""

    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(seconds)
        await handler(reader, writer)

    return slow


@dataclass
class Gauge:
    """Counts simultaneous connections, in all and per local address they came in on."""

    open_now: Counter[str] = field(default_factory=Counter)
    peak_by_address: Counter[str] = field(default_factory=Counter)
    peak_total: int = 0

    def enter(self, address: str) -> None:
        self.open_now[address] += 1
        self.peak_by_address[address] = max(self.peak_by_address[address], self.open_now[address])
        self.peak_total = max(self.peak_total, self.open_now.total())

    def leave(self, address: str) -> None:
        self.open_now[address] -= 1

    def around(self, handler: Handler) -> Handler:
        async def counted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            address = str(writer.get_extra_info("sockname")[0])
            self.enter(address)
            try:
                await handler(reader, writer)
            finally:
                self.leave(address)

        return counted

    def talking(self, seconds: float) -> Handler:
        """A POP3 service that counts conversations rather than connections: a client counts
        from its first command, which the service answers `seconds` late, to its close."""

        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            address = str(writer.get_extra_info("sockname")[0])
            writer.write(b"+OK ready\r\n")
            await writer.drain()
            talking = False
            try:
                while line := await reader.readline():
                    if not talking:
                        talking = True
                        self.enter(address)
                        await asyncio.sleep(seconds)
                    verb = line.strip().upper()
                    writer.write(_pop3_answer(verb, (b"TOP",), offer_stls=False))
                    await writer.drain()
                    if verb == b"QUIT":
                        return
            finally:
                if talking:
                    self.leave(address)

        return handler


@contextlib.asynccontextmanager
async def serve_many(
    handler: Handler, addresses: Sequence[str], tls: ssl.SSLContext | None = None
) -> AsyncIterator[int]:
    """Like `serve`, but on one port shared by several loopback addresses (127.0.0.2 … are
    loopback on Linux too); yields that port."""
    sockets = _bind_same_port(addresses)
    servers: list[asyncio.AbstractServer] = []
    try:
        for sock in sockets:
            servers.append(await asyncio.start_server(_guard(handler), sock=sock, ssl=tls))
        yield int(sockets[0].getsockname()[1])
    finally:
        for server in servers:
            server.close()
            await server.wait_closed()
        for sock in sockets:
            sock.close()


def _guard(handler: Handler) -> Handler:
    async def guarded(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, ssl.SSLError, asyncio.IncompleteReadError):
            await handler(reader, writer)
        writer.close()

    return guarded


def _bind_same_port(addresses: Sequence[str]) -> list[socket.socket]:
    sockets: list[socket.socket] = []
    port = 0
    for address in addresses:
        sock = socket.socket()
        sockets.append(sock)
        sock.bind((address, port))
        sock.listen(64)
        port = sock.getsockname()[1]
    return sockets


class ServerThread:
    """Scripted servers on an event loop of their own, for code that runs its own loop
    (the command line calls asyncio.run)."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._stack = contextlib.AsyncExitStack()

    def __enter__(self) -> ServerThread:
        self._thread.start()
        return self

    def serve(self, handler: Handler, tls: ssl.SSLContext | None = None) -> int:
        """Start a server for `handler`; returns its port."""
        return self.enter(serve(handler, tls))

    def enter(self, manager: contextlib.AbstractAsyncContextManager[_T]) -> _T:
        """Enter `manager` on the thread's loop; it is exited when the thread stops."""
        return self.call(self._stack.enter_async_context(manager))

    def call(self, work: Coroutine[Any, Any, _T]) -> _T:
        return asyncio.run_coroutine_threadsafe(work, self._loop).result(timeout=10)

    def __exit__(self, *exc_info: object) -> None:
        self.call(self._stack.aclose())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()


@contextlib.contextmanager
def blocking_tls(context: ssl.SSLContext, greeting: bytes) -> Iterator[int]:
    """A TLS server on a plain thread, one connection at a time; yields its port.

    Unlike an asyncio server, the blocking ssl module writes its alert to the socket when a
    handshake fails (asyncio closes the transport without flushing it), as real servers do.
    """
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.05)
    stop = threading.Event()
    thread = threading.Thread(target=_accept_tls, args=(listener, context, greeting, stop))
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stop.set()
        thread.join(timeout=10)
        listener.close()


def _accept_tls(
    listener: socket.socket, context: ssl.SSLContext, greeting: bytes, stop: threading.Event
) -> None:
    while not stop.is_set():
        try:
            connection, _ = listener.accept()
        except TimeoutError:
            continue
        with connection, contextlib.suppress(OSError):
            connection.settimeout(2.0)
            with context.wrap_socket(connection, server_side=True) as tls:
                tls.sendall(greeting)
                tls.recv(1024)
