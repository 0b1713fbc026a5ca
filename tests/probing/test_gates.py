"""The gates' own rules: slots served by priority then in order, a rate that spaces
connections, a host's connect timeout adapted to it, and the memory of chains."""

from __future__ import annotations

import asyncio
import socket
import threading

from portcall.probing.driver import Connection, _connect, _Progress
from portcall.probing.gates import (
    CONNECT_FLOOR,
    GATES,
    PRIORITY,
    RTT_FACTOR,
    Gates,
    HostPace,
    RateGate,
    Slots,
)
from portcall.tls.memo import Outcome, TrustMemo, chain_key


def test_slots_serve_a_probe_that_has_begun_first() -> None:
    async def go() -> list[str]:
        slots = Slots(1)
        served: list[str] = []
        await slots.acquire()  # held

        async def waiter(name: str, priority: int) -> None:
            PRIORITY.set(priority)
            async with slots:
                served.append(name)

        tasks = [asyncio.create_task(waiter(n, p)) for n, p in [("a", 1), ("b", 0), ("c", 1)]]
        await asyncio.sleep(0)
        slots.release()
        await asyncio.gather(*tasks)
        return served

    assert asyncio.run(go()) == ["b", "a", "c"]


def test_a_cancelled_waiter_gives_its_slot_on() -> None:
    async def go() -> bool:
        slots = Slots(1)
        await slots.acquire()
        doomed = asyncio.create_task(slots.acquire())
        patient = asyncio.create_task(slots.acquire())
        await asyncio.sleep(0)
        doomed.cancel()
        slots.release()
        await asyncio.wait_for(patient, 1)
        return slots.locked()

    assert asyncio.run(go()) is True


def test_rate_spaces_acquisitions() -> None:
    async def go() -> float:
        gate = RateGate(50)
        loop = asyncio.get_running_loop()
        start = loop.time()
        for _ in range(6):
            await gate.wait()
        return loop.time() - start

    assert asyncio.run(go()) >= 5 / 50 * 0.9


def test_a_host_connect_timeout_adapts_between_floor_and_ceiling() -> None:
    pace = HostPace()
    assert pace.connect_timeout(5.0) == 5.0  # nothing known: the user's timeout
    pace.observe(0.001)
    assert pace.connect_timeout(5.0) == CONNECT_FLOOR
    pace.observe(0.3)
    assert pace.connect_timeout(5.0) == RTT_FACTOR * 0.3
    assert pace.connect_timeout(2.0) == 2.0


def test_the_memo_keys_chains_by_content_and_context() -> None:
    memo = TrustMemo()
    chain = (b"leaf", b"issuer")
    assert chain_key(chain, legacy=False) != chain_key(chain, legacy=True)
    assert chain_key(chain, legacy=False) != chain_key((b"leafissuer",), legacy=False)
    assert not memo.start_unverified
    memo.remember(chain_key(chain, legacy=False), Outcome(trusted=True))
    assert not memo.start_unverified
    memo.remember(chain_key((b"other",), legacy=False), Outcome(False, "unknown CA"))
    assert memo.start_unverified
    assert memo.get(chain_key(chain, legacy=False)) == Outcome(trusted=True)


def test_a_busy_server_that_drops_a_syn_is_reached_within_the_adapted_timeout() -> None:
    """A listener whose accept queue is full drops the SYN; once it accepts, the kernel's
    repeat of the SYN (after 1 s) gets through. A host that has already answered in a
    fraction of a millisecond has the floor as its connect timeout, which must outlast it."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=0)
    port = listener.getsockname()[1]
    queued = socket.create_connection(("127.0.0.1", port))  # fills the accept queue
    taken: list[socket.socket] = []
    accepting = threading.Timer(0.3, lambda: taken.append(listener.accept()[0]))
    accepting.start()
    pace = HostPace()
    pace.observe(0.0002)
    gates = Gates(asyncio.Semaphore(4), Slots(4), Slots(4), pace=pace)

    async def go() -> float:
        GATES.set(gates)
        connection = Connection(address="127.0.0.1", port=port, timeout=10.0)
        stream = await _connect(connection, _Progress())
        await stream.close()
        return stream.timings["connect"]

    try:
        seconds = asyncio.run(go())
    finally:
        accepting.join()
        for sock in (queued, listener, *taken):
            sock.close()
    assert 0.9 < seconds < CONNECT_FLOOR  # it took the SYN's repeat, inside the floor
