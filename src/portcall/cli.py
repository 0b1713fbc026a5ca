"""The command line: parse, call the library, render, exit with a documented code.

Exit codes: 0 healthy, 1 warnings only, 2 failures, 64 usage error (bad option, target,
catalog or file), 130 interrupted.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from portcall import __version__
from portcall.catalog import PROTOCOLS, Catalog, CatalogError, PortEntry, load_catalog
from portcall.check import check_async
from portcall.probing.probe import Settings
from portcall.probing.scheduler import Limits
from portcall.probing.targets import TargetError, parse_targets
from portcall.protocols.base import PROFILES
from portcall.report.inert import inert
from portcall.report.json_report import check_document, dumps
from portcall.report.terminal import render, summary_line
from portcall.tls.context import TrustStoreError, client_context
from portcall.verdicts import Health, Result, overall_health

EXIT_HEALTHY = 0
EXIT_WARNINGS = 1
EXIT_FAILURES = 2
EXIT_USAGE = 64
EXIT_INTERRUPTED = 130

_EXIT_FOR_HEALTH = {
    Health.HEALTHY: EXIT_HEALTHY,
    Health.WARNINGS: EXIT_WARNINGS,
    Health.FAILURES: EXIT_FAILURES,
}


class UsageProblem(click.UsageError):
    """Bad input from the user: `Error: <what>` plus a hint, exit code 64."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


def _catalog(path: str | None) -> Catalog:
    try:
        return load_catalog(path)
    except CatalogError as exc:
        raise UsageProblem(
            str(exc), "fix the row named above; `portcall ports` shows the format"
        ) from exc


def _parse_ports(text: str, catalog: Catalog, option: str) -> list[int]:
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


def _select(catalog: Catalog, ports: str | None, protocols: tuple[str, ...]) -> list[PortEntry]:
    wanted = set(_parse_ports(ports, catalog, "--ports")) if ports else None
    entries = catalog.select(ports=wanted, protocols=set(protocols) if protocols else None)
    if not entries:
        raise UsageProblem("the --ports and --protocol options together select no port")
    return entries


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="portcall")
def app() -> None:
    """Know, open and prove the ports Exchange 2000/2003 and other mail and directory
    servers need.

    \b
    Exit codes: 0 healthy, 1 warnings, 2 failures, 64 usage error, 130 interrupted.
    """


_catalog_option = click.option(
    "--catalog",
    "catalog_path",
    metavar="FILE",
    help="Use this TOML catalog instead of exchange-2000.",
)


_ports_option = click.option(
    "--ports", "ports_text", metavar="PORTS", help="Ports or keys: 25,443,990-995,imaps."
)
_protocol_option = click.option(
    "--protocol",
    "protocols",
    multiple=True,
    type=click.Choice(PROTOCOLS),
    help="Only ports of this protocol (repeatable).",
)


@app.command()
@_catalog_option
@click.option("--protocol", type=click.Choice(PROTOCOLS), help="Only rows of this protocol.")
@click.option("--port", type=click.IntRange(1, 65535), help="Only the row of this port.")
@click.option("--json", "as_json", is_flag=True, help="Print the catalog as JSON.")
def ports(catalog_path: str | None, protocol: str | None, port: int | None, as_json: bool) -> None:
    """Show the port catalog: what each port is for, what it needs, what to check."""
    catalog = _catalog(catalog_path)
    entries = catalog.select(
        ports={port} if port else None, protocols={protocol} if protocol else None
    )
    if as_json:
        document = {"catalog": catalog.name, "title": catalog.title, "source": catalog.source}
        click.echo(json.dumps({**document, "ports": [e.to_dict() for e in entries]}, indent=2))
        return
    if not entries:
        raise UsageProblem("no catalog row matches", "run `portcall ports` to see every row")
    _print_catalog(catalog, entries)


