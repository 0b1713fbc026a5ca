"""A fixed flow list that exercises every emitter's traps: IPv4 and IPv6, tcp and udp, a
catch-all zone with exclusions, more than 15 ports between one pair, and quotes in reasons."""

from __future__ import annotations

import ipaddress

from portcall.topology.flows import EndKind, Flow, FlowEnd, Network, Transport


def net(text: str) -> Network:
    return ipaddress.ip_network(text)


DMZ_NETS = (net("192.0.2.0/24"), net("2001:db8:1::/64"))
INTERNAL_NETS = (net("10.1.0.0/16"), net("fd00:1::/64"))

INTERNET = FlowEnd(
    "internet",
    EndKind.ZONE,
    "internet",
    (net("0.0.0.0/0"), net("::/0")),
    DMZ_NETS + INTERNAL_NETS,
)
DMZ = FlowEnd("dmz", EndKind.ZONE, "dmz", DMZ_NETS)
INTERNAL = FlowEnd("internal", EndKind.ZONE, "internal", INTERNAL_NETS)
FE1 = FlowEnd("fe1", EndKind.HOST, "dmz", (net("192.0.2.10/32"),))
FE6 = FlowEnd("fe6", EndKind.HOST, "dmz", (net("2001:db8:1::10/128"),))
MBX1 = FlowEnd("mbx1", EndKind.HOST, "internal", (net("10.1.0.20/32"),))
DC1 = FlowEnd("dc1", EndKind.HOST, "internal", (net("10.1.0.5/32"),))


def flow(
    source: FlowEnd,
    destination: FlowEnd,
    port: int,
    transport: Transport,
    firewalls: tuple[str, ...],
    reason: str,
) -> Flow:
    return Flow(source, destination, port, transport, firewalls, (reason,))


def sample_flows() -> list[Flow]:
    flows = [
        flow(INTERNET, FE1, port, "tcp", ("outer",), f'clients: internet to front-end "{name}"')
        for port, name in (
            (25, "smtp"),
            (80, "http"),
            (119, "nntp"),
            (443, "https"),
            (993, "imaps"),
        )
    ]
    flows += [
        flow(INTERNET, FE6, 443, "tcp", ("outer",), "clients: internet to front-end https"),
        flow(
            MBX1,
            INTERNET,
            25,
            "tcp",
            ("inner", "outer"),
            'outbound mail to the "smarthost" \\ it\'s',
        ),
        flow(INTERNAL, DMZ, 53, "udp", ("inner",), "name service for the perimeter"),
        flow(
            FE1,
            DC1,
            88,
            "udp",
            ("inner",),
            "rule 3: Exchange server to domain-controller (kerberos)",
        ),
    ]
    flows += [
        flow(FE1, MBX1, port, "tcp", ("inner",), f"test range {port}") for port in range(6000, 6020)
    ]
    return flows
