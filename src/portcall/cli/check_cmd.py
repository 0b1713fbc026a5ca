"""`portcall check`: probe the catalog ports of each target, with progress and a report."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from portcall.api import check_async
from portcall.catalog import Catalog, PortEntry
from portcall.cli.common import (
    Seconds,
    UsageProblem,
    ad_domain_value,
    atomic_text,
    catalog_option,
    check_output_path,
    check_trust_store,
    open_catalog,
    output_option,
    parse_ports,
    ports_option,
    protocol_option,
    select_entries,
    write_atomically,
)
from portcall.cli.group import EXIT_FAILURES, EXIT_HEALTHY, EXIT_WARNINGS, app
from portcall.cli.keeping import Keeping
from portcall.probing import loop
from portcall.probing.gates import open_file_budget
from portcall.probing.probe import Settings
from portcall.probing.scheduler import Limits, connections_wanted
from portcall.probing.targets import (
    Target,
    TargetError,
    excluded,
    parse_target,
    parse_targets,
    read_target_list,
)
from portcall.report.json_report import check_document, dumps
from portcall.report.jsonl import JsonlStream
from portcall.report.terminal import locate_text, located_summary, render, summary_line
from portcall.verdicts import Health, Result, overall_health

if TYPE_CHECKING:
    from portcall.probing.locate import Located

_EXIT_FOR_HEALTH = {
    Health.HEALTHY: EXIT_HEALTHY,
    Health.WARNINGS: EXIT_WARNINGS,
    Health.FAILURES: EXIT_FAILURES,
}


@app.command()
@click.argument("targets", nargs=-1, metavar="TARGET...")
@catalog_option
@ports_option
@protocol_option
@click.option(
    "--timeout",
    type=Seconds(0.1, 120),
    default=5.0,
    show_default=True,
    help="Seconds one connection may take; a whole probe, TLS retries included, at most "
    "three times this.",
)
@click.option(
    "--concurrency",
    type=click.IntRange(1, 4096),
    default=64,
    show_default=True,
    help="Conversations (TLS handshakes, protocol exchanges) at once, all hosts together; "
    "connection attempts are limited apart, by the open-file limit.",
)
@click.option(
    "--per-host",
    type=click.IntRange(1, 256),
    default=8,
    show_default=True,
    help="Conversations at once with one host.",
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
    callback=lambda _ctx, _param, value: _servername(value),
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
@click.option(
    "--domain",
    metavar="DOMAIN",
    callback=lambda _ctx, _param, value: ad_domain_value(value, "--domain"),
    help="The Active Directory domain the DC protocols ask about (DNS, Kerberos, CLDAP, "
    "kpasswd); default: the target's DNS name less its first label, else the DC's rootDSE.",
)
@click.option(
    "--locate",
    metavar="DOMAIN",
    callback=lambda _ctx, _param, value: ad_domain_value(value, "--locate"),
    help="Find a DC of DOMAIN as the DC locator does (DNS SRV, then the LDAP ping to each DC) "
    "and check the closest one with the windows-dc catalog; no TARGET then.",
)
@click.option(
    "--dns-server",
    metavar="ADDRESS",
    callback=lambda _ctx, _param, value: _address(value, "--dns-server"),
    help="The DNS server --locate asks (default: this machine's first, from /etc/resolv.conf).",
)
@click.option(
    "-iL",
    "--input-list",
    "input_list",
    metavar="FILE",
    help="Read targets from FILE ('-' for stdin): separated by spaces or lines, # comments.",
)
@click.option(
    "--exclude",
    "exclude",
    multiple=True,
    metavar="TARGETS",
    help="Leave out these hosts, addresses or CIDR ranges (comma-separated, repeatable).",
)
@click.option(
    "--all-addresses",
    is_flag=True,
    help="Check every address a name resolves to (IPv4 and IPv6), not only the first.",
)
@click.option(
    "--rate",
    type=click.FloatRange(0.1, 1_000_000),
    metavar="N",
    help="At most N new connections (or UDP requests) per second, all hosts together.",
)
@click.option("--json", "as_json", is_flag=True, help="Write the portcall.check/1 JSON document.")
@click.option(
    "--jsonl",
    "as_jsonl",
    is_flag=True,
    help="Write each result as one JSON line the moment it is known (memory stays flat).",
)
@click.option(
    "--html",
    "html_path",
    metavar="FILE",
    callback=lambda _ctx, _param, value: _report_path(value, "--html"),
    help="Also write the HTML report (one self-contained file) to FILE.",
)
@click.option(
    "--junit",
    "junit_path",
    metavar="FILE",
    callback=lambda _ctx, _param, value: _report_path(value, "--junit"),
    help="Also write a JUnit XML report (one testcase per host and port) to FILE, for CI.",
)
@click.option(
    "--save",
    is_flag=True,
    help="Record the run in the history database (see portcall history, portcall diff).",
)
@click.option(
    "--db",
    "db_path",
    metavar="FILE",
    help="The history database --save writes to (default: portcall's file in the user's data "
    "directory, or $PORTCALL_DB).",
)
@output_option
def check(
    targets: tuple[str, ...],
    catalog_path: tuple[str, ...],
    ports_text: str | None,
    protocols: tuple[str, ...],
    timeout: float,
    concurrency: int,
    per_host: int,
    cafile: str | None,
    servername: str | None,
    require_text: str | None,
    expiring_days: int,
    domain: str | None,
    locate: str | None,
    dns_server: str | None,
    input_list: str | None,
    exclude: tuple[str, ...],
    all_addresses: bool,
    rate: float | None,
    as_json: bool,
    as_jsonl: bool,
    html_path: str | None,
    junit_path: str | None,
    save: bool,
    db_path: str | None,
    output: str | None,
) -> None:
    """Prove that the right service answers on every catalog port of each TARGET.

    TARGET is a host name, an IPv4 or IPv6 address, or a CIDR range. Each port gets one
    verdict (ok, refused, filtered, unreachable, unresolved, silent, wrong-protocol,
    no-starttls, tls-failed) with a reason, plus certificate and TLS findings. With
    --locate DOMAIN, the DC locator finds the target.
    """
    if as_json and as_jsonl:
        raise UsageProblem("--json and --jsonl exclude each other", "choose one of them")
    if as_jsonl and locate:
        raise UsageProblem("--jsonl is for TARGET... checks", "use --json with --locate")
    keeping = Keeping(html=html_path, junit=junit_path, save=save, db=db_path)
    if as_jsonl and keeping.wanted():
        raise UsageProblem(
            "--jsonl keeps no results, so it cannot also write --html, --junit or --save",
            "use --json -o FILE, then portcall report FILE",
        )
    if db_path is not None and not save:
        raise UsageProblem("--db is the database of --save", "add --save, or leave --db out")
    specs = list(targets) + (_read_list(input_list) if input_list is not None else [])
    if bool(specs) == bool(locate):
        raise UsageProblem(
            "give either TARGET... or --locate DOMAIN, not both"
            if locate
            else "Missing argument 'TARGET...' (or --locate DOMAIN)",
            "example: portcall check mail.example.com, or portcall check --locate example.com;"
            " see portcall check --help",
        )
    if dns_server and not locate:
        raise UsageProblem("--dns-server is for --locate", "add --locate DOMAIN, or leave it out")
    if locate and not catalog_path:
        catalog_path = ("windows-dc",)
    catalog = open_catalog(catalog_path)
    entries = select_entries(catalog, ports_text, protocols)
    try:
        chosen_targets = excluded(parse_targets(specs), _split(exclude))
    except TargetError as exc:
        raise UsageProblem(str(exc)) from exc
    if specs and not chosen_targets:
        raise UsageProblem("--exclude leaves no target", "check the targets and the exclusions")
    hosts = len(chosen_targets) or 1
    if cafile is not None:
        check_trust_store(cafile)
    required = _required(require_text, catalog, entries)
    settings = Settings(
        timeout=timeout,
        cafile=cafile,
        servername=servername,
        expiring_days=expiring_days,
        domain=domain or locate or "",
        all_addresses=all_addresses,
    )
    limits = Limits(concurrency=concurrency, per_host=per_host, rate=rate)
    _, note = open_file_budget(connections_wanted(limits, hosts, len(entries)))
    if note is not None:
        click.echo(f"warning: {note}", err=True)
    started = datetime.now(UTC)
    located = _locate(locate, settings, dns_server) if locate else None
    chosen = located.chosen if located else None
    if located is not None and chosen is None:
        document = check_document([], catalog=catalog.name, started=started, located=located)
        _emit([], catalog, as_json=as_json, output=output, document=document, located=located)
        keeping.keep(document)
        sys.exit(EXIT_FAILURES)
    checked = chosen_targets
    if chosen is not None:
        checked = [Target(chosen.name, address=chosen.addresses[0])]
    if as_jsonl:
        sys.exit(_stream_jsonl(checked, catalog, entries, settings, limits, required, output))
    results = _run_with_progress(
        lambda hook: check_async(
            checked,
            catalog=catalog,
            entries=entries,
            settings=settings,
            limits=limits,
            required=required,
            on_result=hook,
        ),
        total=len(entries) * hosts,
        quiet=as_json and output is None,
    )
    # One document for --json, the reports and the history: the same run, the same times.
    kept = None
    if as_json or keeping.wanted():
        kept = check_document(results, catalog=catalog.name, started=started, located=located)
    _emit(results, catalog, as_json=as_json, output=output, document=kept, located=located)
    if kept is not None:
        keeping.keep(kept)
    steps = located.steps if located else []
    sys.exit(_EXIT_FOR_HEALTH[overall_health(steps + results)])


def _report_path(value: str | None, option: str) -> str | None:
    if value is not None:
        check_output_path(value, option)
    return value


def _read_list(path: str) -> list[str]:
    """The targets of `-iL FILE` (or '-': standard input)."""
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageProblem(
            f"--input-list: cannot read '{path}': {exc.strerror or exc}",
            "give a file of targets, one per line, or - for standard input",
        ) from exc
    except UnicodeDecodeError:
        raise UsageProblem(f"--input-list: '{path}' is not UTF-8 text") from None
    try:
        specs = read_target_list(text, "standard input" if path == "-" else path)
    except TargetError as exc:
        raise UsageProblem(str(exc)) from exc
    if not specs:
        raise UsageProblem(f"--input-list: '{path}' holds no target", "one target per line")
    return specs


def _split(values: tuple[str, ...]) -> list[str]:
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def _stream_jsonl(
    targets: list[Target],
    catalog: Catalog,
    entries: list[PortEntry],
    settings: Settings,
    limits: Limits,
    required: frozenset[int],
    output: str | None,
) -> int:
    """Run the check writing JSON lines as results come; the exit code for its health."""
    with contextlib.ExitStack() as stack:
        stream = stack.enter_context(open(output, "w", encoding="utf-8")) if output else sys.stdout
        writer = JsonlStream(stream)
        total = len(entries) * len(targets)

        def hooked(hook: Callable[[Result], None] | None) -> Any:
            def both(result: Result) -> None:
                writer(result)
                if hook is not None:
                    hook(result)

            return check_async(
                targets,
                catalog=catalog,
                entries=entries,
                settings=settings,
                limits=limits,
                required=required,
                on_result=both,
                keep=False,
            )

        _run_with_progress(hooked, total=total, quiet=output is None)
    if output is not None:
        click.echo(f"{writer.count} results written to {output}", err=True)
    return _EXIT_FOR_HEALTH[writer.health()]


def _locate(domain: str, settings: Settings, dns_server: str | None) -> Located:
    """The DC locator's steps (`portcall.probing.locate`, imported here: it loads dnspython's
    resolver, which no other check needs)."""
    from portcall.probing.locate import LocateError, locate

    try:
        return loop.run(locate(domain, settings, dns_server))
    except LocateError as exc:
        raise UsageProblem(str(exc), "give the DNS server with --dns-server ADDRESS") from exc


def _address(value: str | None, option: str) -> str | None:
    if value is None:
        return None
    try:
        return str(ipaddress.ip_address(value.strip().strip("[]")))
    except ValueError:
        raise UsageProblem(
            f"{option}: '{value}' is not an IP address", "example: --dns-server 192.0.2.53"
        ) from None


def _servername(value: str | None) -> str | None:
    """One host name or address: it goes into SNI and the certificate check as it is."""
    if value is None:
        return None
    hint = "give one host name, such as mail.example.com"
    try:
        names = parse_target(value)
    except TargetError as exc:
        raise UsageProblem(f"--servername: {exc}", hint) from exc
    if "/" in value or len(names) != 1:
        raise UsageProblem(f"--servername: '{value}' is a range, not one name", hint)
    return value


def _required(text: str | None, catalog: Catalog, entries: list[PortEntry]) -> frozenset[int]:
    if text is None:
        return frozenset()
    if text.strip().lower() == "all":
        return frozenset(e.port for e in entries)
    return frozenset(parse_ports(text, catalog, "--require"))


class _RateColumn(ProgressColumn):
    """Ports checked per second, over the last seconds."""

    def render(self, task: Task) -> Text:
        speed = task.speed
        return Text(f"{speed:,.0f}/s" if speed else "", style="progress.data.speed")


#: A run shorter than this shows no progress bar: it would only flicker.
PROGRESS_DELAY = 0.5


def _run_with_progress(
    make: Callable[[Callable[[Result], None] | None], Any], *, total: int, quiet: bool
) -> list[Result]:
    console = Console(stderr=True)
    if quiet or not console.is_terminal or total < 2:
        results: list[Result] = loop.run(make(None))
        return results
    columns = (
        TextColumn("checking"),
        BarColumn(),
        MofNCompleteColumn(),
        _RateColumn(),
        TimeElapsedColumn(),
    )
    progress = Progress(*columns, console=console, transient=True)
    bar = progress.add_task("check", total=total)

    async def run() -> list[Result]:
        job = asyncio.ensure_future(make(lambda _r: progress.advance(bar)))
        done, _ = await asyncio.wait({job}, timeout=PROGRESS_DELAY)
        if not done:
            progress.start()
        return list(await job)

    try:
        return loop.run(run())
    finally:
        progress.stop()


def _emit(
    results: list[Result],
    catalog: Catalog,
    *,
    as_json: bool,
    output: str | None,
    document: dict[str, Any] | None,
    located: Located | None = None,
) -> None:
    if as_json and document is not None:
        text = dumps(document)
        if output is None:
            click.echo(text, nl=False)
        else:
            write_atomically(output, text)
        return
    prologue = locate_text(located) + "\n" if located is not None else ""
    if output is None:
        click.echo(prologue, nl=False)
        if results:
            render(results, catalog, sys.stdout, rich_output=sys.stdout.isatty())
        return
    with atomic_text(output) as handle:
        handle.write(prologue)
        if results:
            render(results, catalog, handle, rich_output=False)
    click.echo(summary_line(results) if results else located_summary(located), err=True)
