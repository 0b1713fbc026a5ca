"""What a source should reach (its planned flows) and what it should not (the rest of the
catalog and planned ports on the same destinations): the two halves an audit probes."""

from __future__ import annotations

import pytest

from portcall.catalog import load_catalog
from portcall.topology import TopologyError, build_plan, flows_from, parse_topology, unplanned_from
from tests.topology.conftest import BASE

TEXT = BASE + (
    "  dc1: {address: 10.1.0.5, roles: [domain-controller]}\n"
    "rpc-port: 6004\n"
    "clients:\n"
    "  - {from: internet, to: front-end, services: [https]}\n"
    "  - {from: dmz, to: mbx1, services: [imap]}\n"
    "flows:\n"
    "  - {from: internal, to: fe1, ports: [123], transport: udp}\n"
)
PLAN = build_plan(parse_topology(TEXT))
CATALOG = {(e.port, e.transport) for e in load_catalog().entries}


def _keys(flows: list) -> set[tuple[str, str, int, str]]:  # type: ignore[type-arg]
    return {f.key for f in flows}


def test_a_host_is_the_source_of_its_own_its_roles_and_its_zones_flows() -> None:
    keys = _keys(flows_from(PLAN, "fe1"))
    assert ("dmz", "mbx1", 143, "tcp") in keys  # its zone's
    assert ("fe1", "mbx1", 80, "tcp") in keys  # its role's (rule 2)
    assert ("fe1", "dc1", 6004, "tcp") in keys  # its own (rule 3)
    assert all(source in ("fe1", "dmz") for source, _, _, _ in keys)
    assert len(keys) == 1 + 1 + 9  # zone, rule 2, eight DC ports and the RPC port


def test_a_zone_is_the_source_of_the_zones_flows_only() -> None:
    assert _keys(flows_from(PLAN, "internet")) == {("internet", "fe1", 443, "tcp")}
    assert _keys(flows_from(PLAN, "internal")) == {("internal", "fe1", 123, "udp")}


def test_an_unknown_source_is_an_error_that_lists_hosts_and_zones() -> None:
    with pytest.raises(TopologyError, match="'nobody' names no host or zone; hosts: fe1, mbx1"):
        flows_from(PLAN, "nobody")


def test_unplanned_covers_catalog_and_planned_ports_on_the_same_destinations() -> None:
    probes = unplanned_from(PLAN, "internet")
    assert {p.destination.name for p in probes} == {"fe1"}
    pairs = {(p.port, p.transport) for p in probes}
    planned_anywhere = {(f.port, f.transport) for f in PLAN.flows}
    assert pairs == (CATALOG | planned_anywhere) - {(443, "tcp")}
    assert (123, "udp") in pairs and (6004, "tcp") in pairs and (993, "tcp") in pairs


def test_unplanned_leaves_out_what_the_sources_zone_may_reach() -> None:
    probes = unplanned_from(PLAN, "fe1")
    on_mbx1 = {(p.port, p.transport) for p in probes if p.destination.name == "mbx1"}
    assert (143, "tcp") not in on_mbx1  # dmz may reach mbx1 on 143
    assert (80, "tcp") not in on_mbx1  # fe1's own rule-2 flow
    assert (993, "tcp") in on_mbx1
    assert {p.destination.name for p in probes} == {"mbx1", "dc1"}
