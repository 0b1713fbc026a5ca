"""`portcall audit`: does the firewall do what the plan says, seen from here?"""

from __future__ import annotations

import ipaddress
import sys

import click

from portcall.audit import matches_plan, run_audit
from portcall.audit.render import audit_json, audit_text
from portcall.cli.common import Seconds, UsageProblem, output_option, write_atomically
from portcall.cli.group import EXIT_FAILURES, EXIT_HEALTHY, app
from portcall.cli.plan_cmd import make_plan
from portcall.probing import loop
from portcall.topology import TopologyError


@app.command()
@click.argument("topology", metavar="TOPOLOGY")
@click.option(
    "--from",
    "source",
    required=True,
    metavar="HOST|ZONE",
    help="The topology host or zone this machine stands for.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the portcall.audit/1 document.")
@click.option(
    "--timeout",
    type=Seconds(0.1, 60),
    default=2.0,
    show_default=True,
    help="Seconds to wait for each connection (a dropped one waits this long).",
)
@click.option(
    "--sample",
    "samples",
    multiple=True,
    metavar="ZONE=ADDR",
    help="Probe flows to the whole zone ZONE at ADDR (repeatable), e.g. internet=198.51.100.10.",
)
@output_option
def audit(
    topology: str,
    source: str,
    as_json: bool,
    timeout: float,
    samples: tuple[str, ...],
    output: str | None,
) -> None:
    """Probe, from this machine, every flow the plan in TOPOLOGY lets HOST|ZONE open, and on
    the same destinations every catalog and planned port it does not: each line says allowed
    and reachable, allowed but blocked, blocked as planned, or reachable but should be
    blocked, with the firewall to look at.

    \b
    Run it on a machine in that zone (or on that host). Exit 0 when the firewalls match the
    plan, 2 on any drift.
    """
    plan = make_plan(topology)
    sample_map = _samples(samples, set(plan.topology.zones))
    try:
        lines = loop.run(run_audit(plan, source, timeout=timeout, samples=sample_map))
    except TopologyError as exc:
        raise UsageProblem(
            f"--from: {exc.allowed}", "name a host or a zone of the topology"
        ) from exc
    origin = plan.topology.origin
    text = audit_json(lines, source, origin) if as_json else audit_text(lines, source)
    if output is None:
        click.echo(text, nl=False)
    else:
        write_atomically(output, text)
    sys.exit(EXIT_HEALTHY if matches_plan(lines) else EXIT_FAILURES)


def _samples(given: tuple[str, ...], zones: set[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for text in given:
        zone, _, address = text.partition("=")
        if zone not in zones:
            raise UsageProblem(
                f"--sample {text}: {zone!r} is no zone", f"zones: {', '.join(sorted(zones))}"
            )
        try:
            found[zone] = str(ipaddress.ip_address(address))
        except ValueError:
            raise UsageProblem(
                f"--sample {text}: {address!r} is not an IP address",
                "example: --sample internet=198.51.100.10",
            ) from None
    return found
