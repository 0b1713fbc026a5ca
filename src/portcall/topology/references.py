"""The checks that look across sections: one name space for zones, hosts and roles, and
routing groups that each have exactly one master."""

from __future__ import annotations

from portcall.topology.model import ROLES, Host, TopologyError, Zone

#: What a `from`/`to` name refers to.
ZONE, HOST, ROLE = "zone", "host", "role"


def name_index(origin: str, zones: dict[str, Zone], hosts: dict[str, Host]) -> dict[str, str]:
    """Name -> zone, host or role; a name used twice across them is an error."""
    index = dict.fromkeys(ROLES, ROLE)
    for name, line, kind, field in (
        *((z.name, z.line, ZONE, f"zones.{z.name}") for z in zones.values()),
        *((h.name, h.line, HOST, f"hosts.{h.name}") for h in hosts.values()),
    ):
        if name in index:
            raise TopologyError(
                origin, line, field, f"{name!r} already names a {index[name]}; give it another name"
            )
        index[name] = kind
    return index


def check_routing_groups(origin: str, hosts: dict[str, Host]) -> None:
    groups: dict[str, list[Host]] = {}
    for host in hosts.values():
        if host.master and host.routing_group is None:
            raise TopologyError(
                origin, host.line, f"hosts.{host.name}.master", "needs the host's routing-group"
            )
        if "bridgehead" in host.roles and host.routing_group is None:
            raise TopologyError(
                origin,
                host.line,
                f"hosts.{host.name}.routing-group",
                "missing; a bridgehead joins its routing group to the others",
            )
        if host.routing_group is not None:
            groups.setdefault(host.routing_group, []).append(host)
    for group, members in groups.items():
        masters = [h for h in members if h.master]
        if not masters:
            raise TopologyError(
                origin,
                members[0].line,
                f"hosts.{members[0].name}.routing-group",
                f"routing group {group} has no master; mark one member 'master: true'",
            )
        if len(masters) > 1:
            raise TopologyError(
                origin,
                masters[1].line,
                f"hosts.{masters[1].name}.master",
                f"routing group {group} already has master {masters[0].name}; keep one",
            )
