"""Drive a sans-IO handshake from a list of chunks, the way the driver does, with no I/O."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

from portcall.protocols.base import (
    CLOSE,
    NEED_DATA,
    Done,
    Handshake,
    Pause,
    RemoteProtocolError,
    Send,
    ServerHandshake,
    StartTLS,
)

#: Events a client may ask for before it must have finished: a bound, so a loop is caught.
MAX_STEPS = 1_000_000


def feed_client(
    hs: Handshake, chunks: Iterable[bytes], steps: list[float] | None = None
) -> Done | RemoteProtocolError:
    """Feed `chunks`, then the close, answering every event; the Done, or the peer's fault.
    With `steps`, the CPU time of each `next_event` call is appended to it."""
    pending = iter(chunks)
    try:
        for _ in range(MAX_STEPS):
            start = time.process_time()
            event = hs.next_event()
            if steps is not None:
                steps.append(time.process_time() - start)
            if isinstance(event, Done):
                return event
            if isinstance(event, StartTLS):
                hs.tls_started()
            elif isinstance(event, Pause):
                continue  # no time passes here
            elif event is NEED_DATA:
                hs.receive_data(next(pending, b""))
            else:
                assert isinstance(event, Send), f"a client yielded {event}"
    except RemoteProtocolError as error:
        return error
    raise AssertionError("the client neither finished nor failed")


def feed_server(hs: ServerHandshake, chunks: Iterable[bytes]) -> list[object]:
    """Feed `chunks`, then the close, to a server role; every event it yielded, CLOSE last."""
    pending = iter(chunks)
    events: list[object] = []
    for _ in range(MAX_STEPS):
        event = hs.next_event()
        events.append(event)
        if event is CLOSE:
            return events
        if isinstance(event, StartTLS):
            hs.tls_started()
        elif event is NEED_DATA:
            hs.receive_data(next(pending, b""))
        else:
            assert isinstance(event, Send), f"a server yielded {event}"
    raise AssertionError("the server never closed")


@contextmanager
def no_collection() -> Iterator[None]:
    """The cyclic garbage collector paused: a collection of what other tests left behind would
    be counted against the parser being timed."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def cpu_seconds(work: Callable[[], object], repeat: int = 3) -> float:
    """The least CPU time of `repeat` runs of `work`: the least is the one other load on the
    machine disturbed least."""
    best = float("inf")
    with no_collection():
        for _ in range(repeat):
            start = time.process_time()
            work()
            best = min(best, time.process_time() - start)
    return best
