"""Samba as an Active Directory domain controller, in a lab namespace of its own.

`samba-tool domain provision` writes the whole domain into the daemon's work directory (the
machine's own Samba configuration is never read nor written). `samba` then runs in the
foreground inside the lab's network namespace and, through `unshare`, in a private mount
namespace: the fixed paths its helpers use (`/run/samba`, where smbd looks for winbindd, and
`/var/log/samba`, where samba-dcerpcd and the rpcd_* helpers log) are the work directory's own
directories mounted over them, so nothing of one lab reaches another or the machine. Those
helpers outlive samba: the lab's namespace removal ends every PID left in the namespace.

A DC needs an address other peers reach: `join` puts a veth pair between the DC's lab and a
client lab, with the DC at `DC_ADDRESS` and the client at `CLIENT_ADDRESS`, and names the DC as
the resolver of both namespaces.
"""

from __future__ import annotations

import shlex
import subprocess
import time
from pathlib import Path

from tests.interop.lab.base import Daemon, LabContext
from tests.interop.lab.lab import NETNS_ETC, LoggedProcess

SAMBA = "/usr/sbin/samba"
SAMBA_TOOL = "/usr/bin/samba-tool"

REALM = "PORTCALL.TEST"
DNS_DOMAIN = "portcall.test"
NETBIOS_DOMAIN = "PORTCALL"
HOST_NAME = "dc1"
DC_FQDN = f"{HOST_NAME}.{DNS_DOMAIN}"
ADMIN_PASSWORD = "Lab-Secret-2026!"

DC_ADDRESS = "10.99.0.5"
CLIENT_ADDRESS = "10.99.0.10"
PREFIX_LENGTH = 24
#: Interface names of the veth pair (at most 15 characters), one in each namespace.
DC_LINK = "pcl-dc"
CLIENT_LINK = "pcl-client"

#: What the DC serves (facts measured on Debian 12's Samba 4.17, see the test module).
TCP_PORTS = (53, 88, 135, 389, 445, 636, 3268)
UDP_PORTS = (53, 88, 389)

#: Fixed paths Samba's helpers write to, replaced by the work directory's own.
_PRIVATE_MOUNTS = {"run": "/run/samba", "log": "/var/log/samba"}

# Runs inside the namespace: waits until each UDP port has a bound socket (a UDP service
# cannot be probed by connecting, and an empty probe would not be answered anyway).
_WAIT_UDP = """
import sys, time
deadline = time.monotonic() + float(sys.argv[1])
wanted = {int(port) for port in sys.argv[2:]}
while True:
    bound = set()
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        for line in open(table).read().splitlines()[1:]:
            bound.add(int(line.split()[1].rsplit(":", 1)[1], 16))
    if wanted <= bound:
        break
    if time.monotonic() > deadline:
        sys.exit(f"UDP ports {sorted(wanted - bound)} not bound")
    time.sleep(0.05)
"""


