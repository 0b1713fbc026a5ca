"""One accepted TCP connection as an asyncio Protocol that can turn into TLS, server side.

asyncio's StreamReader would hide bytes it has already buffered when the connection turns into
TLS; here the inbox is ours, so plaintext that arrived before the upgrade is dropped on purpose
(RFC 3207 section 4.2: nothing a client pipelined after STARTTLS may be acted on).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from typing import Final, cast

#: Unread bytes held before the socket stops being read: a client that floods a responder
#: is slowed down by TCP instead of growing its memory.
HIGH_WATER: Final = 64 * 1024
#: How long a closing connection may take to say goodbye before it is aborted.
CLOSE_GRACE: Final = 1.0


class Channel(asyncio.Protocol):
    """Bytes in and out of one client connection, with awaitable reads and writes."""

    def __init__(self, on_open: Callable[[Channel], None]) -> None:
        self._on_open = on_open
        self.transport: asyncio.Transport | None = None
        self._inbox = bytearray()
        self._eof = False
        self._lost = False
        self._reading_paused = False
        self._tls = False
        self._readable = asyncio.Event()
        self._writable = asyncio.Event()
        self._writable.set()
        self._closed = asyncio.Event()

    # -- asyncio.Protocol ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # asyncio's transport, or uvloop's (`portcall.probing.loop`), which has the same
        # methods without deriving from asyncio.Transport.
        self.transport = cast(asyncio.Transport, transport)
        self._on_open(self)

    def data_received(self, data: bytes) -> None:
        self._inbox += data
        self._readable.set()
        if len(self._inbox) > HIGH_WATER and self.transport and not self._reading_paused:
            self.transport.pause_reading()
            self._reading_paused = True

    def eof_received(self) -> bool:
        self._eof = True
        self._readable.set()
        # Keep a plaintext socket half open so that a last reply (QUIT's goodbye) can still be
        # written; a TLS transport cannot stay half open and warns when asked to.
        return not self._tls

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        self._eof = True
        self._readable.set()
        self._writable.set()
        self._closed.set()

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    # -- the responder's side --------------------------------------------------------------

    @property
    def peer(self) -> tuple[str, int]:
        """The client's address and port."""
        name = self.transport.get_extra_info("peername") if self.transport else None
        if not name:
            return "", 0
        return str(name[0]), int(name[1])

    @property
    def local_port(self) -> int:
        name = self.transport.get_extra_info("sockname") if self.transport else None
        return int(name[1]) if name else 0

    @property
    def local_address(self) -> str:
        """The address of ours the client connected to (without an IPv6 scope)."""
        name = self.transport.get_extra_info("sockname") if self.transport else None
        return str(name[0]).split("%")[0] if name else ""

    @property
    def tls_version(self) -> str | None:
        ssl_object = self.transport.get_extra_info("ssl_object") if self.transport else None
        return ssl_object.version() if isinstance(ssl_object, ssl.SSLObject) else None

    @property
    def peer_closed(self) -> bool:
        """Whether the client has closed its side (or the connection is gone)."""
        return self._eof or self._lost

    async def read(self) -> bytes:
        """What the client sent since the last read; ``b""`` once it has closed."""
        while not self._inbox and not self._eof:
            self._readable.clear()
            await self._readable.wait()
        data = bytes(self._inbox)
        self._inbox.clear()
        if self._reading_paused and self.transport and not self._lost:
            self.transport.resume_reading()
            self._reading_paused = False
        return data

    async def write(self, data: bytes) -> None:
        self.send(data)
        await self.drained()

    def send(self, data: bytes) -> None:
        """Queue `data`; see `writable` for whether the client keeps up with reading it."""
        if self._lost or self.transport is None or self.transport.is_closing():
            raise ConnectionResetError("the client has gone")
        self.transport.write(data)

    @property
    def writable(self) -> bool:
        """False while our queued replies are above the transport's high-water mark."""
        return self._writable.is_set()

    async def drained(self) -> None:
        """Return once the queued replies are below the high-water mark again."""
        await self._writable.wait()

    async def start_tls(self, context: ssl.SSLContext, timeout: float) -> None:
        """Run the TLS handshake as the server; raises `ssl.SSLError`/`OSError` when it fails."""
        if self.transport is None or self._lost:
            raise ConnectionResetError("the client has gone")
        self._inbox.clear()
        self._reading_paused = False
        loop = asyncio.get_running_loop()
        upgraded = await loop.start_tls(
            self.transport, self, context, server_side=True, ssl_handshake_timeout=timeout
        )
        if upgraded is None:
            raise ConnectionResetError("the connection closed during the TLS handshake")
        self.transport = upgraded
        self._tls = True

    async def close(self) -> None:
        """Close gently, and abort if the client does not let go within `CLOSE_GRACE`."""
        if self.transport is None:
            return
        self.transport.close()
        try:
            async with asyncio.timeout(CLOSE_GRACE):
                await self._closed.wait()
        except TimeoutError:
            self.transport.abort()
        except asyncio.CancelledError:
            self.transport.abort()
            raise
