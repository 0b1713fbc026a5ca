"""What several commands share: the usage error, catalog and port options, atomic output."""

from __future__ import annotations

import math
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from portcall.catalog import (
    BUILTIN_CATALOGS,
    DEFAULT_CATALOG,
    PROTOCOLS,
    Catalog,
    CatalogError,
    PortEntry,
    load_catalog,
    merge_catalogs,
)
from portcall.cli.group import EXIT_USAGE
from portcall.verdicts import LocalFault


class UsageProblem(click.UsageError):
    """Bad input from the user: `Error: <what>` plus a hint, exit code 64."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


_DNS_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


def ad_domain_value(value: str | None, option: str, *, min_labels: int = 1) -> str | None:
    """An Active Directory domain given on the command line, in DNS form (example.com),
    lower case and without a trailing dot; a UsageProblem for anything else."""
    if value is None:
        return None
    name = value.strip().rstrip(".").lower()
    labels = name.split(".")
    if len(labels) < min_labels or not all(_DNS_LABEL.fullmatch(label) for label in labels):
        raise UsageProblem(
            f"{option}: '{value}' is not a DNS domain name",
            "give the Active Directory domain in DNS form, such as example.com: a NetBIOS "
            "name such as EXAMPLE is not an Active Directory domain name here",
        )
    return name


class Seconds(click.FloatRange):
    """A number of seconds within a range; "nan", which every comparison lets through, is
    refused as well."""

    name = "number"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        seconds = super().convert(value, param, ctx)
        if math.isnan(seconds):
            self.fail(f"{value!r} is not a number of seconds", param, ctx)
        return seconds


catalog_option = click.option(
    "--catalog",
    "catalog_path",
    metavar="NAME|FILE",
    multiple=True,
    help=f"A built-in catalog ({', '.join(BUILTIN_CATALOGS)}) or a TOML file, instead of "
    f"{DEFAULT_CATALOG}; repeat it to use several in one run.",
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


def open_catalog(paths: str | tuple[str, ...] | None) -> Catalog:
    """The catalog (or the catalogs merged, in order) that `--catalog` names."""
    names = (paths,) if isinstance(paths, str) else tuple(paths or ())
    try:
        if not names:
            return load_catalog()
        return merge_catalogs([load_catalog(name) for name in dict.fromkeys(names)])
    except CatalogError as exc:
        raise UsageProblem(
            str(exc),
            "fix the catalog where the error says; `portcall ports --json` shows every field "
            "of the built-in rows",
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
        low, dash, high = part.partition("-")
        first = int(low)
        last = int(high) if dash else first  # "25-" is no range: int("") refuses it
    except ValueError:
        raise UsageProblem(
            f"{option}: '{part}' is neither a port, a range nor a catalog key",
            f"catalog keys: {', '.join(e.key for e in catalog.entries)}",
        ) from None
    if not (1 <= first <= 65535 and 1 <= last <= 65535):
        raise UsageProblem(
            f"{option}: '{part}' is not a port: ports run from 1 to 65535",
            "example: --ports 25,443,993 or --ports smtp",
        )
    if first > last:
        raise UsageProblem(
            f"{option}: the range {part} runs backwards", f"write it as {last}-{first}"
        )
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


def check_output_path(path: str, option: str = "-o") -> None:
    """Refuse, before any work, an output path that cannot become a file: a directory, or a
    place in a directory that does not exist or cannot be written."""
    target = Path(path)
    if target.is_dir():
        raise UsageProblem(
            f"{option}: '{path}' is a directory", f"name a file, such as {target / 'report'}"
        )
    parent = target.parent
    if not parent.is_dir():
        raise UsageProblem(
            f"{option}: the directory '{parent}' does not exist", "create it, or name another"
        )
    if not os.access(parent, os.W_OK):
        raise UsageProblem(
            f"{option}: cannot write into '{parent}'", "give a file in a writable directory"
        )


def _output_callback(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None:
        check_output_path(value, "-o")
    return value


output_option = click.option(
    "-o",
    "--output",
    metavar="FILE",
    callback=_output_callback,
    help="Write to FILE instead of the screen (replaced whole, never left half-written).",
)


@contextmanager
def atomic_text(path: str) -> Iterator[Any]:
    """Write to a temporary file beside `path` and rename it into place, so an interrupted
    run, or a full disk, never leaves half a report where a good one was."""
    check_output_path(path)
    target = Path(path)
    try:
        handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 - renamed into place on success
            "w", encoding="utf-8", dir=target.parent, prefix=f".{target.name}.", delete=False
        )
    except OSError as exc:
        raise UsageProblem(
            f"-o: cannot write '{path}': {exc.strerror}", "give a file in a writable directory"
        ) from exc
    try:
        with handle:
            yield handle
        os.replace(handle.name, target)
    except BaseException as exc:
        Path(handle.name).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            kept = "the earlier file is unchanged" if target.exists() else "nothing was written"
            raise LocalFault(f"cannot write {path} ({exc.strerror or exc}); {kept}") from exc
        raise


def write_atomically(path: str, text: str) -> None:
    with atomic_text(path) as handle:
        handle.write(text)


def check_trust_store(cafile: str) -> None:
    """Load the CA file (`--ca`) once before any probe, so that a bad one is a usage error,
    not one failure per port."""
    from portcall.tls.context import TrustStoreError, client_context

    if not Path(cafile).is_file() or not os.access(cafile, os.R_OK):
        raise UsageProblem(f"--ca: cannot read '{cafile}'", "give the path of a PEM file")
    try:
        client_context(verify=True, legacy=False, cafile=cafile)
    except (TrustStoreError, OSError) as exc:
        raise UsageProblem(
            f"--ca: {exc}", "give a PEM file with one or more CA certificates"
        ) from exc
