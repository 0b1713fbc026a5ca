"""The plan's four formats: golden files for both examples, the JSON document's shape, the
table on a terminal and piped, DOT checked by Graphviz itself and Mermaid by its structure."""

from __future__ import annotations

import io
import json
import re
import subprocess
from pathlib import Path

import pytest

from portcall.topology import Plan, build_plan, load_topology
from portcall.topology.graph import plan_dot, plan_mermaid
from portcall.topology.render import plan_json, render_table
from tests.topology.conftest import EXAMPLES

GOLDEN = Path(__file__).parent / "golden"
NAMES = ("frontend-perimeter", "routing-groups")


def example_plan(name: str, monkeypatch: pytest.MonkeyPatch) -> Plan:
    # Relative to the project, so that the JSON's "topology" is the same on every machine.
    monkeypatch.chdir(EXAMPLES.parent)
    return build_plan(load_topology(f"examples/{name}.yml"))


def plain_table(plan: Plan) -> str:
    buffer = io.StringIO()
    render_table(plan, buffer, rich_output=False)
    return buffer.getvalue()


RENDERERS = {"txt": plain_table, "json": plan_json, "dot": plan_dot, "mmd": plan_mermaid}


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("suffix", sorted(RENDERERS))
def test_examples_match_their_golden_files(
    name: str, suffix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = RENDERERS[suffix](example_plan(name, monkeypatch))
    assert text == (GOLDEN / f"{name}.{suffix}").read_text(encoding="utf-8")


def test_the_json_document_carries_schema_flows_and_warnings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    document = json.loads(plan_json(example_plan("routing-groups", monkeypatch)))
    assert document["schema"] == "portcall.plan/1"
    assert document["warnings"] and "rpc-port is not set" in document["warnings"][0]
    flow = next(f for f in document["flows"] if f["destination"]["name"] == "internet")
    assert flow == {
        "source": {
            "name": "bh-lon",
            "kind": "host",
            "zone": "london",
            "addresses": ["10.10.0.10/32"],
            "excluded": [],
        },
        "destination": {
            "name": "internet",
            "kind": "zone",
            "zone": "internet",
            "addresses": ["0.0.0.0/0"],
            "excluded": ["10.10.0.0/16", "10.20.0.0/16"],
        },
        "port": 25,
        "transport": "tcp",
        "service": "smtp",
        "firewalls": ["edge"],
        "reasons": ["rule 7 (flows, line 46): outbound mail leaves through the London bridgehead"],
    }
    assert document["zones"]["internet"]["excluded"] == ["10.10.0.0/16", "10.20.0.0/16"]
    assert document["firewalls"] == {
        "edge": ["internet", "london"],
        "site-link": ["london", "paris"],
    }


def test_the_table_on_a_terminal_is_a_rich_table_with_every_flow(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    plan = example_plan("frontend-perimeter", monkeypatch)
    buffer = io.StringIO()
    render_table(plan, buffer, rich_output=True, width=240)
    text = buffer.getvalue()
    assert "┃ From" in text and "Firewalls" in text
    assert "internet (0.0.0.0/0, ::/0" in text
    assert text.count("fe1 (192.0.2.10)") >= 19  # every flow fe1 opens or receives
    assert "51 flows to allow; through each firewall: outer 6, inner 25; 0 warnings" in text


def test_the_piped_table_has_one_line_per_flow_then_its_reasons(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    plan = example_plan("frontend-perimeter", monkeypatch)
    lines = plain_table(plan).splitlines()
    flow_lines = [line for line in lines if " -> " in line]
    assert len(flow_lines) == len(plan.flows) == 51
    assert "\x1b" not in "".join(lines)
    assert (
        "mbx1 (10.1.0.20) -> internet (0.0.0.0/0, ::/0 but 3 networks of other zones)  "
        "25/tcp  firewalls: inner > outer" in lines
    )


@pytest.mark.parametrize("name", NAMES)
def test_graphviz_accepts_the_dot_output(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    dot = plan_dot(example_plan(name, monkeypatch))
    rendered = subprocess.run(
        ["dot", "-Tsvg"], input=dot, capture_output=True, text=True, timeout=30, check=False
    )
    assert rendered.returncode == 0, rendered.stderr
    assert rendered.stderr == ""
    assert "<svg" in rendered.stdout
    assert rendered.stdout.count('class="cluster"') == 3


def test_mermaid_output_is_well_formed(monkeypatch: pytest.MonkeyPatch) -> None:
    plan = example_plan("routing-groups", monkeypatch)
    lines = plan_mermaid(plan).splitlines()
    assert lines[0] == "flowchart LR"
    depth, defined, edges = 0, set(), []
    node = re.compile(r'^\s+(\w+)\["[^"]*"\]$')
    edge = re.compile(r'^\s+(\w+) -->\|"[^"]*"\| (\w+)$')
    for line in lines[1:]:
        if line.strip().startswith("subgraph "):
            depth += 1
        elif line.strip() == "end":
            depth -= 1
            assert depth >= 0
        elif match := node.match(line):
            assert match.group(1) not in defined
            defined.add(match.group(1))
        elif match := edge.match(line):
            edges.append(match.groups())
        else:
            pytest.fail(f"not a Mermaid statement this renderer writes: {line!r}")
    assert depth == 0
    assert len(defined) == len(plan.topology.zones) + len(plan.topology.hosts)
    assert edges and all(a in defined and b in defined for a, b in edges)
    pairs = {(f.source.name, f.destination.name) for f in plan.flows}
    assert len(edges) == len(pairs)
