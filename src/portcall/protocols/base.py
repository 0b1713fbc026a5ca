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
from typing import Any, ClassVar, Final

from portcall.protocols.sniff import identify, non_conforming

DEFAULT_REPLY_LIMIT: Final = 64 * 1024
#: How much of a stranger's reply is read, at most, to name the protocol it belongs to.
EVIDENCE_BYTES: Final = 256


class _NeedData:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA: Final = _NeedData()
#: The type of NEED_DATA, for readers that yield nothing else.
NeedData = _NeedData


@dataclass(frozen=True)
class Send:
    data: bytes


@dataclass(frozen=True)
class StartTLS:
    pass


@dataclass(frozen=True)
class Pause:
    """Wait this many seconds before the next step: a server that asked to be asked again
    later (slapd's "operations outstanding") is not asked again at once."""

    seconds: float


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


Event = _NeedData | Send | StartTLS | Pause | Done
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
    #: The port connected to, for an HTTP Host header off the default port.
    port: int | None = None
    #: "tcp" or "udp": for protocols that run over both (DNS, Kerberos, CLDAP, kpasswd).
    transport: str = "tcp"
    #: The Active Directory domain (DNS form, "example.com") a DC protocol asks about.
    domain: str = ""

    def ad_domain(self) -> str:
        """`domain`, else the one the target's DNS name implies (see `domain_of`)."""
        return self.domain.strip().rstrip(".") or domain_of(self.host)


def domain_of(host: str) -> str:
    """The Active Directory domain a DC's DNS name implies: dc1.example.com gives example.com.
    A LocalProtocolError for a name of one label or an address, which imply none."""
    labels = host.strip().rstrip(".").split(".")
    if len(labels) >= 2 and not all(label.isdigit() for label in labels):
        return ".".join(labels[1:])
    raise LocalProtocolError(f"no Active Directory domain is known for {host!r}")


class _Closed:
    __slots__ = ()

    def __repr__(self) -> str:
        return "CLOSE"


#: Server role: the conversation is over, the driver closes the connection.
CLOSE: Final = _Closed()

ServerEvent = _NeedData | Send | StartTLS | _Closed
ServerSteps = Generator[ServerEvent, None, None]


class SansIO(ABC):
    """Buffering, reading helpers and the event pump shared by client and server roles.

    Subclasses write the conversation as the generator `_conversation()`; `next_event`
    advances it and turns its end into `_finish(value)`.
    """

    #: The protocol's name as the catalog spells it (smtp, pop3, imap, nntp, ldap, http, routing).
    protocol: ClassVar[str]
    #: How people call it in a reason ("SMTP", "IMAP4").
    display_name: ClassVar[str]

    @property
    def sniffed_as(self) -> str:
        """The name `sniff.identify` gives this protocol's bytes (its display name, unless the
        sniffer can only name a family, as "DCE/RPC" for the endpoint mapper)."""
        return self.display_name

    reply_limit: int = DEFAULT_REPLY_LIMIT

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._eof = False
        #: The first bytes the peer ever sent: evidence for naming a wrong protocol.
        self.first_bytes = b""
        self._steps: Generator[Any, None, Any] = self._conversation()
        self._final: Any = None

    @abstractmethod
    def _conversation(self) -> Generator[Any, None, Any]: ...

    @abstractmethod
    def _finish(self, value: Any) -> Any: ...

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

    def _next(self) -> Any:
        if self._final is not None:
            return self._final
        try:
            return next(self._steps)
        except StopIteration as stop:
            self._final = self._finish(stop.value)
            return self._final

    def tls_started(self) -> None:
        """The connection now runs TLS: plaintext read before the upgrade must not be trusted
        (RFC 3207 section 4.2), so it is thrown away."""
        self._buffer.clear()
        self._eof = False

    # -- helpers for `run` -------------------------------------------------------------

    def wrong_protocol(self, evidence: str = "") -> WrongProtocol:
        detected = identify(self.first_bytes)
        if detected == self.sniffed_as:
            detected = non_conforming(self.display_name)
        return WrongProtocol(self.display_name, detected, evidence)

    def read_until(self, separator: bytes = b"\r\n") -> Generator[NeedData, None, bytes]:
        """Bytes up to and including `separator`."""
        limit = self.reply_limit
        # Resume the search where the last one stopped, so that a reply dripping in one byte
        # at a time costs linear, not quadratic, time.
        start = 0
        while True:
            index = self._buffer.find(separator, min(start, len(self._buffer)))
            if index >= 0:
                end = index + len(separator)
                chunk = bytes(self._buffer[:end])
                del self._buffer[:end]
                return chunk
            if len(self._buffer) > limit:
                raise ReplyTooLong(limit, bytes(self._buffer[:512]))
            if self._eof:
                raise PeerClosed(bytes(self._buffer))
            start = max(0, len(self._buffer) - len(separator) + 1)
            yield NEED_DATA

    def read_exactly(self, count: int) -> Generator[NeedData, None, bytes]:
        if count > self.reply_limit:
            raise ReplyTooLong(self.reply_limit, bytes(self._buffer[:512]))
        while len(self._buffer) < count:
            if self._eof:
                raise PeerClosed(bytes(self._buffer))
            yield NEED_DATA
        chunk = bytes(self._buffer[:count])
        del self._buffer[:count]
        return chunk

    def read_line(self) -> Generator[NeedData, None, str]:
        """One text line without its line end; a lone LF is accepted as a line end too."""
        raw = yield from self.read_until(b"\n")
        return raw.rstrip(b"\r\n").decode("utf-8", "replace")

    def gather_evidence(self, start: bytes) -> Generator[NeedData, None, bytes]:
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


