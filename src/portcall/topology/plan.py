"""The plan: every flow the topology requires, with the firewalls it crosses and why."""

from __future__ import annotations

from dataclasses import dataclass

from portcall.topology.flows import Flow
from portcall.topology.model import Topology
from portcall.topology.planner import Planner
from portcall.topology.rules import RULES

SCHEMA = "portcall.plan/1"


@dataclass(frozen=True)
class Plan:
    topology: Topology
    flows: tuple[Flow, ...]
    warnings: tuple[str, ...]


def build_plan(topology: Topology) -> Plan:
    """Run the seven rules over `topology`; a flow no firewall path can carry is a
    `TopologyError` at the line of the rule or host that asked for it."""
    planner = Planner(topology)
    for rule in RULES:
        rule(planner)
    return Plan(topology, planner.ordered(), tuple(planner.warnings))
