"""One asyncio loop that runs any sans-IO handshake over a real connection."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field

from portcall.probing.errors import Phase, ProbeFailure, classify
from portcall.probing.gates import (
    Slot,
    connection_slot,
    conversation_slot,
    first_contact,
    first_contact_made,
    first_verification,
    host_answered,
    host_pace,
    paced,
    slot_for_open_connection,
)
from portcall.probing.stream import Datagrams, Stream, TlsSession
from portcall.protocols.base import (
    Done,
    Handshake,
    LocalProtocolError,
    Pause,
    RemoteProtocolError,
    Send,
    ServiceInfo,
    StartTLS,
)
from portcall.protocols.products import product_from_text


@dataclass
class Conversation:
    """How one connection went: what answered, what TLS negotiated, how long it took."""

    info: ServiceInfo
    tls: TlsSession | None
    timings: dict[str, float] = field(default_factory=dict)


@dataclass
class _Progress:
    phase: Phase = Phase.CONNECT
    #: The timeout of the step under way (a connect's may be adapted to the host).
    timeout: float = 0.0


@dataclass(frozen=True)
class RawHello:
    """Read the certificate with this ClientHello of portcall's own instead of an `ssl`
    handshake (for suites no TLS library here has); what runs behind TLS is not spoken to."""

    hello: bytes
    #: From the first byte, or (False) when the handshake asks for STARTTLS.
    implicit: bool


class HandshakeFailed(Exception):
    """The TLS handshake failed with `cause` (an `ssl.SSLError`, or the connection dropped).

    Left unclassified: the caller decides whether another hello deserves a try, then
    `verdict()` asks the one table in `portcall.probing.errors`.
    """

    def __init__(self, cause: OSError, phase: Phase, first_bytes: bytes, connection: Connection):
        super().__init__(str(cause))
        self.cause = cause
        self.phase = phase
        self.first_bytes = first_bytes
        self.connection = connection

    def verdict(self) -> ProbeFailure:
        where = self.connection
        return classify(self.cause, self.phase, self.first_bytes, where.timeout, where.address)


#: A TLS context, or what chooses one when the handshake starts (see `probe._attempt`).
ContextSource = ssl.SSLContext | Callable[[], ssl.SSLContext]


async def _chosen(source: ContextSource, connection: Connection) -> ssl.SSLContext:
    """The context of a handshake about to begin, chosen once the run's first verification
    has an outcome (`gates.first_verification`)."""
    await first_verification(connection.timeout)
    return source if isinstance(source, ssl.SSLContext) else source()


@dataclass
class Connection:
    """Where to connect and how to wrap it."""

    address: str
    port: int
    timeout: float
    #: Wrap with this context from the first byte (implicit TLS) ...
    implicit_tls: ContextSource | None = None
    #: ... or upgrade with this one when the handshake asks for STARTTLS.
    starttls: ContextSource | None = None
    server_hostname: str = ""
    #: Peek at the certificate with a hello of portcall's own instead of either context.
    raw_hello: RawHello | None = None
    #: "tcp", or "udp": the handshake's messages go as datagrams on a connected UDP socket.
    transport: str = "tcp"


async def converse(connection: Connection, handshake: Handshake) -> Conversation:
    """Connect, run `handshake` to its end, and close. Any failure is a `ProbeFailure`.

    TLS handshake failures are raised as `HandshakeFailed`, unclassified: the caller decides
    whether another TLS context deserves a try before the error becomes a verdict.
    """
    if connection.transport == "udp":
        return await _exchange(connection, handshake)
    progress = _Progress()
    stream: Stream | None = None
    scout = False
    try:
        scout = await first_contact()
        if not host_answered():
            # The first connections to a host (the scout's, and the others' when it did not
            # answer in time: `gates.first_contact`) go under the wide gate only, so that a
            # host dropping SYNs costs one timeout for all its ports at once. One that connects
            # when too many wait for a conversation slot already is closed and made again
            # inside one: idle connections must not pile up on servers that limit them.
            async with connection_slot():
                try:
                    stream = await _connect(connection, progress)
                finally:
                    if scout:
                        first_contact_made()
                async with slot_for_open_connection() as slot:
                    if slot is Slot.STALE:
                        stale, stream = stream, None
                        await stale.close()
                        await paced()
                        stream = await _connect(connection, progress)
                    if slot is not Slot.NONE:
                        return await _talk(stream, handshake, connection, progress)
                await stream.close()
        async with conversation_slot(), connection_slot():
            stream = await _connect(connection, progress)
            return await _talk(stream, handshake, connection, progress)
    except ssl.SSLError as exc:
        raise HandshakeFailed(exc, progress.phase, handshake.first_bytes, connection) from exc
    except (OSError, TimeoutError, RemoteProtocolError) as exc:
        first = handshake.first_bytes
        if progress.phase is Phase.TLS and isinstance(exc, ConnectionError):
            raise HandshakeFailed(exc, progress.phase, first, connection) from exc
        expected = handshake.display_name
        raise classify(
            exc, progress.phase, first, progress.timeout, connection.address, expected
        ) from exc
    finally:
        if scout:
            first_contact_made()  # also when the probe ended before its connection did
        if stream is not None:
            await stream.close()


async def _connect(connection: Connection, progress: _Progress) -> Stream:
    """A TCP connection within the host's connect timeout (`gates.HostPace`); what it took
    is learnt for the host, and the conversation gets the rest of `connection.timeout`."""
    pace = host_pace()
    progress.phase = Phase.CONNECT
    progress.timeout = pace.connect_timeout(connection.timeout) if pace else connection.timeout
    async with asyncio.timeout(progress.timeout):
        stream = await Stream.connect(connection.address, connection.port)
    if pace is not None:
        pace.observe(stream.timings["connect"])
    progress.timeout = connection.timeout
    return stream


async def _talk(
    stream: Stream, handshake: Handshake, connection: Connection, progress: _Progress
) -> Conversation:
    """The conversation, within what the connect left of the timeout; the stream is closed
    before the caller's slots are given back, so that its TLS buffers do not outlive them."""
    left = max(0.05, connection.timeout - stream.timings["connect"])
    try:
        async with asyncio.timeout(left):
            return await _converse_on(stream, handshake, connection, progress)
    finally:
        await stream.close()


