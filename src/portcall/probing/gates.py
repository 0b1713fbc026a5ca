"""How much of a check runs at once, and how long a connection attempt may wait.

Two kinds of work, two limits. A connection attempt costs a socket and a SYN, nothing on the
server, so many are let in flight at once (`Limits.connections`, bounded by the open-file
limit): a firewall that drops SYNs then costs one or two timeouts for a whole /24 rather than
(hosts x ports / concurrency) timeouts. A conversation (TLS handshakes, protocol exchanges)
costs CPU here and on the server, so it waits for a slot of its host (`per_host`, taken first,
so that one busy host cannot hold global slots it cannot use) and then a global one
(`concurrency`). Connections to a host that has answered before are made inside a
conversation slot. The first connection to a host is made by one probe alone (`first_contact`);
if the host has not answered it within `SCOUT_PATIENCE`, its other probes are attempted
freely, and one that connects when no conversation slot is free is closed and made again
later, so that no server sees more idle connections than the limits allow; one that waited
longer than `IDLE_LIMIT` is made again too, as servers close clients that stay silent. The
wait for a slot is not counted against any timeout.

Connection timeouts adapt to each host: once a host has answered a connection, later attempts
on it wait `RTT_FACTOR` times its slowest connect, but never less than `CONNECT_FLOOR` seconds
nor more than the user's `--timeout` (nmap adapts its timeouts the same way).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import os
import resource
from collections.abc import AsyncIterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from enum import Enum
from typing import Final

from portcall.tls.memo import FIRST_PATIENCE, TrustMemo
from portcall.verdicts import LocalFault

#: The least an adapted connection timeout may be, in seconds. A server whose accept queue is
#: full drops SYNs, and the kernel sends the first one again after 1 s (TCP's initial
#: retransmission timeout, RFC 6298 section 2): the floor waits for that second SYN's answer,
#: so that a busy server that answered a moment ago is not reported as filtered.
CONNECT_FLOOR: Final = 3.0
#: An adapted connection timeout is this many times the host's slowest connect so far.
RTT_FACTOR: Final = 10.0
#: File descriptors kept aside beyond those open now (the report, a resolver's socket).
FD_MARGIN: Final = 16


@dataclass
class HostPace:
    """What portcall has measured of one host: its slowest connect so far, and whether its
    first connection is under way (`first_contact`)."""

    slowest: float | None = None
    #: Done once the first connection to the host was made or failed; None before it began.
    scout: asyncio.Future[None] | None = None

    def observe(self, seconds: float) -> None:
        self.slowest = seconds if self.slowest is None else max(self.slowest, seconds)

    def connect_timeout(self, ceiling: float) -> float:
        """The connection timeout for the next attempt on this host."""
        if self.slowest is None:
            return ceiling
        return min(ceiling, max(CONNECT_FLOOR, RTT_FACTOR * self.slowest))


class RateGate:
    """New connections per second (`--rate`), spaced evenly: a bucket that holds one."""

    def __init__(self, per_second: float) -> None:
        self.interval = 1.0 / per_second
        self._next = 0.0

    async def wait(self) -> None:
        now = asyncio.get_running_loop().time()
        slot = max(now, self._next)
        self._next = slot + self.interval
        if slot > now:
            await asyncio.sleep(slot - now)


class Slots:
    """A semaphore whose waiters are served by priority, then in order: a probe that has
    begun (a retry on another TLS context, a verifying handshake) goes before those that
    have not, so that what it learns (`tls.memo`) reaches the rest early."""

    def __init__(self, value: int) -> None:
        self._value = value
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def locked(self) -> bool:
        return self._value <= 0

    async def acquire(self) -> None:
        if self._value > 0 and not self._waiters:
            self._value -= 1
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (PRIORITY.get(), next(self._order), waiter))
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.release()  # granted, then cancelled: hand the slot on
            else:
                self._waiters = [w for w in self._waiters if w[2] is not waiter]
                heapq.heapify(self._waiters)
            raise

    def release(self) -> None:
        while self._waiters:
            _, _, waiter = heapq.heappop(self._waiters)
            if not waiter.done():
                waiter.set_result(None)
                return
        self._value += 1

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(self, *_exc: object) -> None:
        self.release()


#: A probe's place in the queue for conversation slots: 0 once it has begun, else 1.
PRIORITY: ContextVar[int] = ContextVar("portcall_priority", default=1)


@dataclass
class Waiting:
    """Connections that are open and wait for a conversation slot: a few per host and in all
    are fine (no reconnect needed), more would pile idle connections on the servers."""

    limit: int
    count: int = 0

    def room(self) -> bool:
        return self.count < self.limit


@dataclass
class Gates:
    connections: asyncio.Semaphore
    conversations: Slots
    per_host: Slots
    pace: HostPace = field(default_factory=HostPace)
    rate: RateGate | None = None
    #: Open connections waiting for a slot: this host's, and the run's (shared).
    waiting_here: Waiting = field(default_factory=lambda: Waiting(0))
    waiting_all: Waiting = field(default_factory=lambda: Waiting(0))
    #: The run's memory of certificate chains and their verification (shared).
    trust: TrustMemo | None = None


#: The gates of the probe running in this task (set by the scheduler; none: ungated).
GATES: ContextVar[Gates | None] = ContextVar("portcall_gates", default=None)


@dataclass
class Waited:
    """Seconds a probe has spent waiting for its gates: no timeout, and no probe deadline,
    counts them (a probe of a large run may queue far longer than it works)."""

    seconds: float = 0.0


#: The waiting of the probe running in this task (set by the scheduler).
WAITED: ContextVar[Waited | None] = ContextVar("portcall_waited", default=None)


def waiting() -> _Waiting:
    """Count the time spent inside as this probe's waiting."""
    return _Waiting(WAITED.get())


