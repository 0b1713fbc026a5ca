"""The sans-IO contract every protocol module follows.

A handshake never touches a socket. The driver feeds it bytes with `receive_data` (``b""``
means the peer closed) and asks it what to do next with `next_event`:

* `Send(data)`: write these bytes, then ask again;
* `NEED_DATA`: read what the peer sends, feed it in, then ask again;
* `StartTLS()`: upgrade the connection to TLS, call `tls_started`, then ask again;
* `Done(info)`: the handshake is over; `info` says what answered.

Subclasses write the conversation as a generator (`run`) that yields those events; the
helpers `read_line`/`read_until` yield `NEED_DATA` until the buffer holds what they need, so a
reply split over many reads, even one byte at a time, parses the same as one read.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import ClassVar, Final

from portcall.protocols.sniff import identify

DEFAULT_REPLY_LIMIT: Final = 64 * 1024
#: How much of a stranger's reply is read, at most, to name the protocol it belongs to.
EVIDENCE_BYTES: Final = 256


class _NeedData:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA: Final = _NeedData()


@dataclass(frozen=True)
class Send:
    data: bytes


@dataclass(frozen=True)
class StartTLS:
    pass


@dataclass
class ServiceInfo:
    """What a handshake learnt about the service that answered."""

    protocol: str
    product: str | None = None
    banner: str | None = None
    capabilities: list[str] = field(default_factory=list)
    starttls_offered: bool | None = None
    tls_upgraded: bool = False
    details: dict[str, object] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Done:
    info: ServiceInfo


Event = _NeedData | Send | StartTLS | Done
Steps = Generator[Event, None, ServiceInfo]


class LocalProtocolError(Exception):
    """We used a handshake the wrong way (a bug on our side, never the peer's fault)."""


class RemoteProtocolError(Exception):
    """The peer did not behave as the protocol requires."""


class PeerClosed(RemoteProtocolError):
    """The peer closed the connection before the handshake was complete."""

    def __init__(self, received: bytes = b"") -> None:
        super().__init__("the peer closed the connection")
        self.received = received


class ReplyTooLong(RemoteProtocolError):
    def __init__(self, limit: int, received: bytes) -> None:
        super().__init__(f"reply exceeded {limit} bytes without ending")
        self.received = received


class WrongProtocol(RemoteProtocolError):
    """Something answered, but not the expected protocol; `detected` names it when known."""

    def __init__(self, expected: str, detected: str | None, evidence: str = "") -> None:
        what = detected or "an unrecognised service"
        message = f"{what} answered where {expected} was expected"
        if evidence:
            message += f" ({evidence})"
        super().__init__(message)
        self.expected = expected
        self.detected = detected
        self.evidence = evidence


class StartTLSUnavailable(RemoteProtocolError):
    """The service does not offer STARTTLS, or refused it when asked."""


@dataclass(frozen=True)
class ProbeOptions:
    """What a handshake needs to know beyond the bytes."""

    #: The name the user asked for (used in HTTP Host and for the record, never for SNI here).
    host: str = "localhost"
    #: Try STARTTLS (the catalog row says the port upgrades in band).
    starttls: bool = False
    #: A missing STARTTLS is a fault (`no-starttls`) rather than a note.
    starttls_required: bool = True
    #: Whether the connection already runs TLS from the first byte (implicit TLS).
    implicit_tls: bool = False
    #: The name we give ourselves in EHLO and similar greetings.
    client_name: str = "portcall.invalid"
    #: Byte limit of one reply.
    reply_limit: int = DEFAULT_REPLY_LIMIT
    #: HTTP paths to request, in order.
    http_paths: tuple[str, ...] = ("/", "/exchange/")


class Handshake(ABC):
    """Base class: buffering, reading helpers and the event pump."""

    #: The protocol's name as the catalog spells it (smtp, pop3, imap, nntp, ldap, http, routing).
    protocol: ClassVar[str]
    #: How people call it in a reason ("SMTP", "IMAP4").
    display_name: ClassVar[str]

    def __init__(self, options: ProbeOptions | None = None) -> None:
        self.options = options or ProbeOptions()
        self._buffer = bytearray()
        self._eof = False
        #: The first bytes the peer ever sent: evidence for naming a wrong protocol.
        self.first_bytes = b""
        self._steps = self.run()
        self._done: Done | None = None

    @abstractmethod
    def run(self) -> Steps:
        """The conversation, as a generator of events returning what was learnt."""

    # -- the driver's side -------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        if self._eof:
            raise LocalProtocolError("data received after the end of the stream")
        if not data:
            self._eof = True
            return
        if len(self.first_bytes) < 512:
            self.first_bytes += data[: 512 - len(self.first_bytes)]
        self._buffer += data

    def next_event(self) -> Event:
        if self._done is not None:
            return self._done
        try:
            return next(self._steps)
        except StopIteration as stop:
            self._done = Done(stop.value)
            return self._done

    def tls_started(self) -> None:
        """The connection now runs TLS: plaintext read before the upgrade must not be trusted
        (RFC 3207 section 4.2), so it is thrown away."""
        self._buffer.clear()
        self._eof = False

    # -- helpers for `run` -------------------------------------------------------------

    def wrong_protocol(self, evidence: str = "") -> WrongProtocol:
        detected = identify(self.first_bytes)
        if detected == self.display_name:
            detected = f"a non-conforming {self.display_name} service"
        return WrongProtocol(self.display_name, detected, evidence)

    def read_until(self, separator: bytes = b"\r\n") -> Generator[Event, None, bytes]:
        """Bytes up to and including `separator`."""
        limit = self.options.reply_limit
        while True:
            index = self._buffer.find(separator)
            if index >= 0:
                end = index + len(separator)
                chunk = bytes(self._buffer[:end])
                del self._buffer[:end]
                return chunk
            if len(self._buffer) > limit:
                raise ReplyTooLong(limit, bytes(self._buffer[:512]))
            if self._eof:
                raise PeerClosed(bytes(self._buffer))
            yield NEED_DATA

    def read_exactly(self, count: int) -> Generator[Event, None, bytes]:
        if count > self.options.reply_limit:
            raise ReplyTooLong(self.options.reply_limit, bytes(self._buffer[:512]))
        while len(self._buffer) < count:
            if self._eof:
                raise PeerClosed(bytes(self._buffer))
            yield NEED_DATA
        chunk = bytes(self._buffer[:count])
        del self._buffer[:count]
        return chunk

    def read_line(self) -> Generator[Event, None, str]:
        """One text line without its line end; a lone LF is accepted as a line end too."""
        raw = yield from self.read_until(b"\n")
        return raw.rstrip(b"\r\n").decode("utf-8", "replace")

    def gather_evidence(self, start: bytes) -> Generator[Event, None, bytes]:
        """`start` and a little more of a reply that is not the expected protocol, up to a line
        end, `EVIDENCE_BYTES`, a TLS record header or the close: a lone "2" names nothing,
        "220 mail ESMTP" names SMTP."""
        seen = bytearray(start)
        while b"\n" not in seen and len(seen) < EVIDENCE_BYTES and identify(bytes(seen)) != "TLS":
            try:
                seen += yield from self.read_exactly(1)
            except PeerClosed:
                break
        return bytes(seen)

    @property
    def buffered(self) -> bytes:
        return bytes(self._buffer)


class ServiceRefused(RemoteProtocolError):
    """The right protocol answered, but it turned the client away (a 421/554 greeting,
    `-ERR`, `* BYE`, NNTP 400/502)."""
