"""For generated flow lists, every flow is allowed by the emitted rules and every unplanned
(source, destination, port, transport) among the sampled ones is not, as judged by a model of
each format that reads the emitted text (see `models`)."""

from __future__ import annotations

import ipaddress
import itertools

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from portcall.firewall import arriving, aws, iptables, nftables, pf, windows
from portcall.topology.flows import EndKind, Flow, FlowEnd, Transport
from tests.firewall.models import (
    Model,
    Packet,
    aws_model,
    in_end,
    iptables_model,
    nftables_model,
    pf_model,
    windows_model,
)
from tests.firewall.sample import net

FIREWALL = "fw"
DMZ = FlowEnd("dmz", EndKind.ZONE, "dmz", (net("192.0.2.0/24"), net("2001:db8:1::/64")))
SERVERS = FlowEnd("servers", EndKind.ZONE, "servers", (net("10.1.5.0/24"),))
INTERNAL = FlowEnd(
    "internal", EndKind.ZONE, "internal", (net("10.1.0.0/16"), net("fd00:1::/64")), SERVERS.networks
)
INTERNET = FlowEnd(
    "internet",
    EndKind.ZONE,
    "internet",
    (net("0.0.0.0/0"), net("::/0")),
    DMZ.networks + INTERNAL.networks,
)


def host(name: str, zone: str, address: str) -> FlowEnd:
    return FlowEnd(name, EndKind.HOST, zone, (ipaddress.ip_network(address),))


ENDS = {
    end.name: end
    for end in (
        INTERNET,
        DMZ,
        INTERNAL,
        SERVERS,
        host("fe1", "dmz", "192.0.2.10"),
        host("fe6", "dmz", "2001:db8:1::10"),
        host("mbx1", "internal", "10.1.0.20"),
        host("dc1", "servers", "10.1.5.5"),
        host("ext1", "internet", "198.51.100.7"),
        host("ext6", "internet", "2001:db8:ffff::1"),
    )
}
#: One or two addresses in every zone and every host, from which packets are sampled.
ADDRESSES = [
    ipaddress.ip_address(a)
    for a in (
        "192.0.2.10", "192.0.2.99", "2001:db8:1::10", "2001:db8:1::99", "10.1.0.20", "10.1.0.99",
        "fd00:1::99", "10.1.5.5", "10.1.5.99", "198.51.100.7", "8.8.8.8", "2001:db8:ffff::1",
        "2001:4860::8888",
    )
]  # fmt: skip
PORTS = [25, 53, 80, 119, 443, *range(6000, 6020)]

pairs = st.lists(st.sampled_from(sorted(ENDS)), min_size=2, max_size=2, unique=True)
bundles = st.tuples(
    pairs,
    st.sampled_from(["tcp", "udp"]),
    st.sets(st.sampled_from(PORTS), min_size=1, max_size=20),
).map(lambda b: (b[0][0], b[0][1], b[1], b[2]))


def flows_of(bundle_list: list[tuple[str, str, Transport, set[int]]]) -> list[Flow]:
    return [
        Flow(ENDS[s], ENDS[d], port, transport, (FIREWALL,), (f'why "{s}" -> {d}',))
        for s, d, transport, ports in bundle_list
        for port in sorted(ports)
    ]


def planned(flows: list[Flow], packet: Packet) -> bool:
    return any(
        f.port == packet.port
        and f.transport == packet.transport
        and in_end(packet.source, f.source)
        and in_end(packet.destination, f.destination)
        for f in flows
    )


def models(flows: list[Flow]) -> dict[str, Model]:
    ipt = iptables.emit(FIREWALL, flows)
    return {
        "nftables": nftables_model(nftables.emit(FIREWALL, flows)[0].text),
        "iptables": iptables_model(ipt[0].text, ipt[1].text if len(ipt) > 1 else None),
        "pf": pf_model(pf.emit(FIREWALL, flows)[0].text),
        "aws": aws_model(aws.emit(FIREWALL, flows)[0].text, ENDS),
    }


def packets(flows: list[Flow]) -> list[Packet]:
    """Every sampled address pair on a few of the planned ports and one unplanned one, plus
    every planned port between the addresses of its own flow."""
    used = sorted({f.port for f in flows})
    ports = {*used[:2], used[-1], 26}
    own = [
        Packet(s, d, f.port, f.transport)
        for f in flows
        for s in ADDRESSES
        for d in ADDRESSES
        if s != d and s.version == d.version and in_end(s, f.source) and in_end(d, f.destination)
    ]
    return own + [
        Packet(s, d, port, transport)
        for s, d in itertools.product(ADDRESSES, repeat=2)
        if s.version == d.version and s != d
        for port in ports
        for transport in ("tcp", "udp")
    ]


@settings(max_examples=30, deadline=None)
@given(st.lists(bundles, min_size=1, max_size=5))
def test_emitted_rules_allow_exactly_the_planned_flows(
    bundle_list: list[tuple[str, str, Transport, set[int]]],
) -> None:
    flows = flows_of(bundle_list)
    formats = models(flows)
    sample = packets(flows)
    expected = [planned(flows, p) for p in sample]
    assume(any(expected))  # flows whose two sides share no address family plan nothing
    for name, allowed in formats.items():
        wrong = [p for p, e in zip(sample, expected, strict=True) if allowed(p) != e]
        assert not wrong, f"{name}: {len(wrong)} packets judged wrongly, first {wrong[0]}"


HOSTS = [end for end in ENDS.values() if end.kind == EndKind.HOST]


@settings(max_examples=20, deadline=None)
@given(st.lists(bundles, min_size=1, max_size=5))
def test_host_rules_let_in_exactly_the_flows_to_each_host(
    bundle_list: list[tuple[str, str, Transport, set[int]]],
) -> None:
    flows = flows_of(bundle_list)
    sample = packets(flows)
    for host in HOSTS:
        address = host.networks[0].network_address
        text = windows.emit_powershell(host.name, arriving(flows, host.name, host.zone, address))
        allowed = windows_model(text[0].text, address)
        for packet in sample:
            expected = packet.destination == address and planned(flows, packet)
            assert allowed(packet) == expected, f"{host.name}: {packet}"


def test_a_flow_to_the_internet_does_not_open_the_dmz() -> None:
    flows = flows_of([("mbx1", "internet", "tcp", {25})])
    to = Packet(ipaddress.ip_address("10.1.0.20"), ipaddress.ip_address("192.0.2.99"), 25, "tcp")
    out = Packet(to.source, ipaddress.ip_address("8.8.8.8"), 25, "tcp")
    for name, allowed in models(flows).items():
        assert allowed(out), name
        assert not allowed(to), name
