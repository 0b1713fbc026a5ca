"""Message boundaries for protocols that run over UDP and TCP alike (DNS, Kerberos): over UDP
each `receive_data` call is one datagram and each `Send` one datagram; over TCP each message
carries a big-endian length prefix of `PREFIX_BYTES` bytes (RFC 1035 4.2.2: 2; RFC 4120
7.2.2: 4)."""

from __future__ import annotations

from collections import deque
from collections.abc import Generator
from typing import ClassVar, Final

from portcall.protocols.base import NEED_DATA, LocalProtocolError, NeedData, PeerClosed, SansIO

TRANSPORTS: Final = ("udp", "tcp")
#: The largest message either transport carries here (a UDP datagram's payload at most).
MAX_MESSAGE: Final = 65535


def check_transport(transport: str, protocol: str) -> str:
    if transport not in TRANSPORTS:
        raise LocalProtocolError(f"{protocol} runs over udp or tcp, not {transport!r}")
    return transport


class DatagramOrStream(SansIO):
    """The framing both roles of such a protocol share; subclasses set `PREFIX_BYTES` and may
    check a TCP length prefix in `check_length`."""

    PREFIX_BYTES: ClassVar[int]
    transport: str
    _datagrams: deque[bytes]

    def _set_transport(self, transport: str) -> None:
        """Called by each role's constructor before the SansIO one."""
        self.transport = check_transport(transport, self.display_name)
        self._datagrams = deque()

    def receive_data(self, data: bytes) -> None:
        super().receive_data(data)
        if data and self.transport == "udp":
            # A datagram is whole or nothing: the stream buffer is not used.
            self._datagrams.append(bytes(data[:MAX_MESSAGE]))
            self._buffer.clear()

    def frame(self, wire: bytes) -> bytes:
        if self.transport == "udp":
            return wire
        return len(wire).to_bytes(self.PREFIX_BYTES, "big") + wire

    def check_length(self, size: int) -> None:
        """Refuse a TCP length prefix the protocol does not allow (a RemoteProtocolError)."""

    def read_message(self) -> Generator[NeedData, None, bytes]:
        if self.transport == "tcp":
            size = int.from_bytes((yield from self.read_exactly(self.PREFIX_BYTES)), "big")
            self.check_length(size)
            return (yield from self.read_exactly(size))
        while not self._datagrams:
            if self._eof:
                raise PeerClosed()
            yield NEED_DATA
        return self._datagrams.popleft()
