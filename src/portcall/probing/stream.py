"""The only client socket code in portcall: a TCP stream that can turn into TLS, and a
connected UDP socket for the protocols that ask and answer in datagrams.

The TCP stream is one small asyncio protocol (`_Wire`) over the event loop's socket
transport; TLS runs over memory buffers inside it (`portcall.tls.engine`: Python's `ssl`, or
pyOpenSSL for the unverifying handshake). asyncio's own streams and TLS protocol do the same
with more layers (a stream reader, writer and protocol, a TLS protocol with its own transport,
flow control between them); at thousands of probes that cost a third of a millisecond per TLS
probe, with nothing a probe needs from them. What a failure raises is what asyncio raises for
the same event, so verdicts do not depend on the layer: a TLS handshake cut by the peer's
close is `ConnectionResetError`, an OpenSSL error its `ssl.SSLError`, a reset the `OSError`
of the socket.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import deque
from dataclasses import dataclass, field
from typing import cast

from portcall.tls.engine import open_tls
from portcall.tls.rawhello import FlightReader, ServerFlight

#: How much one read may return; a reply larger than the handshake's limit is cut off there.
READ_SIZE = 16 * 1024
#: Seconds a peer has to finish closing (a TLS close_notify answered) before it is cut off.
CLOSE_WAIT = 0.5
#: Received bytes held unread beyond which the socket is not read until `receive` catches
#: up: a peer flooding the connection costs at most this much memory.
HOLD_LIMIT = 256 * 1024
#: What OpenSSL raises when it needs more bytes from the peer; asyncio's TLS protocol treats a
#: syscall error from a memory BIO the same way, and so does `_Wire`.
_AGAIN = (ssl.SSLWantReadError, ssl.SSLSyscallError)


@dataclass
class TlsSession:
    """What the TLS layer negotiated, read right after the handshake."""

    version: str | None
    cipher: tuple[str, str, int] | None
    der: bytes | None
    #: False when the certificate was read from the server's first answer to portcall's own
    #: hello and the handshake was left unfinished (`Stream.peek_tls`).
    finished: bool = True
    #: The chain as the server sent it (DER, its own certificate first), when known.
    chain: tuple[bytes, ...] = ()

    @classmethod
    def from_flight(cls, flight: ServerFlight) -> TlsSession:
        cipher = (flight.suite_name, flight.version_name, flight.bits)
        return cls(flight.version_name, cipher, flight.chain[0], finished=False)


class _Tls:
    """The TLS layer of a `_Wire`: a TLS connection over memory buffers (`tls.engine`)."""

    __slots__ = ("connection", "done", "unsent")

    def __init__(self, context: ssl.SSLContext, server_hostname: str) -> None:
        self.connection = open_tls(context, server_hostname)
        #: Set when the handshake has ended, with its error if it failed.
        self.done: asyncio.Future[None] | None = None
        #: Records `send` or the handshake's end wrote that are not on the wire yet.
        self.unsent = False


class _Wire(asyncio.Protocol):
    """One TCP connection: what the peer sent (decrypted once TLS runs), its end, and the
    waiting of the one task that uses it."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.received = bytearray()
        #: Plaintext `send` has held back (see `push`).
        self.unsent = bytearray()
        self.eof = False
        self.lost = False
        #: What ended the connection, raised by the next `receive` or `send`.
        self.error: BaseException | None = None
        self.tls: _Tls | None = None
        self.handshaking = False
        #: Our close_notify has been sent: bytes now only matter as the peer's answer to it.
        self.closing = False
        self.reading_paused = False
        self._waiter: asyncio.Future[None] | None = None
        self._writable: asyncio.Future[None] | None = None

    # The transport's calls.

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # asyncio's socket transport, or uvloop's (`probing.loop`), which has the same
        # methods without deriving from asyncio.Transport.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        tls = self.tls
        if tls is None:
            self.received += data
        else:
            tls.connection.feed(data)
            if self.handshaking:
                self._handshake()
                return
            if self.closing:
                self._unwrap()
                return
            self._decrypt()
        if len(self.received) > HOLD_LIMIT and self.transport is not None:
            self.reading_paused = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool | None:
        self.eof = True
        if self.tls is None:
            self._wake()
            return True  # keep the socket open to write, as asyncio's streams do
        if self.handshaking:
            self._handshake_ended(ConnectionResetError())
        self._wake()
        return None  # a TLS connection closes with the peer's end

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = self.eof = True
        # asyncio's socket transport keeps its read callback, a bound method of itself: a
        # cycle that would keep every closed transport until a full garbage collection.
        if getattr(self.transport, "_read_ready_cb", None) is not None:
            self.transport._read_ready_cb = None  # type: ignore[union-attr]
        if exc is not None and self.error is None:
            self.error = exc
        if self.handshaking:
            self._handshake_ended(exc or ConnectionResetError("Connection lost"))
        self._wake()
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)

    def pause_writing(self) -> None:
        self._writable = self.loop.create_future()

    def resume_writing(self) -> None:
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)
        self._writable = None

    # TLS.

    def _flush(self) -> None:
        assert self.tls is not None
        data = self.tls.connection.drain()
        if data and self.transport is not None and not self.lost:
            self.transport.write(data)

    def _handshake(self) -> None:
        assert self.tls is not None
        try:
            self.tls.connection.do_handshake()
        except _AGAIN:
            self._flush()
            return
        except ssl.SSLError as exc:
            # As asyncio does, the alert OpenSSL prepared is not sent: the connection is cut.
            self._handshake_ended(exc)
            return
        # The handshake's last flight (the client's Finished) waits for the first request, so
        # that both leave in one segment; `receive` and `close` write it when none comes.
        self.tls.unsent = True
        self._handshake_ended(None)
        self._decrypt(answer=False)  # the server may have sent more than its handshake already
        self._wake()

    def _handshake_ended(self, exc: BaseException | None) -> None:
        self.handshaking = False
        done = self.tls.done if self.tls is not None else None
        if done is not None and not done.done():
            if exc is None:
                done.set_result(None)
            else:
                done.set_exception(exc)

    def _decrypt(self, *, answer: bool = True) -> None:
        """Everything readable from the TLS records received; close_notify is the end. With
        `answer`, what TLS has to send back (a key update) is written at once."""
        assert self.tls is not None
        read = self.tls.connection.read
        try:
            while True:
                chunk = read(READ_SIZE)
                if not chunk:
                    self.eof = True
                    break
                self.received += chunk
        except _AGAIN:
            pass
        except ssl.SSLError as exc:
            self._fail(exc)
            return
        if answer:
            self._flush()

    def _unwrap(self) -> None:
        """After our close_notify: the peer's close_notify, its end, or an error end it."""
        assert self.tls is not None
        try:
            self.tls.connection.unwrap()
        except _AGAIN:
            return
        except ssl.SSLError as exc:
            self._fail(exc)
            return
        self.eof = True
        self._wake()

    def _fail(self, exc: BaseException) -> None:
        if self.error is None:
            # Kept for `receive` or `send` to raise; the frames of this callback say nothing.
            self.error = exc.with_traceback(None)
        if self.transport is not None:
            self.transport.abort()
        self._wake()

    # The task's side.

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    async def wait(self) -> None:
        """Until something arrives, the peer ends, or the connection is lost."""
        self._waiter = self.loop.create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    async def start_tls(self, context: ssl.SSLContext, server_hostname: str) -> None:
        self.push()
        tls = _Tls(context, server_hostname)
        tls.done = self.loop.create_future()
        self.tls = tls
        self.handshaking = True
        if self.received:
            # Sent before our hello, unasked for: TLS must make sense of it, or fail on it.
            tls.connection.feed(bytes(self.received))
            self.received.clear()
        if self.lost or self.eof:
            self._handshake_ended(self.error or ConnectionResetError())
        else:
            self._handshake()
        await tls.done

    def push(self) -> None:
        """Write what `send` has held back."""
        if self.unsent:
            if self.transport is not None and not self.lost:
                self.transport.write(bytes(self.unsent))
            self.unsent.clear()
        if self.tls is not None and self.tls.unsent:
            self.tls.unsent = False
            self._flush()

    async def receive(self) -> bytes:
        while True:
            if self.error is not None:
                raise self.error
            if self.received:
                break
            if self.eof:
                return b""
            self.push()
            await self.wait()
        data = bytes(self.received[:READ_SIZE])
        del self.received[:READ_SIZE]
        if self.reading_paused and len(self.received) < HOLD_LIMIT // 2:
            self.reading_paused = False
            if self.transport is not None and not self.lost:
                self.transport.resume_reading()
        return data

    async def send(self, data: bytes) -> None:
        if self.error is not None:
            raise self.error
        if self.lost or self.transport is None or self.transport.is_closing():
            raise ConnectionResetError("Connection lost")
        # Written when the stream next waits for the peer or closes: a last command (QUIT,
        # LOGOUT, an LDAP unbind) then leaves in one segment with the close_notify after it.
        if self.tls is None:
            self.unsent += data
        else:
            self.tls.connection.write(data)
            self.tls.unsent = True
        if self._writable is not None:
            await self._writable
            if self.lost:
                raise self.error or ConnectionResetError("Connection lost")

    async def close(self, patience: float) -> None:
        """Close; over TLS, send close_notify and give the peer `patience` seconds to answer
        it before the connection is cut off."""
        transport = self.transport
        if transport is None or self.lost:
            return
        if self.tls is not None and not self.eof and self.error is None:
            self.closing = True
            self._unwrap()
            self._flush()  # what `send` held back, then the close_notify, in one write
            try:
                async with asyncio.timeout(patience):
                    while not (self.eof or self.error is not None or self.lost):
                        await self.wait()
            except TimeoutError:
                transport.abort()
                return
            if self.error is not None:
                return  # already cut off
        else:
            self.push()
        transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def forget(self) -> None:
        """Let go of what a closed connection holds: OpenSSL's state at once, and the error,
        whose frames refer back to this connection (a cycle only a full garbage collection
        would free)."""
        self.tls = None
        self.handshaking = self.closing = False
        self.error = None
        self.received.clear()