def _print_catalog(catalog: Catalog, entries: list[PortEntry]) -> None:
    click.echo(f"{catalog.title or catalog.name} — {len(entries)} of {len(catalog.entries)} ports")
    if catalog.source:
        click.echo(f"Source: {catalog.source}")
    for e in entries:
        tls = {"none": "", "starttls": ", STARTTLS", "implicit": ", TLS from the first byte"}[e.tls]
        optional = " (optional)" if e.optional else ""
        click.echo(f"\n{e.port}/{e.transport}  {e.key}  {e.label}{tls}{optional}")
        for label, text in (
            ("served by", e.component),
            ("purpose", e.description),
            ("needs", e.needs),
            ("if it fails", e.hint),
        ):
            click.echo(f"  {label + ':':<12} {text}")


@app.command()
@click.argument("targets", nargs=-1, required=True, metavar="TARGET...")
@_catalog_option
@_ports_option
@_protocol_option
@click.option(
    "--timeout",
    type=click.FloatRange(0.1, 120),
    default=5.0,
    show_default=True,
    help="Seconds one probe may take.",
)
@click.option(
    "--concurrency",
    type=click.IntRange(1, 4096),
    default=64,
    show_default=True,
    help="Probes in flight at once.",
)
@click.option(
    "--per-host",
    type=click.IntRange(1, 256),
    default=8,
    show_default=True,
    help="Probes in flight at once against one host.",
)
@click.option(
    "--ca",
    "cafile",
    metavar="FILE",
    help="Trust these CA certificates (PEM, or one DER certificate) instead of the system store.",
)
@click.option(
    "--servername",
    metavar="NAME",
    help="Name for SNI and the certificate check (default: the target as typed).",
)
@click.option(
    "--require",
    "require_text",
    metavar="PORTS|all",
    help="A closed or filtered port among these is a failure, not information.",
)
@click.option(
    "--expiring-days",
    type=click.IntRange(0, 3650),
    default=30,
    show_default=True,
    help="Warn when a certificate expires sooner than this.",
)
@click.option("--json", "as_json", is_flag=True, help="Write the portcall.check/1 JSON document.")
@click.option("-o", "--output", metavar="FILE", help="Write the report to FILE instead of stdout.")
def check(
    targets: tuple[str, ...],
    catalog_path: str | None,
    ports_text: str | None,
    protocols: tuple[str, ...],
    timeout: float,
    concurrency: int,
    per_host: int,
    cafile: str | None,
    servername: str | None,
    require_text: str | None,
    expiring_days: int,
    as_json: bool,
    output: str | None,
) -> None:
    """Prove that the right service answers on every catalog port of each TARGET.

    TARGET is a host name, an IPv4 or IPv6 address, or a CIDR range. Each port gets one
    verdict (ok, refused, filtered, unreachable, unresolved, silent, wrong-protocol,
    no-starttls, tls-failed) with a reason, plus certificate and TLS findings.
    """
    catalog = _catalog(catalog_path)
    entries = _select(catalog, ports_text, protocols)
    try:
        parse_targets(list(targets))
    except TargetError as exc:
        raise UsageProblem(str(exc)) from exc
    if cafile is not None:
        _trust_store(cafile)
    if output is not None:
        _writable(output)
    required = _required(require_text, catalog, entries)
    settings = Settings(
        timeout=timeout, cafile=cafile, servername=servername, expiring_days=expiring_days
    )
    started = datetime.now(UTC)
    results = _run_with_progress(
        lambda hook: check_async(
            list(targets),
            catalog=catalog,
            entries=entries,
            settings=settings,
            limits=Limits(concurrency=concurrency, per_host=per_host),
            required=required,
            on_result=hook,
        ),
        total=len(entries) * _count_targets(targets),
        quiet=as_json and output is None,
    )
    _emit(results, catalog, as_json=as_json, output=output, started=started)
    sys.exit(_EXIT_FOR_HEALTH[overall_health(results)])


def _count_targets(targets: tuple[str, ...]) -> int:
    return len(parse_targets(list(targets)))


def _readable(path: str, option: str) -> None:
    if not Path(path).is_file() or not os.access(path, os.R_OK):
        raise UsageProblem(f"{option}: cannot read '{path}'", "give the path of a PEM file")


