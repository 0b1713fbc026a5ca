"""pf: a pf.conf fragment for an OpenBSD router, with tables and `keep state`.

pf applies the last matching rule, so the fragment opens with `block` and every `pass` after
it wins for its own traffic. A catch-all side becomes a table with negated entries: pf takes
the most specific entry, so the more specific zones' networks fall out of it.
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
)
from portcall.topology.flows import Flow

#: pf table names are at most 31 characters.
TABLE_LIMIT = 31


def emit(firewall: str, flows: Sequence[Flow]) -> list[Artifact]:
    tables = _Tables()
    body: list[str] = []
    for rule in fold(flows):
        body += [f"# {rule.reason}", _pass(rule, tables)]
    lines = [
        f"# {HEADER}",
        f"# Firewall {one_line(firewall)}: {len(flows)} planned flows cross it.",
        f"# {STATEFUL}",
        *tables.definitions(),
        "# Everything the rules below do not pass is dropped (pf: the last matching rule wins).",
        "# That includes the router's own traffic: put its management rules after this fragment.",
        "block drop all",
        *body,
    ]
    return [Artifact(f"{firewall}.pf.conf", "\n".join(lines) + "\n")]


def _pass(rule: Rule, tables: _Tables) -> str:
    family = "inet" if rule.family == 4 else "inet6"
    ports = " ".join(str(p) for p in rule.ports)
    port = ports if len(rule.ports) == 1 else "{ " + ports + " }"
    return (
        f"pass {family} proto {rule.transport} from {tables.ref(rule.source)} "
        f"to {tables.ref(rule.destination)} port {port} keep state"
    )


class _Tables:
    """A table for every side that is more than one address or that excludes networks."""

    def __init__(self) -> None:
        self._names: dict[tuple[str, ...], str] = {}

    def ref(self, side: Side) -> str:
        entries = tuple(network_text(n) for n in side.networks)
        entries += tuple("!" + network_text(n) for n in side.excluded)
        if len(entries) == 1:
            return entries[0]
        if entries not in self._names:
            family = side.networks[0].version
            stem = identifier(side.name)[: TABLE_LIMIT - 8]
            self._names[entries] = f"{stem}_v{family}_{len(self._names) + 1}"
        return f"<{self._names[entries]}>"

    def definitions(self) -> list[str]:
        return [
            f"table <{name}> const {{ {', '.join(entries)} }}"
            for entries, name in self._names.items()
        ]
