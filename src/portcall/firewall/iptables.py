"""iptables: an `iptables-restore` file for the filter table's FORWARD chain, and the
`ip6tables-restore` file when the flows have IPv6 addresses.

A flow whose side excludes networks (a catch-all zone) jumps to a chain of its own that
returns for the excluded networks before it accepts: the exclusion then applies to that flow
alone, and other flows to those networks are still met further down FORWARD.
"""

from __future__ import annotations

from collections.abc import Sequence

from portcall.firewall.base import (
    HEADER,
    STATEFUL,
    Artifact,
    Rule,
    chunks,
    fold,
    network_text,
    one_line,
)
from portcall.topology.flows import Flow, Network

#: The multiport match takes at most 15 ports.
MULTIPORT_LIMIT = 15
#: iptables keeps at most 256 characters of a comment.
COMMENT_LIMIT = 255

LOADING = (
    "Load with iptables-restore --noflush (ip6tables-restore for the IPv6 file) to keep the "
    "router's INPUT and OUTPUT rules: FORWARD is flushed and rebuilt, its policy set to DROP."
)


def emit(firewall: str, flows: Sequence[Flow]) -> list[Artifact]:
    rules = fold(flows)
    artifacts = [Artifact(f"{firewall}.rules", _document(firewall, 4, rules, len(flows)))]
    if any(rule.family == 6 for rule in rules):
        artifacts.append(Artifact(f"{firewall}.rules6", _document(firewall, 6, rules, len(flows))))
    return artifacts


def quote(text: str) -> str:
    """A double-quoted argument as iptables-restore reads it: backslash escapes a quote."""
    clean = one_line(text)[:COMMENT_LIMIT].replace("\\", "\\\\").replace('"', '\\"')
    return f'"{clean}"'


def _document(firewall: str, family: int, rules: list[Rule], count: int) -> str:
    chains: list[str] = []
    body: list[str] = []
    for rule in (r for r in rules if r.family == family):
        body += _rule_lines(rule, chains)
    lines = [
        f"# {HEADER}",
        f"# Firewall {one_line(firewall)} (IPv{family}): {count} planned flows cross it.",
        f"# {STATEFUL}",
        f"# {LOADING}",
        "*filter",
        ":FORWARD DROP [0:0]",
        *(f":{chain} - [0:0]" for chain in chains),
        "-F FORWARD",
        *(f"-F {chain}" for chain in chains),
        "-A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED "
        f"-m comment --comment {quote('replies to allowed connections')} -j ACCEPT",
        "-A FORWARD -m conntrack --ctstate INVALID "
        f"-m comment --comment {quote('packets that belong to no connection')} -j DROP",
        *body,
        "COMMIT",
    ]
    return "\n".join(lines) + "\n"


def _rule_lines(rule: Rule, chains: list[str]) -> list[str]:
    target = "ACCEPT"
    lines = [f"# {rule.reason}"]
    if rule.source.excluded or rule.destination.excluded:
        target = f"portcall-{len(chains) + 1}"
        chains.append(target)
    matches = f"-s {_networks(rule.source.networks)} -d {_networks(rule.destination.networks)}"
    for ports in chunks(rule.ports, MULTIPORT_LIMIT):
        lines.append(
            f"-A FORWARD {matches} -p {rule.transport} {_ports(ports)} "
            f"-m conntrack --ctstate NEW -m comment --comment {quote(rule.reason)} -j {target}"
        )
    if target != "ACCEPT":
        lines += _exception_chain(rule, target)
    return lines


def _exception_chain(rule: Rule, chain: str) -> list[str]:
    why = quote(f"not part of {rule.source.name} or {rule.destination.name}: a more specific zone")
    lines = [
        f"-A {chain} -s {network_text(n)} -m comment --comment {why} -j RETURN"
        for n in rule.source.excluded
    ]
    lines += [
        f"-A {chain} -d {network_text(n)} -m comment --comment {why} -j RETURN"
        for n in rule.destination.excluded
    ]
    lines.append(f"-A {chain} -m comment --comment {quote(rule.reason)} -j ACCEPT")
    return lines


def _networks(networks: tuple[Network, ...]) -> str:
    return ",".join(network_text(n) for n in networks)


def _ports(ports: tuple[int, ...]) -> str:
    if len(ports) == 1:
        return f"--dport {ports[0]}"
    return "-m multiport --dports " + ",".join(str(p) for p in ports)
