"""The event loop probes run on.

A probe is a few dozen event-loop callbacks: a connect, a handshake's reads and writes, a
protocol's exchanges, a close. asyncio's own loop runs those callbacks through Python code
(handles, the ready queue, the selector's bookkeeping, the socket transport); uvloop runs the
same asyncio API on libuv, in C, and a run of all 17 ports at 256 hosts costs about a seventh
less CPU on it (bench/RESULTS.md). portcall uses uvloop where it is installed (it is a
dependency on Linux and macOS) and asyncio's loop elsewhere, or when `PORTCALL_LOOP=asyncio`
asks for it. Verdicts do not depend on the loop: the client code sees the same exceptions
from both, and the probing tests run on both.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from portcall.verdicts import LocalFault

T = TypeVar("T")

#: The environment variable that chooses the loop: "uvloop" (the default where installed)
#: or "asyncio" (Python's own).
LOOP_VARIABLE = "PORTCALL_LOOP"


class LoopChoiceError(LocalFault):
    """`PORTCALL_LOOP` names a loop that is unknown or not installed here."""


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop, where it is installed and not declined; None means asyncio's. Asked
    for by name, uvloop must be installed."""
    asked = os.environ.get(LOOP_VARIABLE, "").strip().lower()
    if asked == "asyncio":
        return None
    if asked not in ("", "uvloop"):
        raise LoopChoiceError(f"{LOOP_VARIABLE}={asked!r}: say uvloop or asyncio")
    try:
        import uvloop
    except ImportError as exc:
        if not asked:
            return None
        raise LoopChoiceError(f"{LOOP_VARIABLE}=uvloop, but uvloop is not installed") from exc
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def loop_name() -> str:
    """Which loop `run` uses here: "uvloop" or "asyncio"."""
    return "asyncio" if loop_factory() is None else "uvloop"


def run(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(main)` on the loop of `loop_factory`."""
    try:
        factory = loop_factory()
    except LoopChoiceError:
        main.close()  # never run: no warning that it was never awaited
        raise
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)
