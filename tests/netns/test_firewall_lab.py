"""The real kernel: the generated nftables and iptables rules, loaded in two router namespaces,
make `portcall audit` find no drift from any zone; one rule removed and one port opened make
it find exactly those two."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from portcall.topology import build_plan, load_topology
from tests.netns.lab import Lab, leftovers

TOPOLOGY = Path(__file__).resolve().parents[2] / "examples" / "frontend-perimeter.yml"
CLIENTS = {"client1": ("internet", "198.51.100.10/24")}
SAMPLE = "internet=198.51.100.10"
#: Each audit: the source it names, and the lab host it runs on (a machine of that zone).
SOURCES = {"internet": "client1", "fe1": "fe1", "mbx1": "mbx1", "internal": "dc1"}
#: The drifts the test makes: the outer firewall's rule for mbx1's outbound mail removed, and
#: IMAP (143, which fe1 does not serve) opened from anywhere to fe1.
REMOVED = "mbx1 -> internet"
DRIFTS = {("mbx1", "internet", 25, "allow"), ("internet", "fe1", 143, "block")}
TOOLS = ("ip", "ss", "nft", "iptables", "iptables-restore")
DCS = ("dc1", "dc2")


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    assert not missing, f"the firewall lab needs {', '.join(missing)} (tests/run.sh installs them)"
    plan = build_plan(load_topology(TOPOLOGY))
    built = Lab(plan, CLIENTS, tmp_path_factory.mktemp("lab")).build()
    try:
        built.serve()
        yield built
    finally:
        built.close()
        assert leftovers(built.prefix) == []


def generated(target: str, firewall: str) -> str:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "portcall",
            "firewall",
            str(TOPOLOGY),
            *f"--target {target} --firewall {firewall}".split(),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def without(text: str, marker: str) -> str:
    kept = [line for line in text.splitlines() if marker not in line]
    assert len(kept) < len(text.splitlines()), f"no line mentions {marker!r}"
    return "\n".join(kept) + "\n"


def load(lab: Lab, firewall: str, argv: list[str], text: str) -> None:
    path = lab.logs / f"{firewall}.rules"
    path.write_text(text)
    done = lab.exec(firewall, *argv, str(path))
    assert done.returncode == 0, f"{argv} {firewall}: {done.stderr}"


def load_nftables(lab: Lab, firewall: str, text: str) -> None:
    load(lab, firewall, ["nft", "-f"], text)


def open_nftables(lab: Lab, firewall: str, text: str) -> None:
    table = re.search(r"^table inet (\S+) \{", text, re.MULTILINE)
    assert table is not None
    rule = f"nft add rule inet {table[1]} forward ip daddr {lab.address('fe1')} tcp dport 143"
    done = lab.exec(firewall, *rule.split(), "accept")
    assert done.returncode == 0, done.stderr


def load_iptables(lab: Lab, firewall: str, text: str) -> None:
    load(lab, firewall, ["iptables-restore", "--noflush"], text)


def open_iptables(lab: Lab, firewall: str, text: str) -> None:
    rule = f"iptables -A FORWARD -d {lab.address('fe1')} -p tcp --dport 143 -j ACCEPT"
    done = lab.exec(firewall, *rule.split())
    assert done.returncode == 0, done.stderr


Loader = Callable[[Lab, str, str], None]
BACKENDS: dict[str, tuple[Loader, Loader]] = {
    "nftables": (load_nftables, open_nftables),
    "iptables": (load_iptables, open_iptables),
}


def audit(lab: Lab, source: str) -> tuple[int, dict[str, Any]]:
    options = f"--from {source} --json --timeout 1 --sample {SAMPLE}".split()
    command = [sys.executable, "-m", "portcall", "audit", str(TOPOLOGY), *options]
    done = lab.exec(SOURCES[source], *command)
    assert done.returncode in (0, 2), done.stderr
    return done.returncode, json.loads(done.stdout)


def audit_everywhere(lab: Lab) -> dict[str, tuple[int, dict[str, Any]]]:
    with ThreadPoolExecutor(len(SOURCES)) as pool:
        runs = pool.map(lambda source: (source, audit(lab, source)), SOURCES)
        return dict(runs)


def drifts(runs: dict[str, tuple[int, dict[str, Any]]]) -> set[tuple[str, str, int, str]]:
    return {
        (flow["source"]["name"], flow["destination"]["name"], flow["port"], flow["expected"])
        for _, document in runs.values()
        for flow in document["flows"]
        if flow["status"] == "drift"
    }


def firewalled(runs: dict[str, tuple[int, dict[str, Any]]]) -> list[dict[str, Any]]:
    """Probes through a firewall that the firewall stopped as planned."""
    return [
        flow
        for _, document in runs.values()
        for flow in document["flows"]
        if flow["firewalls"] and flow["expected"] == "block" and flow["observed"] == "blocked"
    ]


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_generated_rules_match_the_plan_and_drift_is_found(lab: Lab, backend: str) -> None:
    load_rules, open_port = BACKENDS[backend]
    lab.clear_firewalls()
    for firewall in lab.routers:
        load_rules(lab, firewall, generated(backend, firewall))
    runs = audit_everywhere(lab)
    assert drifts(runs) == set()
    assert {source: code for source, (code, _) in runs.items()} == dict.fromkeys(SOURCES, 0)
    planned = [f for _, d in runs.values() for f in d["flows"] if f["expected"] == "allow"]
    tcp = [f for f in planned if f["transport"] == "tcp"]
    assert tcp and all(f["observed"] == "reachable" for f in tcp)
    assert any(f["check"] == "ok" for f in tcp)  # portcall's responders answered as services
    # UDP flows to the domain controllers, proven with real DNS, Kerberos and LDAP ping requests.
    udp = [f for f in planned if f["transport"] == "udp" and f["destination"]["name"] in DCS]
    assert {f["port"] for f in udp} == {53, 88, 389}
    assert all((f["observed"], f["check"]) == ("reachable", "ok") for f in udp), udp
    assert all(f["connection"] == "filtered" for f in firewalled(runs))
    assert len(firewalled(runs)) > 20

    lab.clear_firewalls()
    outer = generated(backend, "outer")
    load_rules(lab, "outer", without(outer, REMOVED))
    open_port(lab, "outer", outer)
    load_rules(lab, "inner", generated(backend, "inner"))
    runs = audit_everywhere(lab)
    assert drifts(runs) == DRIFTS
    codes = {source: code for source, (code, _) in runs.items()}
    assert codes == {"internet": 2, "fe1": 0, "mbx1": 2, "internal": 0}
    hints = {
        f["port"]: f["hint"] for _, d in runs.values() for f in d["flows"] if f["status"] == "drift"
    }
    assert "outer" in hints[25] and "refused" in hints[143]
