"""The `Planner` the rules add flows to: it turns names into flow ends, finds the firewall
path between their zones and merges identical flows, keeping every reason."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field, replace

from portcall.topology.flows import EndKind, Flow, FlowEnd, Transport
from portcall.topology.model import Host, Topology
from portcall.topology.zones import excluded_networks, firewall_path


@dataclass(frozen=True)
class Origin:
    """Where in the file a rule came from, to name it when its flow cannot be routed."""

    line: int
    field: str


@dataclass
class Planner:
    topology: Topology
    flows: dict[tuple[str, str, int, str], Flow] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def ends(self, name: str) -> list[FlowEnd]:
        """A zone, a host, or every host of a role."""
        if name in self.topology.zones:
            return [self.zone_end(name)]
        if name in self.topology.hosts:
            return [host_end(self.topology.hosts[name])]
        return [host_end(h) for h in self.topology.hosts_with_role(name)]

    def zone_end(self, name: str) -> FlowEnd:
        zones = self.topology.zones
        zone = zones[name]
        excluded = excluded_networks(zones.values(), zone)
        return FlowEnd(name, EndKind.ZONE, name, zone.networks, excluded)

    def add(
        self,
        source: FlowEnd,
        destination: FlowEnd,
        port: int,
        transport: Transport,
        reason: str,
        origin: Origin,
        service: str | None = None,
    ) -> None:
        if source.kind is EndKind.HOST and source == destination:
            return  # a host needs no rule to reach itself; a zone's own hosts still do
        flow = Flow(source, destination, port, transport, (), (reason,), service)
        known = self.flows.get(flow.key)
        if known is None:
            self.flows[flow.key] = replace(flow, firewalls=self._path(source, destination, origin))
        elif reason not in known.reasons:
            self.flows[flow.key] = replace(
                known, reasons=(*known.reasons, reason), service=known.service or service
            )

    def warn(self, text: str) -> None:
        if text not in self.warnings:
            self.warnings.append(text)

    def _path(self, source: FlowEnd, destination: FlowEnd, origin: Origin) -> tuple[str, ...]:
        found = firewall_path(self.topology.firewalls, source.zone, destination.zone)
        if found is None:
            raise self.topology.fail(
                origin.line,
                origin.field,
                f"no firewall path joins zone {source.zone} to zone {destination.zone} "
                f"(flow {source.name} to {destination.name}); add a firewall between them",
            )
        path, ambiguous = found
        if ambiguous:
            self.warn(
                f"zones {source.zone} and {destination.zone} are joined by more than one "
                f"path; the plan assumes the one through {', '.join(path)}"
            )
        return path

    def ordered(self) -> tuple[Flow, ...]:
        return tuple(sorted(self.flows.values(), key=_flow_order))


def host_end(host: Host) -> FlowEnd:
    return FlowEnd(host.name, EndKind.HOST, host.zone, (ipaddress.ip_network(host.address),))


def _flow_order(flow: Flow) -> tuple[str, str, int, str]:
    return flow.source.name, flow.destination.name, flow.port, flow.transport
