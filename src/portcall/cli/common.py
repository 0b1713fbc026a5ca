"""What several commands share: the usage error, catalog and port options, atomic output."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from portcall.catalog import PROTOCOLS, Catalog, CatalogError, PortEntry, load_catalog
from portcall.cli.group import EXIT_USAGE


class UsageProblem(click.UsageError):
    """Bad input from the user: `Error: <what>` plus a hint, exit code 64."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


catalog_option = click.option(
    "--catalog",
    "catalog_path",
    metavar="FILE",
    help="Use this TOML catalog instead of exchange-2000.",
)


ports_option = click.option(
    "--ports", "ports_text", metavar="PORTS", help="Ports or keys: 25,443,990-995,imaps."
)
protocol_option = click.option(
    "--protocol",
    "protocols",
    multiple=True,
    type=click.Choice(PROTOCOLS),
    help="Only ports of this protocol (repeatable).",
)


def open_catalog(path: str | None) -> Catalog:
    try:
        return load_catalog(path)
    except CatalogError as exc:
        raise UsageProblem(
            str(exc), "fix the row named above; `portcall ports` shows the format"
        ) from exc


def parse_ports(text: str, catalog: Catalog, option: str) -> list[int]:
    """`25,110-143,imaps` -> the catalog ports it names."""
    ports: list[int] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        ports += _parse_port_part(part, catalog, option)
    if not ports:
        raise UsageProblem(f"{option} names no port", "example: --ports 25,443,993 or --ports smtp")
    return sorted(set(ports))


def _parse_port_part(part: str, catalog: Catalog, option: str) -> list[int]:
    entry = catalog.by_key(part)
    if entry is not None:
        return [entry.port]
    try:
        low, _, high = part.partition("-")
        first, last = int(low), int(high or low)
    except ValueError:
        raise UsageProblem(
            f"{option}: '{part}' is neither a port, a range nor a catalog key",
            f"catalog keys: {', '.join(e.key for e in catalog.entries)}",
        ) from None
    known = [e.port for e in catalog.entries if first <= e.port <= last]
    if not known:
        raise UsageProblem(
            f"{option}: no port of catalog '{catalog.name}' in {part}",
            "portcall probes catalog ports only; add a row with --catalog FILE for another port",
        )
    return known


def select_entries(
    catalog: Catalog, ports: str | None, protocols: tuple[str, ...]
) -> list[PortEntry]:
    wanted = set(parse_ports(ports, catalog, "--ports")) if ports else None
    entries = catalog.select(ports=wanted, protocols=set(protocols) if protocols else None)
    if not entries:
        raise UsageProblem("the --ports and --protocol options together select no port")
    return entries


@contextmanager
def atomic_text(path: str) -> Iterator[Any]:
    """Write to a temporary file beside `path` and rename it into place, so an interrupted
    run never leaves half a report where a good one was."""
    target = Path(path)
    try:
        handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 - renamed into place on success
            "w", encoding="utf-8", dir=target.parent or ".", prefix=f".{target.name}.", delete=False
        )
    except OSError as exc:
        raise UsageProblem(f"-o: cannot write '{path}': {exc.strerror}") from exc
    try:
        with handle:
            yield handle
        os.replace(handle.name, target)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise


def write_atomically(path: str, text: str) -> None:
    with atomic_text(path) as handle:
        handle.write(text)
