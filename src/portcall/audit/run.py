"""Probe every target at once (bounded), then judge each against the plan."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping

from portcall.api import check_async
from portcall.audit.judge import AuditLine, Probed, judge, unprobed
from portcall.audit.selection import Target, select_targets
from portcall.probing.errors import Phase, classify
from portcall.probing.probe import Settings
from portcall.probing.scheduler import Limits
from portcall.topology import Plan
from portcall.verdicts import Verdict

#: Probes in flight at once; a firewall that drops makes each wait the whole timeout.
CONCURRENCY = 64


async def run_audit(
    plan: Plan, source: str, *, timeout: float = 2.0, samples: Mapping[str, str] | None = None
) -> list[AuditLine]:
    """One line per target, in the order `select_targets` gives them.

    Raises `TopologyError` when `source` names no host or zone, and `LocalFault` when this
    machine cannot make the probes.
    """
    targets = select_targets(plan, source, samples or {})
    gate = asyncio.Semaphore(CONCURRENCY)
    settings = Settings(timeout=timeout)
    probed = await asyncio.gather(*(_guarded(gate, t, settings) for t in targets))
    return [judge(target, result) for target, result in zip(targets, probed, strict=True)]


async def _guarded(gate: asyncio.Semaphore, target: Target, settings: Settings) -> Probed:
    why_not = unprobed(target)
    if why_not is not None:
        return Probed(None, why_not)
    async with gate:
        if target.entry is not None:
            return await _check(target, settings)
        return await _connect(target, settings.timeout)


async def _check(target: Target, settings: Settings) -> Probed:
    """A catalog port: `check`'s probe gives both the connection's fate and the service's."""
    assert target.address is not None and target.entry is not None
    one = Limits(concurrency=1, per_host=1)
    (result,) = await check_async(
        [target.address], entries=[target.entry], settings=settings, limits=one
    )
    return Probed(result.verdict, result.reason, result.verdict)


async def _connect(target: Target, timeout: float) -> Probed:
    """Any other TCP port: does a connection open?"""
    assert target.address is not None
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(target.address, target.port), timeout
        )
    except (OSError, TimeoutError) as exc:
        failure = classify(exc, Phase.CONNECT, b"", timeout, target.address)
        return Probed(failure.verdict, failure.detail)
    writer.close()
    await _closed(writer)
    return Probed(Verdict.OK, "the connection opened")


async def _closed(writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError):
        await writer.wait_closed()
