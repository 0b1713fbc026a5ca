"""The `clients` and `flows` sections: who may reach what, stated in the file."""

from __future__ import annotations

from typing import cast

import yaml

from portcall.catalog import Catalog
from portcall.topology.flows import Transport
from portcall.topology.model import ClientRule, ManualFlow
from portcall.topology.nodes import Reader

_CLIENT = ("from", "to", "services")
_FLOW = ("from", "to", "ports", "services", "transport", "why")
_TRANSPORTS = ("tcp", "udp")


def read_clients(
    reader: Reader, node: yaml.Node, catalog: Catalog, names: dict[str, str]
) -> tuple[ClientRule, ...]:
    rules = []
    for index, item in enumerate(reader.sequence(node, "clients")):
        field = f"clients[{index}]"
        spec = reader.fields(item, field, _CLIENT)
        source, destination = _ends(reader, item, spec, field, names)
        if "services" not in spec:
            raise reader.fail(item, f"{field}.services", "missing; list catalog services")
        services = _services(reader, spec["services"], f"{field}.services", catalog)
        if not services:
            raise reader.fail(spec["services"], f"{field}.services", "must list a service")
        rules.append(ClientRule(source, destination, services, item.start_mark.line + 1))
    return tuple(rules)


def read_flows(
    reader: Reader, node: yaml.Node, catalog: Catalog, names: dict[str, str]
) -> tuple[ManualFlow, ...]:
    flows = []
    for index, item in enumerate(reader.sequence(node, "flows")):
        flows.append(_flow(reader, item, f"flows[{index}]", catalog, names))
    return tuple(flows)


def _flow(
    reader: Reader, item: yaml.Node, field: str, catalog: Catalog, names: dict[str, str]
) -> ManualFlow:
    spec = reader.fields(item, field, _FLOW)
    source, destination = _ends(reader, item, spec, field, names)
    transport = _transport(reader, spec.get("transport"), f"{field}.transport")
    ports: list[tuple[int, Transport]] = []
    if "ports" in spec:
        node = spec["ports"]
        items = [node] if isinstance(node, yaml.ScalarNode) else reader.sequence(node, field)
        for i, port in enumerate(items):
            ports.append((reader.integer(port, f"{field}.ports[{i}]", 1, 65535), transport))
    services: tuple[str, ...] = ()
    if "services" in spec:
        services = _services(reader, spec["services"], f"{field}.services", catalog)
    if not ports and not services:
        raise reader.fail(item, f"{field}.ports", "missing; give ports, services or both")
    why = reader.text(spec["why"], f"{field}.why") if "why" in spec else ""
    return ManualFlow(
        source, destination, tuple(dict.fromkeys(ports)), services, why, item.start_mark.line + 1
    )


def _ends(
    reader: Reader,
    item: yaml.Node,
    spec: dict[str, yaml.Node],
    field: str,
    names: dict[str, str],
) -> tuple[str, str]:
    ends = []
    for key in ("from", "to"):
        if key not in spec:
            raise reader.fail(item, f"{field}.{key}", "missing; name a zone, a host or a role")
        name = reader.text(spec[key], f"{field}.{key}")
        if name not in names:
            raise reader.fail(spec[key], f"{field}.{key}", f"{name!r} names no zone, host or role")
        ends.append(name)
    return ends[0], ends[1]


def _services(reader: Reader, node: yaml.Node, field: str, catalog: Catalog) -> tuple[str, ...]:
    keys = []
    for key, key_node in reader.names(node, field):
        if catalog.by_key(key) is None:
            known = ", ".join(e.key for e in catalog.entries)
            raise reader.fail(
                key_node, field, f"{key!r} is not in catalog {catalog.name}; services: {known}"
            )
        keys.append(key)
    return tuple(dict.fromkeys(keys))


def _transport(reader: Reader, node: yaml.Node | None, field: str) -> Transport:
    if node is None:
        return "tcp"
    value = reader.text(node, field).lower()
    if value not in _TRANSPORTS:
        raise reader.fail(node, field, "must be tcp or udp")
    return cast(Transport, value)
