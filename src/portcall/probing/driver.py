"""One asyncio loop that runs any sans-IO handshake over a real connection."""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass, field

from portcall.probing.errors import Phase, classify
from portcall.probing.stream import Stream, TlsSession
from portcall.protocols.base import (
    Done,
    Handshake,
    LocalProtocolError,
    RemoteProtocolError,
    Send,
    ServiceInfo,
    StartTLS,
)


@dataclass
class Conversation:
    """How one connection went: what answered, what TLS negotiated, how long it took."""

    info: ServiceInfo
    tls: TlsSession | None
    timings: dict[str, float] = field(default_factory=dict)


@dataclass
class _Progress:
    phase: Phase = Phase.CONNECT


@dataclass
class Connection:
    """Where to connect and how to wrap it."""

    address: str
    port: int
    timeout: float
    #: Wrap with this context from the first byte (implicit TLS) ...
    implicit_tls: ssl.SSLContext | None = None
    #: ... or upgrade with this one when the handshake asks for STARTTLS.
    starttls: ssl.SSLContext | None = None
    server_hostname: str = ""


async def converse(connection: Connection, handshake: Handshake) -> Conversation:
    """Connect, run `handshake` to its end, and close. Any failure is a `ProbeFailure`.

    `ssl.SSLError`s are let through unclassified: the caller decides whether another TLS
    context deserves a try before the error becomes a verdict.
    """
    progress = _Progress()
    stream: Stream | None = None
    try:
        async with asyncio.timeout(connection.timeout):
            stream = await Stream.connect(connection.address, connection.port)
            if connection.implicit_tls is not None:
                progress.phase = Phase.TLS
                await stream.start_tls(connection.implicit_tls, connection.server_hostname)
            progress.phase = Phase.CONVERSATION
            info, tls = await _pump(stream, handshake, connection, progress)
        return Conversation(info, tls, dict(stream.timings))
    except ssl.SSLError:
        raise
    except (OSError, TimeoutError, RemoteProtocolError) as exc:
        first = handshake.first_bytes
        raise classify(exc, progress.phase, first, connection.timeout, connection.address) from exc
    finally:
        if stream is not None:
            await stream.close()


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
        elif isinstance(event, StartTLS):
            if connection.starttls is None:
                raise LocalProtocolError("the handshake asked for STARTTLS, but none was set up")
            progress.phase = Phase.TLS
            await stream.start_tls(connection.starttls, connection.server_hostname)
            progress.phase = Phase.CONVERSATION
            tls = stream.tls_session()
            handshake.tls_started()
        else:
            handshake.receive_data(await stream.receive())