def _trust_store(cafile: str) -> None:
    """Load the CA file once before any probe, so a bad one is a usage error, not 17."""
    _readable(cafile, "--ca")
    try:
        client_context(verify=True, legacy=False, cafile=cafile)
    except TrustStoreError as exc:
        raise UsageProblem(
            f"--ca: {exc}", "give a PEM file with one or more CA certificates"
        ) from exc


def _writable(path: str) -> None:
    parent = Path(path).parent
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise UsageProblem(
            f"-o: cannot write into '{parent}'", "give a file in a writable directory"
        )


def _required(text: str | None, catalog: Catalog, entries: list[PortEntry]) -> frozenset[int]:
    if text is None:
        return frozenset()
    if text.strip().lower() == "all":
        return frozenset(e.port for e in entries)
    return frozenset(_parse_ports(text, catalog, "--require"))


#: A run shorter than this shows no progress bar: it would only flicker.
PROGRESS_DELAY = 0.5


def _run_with_progress(
    make: Callable[[Callable[[Result], None] | None], Any], *, total: int, quiet: bool
) -> list[Result]:
    console = Console(stderr=True)
    if quiet or not console.is_terminal or total < 2:
        results: list[Result] = asyncio.run(make(None))
        return results
    columns = (TextColumn("checking"), BarColumn(), MofNCompleteColumn())
    progress = Progress(*columns, console=console, transient=True)
    bar = progress.add_task("check", total=total)

    async def run() -> list[Result]:
        job = asyncio.ensure_future(make(lambda _r: progress.advance(bar)))
        done, _ = await asyncio.wait({job}, timeout=PROGRESS_DELAY)
        if not done:
            progress.start()
        return list(await job)

    try:
        return asyncio.run(run())
    finally:
        progress.stop()


def _emit(
    results: list[Result], catalog: Catalog, *, as_json: bool, output: str | None, started: datetime
) -> None:
    if as_json:
        text = dumps(check_document(results, catalog=catalog.name, started=started))
        if output is None:
            click.echo(text, nl=False)
        else:
            _write_atomically(output, text)
        return
    if output is None:
        render(results, catalog, sys.stdout, rich_output=sys.stdout.isatty())
        return
    with _atomic_text(output) as handle:
        render(results, catalog, handle, rich_output=False)
    click.echo(summary_line(results), err=True)


@contextmanager
def _atomic_text(path: str) -> Iterator[Any]:
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


def _write_atomically(path: str, text: str) -> None:
    with _atomic_text(path) as handle:
        handle.write(text)


def _fail_usage(exc: click.ClickException) -> NoReturn:
    click.echo(f"Error: {inert(exc.format_message())}", err=True)
    hint = getattr(exc, "hint", None)
    if hint:
        click.echo(f"Hint: {hint}", err=True)
    elif isinstance(exc, click.UsageError) and exc.ctx is not None:
        click.echo(f"Hint: run '{exc.ctx.command_path} --help' for the options.", err=True)
    sys.exit(EXIT_USAGE)


# -- responders: `portcall listen` and `portcall demo` ------------------------------------------

#: Whose wire manners the responders copy (portcall.responders.server.PROFILES).


