"""The deployment model: a topology file in, the flows it requires out.

`load_topology` reads and validates a `portcall.topology/1` file, `build_plan` derives the
flows, and `flows_from` / `unplanned_from` say what a given source should and should not reach.
"""

from __future__ import annotations

from portcall.topology.flows import EndKind, Flow, FlowEnd
from portcall.topology.loader import load_topology, parse_topology
from portcall.topology.model import ROLES, Topology, TopologyError
from portcall.topology.plan import Plan, build_plan
from portcall.topology.sources import Probe, flows_from, unplanned_from

__all__ = [
    "ROLES",
    "EndKind",
    "Flow",
    "FlowEnd",
    "Plan",
    "Probe",
    "Topology",
    "TopologyError",
    "build_plan",
    "flows_from",
    "load_topology",
    "parse_topology",
    "unplanned_from",
]
