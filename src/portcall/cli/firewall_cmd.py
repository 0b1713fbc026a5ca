"""`portcall firewall`: the rules for the flows that cross a firewall, for a real platform."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from portcall.cli.common import UsageProblem, check_output_path, write_atomically
from portcall.cli.group import EXIT_FAILURES, app
from portcall.cli.plan_cmd import make_plan
from portcall.firewall import TARGETS, Artifact, FirewallRequestError, emit_plan
from portcall.firewall.aerleon import AerleonDropped, AerleonMissing
from portcall.topology import Plan


@app.command()
@click.argument("topology", metavar="TOPOLOGY")
@click.option(
    "--target",
    required=True,
    type=click.Choice(list(TARGETS)),
    help="The platform: " + "; ".join(f"{t.name}: {t.summary}" for t in TARGETS.values()) + ".",
)
@click.option(
    "--firewall",
    "name",
    metavar="NAME",
    help="Only this firewall (a host, for windows and netsh-2003); every one by default.",
)
@click.option(
    "-o",
    "--output",
    metavar="FILE",
    help="Write to FILE; a directory of files when the target makes several.",
)
def firewall(topology: str, target: str, name: str | None, output: str | None) -> None:
    """Write the firewall rules for the deployment in TOPOLOGY: stateful, one comment with
    its reason on every rule, everything not planned dropped.

    Nothing is sent on the network and no firewall is changed: load the output yourself.
    """
    plan = make_plan(topology)
    artifacts = _emit(plan, target, name)
    if not artifacts:
        click.echo("No planned flow ends at any host: no host firewall needs a rule.", err=True)
    elif output is None:
        _print(artifacts)
    elif len(artifacts) == 1 and not Path(output).is_dir():
        write_atomically(output, artifacts[0].text)
    else:
        _write_directory(Path(output), artifacts)


def _emit(plan: Plan, target: str, name: str | None) -> list[Artifact]:
    try:
        return emit_plan(plan, target, name)
    except FirewallRequestError as exc:
        raise UsageProblem(str(exc), exc.hint) from exc
    except AerleonMissing as exc:
        raise UsageProblem(str(exc), "or choose another --target") from exc
    except AerleonDropped as exc:
        click.echo(f"Error: Aerleon's output is incomplete: {exc}", err=True)
        sys.exit(EXIT_FAILURES)


def _print(artifacts: list[Artifact]) -> None:
    for artifact in artifacts:
        if len(artifacts) > 1:
            click.echo(f"==> {artifact.name} <==")
        click.echo(artifact.text, nl=False)


def _write_directory(directory: Path, artifacts: list[Artifact]) -> None:
    if directory.exists() and not directory.is_dir():
        raise UsageProblem(
            f"-o: '{directory}' is a file, but the target makes {len(artifacts)} files",
            "name a directory (it is created when missing)",
        )
    if not directory.exists():
        check_output_path(str(directory))  # its parent must exist and be writable
        directory.mkdir()
    for artifact in artifacts:
        path = directory / artifact.name
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(str(path), artifact.text)
        click.echo(f"wrote {path}", err=True)
