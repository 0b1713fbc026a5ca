"""The report a person reads: a table per host on a terminal, plain lines when piped."""

from __future__ import annotations

from collections import Counter
from itertools import groupby
from typing import TYPE_CHECKING, TextIO

from rich.console import Console
from rich.table import Table
from rich.text import Text

from portcall.catalog import Catalog
from portcall.report.inert import inert
from portcall.verdicts import (
    NOTHING_ANSWERS,
    Health,
    Result,
    Verdict,
    overall_health,
    silent_hosts,
)

if TYPE_CHECKING:
    from portcall.probing.locate import Located

_VERDICT_STYLE = {
    Verdict.OK: "green",
    Verdict.REFUSED: "yellow",
    Verdict.FILTERED: "yellow",
    Verdict.UNREACHABLE: "yellow",
    Verdict.UNRESOLVED: "yellow",
}
_HEALTH_STYLE = {Health.HEALTHY: "green", Health.WARNINGS: "yellow", Health.FAILURES: "red"}


def _service(result: Result, catalog: Catalog) -> str:
    entry = catalog.by_port(result.port, result.transport)
    return entry.label if entry else result.where


def _tls_cell(result: Result) -> str:
    tls = result.tls
    if tls is None:
        return ""
    lines = [tls.version + (" (legacy)" if tls.legacy else "")]
    cert = tls.certificate
    if cert is not None:
        lines += [cert.common_name or cert.subject, f"until {cert.not_after:%Y-%m-%d}"]
    return "\n".join(inert(line, 60) for line in lines)


def _notes(result: Result) -> str:
    """What the other columns do not say already: why a port failed, and every finding."""
    lines = []
    if result.verdict is not Verdict.OK:
        prefix = f"{result.where} {result.verdict}: "
        lines.append(result.reason.removeprefix(prefix))
    elif result.tls is None and "STARTTLS" not in result.reason:
        lines.append(result.reason.split("; ", 1)[1] if "; " in result.reason else "")
    lines += [f"[{f.severity}] {f.code}: {f.message}" for f in result.findings]
    return "\n".join(inert(line, 300) for line in lines if line)


def summary_line(results: list[Result]) -> str:
    hosts = len({r.host for r in results})
    counts = Counter(str(r.verdict) for r in results)
    parts = ", ".join(f"{n} {v}" for v, n in sorted(counts.items(), key=lambda kv: -kv[1]))
    findings = sum(len(r.findings) for r in results)
    silent = len(silent_hosts(results))
    nothing = f"nothing answers on {silent} host{'s' if silent != 1 else ''}; " if silent else ""
    return (
        f"{len(results)} port checks on {hosts} host{'s' if hosts != 1 else ''}: {parts}; "
        f"{findings} finding{'s' if findings != 1 else ''}; {nothing}"
        f"health: {overall_health(results)}"
    )


def render(results: list[Result], catalog: Catalog, stream: TextIO, *, rich_output: bool) -> None:
    if rich_output:
        _render_rich(results, catalog, Console(file=stream, highlight=False, soft_wrap=False))
    else:
        _render_plain(results, catalog, stream)


def _render_rich(results: list[Result], catalog: Catalog, console: Console) -> None:
    silent = set(silent_hosts(results))
    for (host, _address), group in groupby(results, key=lambda r: (r.host, r.address)):
        rows = list(group)
        address = rows[0].address
        title = inert(host) if address in (None, host) else f"{inert(host)} ({address})"
        table = Table(title=Text(title, style="bold"), title_justify="left", expand=False)
        for column in ("port", "service", "verdict", "product", "TLS", "notes"):
            table.add_column(column, overflow="fold")
        for r in rows:
            style = _VERDICT_STYLE.get(r.verdict, "red")
            if r.verdict is Verdict.OK and r.health() is not Health.HEALTHY:
                style = _HEALTH_STYLE[r.health()]
            table.add_row(
                Text(r.where),
                Text(_service(r, catalog)),
                Text(str(r.verdict), style=style),
                Text(inert(r.product or "", 60)),
                Text(_tls_cell(r)),
                Text(_notes(r)),
            )
        console.print(table)
        if host in silent:
            console.print(Text(f"warning: {NOTHING_ANSWERS}", style="yellow"))
    style = _HEALTH_STYLE[overall_health(results)]
    console.print(Text(summary_line(results), style=style))


def _render_plain(results: list[Result], catalog: Catalog, stream: TextIO) -> None:
    silent = set(silent_hosts(results))
    width = max([5, *(len(r.where) for r in results)])
    for (host, _address), group in groupby(results, key=lambda r: (r.host, r.address)):
        rows = list(group)
        stream.write(f"{inert(host)} ({rows[0].address or 'unresolved'})\n")
        for r in rows:
            stream.write(f"  {r.where:>{width}}  {r.verdict!s:<14} {inert(r.reason, 300)}\n")
            for f in r.findings:
                stream.write(
                    f"  {'':>{width}}  {'':<14} {f.severity} {f.code}: {inert(f.message, 300)}\n"
                )
        if host in silent:
            stream.write(f"  warning: {NOTHING_ANSWERS}\n")
    stream.write(summary_line(results) + "\n")


def locate_text(located: Located) -> str:
    """The DC locator's steps, one line each, then its choice."""
    lines = [f"Locating a domain controller of {inert(located.domain)} (DNS {located.dns_server})"]
    for step in located.steps:
        what = "DNS SRV" if step.key == "locate-dns" else "LDAP ping"
        lines.append(f"  {what:<9} {inert(step.host)}: {inert(step.reason, 300)}")
    lines.append(f"  {inert(located.why)}")
    return "\n".join(lines)


def located_summary(located: Located | None) -> str:
    """The last line of a run whose locator found no DC to check."""
    why = located.why if located else "no DC found"
    return f"{inert(why)}; health: {Health.FAILURES}"
