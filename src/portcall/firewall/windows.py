"""The Windows host firewall: PowerShell `New-NetFirewallRule` for current Windows, and the
`netsh firewall add portopening` lines that Windows Server 2003 SP1 knows.

Both take the flows that end at one host, or at the zone it lies in, and write inbound allow
rules only: in the Windows firewall a block rule beats every allow rule, so a catch-all block
would shut what the allow rules open. Everything else is dropped by the profile's default
inbound action (block). A catch-all source is written as the CIDRs left once the other zones
are cut out of it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from portcall.firewall.base import (
    HEADER,
    STATEFUL,
    Artifact,
    Rule,
    allowed_networks,
    fold,
    one_line,
    ports_text,
)
from portcall.topology.flows import Flow, Network

GROUP = "portcall"
NO_BLOCK = (
    "Allow rules only: in the Windows firewall a block rule beats every allow rule. Keep the "
    "profile's default inbound action at Block so that everything else is dropped."
)


def ps_quote(text: str) -> str:
    """A PowerShell single-quoted string: every kind of single quote is doubled."""
    out = "".join(c * 2 if c in "'\u2018\u2019\u201a\u201b" else c for c in one_line(text))
    return f"'{out}'"


def emit_powershell(host: str, flows: Sequence[Flow]) -> list[Artifact]:
    """The script for `host`, given the flows that end at it (or at its zone)."""
    return [_powershell(host, flows)]


def _powershell(host: str, flows: Sequence[Flow]) -> Artifact:
    lines = [
        f"# {HEADER}",
        f"# Host {one_line(host)}: inbound rules for {len(flows)} planned flows.",
        f"# {STATEFUL}",
        f"# {NO_BLOCK}",
        f"Remove-NetFirewallRule -Group {ps_quote(GROUP)} -ErrorAction SilentlyContinue",
    ]
    for rule in fold(flows):
        lines += [f"# {rule.reason}", _new_rule(rule)]
    return Artifact(f"{host}.ps1", "\n".join(lines) + "\n")


def _new_rule(rule: Rule) -> str:
    remote = ",".join(ps_quote(r) for r in _remote(allowed_networks(rule.source)))
    name = f"portcall {rule.source.name} {rule.transport}/{ports_text(rule.ports)} IPv{rule.family}"
    return (
        f"New-NetFirewallRule -Group {ps_quote(GROUP)} -DisplayName {ps_quote(name)} "
        f"-Description {ps_quote(rule.reason)} -Direction Inbound -Action Allow "
        f"-Protocol {rule.transport.upper()} -LocalPort {','.join(map(str, rule.ports))} "
        f"-RemoteAddress {remote} -Profile Any"
    )


def _remote(networks: list[Network]) -> list[str]:
    if any(n.prefixlen == 0 for n in networks):
        return ["Any"]
    return [str(n) for n in networks]


def emit_netsh(host: str, flows: Sequence[Flow]) -> list[Artifact]:
    """The batch file for `host`, given the flows that end at it (or at its zone)."""
    return [_netsh(host, flows)]


def _netsh(host: str, flows: Sequence[Flow]) -> Artifact:
    lines = [
        f"REM {remark(HEADER)}",
        f"REM Host {remark(host)}: Windows Server 2003 SP1 port openings for {len(flows)} flows.",
        f"REM {remark(NO_BLOCK)}",
        "REM One opening per port: the sources of every flow to that port share its scope.",
    ]
    openings: dict[tuple[int, str], list[Flow]] = {}
    for flow in flows:
        openings.setdefault((flow.port, flow.transport), []).append(flow)
    for (port, transport), same_port in sorted(openings.items()):
        rules = fold(same_port)
        lines += [f"REM {remark(r.reason)}" for r in rules]
        ipv4 = [r for r in rules if r.family == 4]
        if ipv4:
            lines.append(_portopening(port, transport, ipv4))
        else:
            lines.append("REM Not expressible here: netsh firewall on 2003 knows IPv4 only.")
    return Artifact(f"{host}.cmd", "\r\n".join(lines) + "\r\n")


def _portopening(port: int, transport: str, rules: list[Rule]) -> str:
    networks = sorted(
        {n for r in rules for n in allowed_networks(r.source)},
        key=lambda n: (n.network_address.packed, n.prefixlen),
    )
    head = f"netsh firewall add portopening protocol={transport.upper()} port={port}"
    name = f'name="portcall {port}/{transport}" mode=ENABLE'
    if any(n.prefixlen == 0 for n in networks):
        return f"{head} {name} scope=ALL"
    return f"{head} {name} scope=CUSTOM addresses={','.join(_netsh_address(n) for n in networks)}"


def _netsh_address(network: Network) -> str:
    if network.prefixlen == 32:
        return str(network.network_address)
    return f"{network.network_address}/{ipaddress.IPv4Network(network).netmask}"


def remark(text: str) -> str:
    """Text after REM in a batch file: percent signs would still be expanded."""
    return one_line(text).replace("%", "%%")
