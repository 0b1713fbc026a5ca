"""The whole catalog answering on ephemeral loopback ports, for tests whose clients block, and
what those tests share: finding a client's connection in the responder's log, the lab's host
name, and the LDAP facts a directory client reads back.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import ssl
import subprocess
import threading
import time
import warnings
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self

import pytest

from portcall.catalog import TlsMode, load_catalog
from portcall.responders.certs import LabCertificates
from portcall.responders.log import ConnectionRecord, format_record
from portcall.responders.server import Responder, ResponderConfig

with warnings.catch_warnings():
    # ldap3 reaches for names pyasn1 has deprecated; the warning is theirs, not ours. Imported
    # here first, the test modules that import it later get it without the noise.
    warnings.simplefilter("ignore", DeprecationWarning)
    import ldap3

LAB_HOST: Final = "mail.example.test"
CATALOG: Final = load_catalog()
#: Active Directory's capability OID in supportedCapabilities (MS-ADTS 3.1.1.3.4.3.1).
AD_CAPABILITY: Final = "1.2.840.113556.1.4.800"
#: The LDAP StartTLS extended operation (RFC 4511 section 4.14.1).
STARTTLS_OID: Final = "1.3.6.1.4.1.1466.20037"
#: The naming contexts of the lab's Windows Server 2003 forest: the domain, configuration and
#: schema, then the DNS application partitions that 2003 added (MS-ADTS 3.1.1.3.2).
AD_NAMING_CONTEXTS: Final = [
    "DC=example,DC=test",
    "CN=Configuration,DC=example,DC=test",
    "CN=Schema,CN=Configuration,DC=example,DC=test",
    "DC=DomainDnsZones,DC=example,DC=test",
    "DC=ForestDnsZones,DC=example,DC=test",
]
SUBPROCESS_TIMEOUT: Final = 20


class OnItsOwnLoop:
    """A responder on an event loop of its own, so that blocking clients can talk to it from
    the test's thread; everything stops when the `with` block ends."""

    def __init__(self, responder: Responder) -> None:
        self.responder = responder
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        try:
            asyncio.run_coroutine_threadsafe(self.responder.start(), self._loop).result(10)
        except BaseException:
            self._end_loop()
            raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            asyncio.run_coroutine_threadsafe(self.responder.stop(), self._loop).result(10)
        finally:
            self._end_loop()

    def _end_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def port(self, key: str) -> int:
        return self.responder.ports[key]


class Served(OnItsOwnLoop):
    """The whole catalog, answering on a loop of its own."""

    def __init__(self, contexts: dict[str, ssl.SSLContext], profile: str = "exchange2003") -> None:
        config = ResponderConfig(ephemeral=True, hostname=LAB_HOST, profile=profile)
        self.records: list[ConnectionRecord] = []
        # Called on the loop's thread; a list append is atomic, so no lock is needed.
        hook = self.records.append
        super().__init__(Responder(CATALOG.entries, config, tls=contexts, on_connection=hook))

    def record(self, key: str, peer_port: int | None = None) -> ConnectionRecord:
        """The logged connection to row `key` (from `peer_port` when known), once it ended."""
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            for record in list(self.records):
                if record.key == key and (
                    peer_port is None or record.peer.endswith(f":{peer_port}")
                ):
                    return record
            time.sleep(0.02)
        lines = "\n".join(format_record(record) for record in self.records)
        raise AssertionError(f"no connection to {key} logged; the log:\n{lines}")


def logged(served: Served, key: str, peer_port: int | None = None) -> ConnectionRecord:
    """The client's connection in the log, under `key` with the row's catalog port."""
    record = served.record(key, peer_port)
    entry = CATALOG.by_key(key)
    assert entry is not None
    line = format_record(record)
    where = f" -> {key} {entry.port} (on {served.port(key)}): {entry.protocol}"
    assert where in line, line
    if peer_port is not None:
        assert f"127.0.0.1:{peer_port} -> " in line, line
    return record


def local_port(sock: Any) -> int:
    return int(sock.getsockname()[1])


def assert_tls(record: ConnectionRecord) -> None:
    assert record.tls in ("TLSv1.2", "TLSv1.3"), format_record(record)


