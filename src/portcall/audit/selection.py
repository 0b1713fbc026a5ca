"""What an audit probes from one source: its planned flows, and on the same destinations every
catalog and planned port the plan does not allow from there."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import cache

from portcall.catalog import Catalog, PortEntry, load_catalog
from portcall.topology import Flow, FlowEnd, Plan, flows_from, unplanned_from
from portcall.topology.flows import EndKind, Transport
from portcall.topology.zones import excluded_networks, firewall_path


class Expected(StrEnum):
    ALLOW = "allow"
    BLOCK = "block"


@dataclass(frozen=True)
class Target:
    """One destination, port and transport to probe, and what the plan expects of it."""

    source: FlowEnd
    destination: FlowEnd
    #: Where to connect: the host's address, or the sample address given for a zone.
    address: str | None
    port: int
    transport: Transport
    expected: Expected
    #: The firewalls between source and destination, in path order.
    firewalls: tuple[str, ...]
    reasons: tuple[str, ...]
    #: The catalog row, when the port is a catalog port: `check` then judges the service too.
    entry: PortEntry | None


def select_targets(plan: Plan, source: str, samples: Mapping[str, str]) -> list[Target]:
    """Planned flows first (plan order), then the unplanned ports on their destinations.

    `samples` maps a zone to an address inside it: a flow to a whole zone is probed there.
    Raises `TopologyError` when `source` names no host or zone.
    """
    planned = [_planned(plan, flow, samples) for flow in flows_from(plan, source)]
    origin = _source_end(plan, source)
    unplanned = [
        _unplanned(plan, origin, probe.destination, probe.port, probe.transport, samples)
        for probe in unplanned_from(plan, source)
    ]
    return planned + unplanned


def _planned(plan: Plan, flow: Flow, samples: Mapping[str, str]) -> Target:
    return Target(
        flow.source,
        flow.destination,
        _address(flow.destination, samples),
        flow.port,
        flow.transport,
        Expected.ALLOW,
        flow.firewalls,
        flow.reasons,
        _entry(plan, flow.port, flow.transport, flow.service),
    )


def _unplanned(
    plan: Plan,
    source: FlowEnd,
    destination: FlowEnd,
    port: int,
    transport: Transport,
    samples: Mapping[str, str],
) -> Target:
    found = firewall_path(plan.topology.firewalls, source.zone, destination.zone)
    return Target(
        source,
        destination,
        _address(destination, samples),
        port,
        transport,
        Expected.BLOCK,
        found[0] if found else (),
        (),
        _entry(plan, port, transport, None),
    )


def _source_end(plan: Plan, source: str) -> FlowEnd:
    """The end an unplanned probe starts from: the host itself, or the zone."""
    topology = plan.topology
    host = topology.hosts.get(source)
    if host is not None:
        return FlowEnd(host.name, EndKind.HOST, host.zone, (ipaddress.ip_network(host.address),))
    zone = topology.zones[source]
    excluded = excluded_networks(topology.zones.values(), zone)
    return FlowEnd(zone.name, EndKind.ZONE, zone.name, zone.networks, excluded)


def _address(end: FlowEnd, samples: Mapping[str, str]) -> str | None:
    if end.kind is EndKind.HOST:
        return str(end.networks[0].network_address)
    return samples.get(end.name)


def _entry(plan: Plan, port: int, transport: str, service: str | None) -> PortEntry | None:
    """The catalog row `check` probes the port with: the flow's own service, else the first
    row on that port and transport in the plan's catalog, else in the windows-dc catalog
    (DNS, Kerberos, the LDAP ping, the endpoint mapper, SMB: a domain controller's flows);
    none for a port neither knows."""
    catalog = plan.topology.catalog
    if service is not None:
        entry = catalog.by_key(service)
        if entry is not None and entry.port == port and entry.transport == transport:
            return entry
    return catalog.by_port(port, transport) or _dc_catalog().by_port(port, transport)


@cache
def _dc_catalog() -> Catalog:
    return load_catalog("windows-dc")
