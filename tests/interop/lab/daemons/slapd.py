"""OpenLDAP slapd as the lab's directory server (the LDAP and Global Catalog ports).

One slapd process serves every listener it is given, with one certificate for all its TLS
listeners. slapd has no switch to refuse StartTLS on a plain listener while serving LDAPS, so
`starttls=False` runs two processes: the plain ports from one without any TLS configuration
(StartTLS is then an unsupported extended operation), the LDAPS ports from a second one.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.interop.lab.base import Daemon, LabContext
from tests.interop.lab.lab import LoggedProcess
from tests.interop.lab.pki import CertChoice, cert_pair

SLAPD = "/usr/sbin/slapd"
SLAPADD = "/usr/sbin/slapadd"
SCHEMA_DIR = Path("/etc/ldap/schema")
MODULE_DIR = Path("/usr/lib/ldap")

SUFFIX = "dc=lab,dc=test"
ROOT_DN = f"cn=admin,{SUFFIX}"
ROOT_PASSWORD = "lab-secret"

_SEED = f"""\
dn: {SUFFIX}
objectClass: dcObject
objectClass: organization
dc: lab
o: portcall lab

dn: ou=people,{SUFFIX}
objectClass: organizationalUnit
ou: people

dn: cn=postmaster,ou=people,{SUFFIX}
objectClass: person
cn: postmaster
sn: postmaster
"""


@dataclass(frozen=True)
class _Instance:
    """One slapd process: its own directory, configuration, database and listeners."""

    directory: Path
    urls: tuple[str, ...]
    ports: tuple[int, ...]
    tls: bool


class Slapd(Daemon):
    def __init__(
        self,
        plain_ports: tuple[int, ...] = (389, 3268),
        ldaps_ports: tuple[int, ...] = (636, 3269),
        cert: CertChoice = "good",
        starttls: bool = True,
        name: str = "slapd",
    ) -> None:
        self.name = name
        self.plain_ports = plain_ports
        self.ldaps_ports = ldaps_ports
        self.ports = plain_ports + ldaps_ports
        self.cert = cert
        self.starttls = starttls
        self._processes: list[LoggedProcess] = []

    def start(self, lab: LabContext) -> None:
        base = lab.workdir / self.name
        for instance in self._instances(base, lab.listen_address):
            instance.directory.mkdir(parents=True)
            config = instance.directory / "slapd.conf"
            config.write_text(self._config(lab, instance))
            _seed(config, instance.directory)
            argv = [SLAPD, "-f", str(config), "-h", " ".join(instance.urls), "-d", "stats"]
            process = LoggedProcess(lab, argv, instance.directory / "slapd.log")
            self._processes.append(process)
            try:
                process.wait_ready(lab, instance.ports, timeout=10.0)
            except RuntimeError as error:
                raise RuntimeError(f"slapd ({self.name}) did not start: {error}") from None

    def stop(self) -> None:
        while self._processes:
            self._processes.pop().stop()

    def _instances(self, base: Path, address: str) -> list[_Instance]:
        plain = tuple(f"ldap://{address}:{port}/" for port in self.plain_ports)
        ldaps = tuple(f"ldaps://{address}:{port}/" for port in self.ldaps_ports)
        if self.starttls:
            return [_Instance(base, plain + ldaps, self.ports, tls=True)]
        instances = []
        if plain:
            instances.append(_Instance(base / "plain", plain, self.plain_ports, tls=False))
        if ldaps:
            instances.append(_Instance(base / "ldaps", ldaps, self.ldaps_ports, tls=True))
        return instances

    def _config(self, lab: LabContext, instance: _Instance) -> str:
        directory = instance.directory
        lines = [
            f"include {SCHEMA_DIR / 'core.schema'}",
            f"pidfile {directory / 'slapd.pid'}",
            f"argsfile {directory / 'slapd.args'}",
            f"modulepath {MODULE_DIR}",
            "moduleload back_mdb",
            # Worker threads for a lab that may stand in for hundreds of servers at once
            # (tests/interop/test_scale_lab.py); slapd's default is 16.
            "threads 64",
        ]
        if instance.tls:
            cert, key = cert_pair(lab.pki, self.cert)
            lines += [
                f"TLSCACertificateFile {lab.pki.ca_cert}",
                f"TLSCertificateFile {cert}",
                f"TLSCertificateKeyFile {key}",
            ]
        lines += [
            # RFC 4512 section 5.1: clients read the root DSE before binding, as AD allows.
            'access to dn.base="" by * read',
            'access to dn.base="cn=Subschema" by * read',
            "database mdb",
            "maxsize 16777216",
            f'suffix "{SUFFIX}"',
            f'rootdn "{ROOT_DN}"',
            f"rootpw {ROOT_PASSWORD}",
            f"directory {directory / 'db'}",
            "access to * by users read by anonymous auth",
        ]
        return "\n".join(lines) + "\n"


def _seed(config: Path, directory: Path) -> None:
    (directory / "db").mkdir()
    seed = directory / "seed.ldif"
    seed.write_text(_SEED)
    # slapadd only writes files, so it runs outside the namespace.
    result = subprocess.run(
        [SLAPADD, "-q", "-f", str(config), "-l", str(seed)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"slapadd failed: {result.stderr.strip()}")
