"""Any text in: a Topology (and then a Plan) or a TopologyError, never another exception.

Three sources of input: arbitrary text, arbitrary YAML built from the topology's own words
(so that the fuzzing reaches deep into validation), and the valid base with one line mangled.
"""

from __future__ import annotations

from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portcall.topology import EndKind, Plan, Topology, TopologyError, build_plan, parse_topology
from tests.topology.conftest import BASE

WORDS = [
    "schema", "catalog", "rpc-port", "zones", "firewalls", "hosts", "clients", "flows",
    "address", "zone", "roles", "routing-group", "master", "from", "to", "services", "ports",
    "transport", "why", "internet", "dmz", "internal", "fe1", "mbx1", "front-end", "back-end",
    "bridgehead", "domain-controller", "global-catalog", "srs", "exchange-5.5", "rg1", "https",
    "smtp", "routing", "tcp", "udp", "portcall.topology/1", "exchange-2000", "0.0.0.0/0",
    "::/0", "192.0.2.0/24", "10.1.0.0/16", "192.0.2.10", "10.1.0.20", "10.1.0.1/16", "",
]  # fmt: skip

scalars = st.one_of(
    st.sampled_from(WORDS),
    st.integers(min_value=-5, max_value=70000),
    st.booleans(),
    st.none(),
    st.text(max_size=8),
)
documents = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(WORDS), inner, max_size=5),
    ),
    max_leaves=30,
)


def load_or_refuse(text: str) -> Topology | None:
    try:
        topology = parse_topology(text, "fuzz.yml")
    except TopologyError as error:
        assert str(error).startswith("fuzz.yml")
        assert error.field and error.allowed
        return None
    try:
        plan = build_plan(topology)
    except TopologyError:
        return topology
    assert isinstance(plan, Plan)
    return topology


FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(st.text(max_size=200))
def test_any_text(text: str) -> None:
    load_or_refuse(text)


@FAST
@given(documents)
def test_any_yaml_of_topology_words(document: Any) -> None:
    load_or_refuse(yaml.safe_dump(document))


@FAST
@given(documents.filter(lambda d: isinstance(d, dict)))
def test_topologies_with_a_valid_schema_line(document: dict[str, Any]) -> None:
    load_or_refuse(yaml.safe_dump({**document, "schema": "portcall.topology/1"}))


BASE_LINES = BASE.splitlines()


@FAST
@given(st.integers(0, len(BASE_LINES) - 1), st.text(max_size=40))
def test_the_valid_base_with_one_line_replaced(index: int, line: str) -> None:
    lines = list(BASE_LINES)
    lines[index] = line
    load_or_refuse("\n".join(lines) + "\n")


NETWORKS = ["0.0.0.0/0", "::/0", "10.0.0.0/8", "10.1.0.0/16", "10.2.0.0/16", "192.0.2.0/24",
            "2001:db8::/32", "2001:db8:2::/64"]  # fmt: skip
ADDRESSES = ["10.1.0.5", "10.2.0.5", "10.3.0.5", "192.0.2.10", "198.51.100.1", "2001:db8:2::1"]
ZONE_NAMES = ["z0", "z1", "z2", "z3"]
HOST_NAMES = ["h0", "h1", "h2", "h3", "h4"]
ROLE_NAMES = ["front-end", "back-end", "bridgehead", "domain-controller", "global-catalog",
              "srs", "exchange-5.5"]  # fmt: skip
ENDS = ZONE_NAMES + HOST_NAMES + ROLE_NAMES


@st.composite
def topologies(draw: st.DrawFn) -> dict[str, Any]:
    """Mostly valid topologies: the names come from small pools so that they meet."""
    networks = draw(st.permutations(NETWORKS))
    cuts = sorted(draw(st.lists(st.integers(1, len(NETWORKS) - 1), max_size=3, unique=True)))
    chunks = [networks[a:b] for a, b in zip([0, *cuts], [*cuts, len(NETWORKS)], strict=True)]
    zones = dict(zip(ZONE_NAMES, chunks, strict=False))
    firewalls = {}
    if len(zones) > 1:
        pairs = st.lists(st.sampled_from(list(zones)), min_size=2, max_size=2, unique=True)
        firewalls = draw(st.dictionaries(st.sampled_from(["f0", "f1", "f2"]), pairs, max_size=3))
    host = st.fixed_dictionaries(
        {"address": st.sampled_from(ADDRESSES),
         "roles": st.lists(st.sampled_from(ROLE_NAMES), max_size=3)},
        optional={"routing-group": st.sampled_from(["rg1", "rg2"]), "master": st.booleans()},
    )  # fmt: skip
    hosts = draw(st.dictionaries(st.sampled_from(HOST_NAMES), host, max_size=5))
    if draw(st.booleans()):  # mostly one master per routing group, sometimes as drawn
        for group in ("rg1", "rg2"):
            members = [h for h in hosts.values() if h.get("routing-group") == group]
            for index, member in enumerate(members):
                member["master"] = index == 0
    client = st.fixed_dictionaries(
        {"from": st.sampled_from(ENDS), "to": st.sampled_from(ENDS),
         "services": st.lists(st.sampled_from(["https", "imap", "smtp", "pop3s", "routing"]),
                              min_size=1, max_size=3)})  # fmt: skip
    flow = st.fixed_dictionaries(
        {"from": st.sampled_from(ENDS), "to": st.sampled_from(ENDS),
         "ports": st.lists(st.integers(1, 65535), min_size=1, max_size=3)},
        optional={"transport": st.sampled_from(["tcp", "udp"])},
    )  # fmt: skip
    document: dict[str, Any] = {"schema": "portcall.topology/1", "zones": zones,
                                "firewalls": firewalls, "hosts": hosts}  # fmt: skip
    document["clients"] = draw(st.lists(client, max_size=3))
    document["flows"] = draw(st.lists(flow, max_size=2))
    if draw(st.booleans()):
        document["rpc-port"] = draw(st.integers(1025, 65535))
    return document


PLANNED: list[int] = []


@settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(topologies())
def test_generated_topologies_plan_consistently(document: dict[str, Any]) -> None:
    try:
        topology = parse_topology(yaml.safe_dump(document), "fuzz.yml")
        plan = build_plan(topology)
    except TopologyError:
        return
    PLANNED.append(len(plan.flows))
    keys = [flow.key for flow in plan.flows]
    assert len(keys) == len(set(keys))
    for flow in plan.flows:
        assert flow.source.kind is EndKind.ZONE or flow.source != flow.destination
        assert flow.reasons
        zone = flow.source.zone
        for name in flow.firewalls:  # each firewall leads on from the zone reached so far
            ends = topology.firewalls[name].zones
            assert zone in ends
            zone = ends[1] if ends[0] == zone else ends[0]
        assert zone == flow.destination.zone


def test_the_generator_reaches_the_planner() -> None:
    """Runs after the property above (pytest keeps file order): it must have planned often."""
    assert sum(1 for n in PLANNED if n) >= 10
