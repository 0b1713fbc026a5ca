"""Small models of four firewall formats, each reading the text an emitter wrote and saying
whether a new connection (source, destination, port, transport) would be let through.

They parse the output itself, so the rules a test checks are the rules an administrator loads.
"""

from __future__ import annotations

import functools
import ipaddress
import itertools
import json
import re
import shlex
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from portcall.topology.flows import FlowEnd, Network

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class Packet:
    source: Address
    destination: Address
    port: int
    transport: str


Model = Callable[[Packet], bool]


def in_end(address: Address, end: FlowEnd) -> bool:
    def inside(nets: Iterable[Network]) -> bool:
        return any(address.version == n.version and address in n for n in nets)

    return inside(end.networks) and not inside(end.excluded)


@functools.lru_cache(maxsize=4096)
def _net(text: str) -> Network:
    return ipaddress.ip_network(text.strip(), strict=True)


def _within(address: Address, nets: Iterable[Network]) -> bool:
    return any(address.version == n.version and address in n for n in nets)


# nftables ------------------------------------------------------------------------------------


def nftables_model(text: str) -> Model:
    assert "policy drop;" in text and "ct state established,related accept" in text
    sets = {
        name: [_net(e) for e in body.split(",")]
        for name, body in re.findall(r"set (\w+) \{[^}]*?elements = \{ ([^}]*) \}", text)
    }
    rules = [
        line.strip().split(' comment "')[0].split()
        for line in text.splitlines()
        if line.strip().startswith(("ip ", "ip6 "))
    ]

    def allowed(packet: Packet) -> bool:
        return any(_nft_rule(tokens, sets, packet) for tokens in rules)

    return allowed


def _nft_rule(tokens: list[str], sets: dict[str, list[Network]], packet: Packet) -> bool:
    i = 0
    while i < len(tokens):
        word = tokens[i]
        if word in ("ip", "ip6"):
            if (word == "ip") != (packet.source.version == 4):
                return False
            field, negate = tokens[i + 1], tokens[i + 2] == "!="
            value = tokens[i + 3] if negate else tokens[i + 2]
            nets = sets[value[1:]] if value.startswith("@") else [_net(value)]
            address = packet.source if field == "saddr" else packet.destination
            if _within(address, nets) == negate:
                return False
            i += 4 if negate else 3
        elif word in ("tcp", "udp"):
            ports, i = _nft_ports(tokens, i + 2)
            if word != packet.transport or packet.port not in ports:
                return False
        else:
            assert tokens[i:] == ["ct", "state", "new", "accept"], tokens[i:]
            return True
    raise AssertionError(f"rule without a verdict: {tokens}")


def _nft_ports(tokens: list[str], i: int) -> tuple[set[int], int]:
    if tokens[i] != "{":
        return {int(tokens[i])}, i + 1
    end = tokens.index("}", i)
    ports: set[int] = set()
    for token in tokens[i + 1 : end]:
        low, _, high = token.rstrip(",").partition("-")
        ports.update(range(int(low), int(high or low) + 1))
    return ports, end + 1


# iptables ------------------------------------------------------------------------------------


def iptables_model(v4: str, v6: str | None) -> Model:
    tables = {4: _ipt_chains(v4), 6: _ipt_chains(v6) if v6 else None}

    def allowed(packet: Packet) -> bool:
        chains = tables[packet.source.version]
        if chains is None:
            return False
        return _ipt_walk(chains, "FORWARD", packet) == "ACCEPT"

    return allowed


def _ipt_chains(text: str) -> dict[str, list[list[str]]]:
    assert ":FORWARD DROP [0:0]" in text and "COMMIT" in text
    chains: dict[str, list[list[str]]] = {}
    for line in text.splitlines():
        if line.startswith("-A "):
            args = shlex.split(line)
            chains.setdefault(args[1], []).append(args[2:])
    return chains


def _ipt_walk(chains: dict[str, list[list[str]]], chain: str, packet: Packet) -> str:
    for args in chains.get(chain, []):
        if not _ipt_match(args, packet):
            continue
        target = args[args.index("-j") + 1]
        if target in ("ACCEPT", "DROP"):
            return target
        if target == "RETURN":
            return "RETURN"
        verdict = _ipt_walk(chains, target, packet)
        if verdict != "RETURN":
            return verdict
    return "RETURN" if chain != "FORWARD" else "DROP"


