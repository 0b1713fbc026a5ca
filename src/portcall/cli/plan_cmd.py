"""`portcall plan`: the flows a deployment needs, and why."""

from __future__ import annotations

import io
import sys

import click

from portcall.cli.common import UsageProblem, output_option, write_atomically
from portcall.cli.group import app
from portcall.topology import Plan, TopologyError, build_plan, load_topology
from portcall.topology.graph import plan_dot, plan_mermaid
from portcall.topology.render import plan_json, render_table

FORMATS = ("table", "json", "dot", "mermaid")
_RENDER = {"json": plan_json, "dot": plan_dot, "mermaid": plan_mermaid}


@app.command()
@click.argument("topology", metavar="TOPOLOGY")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    help="table (the default), json (portcall.plan/1), dot (Graphviz) or mermaid.",
)
@click.option("--json", "as_json", is_flag=True, help="The same as --format json.")
@output_option
def plan(topology: str, fmt: str | None, as_json: bool, output: str | None) -> None:
    """Show the flows the deployment in TOPOLOGY must allow: source, destination, port,
    the firewalls each flow crosses, and why (the rule and the catalog row).

    TOPOLOGY is a portcall.topology/1 YAML file; nothing is sent on the network.
    """
    if as_json and fmt not in (None, "json"):
        raise UsageProblem(f"--json and --format {fmt} ask for two formats", "give one of them")
    chosen = "json" if as_json else fmt or "table"
    result = make_plan(topology)
    if chosen == "table":
        _table(result, output)
    elif output is None:
        click.echo(_RENDER[chosen](result), nl=False)
    else:
        write_atomically(output, _RENDER[chosen](result))


def make_plan(path: str) -> Plan:
    """The plan of the topology at `path`; a bad topology is a usage error (exit 64)."""
    try:
        return build_plan(load_topology(path))
    except TopologyError as exc:
        raise UsageProblem(
            str(exc),
            "the topology format and two examples are in the docs (From topology to firewall)",
        ) from exc


def _table(result: Plan, output: str | None) -> None:
    if output is None:
        render_table(result, sys.stdout, rich_output=sys.stdout.isatty())
        return
    buffer = io.StringIO()
    render_table(result, buffer, rich_output=False)
    write_atomically(output, buffer.getvalue())
