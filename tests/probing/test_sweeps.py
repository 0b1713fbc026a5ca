"""The scheduler's sweeps for reference cycles: a run whose probes fail is swept while it
lasts; a healthy one, whose probes leave no cycle, is not."""

from __future__ import annotations

import gc
from collections import Counter

import pytest

from portcall.api import check_async
from portcall.catalog import TlsMode
from portcall.probing import scheduler
from portcall.probing.loop import run as on_loop
from portcall.probing.probe import Settings, kept_exceptions
from portcall.probing.scheduler import Limits
from portcall.verdicts import Result, Verdict
from tests.probing.servers import held, pop3, serve, unused_port
from tests.probing.test_probe_loopback import row

#: More probes than the sweeps start for (`scheduler.run_checks`), all on one host at once.
PROBES = 80
LIMITS = Limits(concurrency=PROBES, per_host=PROBES)


@pytest.fixture
def sweeps(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """What each full collection of the run found; sweeps come every 20 ms."""
    monkeypatch.setattr(scheduler, "SWEEP_EVERY", 0.02)
    found: list[int] = []
    collect = gc.collect

    def counted(generation: int = 2) -> int:
        found.append(collect(generation))
        return found[-1]

    monkeypatch.setattr(gc, "collect", counted)
    return found


def _run(refused: int, answered: int) -> list[Result]:
    """`refused` probes of a closed port and `answered` of a plain POP3 service that keeps
    each client waiting 0.2 s, so that the run outlasts a few sweeps' pauses."""

    async def go() -> list[Result]:
        async with serve(held(pop3(), 0.2)) as port:
            closed = unused_port()
            entries = [
                row("pop3", port, key=f"pop3-{n}", tls=TlsMode.NONE) for n in range(answered)
            ]
            entries += [
                row("pop3", closed, key=f"closed-{n}", tls=TlsMode.NONE) for n in range(refused)
            ]
            return await check_async(
                ["127.0.0.1"], entries=entries, settings=Settings(timeout=2), limits=LIMITS
            )

    return on_loop(go())


def test_a_run_whose_probes_fail_is_swept(sweeps: list[int]) -> None:
    before = kept_exceptions()
    results = _run(refused=PROBES - 8, answered=8)
    verdicts = Counter(r.verdict for r in results)
    assert verdicts == {Verdict.REFUSED: PROBES - 8, Verdict.OK: 8}
    assert kept_exceptions() == before + PROBES - 8
    assert len(sweeps) >= 1
    assert sweeps[0] > 0  # the failed probes' cycles, freed while the run went on


def test_a_healthy_run_is_not_swept(sweeps: list[int]) -> None:
    before = kept_exceptions()
    results = _run(refused=0, answered=PROBES)
    assert [r.verdict for r in results] == [Verdict.OK] * PROBES
    assert kept_exceptions() == before
    assert sweeps == []
