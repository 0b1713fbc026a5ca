"""The only client socket code in portcall: a TCP stream that can turn into TLS, and a
connected UDP socket for the protocols that ask and answer in datagrams."""

from __future__ import annotations

import _ssl  # the DER encoding constant of `_ssl.Certificate.public_bytes`
import asyncio
import asyncio.sslproto
import ssl
import time
from collections import deque
from dataclasses import dataclass, field

from portcall.tls.rawhello import FlightReader, ServerFlight

#: How much one read may return; a reply larger than the handshake's limit is cut off there.
READ_SIZE = 16 * 1024
#: Seconds a peer has to finish closing (a TLS close_notify answered) before it is cut off.
CLOSE_WAIT = 0.5
#: asyncio gives every TLS connection a read buffer of 256 KiB; a TLS record holds at most
#: 16 KiB of data, so 64 KiB serves as well and lets thousands of connections fit in memory.
TLS_READ_BUFFER = 64 * 1024
asyncio.sslproto.SSLProtocol.max_size = TLS_READ_BUFFER


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


def _peer_chain(ssl_object: ssl.SSLObject) -> tuple[bytes, ...]:
    """The certificates the server sent, as DER. Python 3.13 has `get_unverified_chain()`;
    3.10 to 3.12 have it on the private `_sslobj` only, hence the careful look-up."""
    inner = getattr(ssl_object, "_sslobj", ssl_object)
    get_chain = getattr(inner, "get_unverified_chain", None)
    if get_chain is None:
        return ()
    try:
        certificates = get_chain() or []
        return tuple(bytes(c.public_bytes(_ssl.ENCODING_DER)) for c in certificates)
    except (AttributeError, ValueError, ssl.SSLError):
        return ()


@dataclass
class Stream:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
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

        The TLS handshake is done after the TCP connect, not by open_connection, so that a
        refused or dropped connection is never confused with a TLS failure.
        """
        start = time.perf_counter()
        reader, writer = await asyncio.open_connection(address, port)
        stream = cls(reader, writer)
        stream.timings["connect"] = time.perf_counter() - start
        if tls is not None:
            await stream.start_tls(tls, server_hostname)
        return stream

    async def start_tls(self, context: ssl.SSLContext, server_hostname: str) -> None:
        start = time.perf_counter()
        try:
            await self.writer.start_tls(context, server_hostname=server_hostname or None)
        except BaseException:
            # asyncio never finishes closing a connection whose upgrade failed: abort it.
            self.broken = True
            raise
        self.timings["tls"] = time.perf_counter() - start

    def tls_session(self) -> TlsSession | None:
        ssl_object = self.writer.get_extra_info("ssl_object")
        if ssl_object is None:
            return None
        der = ssl_object.getpeercert(binary_form=True)
        return TlsSession(
            version=ssl_object.version(),
            cipher=ssl_object.cipher(),
            der=der,
            chain=_peer_chain(ssl_object) or ((der,) if der else ()),
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
        self.writer.write(data)
        await self.writer.drain()

    async def receive(self) -> bytes:
        return await self.reader.read(READ_SIZE)

    async def close(self) -> None:
        """Close once; a peer that does not finish the close within `CLOSE_WAIT` is cut off."""
        if self.closed:
            return
        self.closed = True
        if self.broken:
            self.writer.transport.abort()
            return
        self.writer.close()
        # The peer may already be gone, or have sent a TLS 1.3 session ticket after our
        # close_notify: nothing useful to report then.
        try:
            await asyncio.wait_for(self.writer.wait_closed(), CLOSE_WAIT)
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            forget_frames(exc)
            self.writer.transport.abort()


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