class _Waiting:
    """The context of `waiting`. The contexts every probe enters a few times are classes:
    a generator's context costs some microseconds more each time."""

    __slots__ = ("_start", "_waited")

    def __init__(self, waited: Waited | None) -> None:
        self._waited = waited
        self._start = 0.0

    def __enter__(self) -> None:
        if self._waited is not None:
            self._start = asyncio.get_running_loop().time()

    def __exit__(self, *_exc: object) -> None:
        if self._waited is not None:
            self._waited.seconds += asyncio.get_running_loop().time() - self._start


def seconds_waited() -> float:
    waited = WAITED.get()
    return waited.seconds if waited is not None else 0.0


def connection_slot() -> _ConnectionSlot:
    """Held from the connection attempt to the close: bounds the sockets open at once."""
    return _ConnectionSlot(GATES.get())


def conversation_slot() -> _ConversationSlot:
    """Held while portcall talks on a connection: bounds the work done at once."""
    return _ConversationSlot(GATES.get())


class _Held:
    """The context of a slot of this probe's gates (none when nothing is gated); a class, as
    `_Waiting` is."""

    __slots__ = ("_gates",)

    def __init__(self, gates: Gates | None) -> None:
        self._gates = gates


class _ConnectionSlot(_Held):
    __slots__ = ()

    async def __aenter__(self) -> None:
        gates = self._gates
        if gates is None:
            return
        with waiting():
            await gates.connections.acquire()
        try:
            await paced()
        except BaseException:
            gates.connections.release()
            raise

    async def __aexit__(self, *_exc: object) -> None:
        if self._gates is not None:
            self._gates.connections.release()


class _ConversationSlot(_Held):
    __slots__ = ()

    async def __aenter__(self) -> None:
        if self._gates is not None:
            with waiting():
                await _take_conversation(self._gates)

    async def __aexit__(self, *_exc: object) -> None:
        if self._gates is not None:
            _give_conversation(self._gates)


async def _take_conversation(gates: Gates) -> None:
    """A conversation slot: the host's, then the run's (the host's is given back when the
    wait for the run's is cut short)."""
    await gates.per_host.acquire()
    try:
        await gates.conversations.acquire()
    except BaseException:
        gates.per_host.release()
        raise


def _give_conversation(gates: Gates) -> None:
    gates.conversations.release()
    gates.per_host.release()


async def paced() -> None:
    """Wait for the run's `--rate` before a new connection: each is one, also one made again
    inside a connection slot that already paced the first."""
    gates = GATES.get()
    if gates is not None and gates.rate is not None:
        with waiting():
            await gates.rate.wait()


class Slot(Enum):
    """What `slot_for_open_connection` gave a connection already open."""

    #: A slot, and the connection is fresh: talk on it.
    READY = "ready"
    #: A slot, but the connection sat idle too long: make it again inside the slot.
    STALE = "stale"
    #: No slot: too many connections wait already; close it and make it again later.
    NONE = "none"


#: Seconds the probes of a host wait for its first connection (`first_contact`) before they
#: connect at once anyway: a host that answers at all answers a SYN well within it, one
#: that drops SYNs then costs this much more than the timeout.
SCOUT_PATIENCE = 0.5

#: Seconds an open connection may wait, silent, for its conversation: servers close clients
#: that say nothing (INN's nnrpd after 10 s, Postfix under stress after 10 s), so one kept
#: longer is made again rather than found closed.
IDLE_LIMIT = 3.0


