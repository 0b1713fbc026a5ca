"""What one source should reach, and what it should not: the two halves an audit probes.

A host is the source of its own flows, of its roles' flows (the plan has expanded roles into
hosts already) and of its zone's flows; a zone is the source of the zone's flows only, since
the machine an audit runs on there is none of the named hosts.
"""

from __future__ import annotations

from dataclasses import dataclass

from portcall.topology.flows import EndKind, Flow, FlowEnd, Transport
from portcall.topology.model import TopologyError
from portcall.topology.plan import Plan


@dataclass(frozen=True)
class Probe:
    """A destination, port and transport that the plan does not allow from a source."""

    destination: FlowEnd
    port: int
    transport: Transport


def source_names(plan: Plan, source: str) -> frozenset[str]:
    """The flow-source names that `source` (a host or a zone) stands for."""
    topology = plan.topology
    host = topology.hosts.get(source)
    if host is not None:
        return frozenset({host.name, host.zone})
    if source in topology.zones:
        return frozenset({source})
    raise TopologyError(
        topology.origin,
        0,
        "source",
        f"{source!r} names no host or zone; hosts: {', '.join(topology.hosts) or 'none'}; "
        f"zones: {', '.join(topology.zones)}",
    )


def flows_from(plan: Plan, source: str) -> list[Flow]:
    """The planned flows whose source `source` is, in plan order."""
    names = source_names(plan, source)
    return [flow for flow in plan.flows if flow.source.name in names]


def unplanned_from(plan: Plan, source: str) -> list[Probe]:
    """On each destination of the planned flows from `source`, every catalog port and every
    port the plan uses anywhere that is not allowed from `source`."""
    planned = flows_from(plan, source)
    allowed: set[tuple[str, int, str]] = {
        (f.destination.name, f.port, f.transport) for f in planned
    }
    candidates = sorted(
        {(entry.port, entry.transport) for entry in plan.topology.catalog.entries}
        | {(flow.port, flow.transport) for flow in plan.flows}
    )
    destinations = {f.destination.name: f.destination for f in planned}
    probes = []
    for destination in destinations.values():
        for port, transport in candidates:
            if not _covered(allowed, destination, port, transport):
                probes.append(Probe(destination, port, transport))  # type: ignore[arg-type]
    return probes


def _covered(
    allowed: set[tuple[str, int, str]], destination: FlowEnd, port: int, transport: str
) -> bool:
    """Allowed to the destination itself, or to the whole zone a destination host lies in."""
    if (destination.name, port, transport) in allowed:
        return True
    return destination.kind is EndKind.HOST and (destination.zone, port, transport) in allowed
