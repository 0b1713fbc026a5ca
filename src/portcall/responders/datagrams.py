"""UDP rows: each datagram is one request, answered by a fresh server-role handshake.

A UDP source address can be forged, so a responder that answers datagrams can be made to
send its replies to a victim. Three rules keep it from being a useful reflector:

* one reply datagram per request datagram, and a reply larger than `SMALL_REPLY` bytes only
  when it is at most `AMPLIFICATION` times the request (the real replies of the roles served
  here fit easily: a DNS answer, a KRB-ERROR, a Netlogon structure);
* at most so many datagrams a second are answered, in all and from one address (`DatagramBudget`);
* nothing is sent to port 0, nor, except for NTP, to a privileged source port: clients send
  from ephemeral ports, servers from their own, and answering a server's datagram is how two
  servers are set ping-ponging error messages at each other for ever.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final, cast

from portcall.protocols.base import NEED_DATA, Send, ServerHandshake

#: A reply may always be this long (RFC 1035 4.2.1's classic DNS datagram)...
SMALL_REPLY: Final = 512
#: ... and longer only up to this many times the request's size.
AMPLIFICATION: Final = 4
#: Events one datagram may cause in a handshake: a role that keeps sending is cut short.
MAX_EVENTS: Final = 16
#: Protocols whose clients may send from a privileged port: an NTP server polling another
#: sends from 123 (RFC 5905 symmetric and client modes alike).
PRIVILEGED_CLIENTS: Final = frozenset({"ntp"})

Address = tuple[str, int]


class Endpoint(asyncio.DatagramProtocol):
    """One bound UDP socket of a row; hands every datagram to `on_datagram`."""

    def __init__(self, on_datagram: Callable[[Endpoint, bytes, Address], None]) -> None:
        self._on_datagram = on_datagram
        self.transport: asyncio.DatagramTransport | None = None
        self._queue_full = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # asyncio's selector datagram transport does not derive from DatagramTransport,
        # though it is one.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self._on_datagram(self, data, (str(addr[0]), int(addr[1])))

    def error_received(self, exc: Exception) -> None:
        """An ICMP error for an earlier reply (the client went away): nothing to do."""

    @property
    def local(self) -> Address:
        name = self.transport.get_extra_info("sockname") if self.transport else None
        return (str(name[0]), int(name[1])) if name else ("", 0)

    def send(self, data: bytes, addr: Address) -> bool:
        """Send `data` to `addr`, unless replies already queue up unsent (asyncio would keep
        them in memory without limit); whether it was sent."""
        transport = self.transport
        if transport is None or transport.is_closing() or self._queue_full:
            return False
        transport.sendto(data, addr)
        return True

    def pause_writing(self) -> None:
        """asyncio's word that unsent replies passed its high-water mark (64 KiB)."""
        self._queue_full = True

    def resume_writing(self) -> None:
        self._queue_full = False

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


@dataclass
class DatagramBudget:
    """Datagrams answered in the current second, in all and by client address."""

    per_second: int
    per_client: int | None = None
    window: int = -1
    total: int = 0
    by_client: Counter[str] = field(default_factory=Counter)
    #: Whether a refusal was already logged in this window (later ones are only counted).
    refusal_logged: bool = False

    def refusal(self, address: str, now: float) -> str | None:
        """Why a datagram from `address` is dropped, or None to answer it (and count it)."""
        second = int(now)
        if second != self.window:
            self.window, self.total, self.refusal_logged = second, 0, False
            self.by_client.clear()
        if self.total >= self.per_second:
            return f"over {self.per_second} datagrams a second"
        limit = self.per_client
        if limit is not None and self.by_client[address] >= limit:
            return f"over {limit} datagrams a second from {address}"
        self.total += 1
        self.by_client[address] += 1
        return None

    def log_refusal(self) -> bool:
        """True for the first refusal of a window: one line says the flood started."""
        first = not self.refusal_logged
        self.refusal_logged = True
        return first


def unanswerable_source(protocol: str, port: int) -> str | None:
    """Why a datagram from source `port` gets no reply, or None."""
    if port == 0:
        return "sent from port 0, where no reply can go"
    if port < 1024 and protocol not in PRIVILEGED_CLIENTS:
        return f"sent from port {port}, a server's port (a reply could start a loop)"
    return None


def exchange(handshake: ServerHandshake, request: bytes) -> list[bytes]:
    """What `handshake` sends in answer to the one datagram `request`."""
    replies: list[bytes] = []
    fed = False
    for _ in range(MAX_EVENTS):
        event = handshake.next_event()
        if isinstance(event, Send):
            replies.append(event.data)
        elif event is NEED_DATA and not fed:
            handshake.receive_data(request)
            fed = True
        else:  # waiting for a next datagram, done, or TLS (which UDP cannot carry)
            break
    if fed and event is NEED_DATA:
        # The role waits for more: the datagram is all there is, as if the client closed.
        handshake.receive_data(b"")
        while isinstance(event := handshake.next_event(), Send) and len(replies) < MAX_EVENTS:
            replies.append(event.data)
    return replies


def reply_verdict(replies: list[bytes], request: bytes) -> tuple[bytes | None, str]:
    """The one datagram to send back (or None) and how the exchange ended, in a few words."""
    if not replies:
        return None, "no reply (the request deserves none)"
    reply = replies[0]
    limit = max(SMALL_REPLY, AMPLIFICATION * len(request))
    if len(reply) > limit:
        return None, (
            f"reply withheld: {len(reply)} bytes for a {len(request)}-byte datagram "
            f"(more than {limit})"
        )
    ended = f"answered ({len(reply)} bytes)"
    if len(replies) > 1:
        ended += f"; {len(replies) - 1} further replies withheld (one per datagram)"
    return reply, ended


def reached_address(local: str, peer: str) -> str:
    """The address of ours the client reached: the bound one, or for a socket bound to every
    address, the one the kernel would reply from (found by connecting a UDP socket, which
    sends nothing)."""
    local = local.split("%")[0]
    if local and not ipaddress.ip_address(local).is_unspecified:
        return local
    family = socket.AF_INET6 if ":" in peer else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.connect((peer, 9))
            return str(probe.getsockname()[0]).split("%")[0]
    except (OSError, ValueError):
        return ""