@contextlib.asynccontextmanager
async def slot_for_open_connection() -> AsyncIterator[Slot]:
    """A conversation slot for a connection already open: at once if one is free, after a
    wait if few connections wait already (this host's and the run's `Waiting`), else none.
    A wait longer than `IDLE_LIMIT` makes the connection stale."""
    gates = GATES.get()
    if gates is None:
        yield Slot.READY
        return
    free = not (gates.per_host.locked() or gates.conversations.locked())
    if not free and not (gates.waiting_here.room() and gates.waiting_all.room()):
        yield Slot.NONE
        return
    gates.waiting_here.count += 1
    gates.waiting_all.count += 1
    loop = asyncio.get_running_loop()
    start = loop.time()
    try:
        with waiting():
            await _take_conversation(gates)
    finally:
        gates.waiting_here.count -= 1
        gates.waiting_all.count -= 1
    try:
        yield Slot.STALE if loop.time() - start > IDLE_LIMIT else Slot.READY
    finally:
        _give_conversation(gates)


async def first_contact() -> bool:
    """Before connecting to a host that has not answered yet: True for the probe that makes
    the first connection to it (the scout), which must call `first_contact_made` once that
    connection is made or has failed. The host's other probes wait until then, for at most
    `SCOUT_PATIENCE`: if it answered, they connect inside conversation slots as to any host
    that answered; if not, or not yet, they connect at once, all of them, so that a host
    dropping SYNs costs one timeout and a little more, not one per conversation slot.
    Without this, every probe of a run's first hosts connected before any had answered, and
    most of those connections found no conversation slot free and were made a second time."""
    pace = host_pace()
    if pace is None or pace.slowest is not None:
        return False
    if pace.scout is None:
        pace.scout = asyncio.get_running_loop().create_future()
        return True
    if not pace.scout.done():
        # Shielded: one waiter cancelled or out of patience leaves the future to the rest.
        with waiting(), contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(pace.scout), SCOUT_PATIENCE)
    return False


def first_contact_made() -> None:
    """The scout's connection is made, or has failed (see `first_contact`)."""
    pace = host_pace()
    if pace is not None and pace.scout is not None and not pace.scout.done():
        pace.scout.set_result(None)


def host_answered() -> bool:
    """Whether this probe's host has answered a connection already (or nothing is gated):
    then a conversation slot is taken before connecting, as no SYN will be waited out."""
    gates = GATES.get()
    return gates is None or gates.pace.slowest is not None


async def first_verification(timeout: float) -> None:
    """Before a handshake: while the run knows nothing of its chains and its first verifying
    handshake is under way, wait for that outcome (`TrustMemo.first`), counted as time
    waited, at most `FIRST_PATIENCE` or a quarter of `timeout`."""
    memo = trust_memo()
    if memo is None or memo.first is None or memo.first.done() or not memo.undecided():
        return
    if memo.first_task is asyncio.current_task():
        return  # the first's own next rung (a legacy context) goes on at once
    with waiting(), contextlib.suppress(TimeoutError):
        async with asyncio.timeout(min(FIRST_PATIENCE, timeout / 4)):
            await asyncio.shield(memo.first)


def trust_memo() -> TrustMemo | None:
    gates = GATES.get()
    return gates.trust if gates is not None else None


def host_pace() -> HostPace | None:
    gates = GATES.get()
    return gates.pace if gates is not None else None


def open_file_budget(wanted: int) -> tuple[int, str | None]:
    """Raise the soft open-file limit toward what `wanted` connections need (up to the hard
    limit) and say how many fit at once, with a note when fewer than `wanted`. Raises
    `LocalFault` when not even one does."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    in_use = _open_files()
    need = wanted + in_use + FD_MARGIN
    if soft != resource.RLIM_INFINITY and soft < need:
        target = need if hard == resource.RLIM_INFINITY else min(need, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
    fits = wanted if soft == resource.RLIM_INFINITY else soft - in_use - FD_MARGIN
    if fits < 1:
        raise LocalFault(
            f"this machine cannot open the connection (the open-file limit is {soft} and "
            f"{in_use} are in use): raise the open-file limit (ulimit -n)"
        )
    if fits >= wanted:
        return wanted, None
    return fits, (
        f"the open-file limit ({soft}) allows {fits} connections at once, not {wanted}: "
        "filtered ports will take longer; raise it with ulimit -n"
    )


def _open_files() -> int:
    """File descriptors this process has open now (Linux; a guess elsewhere)."""
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return 16