class Handshake(SansIO):
    """Client role: a conversation that returns what it learnt about the service."""

    def __init__(self, options: ProbeOptions | None = None) -> None:
        self.options = options or ProbeOptions()
        self.reply_limit = self.options.reply_limit
        super().__init__()

    @abstractmethod
    def run(self) -> Steps:
        """The conversation, as a generator of events returning what was learnt."""

    def _conversation(self) -> Steps:
        return self.run()

    def _finish(self, value: ServiceInfo) -> Done:
        return Done(value)

    def next_event(self) -> Event:
        event: Event = self._next()
        return event


#: Whose wire manners a responder copies.
PROFILES: Final = ("exchange2003", "exchange2000", "neutral")


@dataclass(frozen=True)
class ServerOptions:
    """What a server-role handshake needs to know beyond the bytes."""

    #: The host name the responder claims in banners and certificates.
    hostname: str = "mail.example.test"
    #: Whose wire manners to copy: "exchange2003", "exchange2000" or "neutral".
    profile: str = "exchange2003"
    #: Offer STARTTLS (the catalog row upgrades in band and a certificate is at hand).
    starttls: bool = True
    #: The connection already runs TLS (implicit TLS port).
    implicit_tls: bool = False
    #: LDAP: answer as a Global Catalog (isGlobalCatalogReady TRUE on 3268/3269).
    global_catalog: bool = False
    #: The client's address, for greetings such as SMTP's "Hello [192.0.2.1]".
    peer_address: str = ""
    #: Byte limit of one client line or request; longer ones get an error and the door.
    line_limit: int = 4096
    #: "tcp" or "udp": for protocols served over both (DNS, Kerberos, CLDAP, kpasswd).
    transport: str = "tcp"
    #: The Active Directory domain the DC roles answer for ("" : the hostname's, `ad_domain`).
    domain: str = ""
    #: The TCP port the endpoint mapper names for the directory and Netlogon interfaces.
    rpc_port: int = 0
    #: The address the DC roles give for the DC itself (DNS A record, CLDAP), when known.
    dc_address: str = ""

    def ad_domain(self) -> str:
        """`domain`, else the one `hostname` implies (mail.example.test gives example.test)."""
        return self.domain.strip().rstrip(".") or domain_of(self.hostname)

    def __post_init__(self) -> None:
        if self.profile not in PROFILES:
            raise LocalProtocolError(f"unknown responder profile {self.profile!r}")


class ServerHandshake(SansIO):
    """Server role: answers a client until it leaves, then yields CLOSE.

    `heard` keeps each client command (its first words, never credentials) so that the
    responder can log what was said on each connection.
    """

    def __init__(self, options: ServerOptions | None = None) -> None:
        self.options = options or ServerOptions()
        self.reply_limit = self.options.line_limit
        self.heard: list[str] = []
        super().__init__()

    @abstractmethod
    def serve(self) -> ServerSteps:
        """The server's side of the conversation."""

    def _conversation(self) -> ServerSteps:
        return self.serve()

    def _finish(self, value: None) -> _Closed:
        return CLOSE

    def next_event(self) -> ServerEvent:
        event: ServerEvent = self._next()
        return event