@app.command()
@click.option(
    "--bind",
    "binds",
    multiple=True,
    default=("127.0.0.1",),
    show_default=True,
    metavar="ADDR",
    help="Listen on this address (repeatable; 0.0.0.0 or :: for every interface).",
)
@_catalog_option
@_ports_option
@_protocol_option
@click.option(
    "--port-offset",
    type=click.IntRange(0, 65534),
    default=0,
    show_default=True,
    help="Listen on catalog port + N (10000 needs no root: 25 becomes 10025).",
)
@click.option(
    "--profile",
    type=click.Choice(PROFILES),
    default="exchange2003",
    show_default=True,
    help="Answer like Exchange 2003, Exchange 2000, or a neutral server.",
)
@click.option("--hostname", metavar="NAME", help="Name in banners and the certificate.")
@click.option("--cert", metavar="FILE", help="Present this certificate (PEM) instead of the lab's.")
@click.option("--key", metavar="FILE", help="The unencrypted private key (PEM) of --cert.")
@click.option("--cert-dir", metavar="DIR", help="Keep the lab CA and certificates here.")
@click.option(
    "--max-connections",
    type=click.IntRange(1, 65536),
    default=256,
    show_default=True,
    help="Connections open at once; more are closed at once.",
)
@click.option(
    "--idle-timeout",
    type=click.FloatRange(0.1, 3600),
    default=30.0,
    show_default=True,
    help="Seconds a silent client is kept.",
)
def listen(
    binds: tuple[str, ...],
    catalog_path: str | None,
    ports_text: str | None,
    protocols: tuple[str, ...],
    port_offset: int,
    profile: str,
    hostname: str | None,
    cert: str | None,
    key: str | None,
    cert_dir: str | None,
    max_connections: int,
    idle_timeout: float,
) -> None:
    """Answer on every catalog port as the real service would, until Ctrl-C or SIGTERM.

    Prints one line per connection: who came in, on which port, what it said. Run it where
    the server will stand, then `portcall check` from the other side of the firewall. TLS
    ports present a lab certificate for the host name (made once, signed by a lab CA whose
    file is printed) unless --cert and --key give one.
    """
    from portcall.responders.binding import BindError
    from portcall.responders.certs import LabError
    from portcall.responders.listen import prepare_tls, run_listen
    from portcall.responders.server import ResponderConfig

    entries = _select(_catalog(catalog_path), ports_text, protocols)
    if (cert is None) != (key is None) or (cert is not None and cert_dir is not None):
        raise UsageProblem(
            "--cert and --key go together, and exclude --cert-dir",
            "give --cert FILE --key FILE, or --cert-dir DIR for the lab certificates",
        )
    try:
        name, tls = prepare_tls(hostname, cert=cert, key=key, cert_dir=cert_dir)
    except LabError as exc:
        raise UsageProblem(str(exc), exc.hint) from exc
    config = ResponderConfig(
        binds=binds,
        port_offset=port_offset,
        hostname=name,
        profile=profile,
        max_connections=max_connections,
        idle_timeout=idle_timeout,
    )
    try:
        responder = run_listen(entries, config, tls, click.echo)
    except BindError as exc:
        raise UsageProblem(str(exc), exc.hint) from exc
    click.echo(
        f"Stopped: {responder.served} connections served, {responder.turned_away} turned away."
    )


@app.command()
@click.option("--json", "as_json", is_flag=True, help="Write the plan, what was seen, the check.")
def demo(as_json: bool) -> None:
    """Check responders that have four faults on purpose: a tour of what portcall finds.

    Responders on 127.0.0.1 play an Exchange 2003 server on ports the system picks; one port
    has an expired certificate, one no STARTTLS, one is closed and one is answered by the
    wrong protocol. Needs no server and no network. Exit 0 when portcall saw exactly the
    planned faults, 2 otherwise.
    """
    from portcall.responders.demo import DEMO_HOSTNAME, demo_document, explanation, run_demo

    with tempfile.TemporaryDirectory(prefix="portcall-demo-") as directory:
        run = asyncio.run(run_demo(Path(directory)))
    if as_json:
        click.echo(dumps(demo_document(run)), nl=False)
    else:
        click.echo(
            f"Responders on 127.0.0.1 play Exchange 2003 as {DEMO_HOSTNAME}, on ports the "
            "system picked; each row shows the catalog port it stands for."
        )
        render(run.results, run.catalog, sys.stdout, rich_output=sys.stdout.isatty())
        for line in explanation(run):
            click.echo(line)
    sys.exit(EXIT_HEALTHY if run.as_planned else EXIT_FAILURES)


def main(argv: list[str] | None = None) -> None:
    try:
        app.main(args=argv, prog_name="portcall", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Interrupted.", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except click.ClickException as exc:
        _fail_usage(exc)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(EXIT_INTERRUPTED)
