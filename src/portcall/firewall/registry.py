"""The one table of firewall targets: adding a platform is adding a module and a row here."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from portcall.firewall import aerleon, aws, firewalld, iptables, nftables, pf, windows
from portcall.firewall.base import Artifact
from portcall.topology.flows import Flow

Emit = Callable[[str, Sequence[Flow]], list[Artifact]]


@dataclass(frozen=True)
class Target:
    name: str
    emit: Emit
    #: A host-based firewall protects each host, not the path between zones: it is called
    #: once per host with the flows that end at the host or its zone, whichever firewalls
    #: they cross.
    host_based: bool
    summary: str


TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        Target("nftables", nftables.emit, False, "an nft -f script with its own table"),
        Target("iptables", iptables.emit, False, "iptables-restore and ip6tables-restore files"),
        Target("firewalld", firewalld.emit, False, "policy, zone and service XML, firewall-cmd"),
        Target("pf", pf.emit, False, "an OpenBSD pf.conf fragment"),
        Target("aws", aws.emit, False, "EC2 security groups as JSON"),
        Target("windows", windows.emit_powershell, True, "New-NetFirewallRule per host"),
        Target("netsh-2003", windows.emit_netsh, True, "netsh firewall lines per host (2003 SP1)"),
        Target("aerleon", aerleon.emit, False, "vendor ACLs through Aerleon (optional extra)"),
    )
}
