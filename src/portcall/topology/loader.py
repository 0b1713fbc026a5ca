"""Load and validate a `portcall.topology/1` YAML file.

Every problem is a `TopologyError` naming the file, the line, the field and what is allowed;
no other exception leaves `parse_topology` for any text.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

import yaml

from portcall.catalog import DEFAULT_CATALOG, Catalog, CatalogError, load_catalog
from portcall.topology.flows import Network
from portcall.topology.model import (
    ROLES,
    SCHEMA,
    ClientRule,
    Firewall,
    Host,
    Topology,
    TopologyError,
    Zone,
)
from portcall.topology.nodes import Reader
from portcall.topology.references import check_routing_groups, name_index
from portcall.topology.rulesets import read_clients, read_flows
from portcall.topology.zones import nesting_conflict, zone_of

_TOP = ("schema", "catalog", "rpc-port", "zones", "firewalls", "hosts", "clients", "flows")
_HOST = ("address", "zone", "roles", "routing-group", "master")


def load_topology(path: str | Path) -> Topology:
    origin = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise TopologyError(origin, 0, "file", f"cannot be read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise TopologyError(origin, 0, "file", "must be UTF-8 text") from exc
    return parse_topology(text, origin, Path(path).parent)


def parse_topology(text: str, origin: str = "topology", base: Path | None = None) -> Topology:
    """The topology in `text`; `base` is where a relative `catalog:` path starts."""
    root = _compose(text, origin)
    reader = Reader(origin)
    if not isinstance(root, yaml.MappingNode):
        raise reader.fail(root, "file", f"must be a mapping of the keys {', '.join(_TOP)}")
    top = reader.fields(root, "", _TOP)
    if "schema" not in top:
        raise reader.fail(root, "schema", f"missing; the first line should be 'schema: {SCHEMA}'")
    if reader.text(top["schema"], "schema") != SCHEMA:
        raise reader.fail(top["schema"], "schema", f"must be {SCHEMA}")
    zones = _zones(reader, top.get("zones"), root)
    firewalls = _firewalls(reader, top.get("firewalls"), zones)
    hosts = _hosts(reader, top.get("hosts"), zones)
    names = name_index(origin, zones, hosts)
    check_routing_groups(origin, hosts)
    catalog = _catalog(reader, top.get("catalog"), base or Path("."))
    clients: tuple[ClientRule, ...] = ()
    if "clients" in top:
        clients = read_clients(reader, top["clients"], catalog, names)
    flows = read_flows(reader, top["flows"], catalog, names) if "flows" in top else ()
    rpc = top.get("rpc-port")
    topology = Topology(
        origin=origin,
        catalog=catalog,
        rpc_port=None if rpc is None else reader.integer(rpc, "rpc-port", 1, 65535),
        zones=zones,
        firewalls=firewalls,
        hosts=hosts,
        clients=clients,
        flows=flows,
    )
    return topology


def _compose(text: str, origin: str) -> yaml.Node:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 0
        raise TopologyError(origin, line, "file", f"is not valid YAML: {exc.problem}") from None
    except (yaml.YAMLError, RecursionError) as exc:
        raise TopologyError(origin, 0, "file", f"is not valid YAML: {exc}") from None
    if root is None:
        raise TopologyError(origin, 1, "file", f"is empty; start it with 'schema: {SCHEMA}'")
    return root


def _catalog(reader: Reader, node: yaml.Node | None, base: Path) -> Catalog:
    if node is None:
        return load_catalog()
    name = reader.text(node, "catalog")
    if name == DEFAULT_CATALOG:
        return load_catalog()
    try:
        return load_catalog(base / name)
    except CatalogError as exc:
        raise reader.fail(
            node, "catalog", f"must be {DEFAULT_CATALOG} or a catalog file; {exc}"
        ) from None


def _zones(reader: Reader, node: yaml.Node | None, root: yaml.Node) -> dict[str, Zone]:
    if node is None:
        raise reader.fail(root, "zones", "missing; name at least one zone and its networks")
    zones: dict[str, Zone] = {}
    for key, key_node, value in reader.mapping(node, "zones"):
        field = f"zones.{key}"
        name = reader.name(key_node, field)
        items = reader.sequence(value, field)
        if not items:
            raise reader.fail(value, field, "must list at least one network, e.g. 10.1.0.0/16")
        networks = [_network(reader, item, f"{field}[{i}]") for i, item in enumerate(items)]
        zones[name] = Zone(name, tuple(dict.fromkeys(networks)), key_node.start_mark.line + 1)
    if not zones:
        raise reader.fail(node, "zones", "must name at least one zone")
    conflict = nesting_conflict(zones.values())
    if conflict is not None:
        zone, network, why = conflict
        raise TopologyError(reader.origin, zone.line, f"zones.{zone.name}", f"{network} {why}")
    return zones


def _network(reader: Reader, node: yaml.Node, field: str) -> Network:
    text = reader.text(node, field)
    try:
        return ipaddress.ip_network(text)
    except ValueError:
        pass
    try:
        loose = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise reader.fail(
            node, field, f"{text!r} is not an IPv4 or IPv6 network such as 10.1.0.0/16"
        ) from None
    raise reader.fail(node, field, f"{text} has host bits set; the network is {loose}")


def _firewalls(
    reader: Reader, node: yaml.Node | None, zones: dict[str, Zone]
) -> dict[str, Firewall]:
    firewalls: dict[str, Firewall] = {}
    if node is None:
        return firewalls
    for key, key_node, value in reader.mapping(node, "firewalls"):
        field = f"firewalls.{key}"
        name = reader.name(key_node, field)
        ends = reader.names(value, field)
        if len(ends) != 2 or ends[0][0] == ends[1][0]:
            raise reader.fail(value, field, "must name the two zones it stands between")
        for zone, zone_node in ends:
            if zone not in zones:
                raise reader.fail(
                    zone_node, field, f"{zone!r} is no zone; zones: {', '.join(zones)}"
                )
        pair = (ends[0][0], ends[1][0])
        firewalls[name] = Firewall(name, pair, key_node.start_mark.line + 1)
    return firewalls


def _hosts(reader: Reader, node: yaml.Node | None, zones: dict[str, Zone]) -> dict[str, Host]:
    hosts: dict[str, Host] = {}
    if node is None:
        return hosts
    for key, key_node, value in reader.mapping(node, "hosts"):
        name = reader.name(key_node, f"hosts.{key}")
        hosts[name] = _host(reader, name, key_node.start_mark.line + 1, value, zones)
    return hosts


def _host(reader: Reader, name: str, line: int, node: yaml.Node, zones: dict[str, Zone]) -> Host:
    field = f"hosts.{name}"
    spec = reader.fields(node, field, _HOST)
    if "address" not in spec:
        raise reader.fail(node, f"{field}.address", "missing; give the host's IP address")
    address_text = reader.text(spec["address"], f"{field}.address")
    try:
        address = ipaddress.ip_address(address_text)
    except ValueError:
        raise reader.fail(
            spec["address"], f"{field}.address", f"{address_text!r} is not an IPv4 or IPv6 address"
        ) from None
    zone = _host_zone(reader, field, address, spec, zones, node)
    roles = _roles(reader, spec.get("roles"), f"{field}.roles")
    group = spec.get("routing-group")
    master = spec.get("master")
    return Host(
        name=name,
        address=address,
        zone=zone,
        roles=roles,
        routing_group=None if group is None else reader.name(group, f"{field}.routing-group"),
        master=False if master is None else reader.boolean(master, f"{field}.master"),
        line=line,
    )


def _host_zone(
    reader: Reader,
    field: str,
    address: ipaddress.IPv4Address | ipaddress.IPv6Address,
    spec: dict[str, yaml.Node],
    zones: dict[str, Zone],
    node: yaml.Node,
) -> str:
    """The zone the address lies in; a stated `zone` must be that one."""
    found = zone_of(zones.values(), address)
    if "zone" not in spec:
        if found is None:
            raise reader.fail(node, f"{field}.address", f"{address} lies in no zone's network")
        return found.name
    stated = reader.name(spec["zone"], f"{field}.zone")
    if stated not in zones:
        raise reader.fail(
            spec["zone"], f"{field}.zone", f"{stated!r} is no zone; zones: {', '.join(zones)}"
        )
    if found is None or found.name != stated:
        where = f"zone {found.name}" if found else "no zone"
        nets = ", ".join(str(n) for n in zones[stated].networks)
        raise reader.fail(
            spec["address"],
            f"{field}.address",
            f"{address} lies in {where}, not in zone {stated} ({nets})",
        )
    return stated


def _roles(reader: Reader, node: yaml.Node | None, field: str) -> tuple[str, ...]:
    if node is None:
        return ()
    roles = []
    for role, role_node in reader.names(node, field):
        if role not in ROLES:
            raise reader.fail(role_node, field, f"{role!r} is no role; roles: {', '.join(ROLES)}")
        roles.append(role)
    return tuple(dict.fromkeys(roles))
