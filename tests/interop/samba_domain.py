"""The Samba AD DC of the interop lab, shared by its test modules: provisioned once per test
session (the `domain` fixture in tests/interop/conftest.py) in a network namespace, with a
client namespace beside it, and torn down without a trace."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.interop.lab.daemons.samba import (
    DC_ADDRESS,
    DC_FQDN,
    DNS_DOMAIN,
    NETBIOS_DOMAIN,
    REALM,
    SambaDC,
    join,
)
from tests.interop.lab.lab import Lab

SITE = "Default-First-Site-Name"
SRV_NAME = f"_ldap._tcp.dc._msdcs.{DNS_DOMAIN}"
#: Programs the fixture and these tests run, with the Debian packages that hold them.
TOOLS = {
    "samba": "samba-ad-dc",
    "samba-tool": "samba-ad-provision",
    "unshare": "util-linux",
    "dig": "dnsutils",
    "kinit": "krb5-user",
    "ldapsearch": "ldap-utils",
    "smbclient": "smbclient",
    "rpcclient": "smbclient",
}
#: Directories of the machine that Samba's helpers would write to without the private mounts.
MACHINE_DIRS = (Path("/run/samba"), Path("/var/log/samba"))
DYNAMIC_RPC = range(49152, 65536)


@dataclass(frozen=True)
class Domain:
    dc: SambaDC
    dc_lab: Lab
    client: Lab
    #: Client-side configuration files (Kerberos over UDP, over TCP only, Samba clients).
    krb5_udp: Path
    krb5_tcp: Path
    smb_conf: Path

    def run(
        self, argv: list[str], env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run a client program in the client namespace."""
        return self.client.run(argv, env=env, timeout=30)


def provision() -> Iterator[Domain]:
    """One provisioned domain controller, torn down without a trace (the session fixture
    `domain` of tests/interop/conftest.py)."""
    missing = [f"{tool} ({package})" for tool, package in TOOLS.items() if not shutil.which(tool)]
    if missing:
        pytest.fail(
            f"programs for the Samba DC lab not found: {', '.join(missing)}; install with "
            "apt-get install --no-install-recommends samba samba-ad-dc samba-ad-provision "
            "winbind krb5-user dnsutils smbclient ldap-utils",
            pytrace=False,
        )
    machine_before = {path: _listing(path) for path in MACHINE_DIRS}
    with Lab(hostname=DC_FQDN) as dc_lab, Lab(hostname=f"client.{DNS_DOMAIN}") as client:
        join(dc_lab, client)
        dc = SambaDC()
        try:
            dc_lab.start(dc)
        except RuntimeError as error:
            pytest.fail(f"the Samba domain controller did not come up: {error}", pytrace=False)
        print(
            f"samba: provisioned in {dc.provision_seconds:.1f} s, up {dc.start_seconds:.1f} s later"
        )
        krb5_udp, krb5_tcp, smb_conf = _client_files(client.workdir)
        yield Domain(dc, dc_lab, client, krb5_udp, krb5_tcp, smb_conf)
        assert {path: _listing(path) for path in MACHINE_DIRS} == machine_before
        pids = _netns_pids(dc_lab.netns)
        netns = (dc_lab.netns, client.netns)
        workdirs = (dc_lab.workdir, client.workdir)
    # Teardown proves itself: no process, namespace or directory survives the lab.
    assert not [pid for pid in pids if _alive(pid)]
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert not [name for name in netns if re.search(rf"^{name}\b", listed, re.MULTILINE)]
    assert not [path for path in workdirs if path.exists()]


def _client_files(workdir: Path) -> tuple[Path, Path, Path]:
    krb5 = (
        "[libdefaults]\n default_realm = {realm}\n dns_lookup_kdc = false\n{extra}"
        "[realms]\n {realm} = {{\n  kdc = {kdc}\n }}\n"
    )
    krb5_udp = workdir / "krb5-udp.conf"
    krb5_udp.write_text(krb5.format(realm=REALM, kdc=DC_ADDRESS, extra=""))
    krb5_tcp = workdir / "krb5-tcp.conf"
    # Any request larger than 1 byte goes over TCP.
    tcp_only = " udp_preference_limit = 1\n"
    krb5_tcp.write_text(krb5.format(realm=REALM, kdc=DC_ADDRESS, extra=tcp_only))
    # Samba's clients keep lock and cache files; without a configuration of their own they
    # would write them under the machine's /run/samba and /var/lib/samba.
    lines = [f"workgroup = {NETBIOS_DOMAIN}"]
    for option, sub in (
        ("lock directory", "lock"),
        ("state directory", "state"),
        ("cache directory", "cache"),
        ("private dir", "private"),
        ("ncalrpc dir", "ncalrpc"),
    ):
        (workdir / sub).mkdir()
        lines.append(f"{option} = {workdir / sub}")
    lines.append(f"log file = {workdir / 'samba-client.log'}")
    smb_conf = workdir / "smb.conf"
    smb_conf.write_text("[global]\n" + "".join(f"  {line}\n" for line in lines))
    return krb5_udp, krb5_tcp, smb_conf


def endpoints(domain: Domain) -> dict[str, set[int]]:
    """TCP ports per interface name, as the endpoint mapper on 135 lists them."""
    result = domain.run(
        [
            "rpcclient",
            "-s",
            str(domain.smb_conf),
            "-N",
            "-U%",
            f"ncacn_ip_tcp:{DC_ADDRESS}[135]",
            "-c",
            "epmlookup",
        ]
    )
    assert result.returncode == 0, result.stderr
    ports: dict[str, set[int]] = {}
    endpoint = re.compile(r"ncacn_ip_tcp:[\d.]+\[(\d+),abstract_syntax=[^\]]+\]: (\w+)")
    for match in endpoint.finditer(result.stdout):
        ports.setdefault(match.group(2), set()).add(int(match.group(1)))
    return ports


# helpers ---------------------------------------------------------------------------------


def _listing(path: Path) -> list[str]:
    with contextlib.suppress(FileNotFoundError):
        return sorted(os.listdir(path))
    return []


def _netns_pids(name: str) -> list[int]:
    result = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True)
    return [int(word) for word in result.stdout.split() if word.isdigit()]


def _alive(pid: int) -> bool:
    """Whether `pid` still runs: a zombie (exited, not yet reaped by PID 1) does not."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"
