"""Second looks that name what answered when the expected handshake failed."""

from __future__ import annotations

import asyncio
import contextlib
import ssl

from portcall.probing.gates import connection_slot, conversation_slot
from portcall.probing.stream import Stream
from portcall.protocols.base import RemoteProtocolError
from portcall.protocols.sniff import identify
from portcall.tls.context import client_context
from portcall.tls.rawhello import TLS1_0, client_hello

#: How long to wait for a server-first banner before nudging the peer with a request.
BANNER_WAIT = 1.0
#: A request most text protocols answer with an error line that names them (as nmap's
#: GetRequest probe does).
NUDGE = b"GET / HTTP/1.0\r\n\r\n"


async def name_plaintext_service(address: str, port: int, timeout: float) -> str | None:
    """Connect without TLS and name the protocol that answers, or None. A second look takes
    the probe's gates as its first connection did (`gates`), before its timeout starts."""
    async with conversation_slot(), connection_slot():
        return await _name_plaintext_service(address, port, timeout)


async def _name_plaintext_service(address: str, port: int, timeout: float) -> str | None:
    stream: Stream | None = None
    try:
        async with asyncio.timeout(timeout):
            stream = await Stream.connect(address, port)
            data = await _read_some(stream, min(BANNER_WAIT, timeout / 2))
            if not data:
                await stream.send(NUDGE)
                data = await _read_some(stream, timeout)
            return identify(data)
    except (OSError, TimeoutError):
        return None
    finally:
        if stream is not None:
            await stream.close()


async def name_tls_service(address: str, port: int, timeout: float) -> str | None:
    """The TLS version when the port answers a TLS hello from the first byte, else None.

    A server the legacy context cannot finish a handshake with (one dropping a current hello,
    one with only RC4/3DES) gets a TLS 1.0 hello of portcall's own; both share `timeout`, and
    each connection takes the probe's gates (`gates`) before its share of it runs.
    """
    loop = asyncio.get_running_loop()
    left = timeout
    for raw in (False, True):
        async with conversation_slot(), connection_slot():
            started = loop.time()
            try:
                async with asyncio.timeout(left):
                    version = await _tls_version(address, port, raw=raw)
            except TimeoutError:
                return None
            left -= loop.time() - started
        if version is not None:
            return version
        if left <= 0:
            return None
    return None


async def _tls_version(address: str, port: int, *, raw: bool) -> str | None:
    stream: Stream | None = None
    try:
        stream = await Stream.connect(address, port)
        if raw:
            return (await stream.peek_tls(client_hello(TLS1_0))).version
        await stream.start_tls(client_context(verify=False, legacy=True), "")
        session = stream.tls_session()
        return session.version if session else None
    except (OSError, ssl.SSLError, RemoteProtocolError):
        return None
    finally:
        if stream is not None:
            await stream.close()


async def _read_some(stream: Stream, wait: float) -> bytes:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(wait):
            return await stream.receive()
    return b""