@dataclass
class Stream:
    wire: _Wire
    timings: dict[str, float] = field(default_factory=dict)
    broken: bool = False
    closed: bool = False

    @classmethod
    async def connect(
        cls,
        address: str,
        port: int,
        *,
        tls: ssl.SSLContext | None = None,
        server_hostname: str = "",
    ) -> Stream:
        """Connect; with `tls`, wrap from the first byte (implicit TLS).

        The TLS handshake is done after the TCP connect, so that a refused or dropped
        connection is never confused with a TLS failure.
        """
        start = time.perf_counter()
        loop = asyncio.get_running_loop()
        _, wire = await loop.create_connection(_Wire, address, port)
        stream = cls(wire)
        stream.timings["connect"] = time.perf_counter() - start
        if tls is not None:
            await stream.start_tls(tls, server_hostname)
        return stream

    async def start_tls(self, context: ssl.SSLContext, server_hostname: str) -> None:
        start = time.perf_counter()
        try:
            await self.wire.start_tls(context, server_hostname)
        except BaseException:
            self.broken = True  # a failed or interrupted handshake leaves nothing to close
            raise
        finally:
            if self.wire.tls is not None:
                self.wire.tls.done = None  # the future holds the error, the error its frames
        self.timings["tls"] = time.perf_counter() - start

    def tls_session(self) -> TlsSession | None:
        tls = self.wire.tls
        if tls is None or self.wire.handshaking:
            return None
        connection = tls.connection
        der = connection.certificate()
        return TlsSession(
            version=connection.version(),
            cipher=connection.cipher(),
            der=der,
            chain=connection.chain() or ((der,) if der else ()),
        )

    async def peek_tls(self, hello: bytes) -> TlsSession:
        """Send `hello` (from `portcall.tls.rawhello.client_hello`) and read the server's
        answer up to its certificate; the handshake is abandoned there, so the stream is
        left unusable and closed with an abort."""
        start = time.perf_counter()
        self.broken = True
        await self.send(hello)
        reader = FlightReader()
        flight = None
        while flight is None:
            flight = reader.receive_data(await self.receive())
        self.timings["tls"] = time.perf_counter() - start
        return TlsSession.from_flight(flight)

    async def send(self, data: bytes) -> None:
        await self.wire.send(data)

    async def receive(self) -> bytes:
        """Up to `READ_SIZE` bytes; b"" once the peer has ended the stream."""
        return await self.wire.receive()

    async def close(self) -> None:
        """Close once; a peer that does not finish the close within `CLOSE_WAIT` is cut off."""
        if self.closed:
            return
        self.closed = True
        try:
            if self.broken:
                self.wire.abort()
            else:
                await self.wire.close(CLOSE_WAIT)
        finally:
            self.wire.forget()


