"""Vendor ACLs through Aerleon (`pip install portcall[aerleon]`): the flows become an Aerleon
policy, Aerleon writes the platform's syntax, and every flow is looked for in what came back.

Router ACLs (Cisco, Juniper) do not track connections: the policy lets TCP replies back in
with Aerleon's `tcp-established` option; UDP replies need the device's stateful inspection.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from portcall.firewall.base import HEADER, Artifact, Rule, fold, identifier
from portcall.topology.flows import Flow

#: The vendors written, with the Aerleon target and its filter options.
VENDORS = {"cisco": "mixed", "juniper": "mixed"}
INSTALL = "pip install 'portcall[aerleon]'"


class AerleonMissing(RuntimeError):
    """The optional Aerleon library is not installed."""


class AerleonDropped(RuntimeError):
    """Aerleon's output lacks a flow it was given."""


def emit(firewall: str, flows: Sequence[Flow]) -> list[Artifact]:
    try:
        from aerleon import api
        from aerleon.lib import naming
    except ImportError as exc:
        raise AerleonMissing(f"the aerleon target needs Aerleon: {INSTALL}") from exc
    rules = fold(flows)
    definitions = naming.Naming()
    definitions.ParseDefinitionsObject(_definitions(rules), "")
    name = f"portcall-{identifier(firewall)}"
    policy: Any = _policy(name, rules)
    configs = api.Generate([policy], definitions) or {}
    artifacts = [Artifact(file, text) for file, text in sorted(configs.items())]
    for artifact in artifacts:
        _check(artifact, rules)
    return artifacts


def term_name(index: int, rule: Rule) -> str:
    return f"pc{index}-{identifier(rule.source.name)}-{identifier(rule.destination.name)}"[:60]


def _policy(name: str, rules: list[Rule]) -> dict[str, Any]:
    targets = {vendor: f"{name} {option}" for vendor, option in VENDORS.items()}
    terms = [
        {
            "name": "replies",
            "comment": "TCP replies to allowed connections",
            "protocol": "tcp",
            "option": "tcp-established",
            "action": "accept",
        }
    ]
    terms += [_term(i, rule) for i, rule in enumerate(rules, 1)]
    terms.append({"name": "everything-else", "comment": "not in the plan", "action": "deny"})
    header = {"targets": targets, "comment": HEADER}
    return {"filename": name, "filters": [{"header": header, "terms": terms}]}


def _term(index: int, rule: Rule) -> dict[str, Any]:
    term: dict[str, Any] = {
        "name": term_name(index, rule),
        "comment": rule.reason.replace('"', "'"),
        "source-address": f"PC{index}_SRC",
        "destination-address": f"PC{index}_DST",
        "protocol": rule.transport,
        "destination-port": f"PC{index}_PORTS",
        "action": "accept",
    }
    if rule.source.excluded:
        term["source-exclude"] = f"PC{index}_SRC_EXCEPT"
    if rule.destination.excluded:
        term["destination-exclude"] = f"PC{index}_DST_EXCEPT"
    return term


def _definitions(rules: list[Rule]) -> dict[str, Any]:
    networks: dict[str, Any] = {}
    services: dict[str, Any] = {}
    for i, rule in enumerate(rules, 1):
        for role, side in (("SRC", rule.source), ("DST", rule.destination)):
            networks[f"PC{i}_{role}"] = _values(side.networks)
            if side.excluded:
                networks[f"PC{i}_{role}_EXCEPT"] = _values(side.excluded)
        services[f"PC{i}_PORTS"] = [{"port": p, "protocol": rule.transport} for p in rule.ports]
    return {"networks": networks, "services": services}


def _values(networks: Sequence[Any]) -> dict[str, Any]:
    return {"values": [{"address": str(n)} for n in networks]}


def _check(artifact: Artifact, rules: list[Rule]) -> None:
    missing = [
        term_name(i, rule)
        for i, rule in enumerate(rules, 1)
        if term_name(i, rule) not in artifact.text
    ]
    if missing:
        raise AerleonDropped(f"{artifact.name} lacks the flows {', '.join(missing)}")
