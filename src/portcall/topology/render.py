"""The plan for people (a table on a terminal, plain lines when piped) and for programs
(the `portcall.plan/1` JSON document)."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any, TextIO

from rich.console import Console
from rich.table import Table
from rich.text import Text

from portcall.report.inert import inert
from portcall.topology.flows import EndKind, Flow, FlowEnd
from portcall.topology.plan import SCHEMA, Plan
from portcall.topology.zones import excluded_networks


def plan_document(plan: Plan) -> dict[str, Any]:
    topology = plan.topology
    zones = topology.zones
    return {
        "schema": SCHEMA,
        "topology": topology.origin,
        "catalog": topology.catalog.name,
        "rpc_port": topology.rpc_port,
        "zones": {
            name: {
                "networks": [str(n) for n in zone.networks],
                "excluded": [str(n) for n in excluded_networks(zones.values(), zone)],
            }
            for name, zone in zones.items()
        },
        "firewalls": {name: list(f.zones) for name, f in topology.firewalls.items()},
        "hosts": {
            name: {
                "address": str(host.address),
                "zone": host.zone,
                "roles": list(host.roles),
                "routing_group": host.routing_group,
                "master": host.master,
            }
            for name, host in topology.hosts.items()
        },
        "flows": [_flow_document(flow) for flow in plan.flows],
        "warnings": list(plan.warnings),
    }


def _flow_document(flow: Flow) -> dict[str, Any]:
    return {
        "source": _end_document(flow.source),
        "destination": _end_document(flow.destination),
        "port": flow.port,
        "transport": flow.transport,
        "service": flow.service,
        "firewalls": list(flow.firewalls),
        "reasons": list(flow.reasons),
    }


def _end_document(end: FlowEnd) -> dict[str, Any]:
    return {
        "name": end.name,
        "kind": str(end.kind),
        "zone": end.zone,
        "addresses": end.addresses(),
        "excluded": [str(n) for n in end.excluded],
    }


def plan_json(plan: Plan) -> str:
    return json.dumps(plan_document(plan), indent=2) + "\n"


def describe_end(end: FlowEnd) -> str:
    """ "fe1 (192.0.2.10)", or "internet (0.0.0.0/0 but 2 other zones' networks)"."""
    if end.kind is EndKind.HOST:
        return f"{end.name} ({end.networks[0].network_address})"
    where = ", ".join(end.addresses())
    if end.excluded:
        count = len(end.excluded)
        where += f" but {count} network{'s' if count != 1 else ''} of other zones"
    return f"{end.name} ({where})"


def summary_line(plan: Plan) -> str:
    crossings = Counter(name for flow in plan.flows for name in flow.firewalls)
    per = ", ".join(f"{name} {crossings[name]}" for name in plan.topology.firewalls)
    count = len(plan.flows)
    text = f"{count} flow{'s' if count != 1 else ''} to allow"
    text += f"; through each firewall: {per}" if per else ""
    warnings = len(plan.warnings)
    return text + f"; {warnings} warning{'s' if warnings != 1 else ''}"


def render_table(
    plan: Plan, stream: TextIO, *, rich_output: bool, width: int | None = None
) -> None:
    """A rich table when `rich_output` (a terminal; `width` overrides its width), else plain
    lines."""
    if rich_output:
        _render_rich(plan, Console(file=stream, highlight=False, soft_wrap=False, width=width))
    else:
        _render_plain(plan, stream)


def _firewalls_text(flow: Flow) -> str:
    return " > ".join(flow.firewalls) if flow.firewalls else "none (same zone)"


def _render_plain(plan: Plan, stream: TextIO) -> None:
    for flow in plan.flows:
        stream.write(
            f"{describe_end(flow.source)} -> {describe_end(flow.destination)}  "
            f"{flow.port}/{flow.transport}  firewalls: {_firewalls_text(flow)}\n"
        )
        for reason in flow.reasons:
            stream.write(f"    {inert(reason)}\n")
    for warning in plan.warnings:
        stream.write(f"Warning: {inert(warning)}\n")
    stream.write(summary_line(plan) + "\n")


def _render_rich(plan: Plan, console: Console) -> None:
    table = Table(title=f"Flows to allow: {inert(plan.topology.origin, 120)}")
    for column in ("From", "To", "Port", "Firewalls", "Why"):
        table.add_column(column, overflow="fold")
    for flow in plan.flows:
        table.add_row(
            Text(describe_end(flow.source)),
            Text(describe_end(flow.destination)),
            Text(f"{flow.port}/{flow.transport}"),
            Text(_firewalls_text(flow)),
            Text("\n".join(inert(reason) for reason in flow.reasons)),
        )
    console.print(table)
    for warning in plan.warnings:
        console.print(Text(f"Warning: {inert(warning)}", style="yellow"))
    console.print(Text(summary_line(plan), style="bold"))