def forget_frames(exc: BaseException) -> None:
    """Drop the tracebacks of `exc` and of the exceptions it was raised from, once only its
    message matters. asyncio keeps a failed connection's exception on a future its frames
    refer to: a cycle that holds the whole connection (OpenSSL's buffers, 64 KiB of read
    buffer) until a full garbage collection, which in a run of thousands of probes costs
    tens of milliseconds each time."""
    seen: set[int] = set()
    link: BaseException | None = exc
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        link.__traceback__ = None
        link = link.__cause__ or link.__context__


#: Datagrams from the peer kept unread at most; a flood beyond it is dropped, as a kernel would.
DATAGRAM_BACKLOG = 64
#: Times a request is sent in all while no reply has come (the first send and two repeats),
#: spread over the timeout: a lost datagram is not a filtered port.
DATAGRAM_SENDS = 3


class _DatagramProtocol(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.received: deque[bytes] = deque()
        self.error: OSError | None = None
        self.arrived = asyncio.Event()

    def datagram_received(self, data: bytes, addr: object) -> None:
        if len(self.received) < DATAGRAM_BACKLOG:
            self.received.append(data)
        self.arrived.set()

    def error_received(self, exc: Exception) -> None:
        # On a connected UDP socket an ICMP port unreachable arrives here as
        # ConnectionRefusedError, and a host or network unreachable as its own OSError.
        if isinstance(exc, OSError) and self.error is None:
            self.error = exc
        self.arrived.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self.arrived.set()


@dataclass
class Datagrams:
    """A connected UDP socket: `send` one datagram, `receive` the next one from the peer.

    Until the first reply, `receive` repeats the last request `DATAGRAM_SENDS` times in all
    within `patience` seconds, as DNS and Kerberos clients do: one lost datagram must not make
    an open port look filtered. An ICMP error the kernel reports is raised from `receive`.
    """

    transport: asyncio.DatagramTransport
    protocol: _DatagramProtocol
    timings: dict[str, float] = field(default_factory=dict)
    patience: float = 5.0
    _last: bytes = b""
    _answered: bool = False
    _started: float = 0.0

    @classmethod
    async def connect(cls, address: str, port: int, *, patience: float) -> Datagrams:
        loop = asyncio.get_running_loop()
        transport, protocol = await loop.create_datagram_endpoint(
            _DatagramProtocol, remote_addr=(address, port)
        )
        return cls(transport, protocol, patience=patience, _started=time.perf_counter())

    async def send(self, data: bytes) -> None:
        self._last = data
        self.transport.sendto(data)

    async def receive(self) -> bytes:
        protocol = self.protocol
        repeats = 0 if self._answered else DATAGRAM_SENDS - 1
        while not protocol.received:
            if protocol.error is not None:
                raise protocol.error
            if self.transport.is_closing():
                return b""
            protocol.arrived.clear()
            wait = self.patience / DATAGRAM_SENDS if repeats else None
            try:
                await asyncio.wait_for(protocol.arrived.wait(), wait)
            except TimeoutError:
                repeats -= 1
                self.transport.sendto(self._last)
        if not self._answered:
            self._answered = True
            self.timings["reply"] = time.perf_counter() - self._started
        return protocol.received.popleft()

    async def close(self) -> None:
        self.transport.close()
