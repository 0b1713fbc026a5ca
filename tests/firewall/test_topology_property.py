"""For generated topologies, the rules each firewall gets allow every planned flow that crosses
it and no sampled unplanned packet: topology loader, planner and emitters judged together, each
format read back by its model (see `models`)."""

from __future__ import annotations

import ipaddress
import itertools
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portcall.firewall import emit_plan
from portcall.topology import Plan, TopologyError, build_plan, parse_topology
from portcall.topology.flows import Flow, FlowEnd
from tests.firewall.models import (
    Address,
    Model,
    Packet,
    aws_model,
    in_end,
    iptables_model,
    nftables_model,
    pf_model,
)
from tests.topology.test_fuzz import ADDRESSES

#: Addresses every sample uses besides the topology's own: one in no generated network at all.
EXTRA = ["203.0.113.9", "2001:db8:ffff::9"]

#: A perimeter of three zones, the outer one catching every other address, and the addresses
#: hosts may take in each; the firewalls between them are drawn.
ZONES = {
    "internet": ["0.0.0.0/0", "::/0"],
    "dmz": ["192.0.2.0/24", "2001:db8:2::/64"],
    "internal": ["10.1.0.0/16", "10.2.0.0/16"],
}
POOLS = {
    "internet": ["198.51.100.7", "2001:db8:ffff::1"],
    "dmz": ["192.0.2.10", "192.0.2.11", "2001:db8:2::10"],
    "internal": ["10.1.0.5", "10.1.0.20", "10.2.0.9"],
}
ROLES = ["front-end", "back-end", "bridgehead", "domain-controller", "global-catalog", "srs",
         "exchange-5.5"]  # fmt: skip
SERVICES = ["http", "https", "imap", "imaps", "pop3s", "smtp", "ldap", "nntp"]


@st.composite
def topologies(draw: st.DrawFn) -> dict[str, Any]:
    """Valid perimeter topologies: hosts with roles in every zone, clients and hand-made flows
    between zones, hosts and roles, and one or two firewalls between the zones."""
    chain = draw(st.sampled_from([["outer", "inner"], ["outer"], ["inner"]]))
    firewalls = {"outer": ["internet", "dmz"], "inner": ["dmz", "internal"]}
    hosts: dict[str, Any] = {}
    for zone, pool in POOLS.items():
        for index, address in enumerate(draw(st.lists(st.sampled_from(pool), unique=True))):
            roles = draw(st.lists(st.sampled_from(ROLES), max_size=2, unique=True))
            hosts[f"{zone[:3]}{index}"] = {"address": address, "zone": zone, "roles": roles}
    exchange = [
        h for h in hosts.values() if {"front-end", "back-end", "bridgehead"} & set(h["roles"])
    ]
    for index, member in enumerate(exchange):  # one routing group, its first member the master
        member.update({"routing-group": "rg1", "master": index == 0})
    names = [*ZONES, *hosts, *{r for h in hosts.values() for r in h["roles"]}]
    client = st.fixed_dictionaries(
        {"from": st.sampled_from(names), "to": st.sampled_from(names),
         "services": st.lists(st.sampled_from(SERVICES), min_size=1, max_size=3, unique=True)}
    )  # fmt: skip
    flow = st.fixed_dictionaries(
        {"from": st.sampled_from(names), "to": st.sampled_from(names),
         "ports": st.lists(st.integers(1, 65535), min_size=1, max_size=3, unique=True),
         "transport": st.sampled_from(["tcp", "udp"])}
    )  # fmt: skip
    document: dict[str, Any] = {
        "schema": "portcall.topology/1",
        "zones": ZONES,
        "firewalls": {name: firewalls[name] for name in chain},
        "hosts": hosts,
        "clients": draw(st.lists(client, max_size=3)),
        "flows": draw(st.lists(flow, max_size=3)),
    }
    if draw(st.booleans()):
        document["rpc-port"] = draw(st.integers(1025, 65535))
    return document


CHECKED: list[int] = []


def models(plan: Plan, firewall: str, flows: list[Flow]) -> dict[str, Model]:
    def text(target: str, suffix: str = "") -> str:
        named = {a.name: a.text for a in emit_plan(plan, target, firewall)}
        return next(body for name, body in named.items() if name.endswith(suffix))

    ipt = {a.name: a.text for a in emit_plan(plan, "iptables", firewall)}
    ends = {end.name: end for f in flows for end in (f.source, f.destination)}
    return {
        "nftables": nftables_model(text("nftables")),
        "iptables": iptables_model(ipt[f"{firewall}.rules"], ipt.get(f"{firewall}.rules6")),
        "pf": pf_model(text("pf")),
        "aws": aws_model(text("aws"), ends),
    }


def addresses(flows: list[Flow]) -> list[Address]:
    """The generator's addresses, the flows' hosts, and one address inside each zone network
    that no more specific zone claims."""
    found = {ipaddress.ip_address(a) for a in [*ADDRESSES, *EXTRA]}
    for end in (e for f in flows for e in (f.source, f.destination)):
        found.update(_inside(end))
    return sorted(found, key=lambda a: (a.version, int(a)))


def _inside(end: FlowEnd) -> list[Address]:
    picks = []
    for network in end.networks:
        for candidate in itertools.islice(network.hosts(), 0, 64, 7):
            if in_end(candidate, end):
                picks.append(candidate)
                break
    return picks


def planned(flows: list[Flow], packet: Packet) -> bool:
    return any(
        f.port == packet.port
        and f.transport == packet.transport
        and in_end(packet.source, f.source)
        and in_end(packet.destination, f.destination)
        for f in flows
    )


@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(topologies())
def test_each_firewall_allows_exactly_the_planned_flows_of_a_generated_topology(
    document: dict[str, Any],
) -> None:
    try:
        plan = build_plan(parse_topology(yaml.safe_dump(document), "generated.yml"))
    except TopologyError as error:
        # A flow between zones no firewall joins is refused; anything else is the generator's
        # mistake, and must not pass silently.
        assert "no firewall" in str(error) or "path" in str(error), error
        return
    for firewall in plan.topology.firewalls:
        flows = [f for f in plan.flows if firewall in f.firewalls]
        if not flows:
            continue
        CHECKED.append(len(flows))
        sample = addresses(flows)
        ports = sorted({f.port for f in flows} | {26})[:6]
        for name, allowed in models(plan, firewall, flows).items():
            for source, destination in itertools.product(sample, repeat=2):
                if source == destination or source.version != destination.version:
                    continue
                for port, transport in itertools.product(ports, ("tcp", "udp")):
                    packet = Packet(source, destination, port, transport)
                    assert allowed(packet) == planned(flows, packet), (name, firewall, packet)


def test_the_generated_topologies_reach_the_emitters() -> None:
    """Runs after the property above (pytest keeps file order): firewalls were crossed often."""
    assert len(CHECKED) >= 20