class SambaDC(Daemon):
    """One provisioned domain controller; `start` provisions, then runs `samba`."""

    name = "samba"
    ports = TCP_PORTS

    def __init__(self, address: str = DC_ADDRESS, interface: str = DC_LINK) -> None:
        self.address = address
        self.interface = interface
        self._process: LoggedProcess | None = None
        self._directory: Path | None = None
        #: Seconds spent provisioning and starting, for the record.
        self.provision_seconds = 0.0
        self.start_seconds = 0.0

    @property
    def directory(self) -> Path:
        """Where the domain lives: etc/smb.conf, private/ (sam.ldb, tls/ca.pem), logs."""
        if self._directory is None:
            raise RuntimeError("the domain controller has not been started")
        return self._directory

    @property
    def ca_cert(self) -> Path:
        """The CA Samba made on first start for its LDAPS/StartTLS certificate."""
        return self.directory / "private" / "tls" / "ca.pem"

    def start(self, lab: LabContext) -> None:
        self._directory = lab.workdir / self.name
        self._directory.mkdir(parents=True)
        began = time.monotonic()
        self._provision()
        self.provision_seconds = time.monotonic() - began
        for sub, target in _PRIVATE_MOUNTS.items():
            (self.directory / sub).mkdir()
            # Mount points only (the packages make them; a fresh /run may lack them): nothing
            # is written into them outside the private mount namespace.
            Path(target).mkdir(parents=True, exist_ok=True)
        began = time.monotonic()
        self._process = LoggedProcess(lab, self._argv(), self.directory / "samba.log")
        try:
            self._process.wait_ready(lab, self.ports, timeout=20.0)
            self._wait_udp(lab, timeout=10.0)
        except RuntimeError as error:
            raise RuntimeError(f"samba did not start: {error}{self._log_tail()}") from None
        self.start_seconds = time.monotonic() - began

    def stop(self) -> None:
        # Its helpers (samba-dcerpcd, rpcd_*) are not its children for long: the namespace
        # removal ends them.
        if self._process is not None:
            self._process.stop(timeout=10.0)

    def _provision(self) -> None:
        directory = self.directory
        # Runs outside the namespace: provisioning only writes files.
        argv = [
            SAMBA_TOOL,
            "domain",
            "provision",
            f"--targetdir={directory}",
            f"--realm={REALM}",
            f"--domain={NETBIOS_DOMAIN}",
            "--server-role=dc",
            "--dns-backend=SAMBA_INTERNAL",
            f"--host-name={HOST_NAME}",
            f"--host-ip={self.address}",
            f"--adminpass={ADMIN_PASSWORD}",
            f"--option=interfaces=lo {self.interface}",
            "--option=bind interfaces only=yes",
            f"--option=log file={directory / 'log.%m'}",
            f"--option=ntp signd socket directory={directory / 'ntp_signd'}",
            # Otherwise the machine's resolver: the DC answers for its own zone only, and
            # forwards nothing out of the lab.
            "--option=dns forwarder=",
        ]
        result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=120)
        if result.returncode != 0:
            tail = "\n".join((result.stdout + result.stderr).splitlines()[-25:])
            raise RuntimeError(f"samba-tool domain provision failed:\n{tail}")

    def _argv(self) -> list[str]:
        directory = self.directory
        mounts = " && ".join(
            f"mount --bind {shlex.quote(str(directory / sub))} {shlex.quote(target)}"
            for sub, target in _PRIVATE_MOUNTS.items()
        )
        samba = shlex.join(
            [
                SAMBA,
                "-s",
                str(directory / "etc" / "smb.conf"),
                "--foreground",
                "--no-process-group",
                "--debug-stdout",
            ]
        )
        script = f"{mounts} && exec {samba}"
        return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script]

    def _wait_udp(self, lab: LabContext, timeout: float) -> None:
        argv = ["python3", "-c", _WAIT_UDP, str(timeout), *map(str, UDP_PORTS)]
        result = subprocess.run(
            lab.ns_cmd(argv), capture_output=True, text=True, check=False, timeout=timeout + 10
        )
        if result.returncode != 0:
            raise RuntimeError(result.stderr.strip())

    def _log_tail(self, lines: int = 25) -> str:
        log = self.directory / "log.samba"
        try:
            text = log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n" + "\n".join(text.splitlines()[-lines:])


def join(dc: LabContext, client: LabContext) -> None:
    """Link the DC's namespace and the client's with a veth pair; both resolve through the DC."""
    pair = f"link add {DC_LINK} netns {dc.netns} type veth peer name {CLIENT_LINK}"
    _ip([*pair.split(), "netns", client.netns])
    for lab, link, address in ((dc, DC_LINK, DC_ADDRESS), (client, CLIENT_LINK, CLIENT_ADDRESS)):
        _ip(["-n", lab.netns, "addr", "add", f"{address}/{PREFIX_LENGTH}", "dev", link])
        _ip(["-n", lab.netns, "link", "set", link, "up"])
        # `ip netns exec` mounts these over /etc/hosts and /etc/resolv.conf.
        etc = NETNS_ETC / lab.netns
        etc.mkdir(parents=True, exist_ok=True)
        (etc / "resolv.conf").write_text(f"search {DNS_DOMAIN}\nnameserver {DC_ADDRESS}\n")
        (etc / "hosts").write_text(
            f"127.0.0.1 localhost\n::1 localhost\n{DC_ADDRESS} {DC_FQDN} {HOST_NAME}\n"
        )


def _ip(argv: list[str]) -> None:
    result = subprocess.run(["ip", *argv], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"ip {' '.join(argv)} failed: {result.stderr.strip()}")
