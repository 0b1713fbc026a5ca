"""Firewall rules from the plan: one emitter per platform, registered in `registry.TARGETS`.

`emit_plan` picks the flows each firewall (or, for a host-based target, each host) must let
through and hands them to the target's emitter; every emitter writes stateful rules with the
reason of each rule in a comment.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import replace

from portcall.firewall.base import Artifact, Rule, covers, fold
from portcall.firewall.registry import TARGETS, Target
from portcall.topology.flows import EndKind, Flow, FlowEnd
from portcall.topology.model import Address
from portcall.topology.plan import Plan

__all__ = [
    "TARGETS",
    "Artifact",
    "FirewallRequestError",
    "Rule",
    "Target",
    "arriving",
    "emit_plan",
    "fold",
]


class FirewallRequestError(ValueError):
    """A firewall or host the plan does not know; `hint` says which it knows."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.hint = hint


def emit_plan(plan: Plan, target: str, name: str | None = None) -> list[Artifact]:
    """The files `target` needs for firewall `name` (a host, for a host-based target), or for
    every firewall (every host) when `name` is None."""
    chosen = TARGETS[target]
    if chosen.host_based:
        return _per_host(plan, chosen, name)
    names = _pick(name, list(plan.topology.firewalls), "firewall")
    artifacts: dict[str, Artifact] = {}
    for firewall in names:
        flows = [f for f in plan.flows if firewall in f.firewalls]
        for artifact in chosen.emit(firewall, flows):
            artifacts.setdefault(artifact.name, artifact)
    return list(artifacts.values())


def _per_host(plan: Plan, target: Target, name: str | None) -> list[Artifact]:
    """A host's own firewall must let in the flows to the host and those to its zone."""
    artifacts: list[Artifact] = []
    for host_name in _pick(name, list(plan.topology.hosts), "host"):
        host = plan.topology.hosts[host_name]
        flows = arriving(plan.flows, host_name, host.zone, host.address)
        if flows or name is not None:
            artifacts += target.emit(host_name, flows)
    return artifacts


def arriving(flows: Iterable[Flow], name: str, zone: str, address: Address) -> list[Flow]:
    """The flows that end at the host at `address` (or at its zone), each with the host as its
    destination: its own firewall sees only its own address."""
    network = ipaddress.ip_network(address)
    host = FlowEnd(name, EndKind.HOST, zone, (network,))
    return [replace(f, destination=host) for f in flows if covers(f.destination, address)]


def _pick(name: str | None, known: list[str], kind: str) -> list[str]:
    if name is None:
        return known
    if name not in known:
        listed = ", ".join(known) or "none"
        raise FirewallRequestError(
            f"the topology has no {kind} named '{name}'", f"its {kind}s are: {listed}"
        )
    return [name]
