"""Zone matching (most specific first), catch-all exclusions, and the firewall path."""

from __future__ import annotations

import ipaddress

import pytest

from portcall.topology import build_plan, parse_topology
from portcall.topology.model import Firewall, Zone
from portcall.topology.zones import excluded_networks, firewall_path, nesting_conflict, zone_of
from tests.topology.conftest import BASE


def _zone(name: str, *networks: str) -> Zone:
    return Zone(name, tuple(ipaddress.ip_network(n) for n in networks), 1)


ZONES = [
    _zone("internet", "0.0.0.0/0", "::/0"),
    _zone("dmz", "192.0.2.0/24", "2001:db8:2::/64"),
    _zone("internal", "10.0.0.0/8"),
    _zone("lab", "10.9.0.0/16"),
]


@pytest.mark.parametrize(
    ("address", "zone"),
    [
        ("192.0.2.10", "dmz"),
        ("10.1.2.3", "internal"),
        ("10.9.0.1", "lab"),
        ("198.51.100.7", "internet"),
        ("2001:db8:2::10", "dmz"),
        ("2001:db8:3::10", "internet"),
    ],
)
def test_the_most_specific_network_decides_the_zone(address: str, zone: str) -> None:
    found = zone_of(ZONES, ipaddress.ip_address(address))
    assert found is not None and found.name == zone


def test_an_address_in_no_network_has_no_zone() -> None:
    assert zone_of(ZONES[1:], ipaddress.ip_address("198.51.100.7")) is None


def test_a_catch_all_zone_excludes_the_outermost_networks_of_the_others() -> None:
    internet, dmz, internal, _ = ZONES
    assert [str(n) for n in excluded_networks(ZONES, internet)] == [
        "10.0.0.0/8",
        "192.0.2.0/24",
        "2001:db8:2::/64",
    ]
    assert [str(n) for n in excluded_networks(ZONES, internal)] == ["10.9.0.0/16"]
    assert excluded_networks(ZONES, dmz) == ()


def test_nesting_conflicts_are_found() -> None:
    assert nesting_conflict(ZONES) is None
    twice = [*ZONES, _zone("copy", "192.0.2.0/24")]
    conflict = nesting_conflict(twice)
    assert conflict is not None and conflict[0].name == "copy"


FIREWALLS = {
    "outer": Firewall("outer", ("internet", "dmz"), 1),
    "inner": Firewall("inner", ("dmz", "internal"), 2),
    "lab": Firewall("lab", ("internal", "lab"), 3),
}


def test_the_path_lists_each_firewall_in_order_from_source_to_destination() -> None:
    assert firewall_path(FIREWALLS, "internet", "lab") == (("outer", "inner", "lab"), False)
    assert firewall_path(FIREWALLS, "lab", "internet") == (("lab", "inner", "outer"), False)
    assert firewall_path(FIREWALLS, "dmz", "dmz") == ((), False)


def test_no_path_and_two_equal_paths_are_told_apart() -> None:
    assert firewall_path({"outer": FIREWALLS["outer"]}, "internet", "lab") is None
    ring = {**FIREWALLS, "bypass": Firewall("bypass", ("dmz", "lab"), 4)}
    assert firewall_path(ring, "internet", "lab") == (("outer", "bypass"), False)
    ring["direct"] = Firewall("direct", ("internet", "internal"), 5)
    assert firewall_path(ring, "internet", "lab") == (("outer", "bypass"), True)


def test_equal_paths_give_a_warning_in_the_plan() -> None:
    text = BASE.replace(
        "  inner: [dmz, internal]\n", "  inner: [dmz, internal]\n  direct: [internet, internal]\n"
    ).replace("firewalls:", "firewalls:\n  side: [internet, internal]") + (
        "flows:\n  - {from: fe1, to: mbx1, ports: [25]}\n"
    )
    plan = build_plan(parse_topology(text))
    assert plan.flows[0].firewalls == ("inner",)
    assert plan.warnings == ()
    text = text.replace("flows:\n", "flows:\n  - {from: internet, to: mbx1, ports: [25]}\n")
    plan = build_plan(parse_topology(text))
    assert any("more than one path" in w and "through side" in w for w in plan.warnings)


def test_a_flow_to_the_internet_carries_the_exclusions_and_crosses_both_firewalls() -> None:
    text = BASE + "flows:\n  - {from: mbx1, to: internet, ports: [25]}\n"
    (flow,) = build_plan(parse_topology(text)).flows
    assert flow.firewalls == ("inner", "outer")
    assert flow.destination.addresses() == ["0.0.0.0/0"]
    assert [str(n) for n in flow.destination.excluded] == ["10.1.0.0/16", "192.0.2.0/24"]
    assert flow.source.addresses() == ["10.1.0.20/32"]
    assert flow.source.excluded == ()
