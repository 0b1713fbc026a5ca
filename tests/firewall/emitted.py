"""The emitters' output for the sample flows, as every test here reads it."""

from __future__ import annotations

from pathlib import Path

from portcall.firewall import TARGETS, Artifact, arriving
from portcall.topology.flows import Flow, FlowEnd
from tests.firewall.sample import DC1, FE1, FE6, MBX1, sample_flows

GOLDEN = Path(__file__).parent / "golden"
FIREWALLS = ("inner", "outer")
HOSTS = (FE1, FE6, MBX1, DC1)
#: Every target but the optional one, whose output depends on the installed Aerleon.
CORE_TARGETS = tuple(name for name in TARGETS if name != "aerleon")


def to_host(host: FlowEnd) -> list[Flow]:
    return arriving(sample_flows(), host.name, host.zone, host.networks[0].network_address)


def crossing(firewall: str, flows: list[Flow] | None = None) -> list[Flow]:
    return [f for f in (flows or sample_flows()) if firewall in f.firewalls]


def emitted(target: str) -> list[Artifact]:
    chosen = TARGETS[target]
    if chosen.host_based:
        return [a for host in HOSTS for a in chosen.emit(host.name, to_host(host))]
    # Files that two firewalls share (a zone, an ipset) are written once, as by the command.
    unique = {a.name: a for fw in FIREWALLS for a in chosen.emit(fw, crossing(fw))}
    return list(unique.values())


def write(directory: Path, artifacts: list[Artifact]) -> list[Path]:
    paths = []
    for artifact in artifacts:
        path = directory / artifact.name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(artifact.text, encoding="utf-8", newline="")
        paths.append(path)
    return paths
