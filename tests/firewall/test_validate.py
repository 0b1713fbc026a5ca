"""The emitted rules load in the real tools, in check-only modes that leave the machine's live
ruleset alone: `nft -c`, `iptables-restore --test`, `firewall-offline-cmd --check-config` on a
configuration directory of its own. A missing tool fails the test: it says what to install."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.firewall.emitted import emitted, write

#: Debian packages that provide the tools.
PACKAGES = {
    "nft": "nftables",
    "iptables-restore": "iptables",
    "ip6tables-restore": "iptables",
    "firewall-offline-cmd": "firewalld",
}


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is missing: install the Debian package {PACKAGES[name]}")
    return path


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def test_nftables_scripts_load_in_check_mode(tmp_path: Path) -> None:
    nft = tool("nft")
    paths = write(tmp_path, emitted("nftables"))
    assert len(paths) == 2
    for path in paths:
        result = run(nft, "-c", "-f", str(path))
        assert result.returncode == 0, f"{path.name}: {result.stderr}"


def test_nft_check_rejects_a_broken_script(tmp_path: Path) -> None:
    nft = tool("nft")
    (path,) = write(tmp_path, emitted("nftables")[:1])
    path.write_text(path.read_text().replace("flags interval;", "flags bogus;"))
    assert run(nft, "-c", "-f", str(path)).returncode != 0


def test_iptables_files_pass_restore_test(tmp_path: Path) -> None:
    paths = write(tmp_path, emitted("iptables"))
    assert {p.suffix for p in paths} == {".rules", ".rules6"}
    for path in paths:
        restore = tool("ip6tables-restore" if path.suffix == ".rules6" else "iptables-restore")
        result = run(restore, "--test", str(path))
        assert result.returncode == 0, f"{path.name}: {result.stderr}"


def test_iptables_restore_test_rejects_16_ports_in_one_multiport(tmp_path: Path) -> None:
    restore = tool("iptables-restore")
    ports = ",".join(str(p) for p in range(7000, 7016))
    text = f"*filter\n-A FORWARD -p tcp -m multiport --dports {ports} -j ACCEPT\nCOMMIT\n"
    (tmp_path / "bad.rules").write_text(text)
    assert run(restore, "--test", str(tmp_path / "bad.rules")).returncode != 0


def firewalld_check(directory: Path) -> subprocess.CompletedProcess[str]:
    offline = tool("firewall-offline-cmd")
    stock = Path("/etc/firewalld/firewalld.conf")
    if stock.is_file():
        shutil.copy(stock, directory / "firewalld.conf")
    return run(offline, "--system-config", str(directory), "--check-config")


def test_firewalld_xml_passes_offline_check(tmp_path: Path) -> None:
    artifacts = [a for a in emitted("firewalld") if a.name.endswith(".xml")]
    assert {a.name.split("/")[0] for a in artifacts} == {"policies", "zones", "services", "ipsets"}
    write(tmp_path, artifacts)
    result = firewalld_check(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_firewalld_offline_check_rejects_a_bad_policy(tmp_path: Path) -> None:
    policy = next(a for a in emitted("firewalld") if a.name.startswith("policies/"))
    (path,) = write(tmp_path, [policy])
    path.write_text(path.read_text().replace('target="DROP"', 'target="BOGUS"'))
    assert firewalld_check(tmp_path).returncode != 0


def test_firewall_cmd_scripts_parse_as_shell(tmp_path: Path) -> None:
    scripts = [p for p in write(tmp_path, emitted("firewalld")) if p.suffix == ".sh"]
    assert len(scripts) == 2
    for script in scripts:
        result = run("sh", "-n", str(script))
        assert result.returncode == 0, result.stderr