def needs(program: str) -> str:
    """The program's path; a missing one fails the test (tests/run.sh installs it)."""
    path = shutil.which(program)
    if path is None:
        pytest.fail(f"{program} is not installed; tests/run.sh installs it", pytrace=False)
    return path


def ldapsearch(
    served: Served, lab: LabCertificates, home: Path, mode: str
) -> subprocess.CompletedProcess[str]:
    """OpenLDAP's ldapsearch reading the rootDSE with its operational attributes; `mode` is
    "plain" or "starttls" (-ZZ) on the ldap row, or "ldaps" on the ldaps row."""
    key = "ldaps" if mode == "ldaps" else "ldap"
    # The URL's host is what libldap checks the certificate against: 127.0.0.1 is among the
    # lab certificate's subject alternative names (an iPAddress entry).
    argv = [needs("ldapsearch"), "-x", "-H", f"{key}://127.0.0.1:{served.port(key)}"]
    argv += ["-o", "nettimeout=10", "-l", "10", *(["-ZZ"] if mode == "starttls" else [])]
    argv += ["-s", "base", "-b", "", "(objectClass=*)", "+"]
    # A private HOME keeps a user's .ldaprc out; the CA and "demand" override ldap.conf.
    env = {**os.environ, "HOME": str(home), "LDAPTLS_CACERT": str(lab.ca_cert)}
    env["LDAPTLS_REQCERT"] = "demand"
    return subprocess.run(
        argv, capture_output=True, text=True, env=env, timeout=SUBPROCESS_TIMEOUT, check=False
    )


def ldap3_server(
    served: Served, lab: LabCertificates, key: str, get_info: str = ldap3.ALL
) -> ldap3.Server:
    """ldap3's view of row `key`, trusting the lab CA; by default it reads the rootDSE and the
    schema as it connects, with `get_info=ldap3.DSA` the rootDSE alone."""
    # ldap3 checks the name it dialled, 127.0.0.1: the lab certificate carries it as an
    # iPAddress subject alternative name.
    tls = ldap3.Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=str(lab.ca_cert), sni=LAB_HOST)
    entry = CATALOG.by_key(key)
    assert entry is not None
    return ldap3.Server(
        "127.0.0.1",
        port=served.port(key),
        use_ssl=entry.tls is TlsMode.IMPLICIT,
        tls=tls,
        get_info=get_info,
        connect_timeout=10,
    )


def check_ldapsearch_rootdse(done: subprocess.CompletedProcess[str], *, level: str) -> None:
    """ldapsearch read an Active Directory rootDSE of functional `level` ("0" for Windows 2000,
    "2" for Windows Server 2003; MS-ADTS 3.1.1.3.2) outside the Global Catalog."""
    assert done.returncode == 0, done.stderr
    for line in (
        "namingContexts: DC=example,DC=test",
        "defaultNamingContext: DC=example,DC=test",
        "supportedLDAPVersion: 3",
        f"supportedCapabilities: {AD_CAPABILITY}",
        "isGlobalCatalogReady: FALSE",
        f"domainControllerFunctionality: {level}",
        "result: 0 Success",
    ):
        assert line in done.stdout, done.stdout


def check_ad_rootdse(info: Any, *, global_catalog: bool = False) -> None:
    """What ldap3 read of the rootDSE (its `Server.info`) is a Windows Server 2003 DC's."""
    assert info is not None, "ldap3 read no rootDSE"
    assert info.naming_contexts == AD_NAMING_CONTEXTS
    assert sorted(int(version) for version in info.supported_ldap_versions) == [2, 3]
    assert "GSS-SPNEGO" in info.supported_sasl_mechanisms
    # ldap3 files supportedCapabilities under supported_features as (oid, kind, name, origin).
    assert AD_CAPABILITY in [feature[0] for feature in info.supported_features]
    assert info.other["dnsHostName"] == [LAB_HOST]
    assert info.other["isGlobalCatalogReady"] == ["TRUE" if global_catalog else "FALSE"]


def offers_starttls(info: Any) -> bool:
    """Whether the rootDSE ldap3 read lists the StartTLS extended operation."""
    return STARTTLS_OID in [extension[0] for extension in info.supported_extensions]
