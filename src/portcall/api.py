"""The library call behind `portcall check`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from portcall.catalog import Catalog, PortEntry, load_catalog
from portcall.probing import loop
from portcall.probing.probe import Settings
from portcall.probing.scheduler import Limits, ResultHook, run_checks
from portcall.probing.targets import Target, parse_targets
from portcall.verdicts import Result


async def check_async(
    targets: list[str] | list[Target],
    *,
    catalog: Catalog | None = None,
    entries: list[PortEntry] | None = None,
    settings: Settings | None = None,
    limits: Limits | None = None,
    required: Iterable[int] = (),
    on_result: ResultHook | None = None,
    keep: bool = True,
) -> list[Result]:
    """Probe every catalog port (or `entries`) of every target; one Result per pair.

    Raises `LocalFault` when this machine cannot make the check (too few file descriptors,
    no route from here, an unusable `settings.cafile`): no result is then given, since it
    would describe this machine rather than the targets.
    """
    catalog = catalog or load_catalog()
    return await run_checks(
        [t for t in targets if isinstance(t, Target)]
        + parse_targets([t for t in targets if isinstance(t, str)]),
        entries if entries is not None else list(catalog.entries),
        settings or Settings(),
        limits or Limits(),
        frozenset(required),
        on_result,
        keep,
    )


def check(targets: list[str], **options: Any) -> list[Result]:
    """Synchronous `check_async`, for scripts; takes the same keyword arguments."""
    return loop.run(check_async(targets, **options))
