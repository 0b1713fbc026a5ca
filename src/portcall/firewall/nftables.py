"""nftables: one script for `nft -f` on the router, in a table of its own.

Loading the script again replaces the table in one transaction: it creates the table if it is
missing, deletes it, and defines it anew, so a reload never leaves the router half-configured.
"""

from __future__ import annotations

from collections.abc import Sequence

from portcall.firewall.base import (
    HEADER,
    STATEFUL,
    Artifact,
    Rule,
    Side,
    fold,
    identifier,
    network_text,
    one_line,
    port_runs,
)
from portcall.topology.flows import Flow, Network

#: nftables keeps at most 128 bytes of a rule's comment.
COMMENT_LIMIT = 128

COEXIST = (
    "In nftables an accept ends only its own base chain: a packet this chain accepts still "
    "meets every other table's base chain on the forward hook, and a drop there is final. "
    "Remove or align other forward chains (for example a distribution's default table) so that "
    "they do not drop what this one allows."
)


def emit(firewall: str, flows: Sequence[Flow]) -> list[Artifact]:
    table = f"portcall_{identifier(firewall)}"
    sets = _Sets()
    body = [line for rule in fold(flows) for line in _rule_lines(rule, sets)]
    lines = [
        "#!/usr/sbin/nft -f",
        f"# {HEADER}",
        f"# Firewall {one_line(firewall)}: {len(flows)} planned flows cross it.",
        f"# {STATEFUL}",
        f"# {COEXIST}",
        f"table inet {table}",
        f"delete table inet {table}",
        f"table inet {table} {{",
        *sets.definitions(),
        "    chain forward {",
        "        type filter hook forward priority filter; policy drop;",
        '        ct state established,related accept comment "replies to allowed connections"',
        '        ct state invalid drop comment "packets that belong to no connection"',
        *body,
        "    }",
        "}",
    ]
    return [Artifact(f"{firewall}.nft", "\n".join(lines) + "\n")]


def quote(text: str) -> str:
    """A comment string nft accepts: it has no escape for a double quote, so one becomes a
    single quote; cut to the bytes nftables keeps."""
    clean = one_line(text).replace('"', "'")
    data = clean.encode()[:COMMENT_LIMIT]
    return '"' + data.decode(errors="ignore") + '"'


def _rule_lines(rule: Rule, sets: _Sets) -> list[str]:
    selector = "ip" if rule.family == 4 else "ip6"
    matches = [
        *_side_match(selector, "saddr", rule.source, sets),
        *_side_match(selector, "daddr", rule.destination, sets),
        f"{rule.transport} dport {_ports(rule.ports)}",
        "ct state new accept",
        f"comment {quote(rule.reason)}",
    ]
    return [f"        # {one_line(rule.reason)}", "        " + " ".join(matches)]


def _side_match(selector: str, field: str, side: Side, sets: _Sets) -> list[str]:
    parts = [f"{selector} {field} {sets.ref(side.name, side.networks)}"]
    if side.excluded:
        parts.append(f"{selector} {field} != {sets.ref(side.name + '_except', side.excluded)}")
    return parts


def _ports(ports: tuple[int, ...]) -> str:
    """One port bare, several as an anonymous set in which runs become ranges."""
    if len(ports) == 1:
        return str(ports[0])
    runs = (str(a) if a == b else f"{a}-{b}" for a, b in port_runs(ports))
    return "{ " + ", ".join(runs) + " }"


class _Sets:
    """Named interval sets for sides with more than one network; a single one stays inline."""

    def __init__(self) -> None:
        self._names: dict[tuple[Network, ...], str] = {}
        self._used: set[str] = set()

    def ref(self, name: str, networks: tuple[Network, ...]) -> str:
        if len(networks) == 1:
            return network_text(networks[0])
        if networks not in self._names:
            self._names[networks] = self._fresh(name, networks[0].version)
        return "@" + self._names[networks]

    def _fresh(self, name: str, family: int) -> str:
        base = f"{identifier(name)}_v{family}"
        candidate, n = base, 1
        while candidate in self._used:
            n += 1
            candidate = f"{base}_{n}"
        self._used.add(candidate)
        return candidate

    def definitions(self) -> list[str]:
        lines: list[str] = []
        for networks, name in self._names.items():
            kind = "ipv4_addr" if networks[0].version == 4 else "ipv6_addr"
            elements = ", ".join(network_text(n) for n in networks)
            lines += [
                f"    set {name} {{",
                f"        type {kind}; flags interval; auto-merge;",
                f"        elements = {{ {elements} }}",
                "    }",
            ]
        return lines