def _ipt_match(args: list[str], packet: Packet) -> bool:
    options = dict(itertools.pairwise(args))
    checks = {
        "-s": lambda v: _within(packet.source, map(_net, v.split(","))),
        "-d": lambda v: _within(packet.destination, map(_net, v.split(","))),
        "-p": lambda v: v == packet.transport,
        "--dport": lambda v: int(v) == packet.port,
        "--dports": lambda v: packet.port in {int(p) for p in v.split(",")},
        "--ctstate": lambda v: "NEW" in v.split(","),
    }
    if "--dports" in options:
        assert len(options["--dports"].split(",")) <= 15, "multiport takes at most 15 ports"
    return all(check(options[key]) for key, check in checks.items() if key in options)


# pf ------------------------------------------------------------------------------------------


_PASS = re.compile(
    r"pass (inet6?) proto (tcp|udp) from (\S+) to (\S+) port (\{ [^}]* \}|\d+) keep state$"
)


def pf_model(text: str) -> Model:
    tables = {
        name: [e.strip() for e in body.split(",")]
        for name, body in re.findall(r"table <(\w+)> const \{ ([^}]*) \}", text)
    }
    lines = [line for line in text.splitlines() if line and not line.startswith(("#", "table"))]
    assert lines[0] == "block drop all"
    rules = []
    for line in lines[1:]:
        match = _PASS.match(line)
        assert match, line
        rules.append(match.groups())

    def allowed(packet: Packet) -> bool:
        verdict = False
        for family, proto, source, destination, ports in rules:
            if (
                (family == "inet") == (packet.source.version == 4)
                and proto == packet.transport
                and _pf_address(source, tables, packet.source)
                and _pf_address(destination, tables, packet.destination)
                and packet.port in {int(p) for p in ports.strip("{} ").split()}
            ):
                verdict = True  # the last matching rule wins
        return verdict

    return allowed


def _pf_address(word: str, tables: dict[str, list[str]], address: Address) -> bool:
    entries = tables[word[1:-1]] if word.startswith("<") else [word]
    best: tuple[int, bool] | None = None
    for entry in entries:
        network = _net(entry.lstrip("!"))
        inside = address.version == network.version and address in network
        if inside and (best is None or network.prefixlen > best[0]):
            best = (network.prefixlen, not entry.startswith("!"))
    return best is not None and best[1]


# aws -----------------------------------------------------------------------------------------


def aws_model(text: str, ends: dict[str, FlowEnd]) -> Model:
    groups = json.loads(text)["SecurityGroups"]

    def allowed(packet: Packet) -> bool:
        attached = [g for g in groups if in_end(packet.destination, ends[g["AttachTo"]])]
        return any(_aws_permits(p, packet) for g in attached for p in g["IpPermissions"])

    return allowed


def _aws_permits(permission: dict[str, object], packet: Packet) -> bool:
    key, cidr = ("IpRanges", "CidrIp") if packet.source.version == 4 else ("Ipv6Ranges", "CidrIpv6")
    ranges = permission.get(key, [])
    assert isinstance(ranges, list)
    low, high = permission["FromPort"], permission["ToPort"]
    assert isinstance(low, int) and isinstance(high, int)
    return (
        permission["IpProtocol"] == packet.transport
        and low <= packet.port <= high
        and _within(packet.source, (_net(r[cidr]) for r in ranges))
    )


# windows (PowerShell) ------------------------------------------------------------------------


_PS_ARG = re.compile(r"-(\w+) ((?:'(?:[^']|'')*'(?:,'(?:[^']|'')*')*)|\S+)")


def windows_model(text: str, host: Address) -> Model:
    """Inbound allow rules of one host; the default inbound action blocks the rest."""
    assert "-Action Block" not in text
    rules = [
        dict(_PS_ARG.findall(line))
        for line in text.splitlines()
        if line.startswith("New-NetFirewallRule ")
    ]

    def allowed(packet: Packet) -> bool:
        return packet.destination == host and any(_ps_permits(r, packet) for r in rules)

    return allowed


def _ps_permits(rule: dict[str, str], packet: Packet) -> bool:
    assert rule["Direction"] == "Inbound" and rule["Action"] == "Allow"
    remote = [r.strip("'") for r in rule["RemoteAddress"].split(",")]
    return (
        rule["Protocol"] == packet.transport.upper()
        and packet.port in {int(p) for p in rule["LocalPort"].split(",")}
        and (remote == ["Any"] or _within(packet.source, map(_net, remote)))
    )
