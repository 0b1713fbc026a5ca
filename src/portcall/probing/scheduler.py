"""Run every (host, port) probe concurrently: connections under one wide limit, conversations
under a per-host and a global one (`portcall.probing.gates`)."""

from __future__ import annotations

import asyncio
import gc
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from portcall.catalog import PortEntry
from portcall.probing.domain import NEEDS_DOMAIN, domain_from_rootdse, implied_domain
from portcall.probing.errors import Phase, ProbeFailure, classify
from portcall.probing.gates import (
    GATES,
    WAITED,
    Gates,
    HostPace,
    RateGate,
    Slots,
    Waited,
    Waiting,
    open_file_budget,
)
from portcall.probing.probe import Endpoint, Settings, kept_exceptions, probe
from portcall.probing.reasons import failure_reason
from portcall.probing.targets import Target
from portcall.tls.context import client_context
from portcall.tls.engine import asked_library
from portcall.tls.memo import TrustMemo
from portcall.verdicts import LocalFault, Result

ResultHook = Callable[[Result], None]


@dataclass(frozen=True)
class Limits:
    #: Conversations (TLS handshakes, protocol exchanges) at once, all hosts together.
    concurrency: int = 64
    #: Conversations at once with one host (a server should not see a flood).
    per_host: int = 8
    #: Connections open at once, answered or not: waiting on a filtered port costs nothing
    #: but a socket. Lowered to what the open-file limit allows (`gates.open_file_budget`).
    connections: int = 4096
    #: New connections (and UDP requests) per second, all hosts together; None: no limit.
    rate: float | None = None


