"""The plan as a picture: Graphviz DOT and Mermaid.

Zones are clusters (subgraphs) holding their hosts and one node that stands for the zone as a
whole; flows between the same two ends share one edge labelled with their ports and the
firewalls they cross. Node ids are generated, so no name can break the syntax.
"""

from __future__ import annotations

from dataclasses import dataclass

from portcall.topology.flows import Flow
from portcall.topology.plan import Plan


@dataclass(frozen=True)
class Edge:
    source: str
    destination: str
    label: str


def _ids(plan: Plan) -> dict[str, str]:
    """Zone or host name -> a node id made of letters and digits only."""
    ids = {name: f"zone{i}" for i, name in enumerate(plan.topology.zones)}
    ids.update({name: f"host{i}" for i, name in enumerate(plan.topology.hosts)})
    return ids


def _edges(plan: Plan, ids: dict[str, str]) -> list[Edge]:
    grouped: dict[tuple[str, str], list[Flow]] = {}
    for flow in plan.flows:
        grouped.setdefault((flow.source.name, flow.destination.name), []).append(flow)
    edges = []
    for (source, destination), flows in grouped.items():
        ports = ", ".join(f"{f.port}/{f.transport}" for f in flows)
        crossed = sorted({name for f in flows for name in f.firewalls})
        via = f" via {', '.join(crossed)}" if crossed else ""
        edges.append(Edge(ids[source], ids[destination], ports + via))
    return edges


def _zone_title(plan: Plan, name: str) -> str:
    return f"{name}: {', '.join(str(n) for n in plan.topology.zones[name].networks)}"


def _host_lines(plan: Plan, name: str) -> list[str]:
    host = plan.topology.hosts[name]
    lines = [host.name, str(host.address)]
    if host.roles:
        lines.append(", ".join(host.roles))
    return lines


def _dot_text(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def plan_dot(plan: Plan) -> str:
    ids = _ids(plan)
    lines = ["digraph plan {", "  rankdir=LR;", "  node [shape=box];"]
    for zone in plan.topology.zones:
        lines += [
            f"  subgraph cluster_{ids[zone]} {{",
            f"    label={_dot_text(_zone_title(plan, zone))};",
            f"    {ids[zone]} [label={_dot_text(f'{zone} (whole zone)')}, shape=folder];",
        ]
        for host in plan.topology.hosts_in_zone(zone):
            label = _dot_text("\n".join(_host_lines(plan, host.name)))
            lines.append(f"    {ids[host.name]} [label={label}];")
        lines.append("  }")
    for edge in _edges(plan, ids):
        lines.append(f"  {edge.source} -> {edge.destination} [label={_dot_text(edge.label)}];")
    return "\n".join([*lines, "}"]) + "\n"


def _mermaid_text(text: str) -> str:
    return '"' + text.replace('"', "#quot;").replace("\n", "<br/>") + '"'


def plan_mermaid(plan: Plan) -> str:
    ids = _ids(plan)
    lines = ["flowchart LR"]
    for zone in plan.topology.zones:
        lines += [
            f"  subgraph cluster_{ids[zone]}[{_mermaid_text(_zone_title(plan, zone))}]",
            f"    {ids[zone]}[{_mermaid_text(f'{zone} (whole zone)')}]",
        ]
        for host in plan.topology.hosts_in_zone(zone):
            label = _mermaid_text("\n".join(_host_lines(plan, host.name)))
            lines.append(f"    {ids[host.name]}[{label}]")
        lines.append("  end")
    for edge in _edges(plan, ids):
        lines.append(f"  {edge.source} -->|{_mermaid_text(edge.label)}| {edge.destination}")
    return "\n".join(lines) + "\n"
