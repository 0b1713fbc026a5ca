"""Responders: one asyncio server per catalog row, each answering as the real service would.

Every accepted connection gets a fresh server-role handshake (`protocols.server_for`) and this
module moves its bytes: `Send` is written, `NEED_DATA` is read under the idle timeout,
`StartTLS` turns the connection into TLS as the server. Implicit-TLS rows run the TLS handshake
ourselves right after the accept, before a single byte is sent, rather than letting the
listening socket do it: a handshake that fails (a client refusing the certificate) is then
still one connection in the log, with the reason.

UDP rows (DNS, Kerberos, CLDAP, ...) get a datagram socket on the same addresses and port
rules; each datagram is answered by a fresh handshake and logged as one record (see
`datagrams` for what keeps that from being a reflector). A catalog with the endpoint mapper
also gets the directory's RPC port (`rpc_port`), which the mapper names.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Final, TypeVar

from portcall.catalog import PortEntry, TlsMode
from portcall.protocols import SERVERS, server_for
from portcall.protocols.base import (
    CLOSE,
    PROFILES,
    Send,
    ServerHandshake,
    ServerOptions,
    StartTLS,
)
from portcall.protocols.dcerpc import DEFAULT_RPC_PORT, DirectoryRpcServer
from portcall.responders.binding import (
    BindError,
    bind_error,
    datagram_socket,
    os_reason,
    reserve_port,
)
from portcall.responders.channel import Channel
from portcall.responders.datagrams import (
    Address,
    DatagramBudget,
    Endpoint,
    exchange,
    reached_address,
    reply_verdict,
    unanswerable_source,
)
from portcall.responders.log import ConnectionHook, ConnectionRecord, format_peer, keep_heard
from portcall.responders.patience import YIELD_EVERY, Patience

#: The name of the certificate a row presents unless a fault picks another.
HOST_CERTIFICATE: Final = "host"
#: The Global Catalog's ports (MS-ADTS): LDAP there answers as a GC.
GLOBAL_CATALOG_PORTS: Final = frozenset({3268, 3269})
#: The key of the directory's RPC port, served beside a catalog's endpoint mapper.
RPC_KEY: Final = "rpc"

_T = TypeVar("_T")

HandshakeFactory = Callable[[str, ServerOptions], ServerHandshake]


@dataclass(frozen=True)
class Fault:
    """A deliberate defect on one row, the way real servers break (used by `portcall demo`)."""

    #: Present this certificate (a key of the responder's TLS contexts, e.g. "expired").
    certificate: str | None = None
    #: False: never offer STARTTLS on this row, as a server without a certificate does.
    starttls: bool = True
    #: Speak this protocol instead of the row's: another service holds the port.
    protocol: str | None = None
    #: Hold the port without listening: every connection is refused.
    closed: bool = False


@dataclass(frozen=True)
class ResponderConfig:
    binds: tuple[str, ...] = ("127.0.0.1",)
    #: Listen on catalog port + offset (unprivileged ports for a non-root user).
    port_offset: int = 0
    #: Listen on ports the system picks instead (one bind address only).
    ephemeral: bool = False
    hostname: str = "mail.example.test"
    profile: str = "exchange2003"
    #: Connections open at once; on UDP rows, datagrams answered a second (in all).
    max_connections: int = 256
    #: Connections one client address may hold at once (None: only `max_connections` counts),
    #: so that one flooding client cannot take every slot from the others; on UDP rows, the
    #: datagrams a second one address gets answered.
    max_per_client: int | None = None
    #: The Active Directory domain the DC roles answer for ("": the hostname's).
    domain: str = ""
    #: The directory's RPC port the endpoint mapper names, served too when the catalog has
    #: an endpoint mapper row (moved by `port_offset` like the rows; None: not served).
    rpc_port: int | None = DEFAULT_RPC_PORT
    #: The address the DC roles give for the DC ("": the address each client reached).
    dc_address: str = ""
    #: Seconds a client may take to send its next whole command, counted from our last reply
    #: (or to read a reply of ours), before it is closed: one that trickles a byte now and
    #: then is as idle as one that stays silent.
    idle_timeout: float = 30.0
    #: Seconds a connection may last at all.
    lifetime: float = 300.0
    line_limit: int = 4096
    #: Bind with SO_REUSEPORT, so that several processes (`listen --workers`) share each port
    #: and the kernel spreads connections and datagrams among them.
    reuse_port: bool = False

    def __post_init__(self) -> None:
        if not self.binds:
            raise ValueError("at least one bind address is needed")
        if self.ephemeral and len(self.binds) > 1:
            raise ValueError("ephemeral ports need exactly one bind address")
        if self.max_per_client is not None and self.max_per_client < 1:
            raise ValueError("max_per_client must be at least 1")
        if self.rpc_port is not None and not 1 <= self.rpc_port <= 65535:
            raise ValueError("rpc_port must be a port number, 1 to 65535")
        if self.profile not in PROFILES:
            raise ValueError(f"unknown profile {self.profile!r}; known: {', '.join(PROFILES)}")


class _Stalled(Exception):
    """The client let the idle timeout pass (the message says how)."""


@dataclass
class _Row:
    entry: PortEntry
    fault: Fault
    port: int = 0
    server: asyncio.Server | None = None
    reserved: socket.socket | None = None
    endpoints: list[Endpoint] = field(default_factory=list)
    #: The handshake factory of this row, when not the responder's.
    factory: HandshakeFactory | None = None

    @property
    def protocol(self) -> str:
        return self.fault.protocol or self.entry.protocol


@dataclass
class _Counters:
    served: int = 0
    turned_away: int = 0
    open_now: set[asyncio.Task[None]] = field(default_factory=set)
    #: Open connections by client address.
    by_client: Counter[str] = field(default_factory=Counter)


class Responder:
    """Answers on every row of `entries` until stopped; use as an async context manager."""

    def __init__(
        self,
        entries: Iterable[PortEntry],
        config: ResponderConfig | None = None,
        *,
        tls: Mapping[str, ssl.SSLContext] | None = None,
        faults: Mapping[str, Fault] | None = None,
        on_connection: ConnectionHook | None = None,
        handshake_factory: HandshakeFactory = server_for,
    ) -> None:
        self.config = config or ResponderConfig()
        self._tls = dict(tls or {})
        self._rows = [_Row(e, (faults or {}).get(e.key, Fault())) for e in entries]
        self._rpc_row = self._rpc(self._rows)
        self._hook = on_connection
        self._factory = handshake_factory
        self._counters = _Counters()
        self._gate = DatagramBudget(self.config.max_connections, self.config.max_per_client)
        self._stopping = False
        for row in self._rows:
            self._check_row(row)

    def _rpc(self, rows: list[_Row]) -> _Row | None:
        """The directory's RPC port as a row of its own, beside an endpoint mapper row."""
        port = self.config.rpc_port
        if port is None or not any(row.protocol == "dcerpc" for row in rows):
            return None
        if any(row.entry.key == RPC_KEY for row in rows):
            return None  # the catalog lists the RPC port itself
        row = _Row(
            rpc_entry(port), Fault(), factory=lambda _name, options: DirectoryRpcServer(options)
        )
        rows.append(row)
        return row

    def _check_row(self, row: _Row) -> None:
        if row.protocol not in SERVERS:
            raise ValueError(f"{row.entry.key}: no responder speaks {row.protocol!r}")
        if row.entry.transport == "udp" and (row.fault.closed or row.entry.tls is not TlsMode.NONE):
            raise ValueError(f"{row.entry.key}: a UDP row can be neither held closed nor TLS")
        if (
            row.entry.tls is TlsMode.IMPLICIT
            and self._context(row) is None
            and not row.fault.closed
        ):
            raise ValueError(f"{row.entry.key}: TLS from the first byte needs a certificate")

    # -- life cycle --------------------------------------------------------------------------

    async def __aenter__(self) -> Responder:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def start(self) -> dict[str, int]:
        """Listen on every row; returns each row's key and the port it actually listens on.

        Raises `BindError` (after closing what was opened) when a port cannot be had.
        """
        try:
            for row in self._rows:
                await self._bind(row)
        except BaseException:
            await self.stop()
            raise
        return self.ports

    async def stop(self) -> None:
        """Stop listening, end every open connection, and wait until they are gone."""
        self._stopping = True
        for row in self._rows:
            if row.server is not None:
                row.server.close()
            if row.reserved is not None:
                row.reserved.close()
            for endpoint in row.endpoints:
                endpoint.close()
            row.endpoints = []
        tasks = list(self._counters.open_now)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for row in self._rows:
            if row.server is not None:
                await row.server.wait_closed()
                row.server = None

    @property
    def ports(self) -> dict[str, int]:
        return {row.entry.key: row.port for row in self._rows}

    @property
    def entries(self) -> list[PortEntry]:
        """Every row served: the catalog's, then the RPC port when one is served."""
        return [row.entry for row in self._rows]

    @property
    def open_connections(self) -> int:
        return len(self._counters.open_now)

    @property
    def served(self) -> int:
        return self._counters.served

    @property
    def turned_away(self) -> int:
        return self._counters.turned_away

    # -- binding -----------------------------------------------------------------------------

    def _wanted_port(self, entry: PortEntry) -> int:
        if self.config.ephemeral:
            return 0
        port = entry.port + self.config.port_offset
        if port > 65535:
            raise BindError(
                f"{entry.key}: port {entry.port} + offset {self.config.port_offset} is above 65535",
                "choose a smaller --port-offset",
            )
        return port

    async def _bind(self, row: _Row) -> None:
        port = self._wanted_port(row.entry)
        binds = self.config.binds
        try:
            if row.fault.closed:
                row.reserved = reserve_port(binds[0], port)
                row.port = int(row.reserved.getsockname()[1])
                return
            if row.entry.transport == "udp":
                await self._bind_datagrams(row, port)
                return
            row.server = await asyncio.get_running_loop().create_server(
                lambda: Channel(partial(self._opened, row)),
                host=list(binds),
                port=port,
                backlog=max(128, self.config.max_connections),
                reuse_port=self.config.reuse_port or None,
            )
        except OSError as exc:
            raise bind_error(exc, row.entry, port, binds) from exc
        row.port = int(row.server.sockets[0].getsockname()[1])

    async def _bind_datagrams(self, row: _Row, port: int) -> None:
        """One UDP socket per bind address (asyncio binds a datagram endpoint to one)."""
        loop = asyncio.get_running_loop()
        for address in self.config.binds:
            sock = datagram_socket(address, port, reuse_port=self.config.reuse_port)
            _, endpoint = await loop.create_datagram_endpoint(
                lambda: Endpoint(partial(self._datagram, row)), sock=sock
            )
            row.endpoints.append(endpoint)
        row.port = row.endpoints[0].local[1]

    # -- connections -------------------------------------------------------------------------

    def _opened(self, row: _Row, channel: Channel) -> None:
        refusal = self._refusal(channel.peer[0])
        if refusal is not None:
            # Over the limit a connection is closed at once: cheaper than any queue, and the
            # client sees a clean close rather than a hang.
            self._counters.turned_away += 1
            if channel.transport is not None:
                channel.transport.close()
            record = self._record(row, channel)
            record.ended = f"turned away: {refusal}"
            self._report(record)
            return
        address = channel.peer[0]
        self._counters.by_client[address] += 1
        task = asyncio.get_running_loop().create_task(self._serve(row, channel))
        self._counters.open_now.add(task)
        task.add_done_callback(partial(self._closed, address))

    def _refusal(self, address: str) -> str | None:
        """Why a new connection from `address` is turned away, or None to serve it."""
        if self._stopping:
            return "the responder is stopping"
        if self.open_connections >= self.config.max_connections:
            return f"{self.open_connections} connections already open"
        limit = self.config.max_per_client
        if limit is not None and self._counters.by_client[address] >= limit:
            return f"{limit} connections already open from {address or 'this client'}"
        return None

    def _closed(self, address: str, task: asyncio.Task[None]) -> None:
        counters = self._counters
        counters.open_now.discard(task)
        counters.by_client[address] -= 1
        if counters.by_client[address] <= 0:
            del counters.by_client[address]

    def _record(self, row: _Row, channel: Channel) -> ConnectionRecord:
        return self._new_record(row, channel.peer, channel.local_port)

    def _new_record(self, row: _Row, peer: Address, local_port: int) -> ConnectionRecord:
        return ConnectionRecord(
            started=datetime.now(UTC),
            peer=format_peer(*peer),
            key=row.entry.key,
            port=row.entry.port,
            bound_port=local_port or row.port,
            protocol=row.protocol,
            transport=row.entry.transport,
        )

    # -- datagrams ---------------------------------------------------------------------------

    def _datagram(self, row: _Row, endpoint: Endpoint, data: bytes, peer: Address) -> None:
        """Answer one datagram at once: the roles are sans-IO, so nothing here waits."""
        refusal = "the responder is stopping" if self._stopping else None
        refusal = refusal or self._gate.refusal(peer[0], time.monotonic())
        if refusal is not None:
            self._counters.turned_away += 1
            if self._gate.log_refusal():
                record = self._new_record(row, peer, endpoint.local[1])
                record.ended = f"dropped: {refusal} (more are dropped without a line)"
                self._report(record)
            return
        began = time.monotonic()
        record = self._new_record(row, peer, endpoint.local[1])
        try:
            record.ended = self._answer(row, endpoint, data, peer, record)
        except Exception as exc:  # one bad datagram must not take the responder down
            record.ended = f"internal error: {type(exc).__name__}: {exc}"
        record.duration = time.monotonic() - began
        self._counters.served += 1
        self._report(record)

    def _answer(
        self, row: _Row, endpoint: Endpoint, data: bytes, peer: Address, record: ConnectionRecord
    ) -> str:
        """Run a fresh handshake on `data`, send its reply if the rules allow; how it ended."""
        unanswerable = unanswerable_source(row.protocol, peer[1])
        if unanswerable is not None:
            return f"dropped: {unanswerable}"
        reached = self.config.dc_address or reached_address(endpoint.local[0], peer[0])
        handshake = self._handshake(row, self._options(row, peer[0], reached))
        try:
            replies = exchange(handshake, data)
        finally:
            record.heard = list(handshake.heard)
            keep_heard(record.heard, record)
        reply, ended = reply_verdict(replies, data)
        if reply is not None and not endpoint.send(reply, peer):
            return "reply dropped: replies queue up unsent"
        return ended

    def _report(self, record: ConnectionRecord) -> None:
        if self._hook is not None:
            self._hook(record)

    async def _serve(self, row: _Row, channel: Channel) -> None:
        record = self._record(row, channel)
        began = time.monotonic()
        try:
            async with asyncio.timeout(self.config.lifetime):
                record.ended = await self._converse(row, channel, record)
        except TimeoutError:
            record.ended = f"closed at the {self.config.lifetime:g}s lifetime cap"
        except asyncio.CancelledError:
            record.ended = "the responder stopped"
            raise
        except Exception as exc:  # one broken conversation must not take the responder down
            record.ended = f"internal error: {type(exc).__name__}: {exc}"
        finally:
            # Reported before the close is awaited: a stop arriving during the close must not
            # swallow the line of a connection that has already ended.
            record.duration = time.monotonic() - began
            self._counters.served += 1
            self._report(record)
            await channel.close()

    def _context(self, row: _Row) -> ssl.SSLContext | None:
        return self._tls.get(row.fault.certificate or HOST_CERTIFICATE)

    def _options(self, row: _Row, peer: str, reached: str) -> ServerOptions:
        """What the row's handshake needs to know: the row's TLS, the DC's domain and
        address, and the RPC port the endpoint mapper names (the one really listened on)."""
        entry = row.entry
        config = self.config
        rpc_port = self._rpc_row.port if self._rpc_row else (config.rpc_port or 0)
        return ServerOptions(
            hostname=self.config.hostname,
            profile=self.config.profile,
            starttls=(
                entry.tls is TlsMode.STARTTLS
                and row.fault.starttls
                and self._context(row) is not None
            ),
            implicit_tls=entry.tls is TlsMode.IMPLICIT,
            global_catalog=entry.port in GLOBAL_CATALOG_PORTS or entry.key.startswith("gc"),
            peer_address=peer,
            line_limit=config.line_limit,
            transport=entry.transport,
            domain=config.domain,
            rpc_port=rpc_port,
            dc_address=config.dc_address or reached,
        )

    def _handshake(self, row: _Row, options: ServerOptions) -> ServerHandshake:
        return (row.factory or self._factory)(row.protocol, options)

    async def _converse(self, row: _Row, channel: Channel, record: ConnectionRecord) -> str:
        """Run one conversation to its end; returns how it ended."""
        try:
            if row.entry.tls is TlsMode.IMPLICIT:
                failure = await self._upgrade(row, channel, record)
                if failure is not None:
                    return failure
            options = self._options(row, channel.peer[0], channel.local_address)
            handshake = self._handshake(row, options)
            try:
                return await self._pump(row, channel, handshake, record)
            finally:
                record.heard = list(handshake.heard)
        except _Stalled as stalled:
            return str(stalled)
        except OSError as exc:
            # A client that says goodbye and hangs up without waiting for our answer is common
            # (probes do it): the write fails, yet the client simply left.
            if channel.peer_closed:
                return "the client closed"
            return f"connection lost ({os_reason(exc)})"

    async def _pump(
        self, row: _Row, channel: Channel, handshake: ServerHandshake, record: ConnectionRecord
    ) -> str:
        client_left = False
        wait = Patience()
        while True:
            event = handshake.next_event()
            keep_heard(handshake.heard, record)
            if event is CLOSE:
                return "the client closed" if client_left else "the responder closed"
            if isinstance(event, Send):
                await self._reply(channel, event.data, wait)
            elif isinstance(event, StartTLS):
                failure = await self._upgrade(row, channel, record)
                if failure is not None:
                    return failure
                handshake.tls_started()
                wait.progress()
            elif client_left:
                # The handshake wants more after the client's end: nothing more will come.
                return "the client closed"
            else:
                data = await self._read(channel, wait)
                client_left = not data
                handshake.receive_data(data)

    async def _reply(self, channel: Channel, data: bytes, wait: Patience) -> None:
        """Send `data`; wait (under the idle timeout) only while the client leaves our replies
        unread, and let other connections run now and then: a client that pipelines thousands
        of commands in one read must neither hold the event loop nor pile up timers."""
        channel.send(data)
        wait.progress()
        wait.replies += 1
        if not channel.writable:
            idle = self.config.idle_timeout
            await self._bounded(channel.drained(), f"our reply unread for {idle:g}s")
        elif wait.replies % YIELD_EVERY == 0:
            await asyncio.sleep(0)

    async def _read(self, channel: Channel, wait: Patience) -> bytes:
        """The client's next bytes, unless its command is still unfinished when the idle
        timeout, counted from our last reply, runs out (a slowloris client)."""
        idle = self.config.idle_timeout
        what = f"idle for {idle:g}s"
        if wait.trickled:
            what = f"no whole command within {idle:g}s ({wait.trickled} bytes trickled in)"
        data = await self._bounded(channel.read(), what, wait.left(idle))
        wait.trickled += len(data)
        return data

    async def _bounded(self, step: Awaitable[_T], what: str, within: float | None = None) -> _T:
        """`step`, unless it takes longer than `within` (by default the idle timeout)."""
        try:
            async with asyncio.timeout(self.config.idle_timeout if within is None else within):
                return await step
        except TimeoutError:
            raise _Stalled(what) from None

    async def _upgrade(self, row: _Row, channel: Channel, record: ConnectionRecord) -> str | None:
        """Turn the connection into TLS; returns why that failed, or None."""
        context = self._context(row)
        if context is None:
            return "internal error: TLS asked for, but no certificate is loaded"
        try:
            await channel.start_tls(context, self.config.idle_timeout)
        except ssl.SSLError as exc:
            return f"TLS handshake failed ({_ssl_reason(exc)})"
        except ConnectionResetError:
            # What a client that rejects our certificate leaves behind: an alert, then a close.
            return "TLS handshake broken off by the client (does it trust the certificate?)"
        except (OSError, TimeoutError) as exc:
            return f"TLS handshake failed ({os_reason(exc)})"
        record.tls = channel.tls_version
        return None


def rpc_entry(port: int) -> PortEntry:
    """The row of the directory's RPC port: not in the catalog, since its number is whatever
    the DC was told (KB 224196), but a firewall between Exchange and the DC must pass it."""
    return PortEntry(
        key=RPC_KEY,
        port=port,
        protocol="dcerpc",
        tls=TlsMode.NONE,
        component="The directory's RPC port (DRSUAPI and Netlogon) on the domain controller",
        description="Where the endpoint mapper on 135 sends clients of the directory and "
        "Netlogon RPC interfaces.",
        needs="A static RPC port for the directory (NTDS Parameters, KB 224196).",
        hint="Open this port as well as 135: the mapper names it, clients then connect to it.",
    )


def _ssl_reason(exc: ssl.SSLError) -> str:
    reason = exc.reason or exc.strerror or str(exc)
    return str(reason).replace("_", " ").lower()