async def run_checks(
    targets: list[Target],
    entries: list[PortEntry],
    settings: Settings,
    limits: Limits = Limits(),
    required: frozenset[int] = frozenset(),
    on_result: ResultHook | None = None,
    keep: bool = True,
) -> list[Result]:
    """Results in the order of `targets`, then of `entries` (none with `keep` False: each
    goes to `on_result` only, so that memory does not grow with the run).

    A `LocalFault` in any probe stops the run (every other probe is cancelled) and is raised:
    what the run had found would say more about this machine than about the targets.
    """
    if settings.cafile is not None:
        client_context(verify=True, legacy=False, cafile=settings.cafile)  # TrustStoreError
    asked_library()  # TlsEngineError: PORTCALL_TLS names no TLS library
    overall = Slots(limits.concurrency)
    allowed, _note = open_file_budget(connections_wanted(limits, len(targets), len(entries)))
    connections = asyncio.Semaphore(allowed)
    rate = RateGate(limits.rate) if limits.rate else None
    # Waiters hold a connection each: at most half of them may, so that a probe which took
    # its conversation slot first can always get a connection (no deadlock at a low ulimit).
    waiting = Waiting(min(WAITING_IN_ALL * limits.concurrency, allowed // 2))
    trust = TrustMemo()
    resolved = await asyncio.gather(
        *(_resolve(t, settings.timeout, settings.all_addresses) for t in targets)
    )
    endpoints = [endpoint for found in resolved for endpoint in found]
    if any(entry.protocol in NEEDS_DOMAIN for entry in entries):
        endpoints = await asyncio.gather(*(_with_domain(e, settings) for e in endpoints))
    sweeper = asyncio.create_task(_sweep_cycles()) if len(endpoints) * len(entries) > 64 else None
    # Probes are started as earlier ones end, never more at once than connections may be
    # open: a run of thousands of hosts holds thousands of probes, not all of them at once.
    started = asyncio.Semaphore(allowed)
    tasks: list[asyncio.Task[Result | None]] = []
    try:
        async with asyncio.TaskGroup() as group:
            for endpoint in endpoints:
                per_host = Slots(limits.per_host)
                waiting_here = Waiting(WAITING_PER_HOST * limits.per_host)
                gates = Gates(
                    connections, overall, per_host, HostPace(), rate, waiting_here, waiting, trust
                )
                for entry in entries:
                    await started.acquire()
                    job = _one(endpoint, entry, settings, gates, on_result, required, keep)
                    task = group.create_task(job)
                    task.add_done_callback(lambda _done: started.release())
                    if keep:
                        tasks.append(task)
    except* LocalFault as faults:
        raise faults.exceptions[0] from None
    finally:
        if sweeper is not None:
            sweeper.cancel()
    return [result for task in tasks if (result := task.result()) is not None]


#: Open connections that may wait for a conversation slot, per host and in all, as multiples
#: of `Limits.per_host` and `Limits.concurrency`: enough for one host's whole catalog.
WAITING_PER_HOST = 2
WAITING_IN_ALL = 4
#: Seconds between two sweeps of reference cycles in a long run (see `_sweep_cycles`), at
#: least; and the share of the run's time the sweeps may take, at most.
SWEEP_EVERY = 0.5
SWEEP_SHARE = 0.02
#: A sweep that frees fewer objects than this found next to nothing; the pause before the
#: next one doubles after each such sweep, up to `SWEEP_PATIENCE` times as long.
SWEEP_WORTH = 1000
SWEEP_PATIENCE = 16
#: Allocations between two collections of the youngest generation during a run (Python's
#: default is 700): the objects of a probe die with it, not in cycles, so most of those
#: collections would find nothing (a third of their cost at 256 hosts).
YOUNG_THRESHOLD = 10_000


async def _sweep_cycles() -> None:
    """Free closed connections promptly. A healthy probe leaves no reference cycle behind
    (`probing.stream` breaks the ones asyncio makes), but a failed one may: an exception's
    frames refer to the task, its timeout and its connection, which then wait for Python's
    full garbage collection, which a run of thousands of probes rarely triggers (memory
    grew to 192 MB at 256 hosts x 17 ports before the sweeps). The objects alive before the
    run are frozen out of the sweep; a sweep still walks every object of the probes in
    flight (tens of milliseconds when a thousand are), so there is none while no exception
    has been kept since the last (`probe.kept_exceptions`), and the pause after one grows
    with what it cost, and with how little it found. Python's own collections of young
    objects run less often meanwhile (`YOUNG_THRESHOLD`)."""
    gc.freeze()
    threshold = gc.get_threshold()
    gc.set_threshold(max(threshold[0], YOUNG_THRESHOLD), *threshold[1:])
    try:
        pause, fruitless, kept = SWEEP_EVERY, 0, kept_exceptions()
        while True:
            await asyncio.sleep(pause)
            if kept_exceptions() == kept:
                continue  # nothing can have made a cycle since the last sweep
            kept = kept_exceptions()
            start = time.process_time()
            found = gc.collect()
            fruitless = fruitless + 1 if found < SWEEP_WORTH else 0
            patience = min(2**fruitless, SWEEP_PATIENCE)
            pause = max(SWEEP_EVERY, (time.process_time() - start) / SWEEP_SHARE) * patience
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()


def connections_wanted(limits: Limits, hosts: int, entries: int) -> int:
    """Connections worth having open at once: every probe's, up to `limits.connections`."""
    return min(limits.connections, max(1, hosts * entries))


async def _one(
    endpoint: Endpoint | tuple[Target, ProbeFailure],
    entry: PortEntry,
    settings: Settings,
    gates: Gates,
    on_result: ResultHook | None,
    required: frozenset[int],
    keep: bool,
) -> Result | None:
    if isinstance(endpoint, tuple):
        target, failure = endpoint
        result = Result(target.name, entry.port, entry.key, failure.verdict, "")
        result.transport = entry.transport
        result.reason = failure_reason(entry, failure)
    else:
        GATES.set(gates)  # this task's own context: its probe's connections take these gates
        WAITED.set(Waited())
        result = await probe(endpoint, entry, settings)
    result.required = result.port in required
    if on_result is not None:
        on_result(result)
    return result if keep else None


async def _resolve(
    target: Target, timeout: float, all_addresses: bool = False
) -> list[Endpoint | tuple[Target, ProbeFailure]]:
    """The address of `target` to probe (its first, as a client would connect), or with
    `all_addresses` each of its addresses, IPv4 and IPv6."""
    if target.is_address:
        return [Endpoint(target.name, target.name, True)]
    if target.address is not None:
        return [Endpoint(target.name, target.address, False)]
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(timeout):
            infos = await loop.getaddrinfo(target.name, None, type=socket.SOCK_STREAM)
    except (OSError, TimeoutError) as exc:
        return [(target, classify(_as_resolution_error(exc), Phase.RESOLVE, b"", timeout))]
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    chosen = addresses if all_addresses else addresses[:1]
    return [Endpoint(target.name, address, False) for address in chosen]


async def _with_domain(
    endpoint: Endpoint | tuple[Target, ProbeFailure], settings: Settings
) -> Endpoint | tuple[Target, ProbeFailure]:
    """`endpoint` with the AD domain it serves, when one is known (`portcall.probing.domain`)."""
    if isinstance(endpoint, tuple):
        return endpoint
    domain = settings.domain or (None if endpoint.is_address else implied_domain(endpoint.host))
    if not domain:
        domain = await domain_from_rootdse(endpoint.address, endpoint.host, settings.timeout)
    return replace(endpoint, domain=domain)


def _as_resolution_error(exc: BaseException) -> BaseException:
    if isinstance(exc, socket.gaierror):
        return exc
    return socket.gaierror(socket.EAI_AGAIN, "the name lookup timed out")