async def _converse_on(
    stream: Stream, handshake: Handshake, connection: Connection, progress: _Progress
) -> Conversation:
    raw = connection.raw_hello
    if raw is not None and raw.implicit:
        progress.phase = Phase.TLS
        session = await stream.peek_tls(raw.hello)
        return Conversation(_unspoken(handshake), session, dict(stream.timings))
    if connection.implicit_tls is not None:
        progress.phase = Phase.TLS
        context = await _chosen(connection.implicit_tls, connection)
        await stream.start_tls(context, connection.server_hostname)
    progress.phase = Phase.CONVERSATION
    info, tls = await _pump(stream, handshake, connection, progress)
    return Conversation(info, tls, dict(stream.timings))


async def _pump(
    stream: Stream, handshake: Handshake, connection: Connection, progress: _Progress
) -> tuple[ServiceInfo, TlsSession | None]:
    tls = stream.tls_session()
    while True:
        event = handshake.next_event()
        if isinstance(event, Done):
            return event.info, tls
        if isinstance(event, Send):
            await stream.send(event.data)
        elif isinstance(event, Pause):
            await asyncio.sleep(event.seconds)
        elif isinstance(event, StartTLS):
            if connection.raw_hello is not None:
                progress.phase = Phase.TLS
                session = await stream.peek_tls(connection.raw_hello.hello)
                return _unspoken(handshake, starttls=True), session
            if connection.starttls is None:
                raise LocalProtocolError("the handshake asked for STARTTLS, but none was set up")
            progress.phase = Phase.TLS
            context = await _chosen(connection.starttls, connection)
            await stream.start_tls(context, connection.server_hostname)
            progress.phase = Phase.CONVERSATION
            tls = stream.tls_session()
            handshake.tls_started()
        else:
            handshake.receive_data(await stream.receive())


async def _exchange(connection: Connection, handshake: Handshake) -> Conversation:
    """`converse` over UDP: requests and replies as datagrams. Until the first reply the phase
    is `Phase.REQUEST`, where silence means filtered and an ICMP port unreachable refused."""
    progress = _Progress(Phase.REQUEST)
    datagrams: Datagrams | None = None
    try:
        # A datagram exchange is as cheap as a connection attempt, and as often unanswered.
        async with connection_slot(), asyncio.timeout(connection.timeout):
            datagrams = await Datagrams.connect(
                connection.address, connection.port, patience=connection.timeout
            )
            while True:
                event = handshake.next_event()
                if isinstance(event, Done):
                    return Conversation(event.info, None, dict(datagrams.timings))
                if isinstance(event, Send):
                    await datagrams.send(event.data)
                elif isinstance(event, Pause):
                    await asyncio.sleep(event.seconds)
                elif isinstance(event, StartTLS):
                    raise LocalProtocolError("TLS over UDP is not something portcall speaks")
                else:
                    handshake.receive_data(await datagrams.receive())
                    progress.phase = Phase.CONVERSATION
    except (OSError, TimeoutError, RemoteProtocolError) as exc:
        raise classify(
            exc,
            progress.phase,
            handshake.first_bytes,
            connection.timeout,
            connection.address,
            handshake.display_name,
        ) from exc
    finally:
        if datagrams is not None:
            await datagrams.close()


def _unspoken(handshake: Handshake, *, starttls: bool = False) -> ServiceInfo:
    """What a connection whose TLS was only peeked at showed of the service: with STARTTLS,
    the plaintext part up to the upgrade; with implicit TLS, nothing."""
    line = handshake.first_bytes.split(b"\n", 1)[0].strip().decode("ascii", "replace")
    banner = line if line.isprintable() and starttls else None
    info = ServiceInfo(handshake.protocol, product=product_from_text(banner), banner=banner)
    if starttls:
        info.starttls_offered = True
        info.notes.append(
            "STARTTLS was accepted; what follows it was not checked, as the TLS handshake "
            "could not be finished"
        )
    return info
