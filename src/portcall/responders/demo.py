"""`portcall demo`: responders with deliberate faults, checked by portcall itself.

The responders serve every catalog row on loopback ports the system picks; four rows are
broken the way real servers break. `check_async` then probes a copy of the catalog whose ports
are those ephemeral ones, trusting the lab CA. The demo is healthy when every port got exactly
the verdict planned for it: the faults must be seen, and nothing else may be.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from portcall.api import check_async
from portcall.catalog import Catalog, load_catalog
from portcall.probing.probe import Settings
from portcall.report.inert import inert_tree
from portcall.report.json_report import check_document
from portcall.responders.certs import ensure_lab, server_context
from portcall.responders.log import ConnectionRecord
from portcall.responders.server import HOST_CERTIFICATE, Fault, Responder, ResponderConfig
from portcall.verdicts import FindingCode, Result, Verdict

SCHEMA: Final = "portcall.demo/1"
#: A name under the .test TLD (RFC 6761): it can never be a real host.
DEMO_HOSTNAME: Final = "mail.portcall.test"
EXPIRED_CERTIFICATE: Final = "expired"
#: Seconds each probe may take; every planned outcome comes far sooner on loopback.
PROBE_TIMEOUT: Final = 4.0


@dataclass(frozen=True)
class Planned:
    """What one row should show: its verdict and findings, and the fault that causes them."""

    verdict: Verdict = Verdict.OK
    findings: frozenset[FindingCode] = frozenset()
    fault: Fault | None = None
    #: What the fault is, then what it shows, for the lines under the report.
    broken: str = ""
    shows: str = ""
    #: A planned condition that is correct, not a fault (465 closed, as Exchange has it).
    correct: bool = False

    def matches(self, result: Result) -> bool:
        found = frozenset(finding.code for finding in result.findings)
        return result.verdict is self.verdict and found == self.findings


HEALTHY_ROW: Final = Planned()

#: The rows the demo breaks, by catalog key.
FAULTS: Final[dict[str, Planned]] = {
    "imaps": Planned(
        Verdict.OK,
        frozenset({FindingCode.CERT_EXPIRED}),
        Fault(certificate=EXPIRED_CERTIFICATE),
        "serves an expired computer certificate",
        "The port answers, yet every client that checks certificates will refuse it.",
    ),
    "pop3": Planned(
        Verdict.NO_STARTTLS,
        fault=Fault(starttls=False),
        broken="offers no STLS, like a server without a certificate",
        shows="Passwords would cross the network in clear.",
    ),
    "nntps": Planned(
        Verdict.REFUSED,
        fault=Fault(closed=True),
        broken="has nothing listening",
        shows="A closed port is information, and a failure only where --require names it.",
    ),
    "smtps": Planned(
        Verdict.REFUSED,
        fault=Fault(closed=True),
        broken="is closed, as on every Exchange 2000/2003 server",
        shows="Not a fault: Exchange secures SMTP with STARTTLS on 25, so the catalog marks "
        "465 optional and a closed 465 stays healthy.",
        correct=True,
    ),
    "routing": Planned(
        Verdict.WRONG_PROTOCOL,
        fault=Fault(protocol="smtp"),
        broken="is answered by SMTP instead of the routing engine",
        shows="An open port alone proves nothing: portcall names what really answers.",
    ),
}


@dataclass
class DemoRun:
    catalog: Catalog
    #: Results with the catalog's own port numbers (the probed port is in details).
    results: list[Result]
    connections: list[ConnectionRecord]
    started: datetime

    def planned(self, key: str) -> Planned:
        return FAULTS.get(key, HEALTHY_ROW)

    @property
    def as_planned(self) -> bool:
        return all(self.planned(r.key).matches(r) for r in self.results)


async def run_demo(lab_dir: Path) -> DemoRun:
    """Serve, check and stop; the lab certificates are made in `lab_dir`."""
    started = datetime.now(UTC)
    lab = ensure_lab(lab_dir, DEMO_HOSTNAME)
    contexts = {
        HOST_CERTIFICATE: server_context(lab.host_cert, lab.host_key),
        EXPIRED_CERTIFICATE: server_context(lab.expired_cert, lab.expired_key),
    }
    catalog = load_catalog()
    faults = {key: plan.fault for key, plan in FAULTS.items() if plan.fault is not None}
    config = ResponderConfig(ephemeral=True, hostname=DEMO_HOSTNAME, idle_timeout=PROBE_TIMEOUT)
    connections: list[ConnectionRecord] = []
    responder = Responder(
        catalog.entries, config, tls=contexts, faults=faults, on_connection=connections.append
    )
    async with responder:
        probed = _with_ports(catalog, responder.ports)
        settings = Settings(
            timeout=PROBE_TIMEOUT, cafile=str(lab.ca_cert), servername=DEMO_HOSTNAME
        )
        results = await check_async(["127.0.0.1"], catalog=probed, settings=settings)
    shown = [_with_catalog_port(result, catalog) for result in results]
    return DemoRun(catalog, shown, connections, started)


def _with_ports(catalog: Catalog, ports: dict[str, int]) -> Catalog:
    entries = tuple(dataclasses.replace(e, port=ports[e.key]) for e in catalog.entries)
    return dataclasses.replace(catalog, entries=entries)


def _with_catalog_port(result: Result, catalog: Catalog) -> Result:
    """`result` as if the catalog port itself had been probed, so the report reads 25, 110 …"""
    entry = catalog.by_key(result.key)
    if entry is None:
        return result
    probed = result.port
    # The reason names the port it was written for; an ephemeral port number is long enough
    # that nothing else in a reason is mistaken for it.
    reason = re.sub(rf"\b{probed}\b", str(entry.port), result.reason)
    details = {**result.details, "probed_port": probed}
    return dataclasses.replace(result, port=entry.port, reason=reason, details=details)


def _outcome(verdict: Verdict, findings: frozenset[FindingCode] | list[str]) -> str:
    return " + ".join([str(verdict), *sorted(str(code) for code in findings)])


def explanation(run: DemoRun) -> list[str]:
    """The lines under the report: each fault, what portcall saw, and what it shows."""
    lines = ["What the demo set up on purpose, and what it shows:"]
    for result in run.results:
        plan = run.planned(result.key)
        if plan is HEALTHY_ROW and plan.matches(result):
            continue
        seen = "seen" if plan.matches(result) else f"NOT seen (got {_got(result)})"
        entry = run.catalog.by_key(result.key)
        label = entry.label if entry else result.key
        lines.append(f"  {label} {plan.broken or 'was meant to be healthy'}:")
        lines.append(f"    {_outcome(plan.verdict, plan.findings)}, {seen}. {plan.shows}".rstrip())
    if run.as_planned:
        lines.append(verdict_line(run))
    else:
        lines.append(
            "Demo FAILED: portcall missed or misjudged the rows marked NOT seen above; the demo "
            "exits 2."
        )
    return lines


def verdict_line(run: DemoRun) -> str:
    """The demo's last word when it went as planned, which the check's own summary is not."""
    plans = [(result, run.planned(result.key)) for result in run.results]
    faults = [r for r, plan in plans if plan is not HEALTHY_ROW and not plan.correct]
    correct = [str(r.port) for r, plan in plans if plan.correct]
    also = f", {' and '.join(correct)} closed as Exchange has it" if correct else ""
    return (
        f"Demo passed: the {len(faults)} planned faults were found{also}, and every other port "
        "is ok. It exits 0 because each port got the verdict planned for it; the check's "
        '"health: failures" above is about the faulty ports, as it should be.'
    )


def _got(result: Result) -> str:
    return _outcome(result.verdict, [str(finding.code) for finding in result.findings])


def demo_document(run: DemoRun) -> dict[str, Any]:
    """The JSON of a demo run: the plan against what was seen, and the check document."""
    rows = []
    for result in run.results:
        plan = run.planned(result.key)
        rows.append(
            {
                "key": result.key,
                "port": result.port,
                "probed_port": result.details.get("probed_port"),
                "fault": plan.broken or None,
                "planned_verdict": str(plan.verdict),
                "planned_findings": sorted(str(code) for code in plan.findings),
                "verdict": str(result.verdict),
                "findings": [str(finding.code) for finding in result.findings],
                "as_planned": plan.matches(result),
            }
        )
    return {
        "schema": SCHEMA,
        "hostname": DEMO_HOSTNAME,
        "as_planned": run.as_planned,
        "ports": rows,
        # What clients sent is a peer's words too, even if the demo's only client is portcall.
        "connections": inert_tree([record.to_dict() for record in run.connections]),
        "check": check_document(run.results, catalog=run.catalog.name, started=run.started),
    }
