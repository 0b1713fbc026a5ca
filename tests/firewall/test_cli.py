"""`portcall firewall` as a user meets it: the example topologies in, files for each target
out, usage errors with exit 64 and never a traceback."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from portcall.cli.group import EXIT_USAGE
from portcall.firewall import TARGETS
from tests.firewall.conftest import EXAMPLES, Run
from tests.firewall.test_validate import tool

FRONTEND = EXAMPLES / "frontend-perimeter.yml"


def test_nftables_for_one_firewall_loads_in_check_mode(portcall: Run, tmp_path: Path) -> None:
    out = tmp_path / "outer.nft"
    result = portcall(
        "firewall", FRONTEND, "--target", "nftables", "--firewall", "outer", "-o", out
    )
    assert result.code == 0, result.err
    text = out.read_text()
    assert "table inet portcall_outer {" in text and "policy drop;" in text
    check = subprocess.run([tool("nft"), "-c", "-f", str(out)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr


def test_every_firewall_goes_to_the_screen_with_file_headers(portcall: Run) -> None:
    result = portcall("firewall", FRONTEND, "--target", "pf")
    assert result.code == 0, result.err
    assert "==> outer.pf.conf <==" in result.out and "==> inner.pf.conf <==" in result.out


def test_several_files_go_to_a_directory(portcall: Run, tmp_path: Path) -> None:
    result = portcall("firewall", FRONTEND, "--target", "iptables", "-o", tmp_path / "rules")
    assert result.code == 0, result.err
    names = sorted(p.name for p in (tmp_path / "rules").iterdir())
    assert {"inner.rules", "outer.rules"} <= set(names)
    assert all(name.endswith((".rules", ".rules6")) for name in names)


def test_windows_names_a_host_with_firewall(portcall: Run) -> None:
    result = portcall("firewall", FRONTEND, "--target", "windows", "--firewall", "dc1")
    assert result.code == 0, result.err
    assert "New-NetFirewallRule" in result.out and "-Action Block" not in result.out
    assert "-Direction Inbound -Action Allow" in result.out


@pytest.mark.parametrize("target", [t for t in TARGETS if t != "aerleon"])
def test_every_target_writes_for_both_examples(portcall: Run, target: str) -> None:
    for example in sorted(EXAMPLES.glob("*.yml")):
        result = portcall("firewall", example, "--target", target)
        assert result.code == 0, f"{example.name}: {result.err}"
        assert result.out.strip()


def test_an_unknown_firewall_is_a_usage_error(portcall: Run) -> None:
    result = portcall("firewall", FRONTEND, "--target", "nftables", "--firewall", "middle")
    assert result.code == EXIT_USAGE
    assert "no firewall named 'middle'" in result.err and "outer" in result.err
    assert "Traceback" not in result.err


def test_an_unknown_target_is_a_usage_error(portcall: Run) -> None:
    result = portcall("firewall", FRONTEND, "--target", "checkpoint")
    assert result.code == EXIT_USAGE
    assert "nftables" in result.err


def test_a_bad_topology_is_a_usage_error(portcall: Run, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("schema: portcall.topology/1\nzones: 7\n")
    result = portcall("firewall", bad, "--target", "nftables")
    assert result.code == EXIT_USAGE
    assert "bad.yml" in result.err and "Traceback" not in result.err
