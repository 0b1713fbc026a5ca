"""`portcall listen --catalog windows-dc` checked by clients that are not portcall's: BIND's dig
over UDP and TCP, MIT kinit over UDP and TCP, OpenLDAP's ldapsearch, Samba's smbclient, and
Samba's Python bindings for the endpoint mapper, the directory's RPC port and the CLDAP ping.

The listener runs as a user runs it, a subprocess with --port-offset on loopback. Samba's LDAP
ping goes to port 389 whatever it is told, so that one runs in a network namespace of its own
(`unshare --net`), where the listener holds the real ports and nothing else is reachable.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import pytest

from portcall.catalog import load_catalog
from tests.responders.running import needs

pytestmark = pytest.mark.interop

DOMAIN: Final = "portcall.test"
REALM: Final = "PORTCALL.TEST"
HOST: Final = "dc1.portcall.test"
SAMBA_PYTHON: Final = "/usr/bin/python3"
TIMEOUT: Final = 30
#: The directory's RPC port the listener is told to name (before the offset).
RPC_PORT: Final = 49152
CATALOG_PORTS: Final = sorted({entry.port for entry in load_catalog("windows-dc").entries})

#: The endpoint mapper's entries as Samba's epmapper binding reads them: annotation, then the
#: TCP port and IP address of each tower.
EPM_LOOKUP: Final = """
import sys
from samba import credentials, param
from samba.dcerpc import epmapper, misc

lp = param.LoadParm()
lp.load(sys.argv[2])
creds = credentials.Credentials()
creds.guess(lp)
creds.set_anonymous()
conn = epmapper.epmapper(f"ncacn_ip_tcp:127.0.0.1[{sys.argv[1]}]", lp, creds)
handle, entries, result = conn.epm_Lookup(0, None, None, 0, misc.policy_handle(), 10)
print("result", result)
for entry in entries:
    floors = entry.tower.tower.floors
    port = next(f.rhs.port for f in floors if isinstance(f.rhs, epmapper.epm_rhs_tcp))
    address = next(f.rhs.ipaddr for f in floors if isinstance(f.rhs, epmapper.epm_rhs_ip))
    print(f"entry {entry.annotation!r} {port} {address}")
"""

#: A bind to the directory replication interface on the RPC port, then DsBind.
DRSUAPI_BIND: Final = """
import sys
from samba import credentials, param
from samba.dcerpc import drsuapi, misc

lp = param.LoadParm()
lp.load(sys.argv[2])
creds = credentials.Credentials()
creds.guess(lp)
creds.set_anonymous()
conn = drsuapi.drsuapi(f"ncacn_ip_tcp:127.0.0.1[{sys.argv[1]}]", lp, creds)
print("bound drsuapi")
info = drsuapi.DsBindInfoCtr()
info.length = 28
info.info = drsuapi.DsBindInfo28()
try:
    conn.DsBind(misc.GUID(drsuapi.DRSUAPI_DS_BIND_GUID), info)
except Exception as error:
    print("DsBind refused:", error.args[0], error.args[1])
"""

#: Samba's DC locator: the LDAP ping (CLDAP, UDP 389) to one address, as `net ads` does.
FINDDC: Final = """
import sys
from samba import credentials, net, param
from samba.dcerpc import nbt

lp = param.LoadParm()
lp.load(sys.argv[1])
creds = credentials.Credentials()
creds.guess(lp)
creds.set_anonymous()
flags = nbt.NBT_SERVER_LDAP | nbt.NBT_SERVER_DS | nbt.NBT_SERVER_KDC
reply = net.Net(creds, lp).finddc(domain=sys.argv[2], address="127.0.0.1", flags=flags)
for name in ("command", "pdc_dns_name", "dns_domain", "forest", "pdc_name", "domain_name",
             "server_site", "server_type"):
    print(name, getattr(reply, name))
"""


def free_offset() -> int:
    """An offset at which every catalog port and the RPC port are free on TCP and UDP."""
    for _ in range(200):
        offset = random.randrange(10000, 65535 - RPC_PORT)
        if all(_free(port + offset) for port in [*CATALOG_PORTS, RPC_PORT]):
            return offset
    raise AssertionError("no free port offset found")


def _free(port: int) -> bool:
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        with socket.socket(socket.AF_INET, kind) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


class Listening:
    """`portcall listen` in a subprocess; its lines are read as they come."""

    def __init__(self, argv: list[str], env: dict[str, str], offset: int = 0) -> None:
        self.offset = offset
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )
        self._ready = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))
            if line.startswith("Ready:"):
                self._ready.set()
        self._ready.set()

    def wait_ready(self) -> None:
        self._ready.wait(TIMEOUT)
        if self.process.poll() is not None or not any(x.startswith("Ready:") for x in self.lines):
            err = self.process.stderr.read() if self.process.stderr else ""
            raise AssertionError(f"listen did not come up: {self.lines} {err}")

    def port(self, port: int) -> int:
        return port + self.offset

    def logged(self, text: str) -> str:
        """The first line holding `text`, once the listener printed it."""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            found = [line for line in list(self.lines) if text in line]
            if found:
                return found[0]
            time.sleep(0.05)
        raise AssertionError(f"no line with {text!r}:\n" + "\n".join(self.lines))

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(TIMEOUT)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
            self._reader.join(TIMEOUT)


def listen_argv(cert_dir: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "portcall",
        "listen",
        "--catalog",
        "windows-dc",
        "--domain",
        DOMAIN,
        "--hostname",
        HOST,
        "--cert-dir",
        str(cert_dir),
        *extra,
    ]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("listen-dc")


@pytest.fixture(scope="module")
def env(workdir: Path) -> dict[str, str]:
    return {**os.environ, "XDG_DATA_HOME": str(workdir / "xdg"), "HOME": str(workdir)}


@pytest.fixture(scope="module")
def smb_conf(workdir: Path) -> Path:
    """A configuration of their own for Samba's clients: their lock and cache files stay in
    the test's directory, and nothing is looked up by broadcast."""
    lines = ["disable netbios = yes", "name resolve order = host", "interfaces = lo"]
    lines += ["bind interfaces only = yes", f"log file = {workdir / 'samba.log'}"]
    for option in ("lock directory", "state directory", "cache directory", "private dir"):
        directory = workdir / option.split()[0]
        directory.mkdir(exist_ok=True)
        lines.append(f"{option} = {directory}")
    path = workdir / "smb.conf"
    path.write_text("[global]\n" + "".join(f"  {line}\n" for line in lines))
    return path


@pytest.fixture(scope="module")
def listening(workdir: Path, env: dict[str, str]) -> Iterator[Listening]:
    offset = free_offset()
    argv = listen_argv(workdir / "lab", "--port-offset", str(offset))
    running = Listening([*argv, "--rpc-port", str(RPC_PORT)], env, offset)
    try:
        running.wait_ready()
        yield running
    finally:
        running.stop()
    assert running.process.returncode == 0, running.lines
    assert running.lines[-1].startswith("Stopped: ")


def run(argv: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv,
        capture_output=True,
        text=True,
        env=env,
        timeout=TIMEOUT,
        check=False,
        stdin=subprocess.DEVNULL,
    )


# -- the listening lines -----------------------------------------------------------------------


def test_listen_prints_udp_rows_apart_from_tcp_ones(listening: Listening) -> None:
    text = "\n".join(listening.lines)
    assert f"Domain controller of {DOMAIN} (realm {REALM})" in text
    for port, key in ((53, "dns"), (88, "kerberos"), (389, "cldap")):
        assert f"{port}/udp  {port + listening.offset:>5}/udp  {key} " in text
    assert f"{53 + listening.offset:>9}  dns-tcp" in text
    assert f"{RPC_PORT + listening.offset:>9}  rpc " in text


# -- DNS: dig ------------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_dig_reads_the_soa_of_the_domain(listening: Listening, transport: str) -> None:
    port = listening.port(53)
    argv = [needs("dig"), "@127.0.0.1", "-p", str(port), "SOA", DOMAIN, "+norec", "+time=5"]
    argv += ["+tries=1", *(["+tcp"] if transport == "tcp" else [])]
    done = run(argv)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "status: NOERROR" in done.stdout
    assert "flags: qr aa;" in done.stdout
    soa = f"{DOMAIN}.\t\t600\tIN\tSOA\t{HOST}. hostmaster.{DOMAIN}. 1 900 600 86400 3600"
    assert soa in done.stdout, done.stdout
    assert f"SERVER: 127.0.0.1#{port}(127.0.0.1) ({transport.upper()})" in done.stdout
    key = "dns" if transport == "udp" else "dns-tcp"
    where = "53/udp" if transport == "udp" else "53"
    line = listening.logged(f" -> {key} {where} (on {port}): dns; heard: QUERY {DOMAIN} SOA")
    assert "ended: answered (" in line or transport == "tcp"


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_dig_finds_the_dc_through_the_locator_srv(listening: Listening, transport: str) -> None:
    name = f"_ldap._tcp.dc._msdcs.{DOMAIN}"
    argv = [needs("dig"), "@127.0.0.1", "-p", str(listening.port(53)), "SRV", name, "+norec"]
    argv += ["+time=5", "+tries=1", *(["+tcp"] if transport == "tcp" else [])]
    done = run(argv)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{name}. 600\tIN SRV\t0 100 389 {HOST}." in done.stdout, done.stdout
    assert f"{HOST}.\t600\tIN\tA\t127.0.0.1" in done.stdout, done.stdout


# -- Kerberos: kinit -----------------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_kinit_hears_that_the_client_is_unknown(
    listening: Listening, workdir: Path, transport: str
) -> None:
    # udp_preference_limit = 1: every request larger than one byte goes over TCP.
    extra = "  udp_preference_limit = 1\n" if transport == "tcp" else ""
    config = workdir / f"krb5-{transport}.conf"
    config.write_text(
        f"[libdefaults]\n  default_realm = {REALM}\n  dns_lookup_kdc = false\n"
        f"  dns_lookup_realm = false\n{extra}"
        f"[realms]\n  {REALM} = {{\n    kdc = 127.0.0.1:{listening.port(88)}\n  }}\n"
    )
    env = {**os.environ, "KRB5_CONFIG": str(config), "KRB5CCNAME": f"FILE:{workdir}/cc"}
    principal = f"nobody-{transport}@{REALM}"
    done = run([needs("kinit"), principal], env)
    assert done.returncode != 0
    assert f"Client '{principal}' not found in Kerberos database" in done.stderr, done.stderr
    key, where = ("kerberos", "88/udp") if transport == "udp" else ("kerberos-tcp", "88")
    listening.logged(
        f" -> {key} {where} (on {listening.port(88)}): kerberos; heard: AS-REQ {principal}"
    )


# -- LDAP: ldapsearch ----------------------------------------------------------------------------


def test_ldapsearch_reads_the_rootdse_of_the_domain(listening: Listening, workdir: Path) -> None:
    url = f"ldap://127.0.0.1:{listening.port(389)}"
    argv = [needs("ldapsearch"), "-x", "-H", url, "-b", "", "-s", "base", "-o", "nettimeout=10"]
    done = run(argv, {**os.environ, "HOME": str(workdir)})
    assert done.returncode == 0, done.stderr
    assert "defaultNamingContext: DC=portcall,DC=test" in done.stdout, done.stdout
    assert f"dnsHostName: {HOST}" in done.stdout
    listening.logged(f" -> ldap 389 (on {listening.port(389)}): ldap; heard: BIND anonymous")


# -- SMB: smbclient ------------------------------------------------------------------------------


def test_smbclient_negotiates_smb3(listening: Listening, smb_conf: Path) -> None:
    port = listening.port(445)
    argv = [needs("smbclient"), "-s", str(smb_conf), "-L", "//127.0.0.1", "-p", str(port), "-N"]
    done = run([*argv, "-d", "10"])
    output = done.stdout + done.stderr
    assert "negotiated dialect[SMB3_11] against server[127.0.0.1]" in output, output[-3000:]
    # The responder stops at the credentials: the listing fails, as it must without a DC.
    assert done.returncode != 0
    listening.logged(f" -> smb 445 (on {port}): smb; heard: NEGOTIATE | SESSION_SETUP NTLM")


# -- the endpoint mapper and the RPC port: Samba's bindings --------------------------------------


def test_samba_reads_the_endpoint_mappers_towers(
    listening: Listening, workdir: Path, smb_conf: Path
) -> None:
    script = workdir / "epm_lookup.py"
    script.write_text(EPM_LOOKUP)
    done = run([needs(SAMBA_PYTHON), str(script), str(listening.port(135)), str(smb_conf)])
    assert done.returncode == 0, done.stderr[-3000:]
    rpc = listening.port(RPC_PORT)
    assert done.stdout.splitlines() == [
        "result 0",
        f"entry 'MS NT Directory DRS Interface' {rpc} 127.0.0.1",
        f"entry '' {rpc} 127.0.0.1",
    ]


def test_samba_binds_the_directory_interface_on_the_rpc_port(
    listening: Listening, workdir: Path, smb_conf: Path
) -> None:
    script = workdir / "drsuapi_bind.py"
    script.write_text(DRSUAPI_BIND)
    rpc = listening.port(RPC_PORT)
    done = run([needs(SAMBA_PYTHON), str(script), str(rpc), str(smb_conf)])
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert lines[0] == "bound drsuapi"
    # NT_STATUS_ACCESS_DENIED, as Samba maps the RPC fault 5.
    assert lines[1].startswith(f"DsBind refused: {0xC0000022} "), lines
    listening.logged(f" -> rpc {RPC_PORT} (on {rpc}): dcerpc; heard: BIND drsuapi")


# -- CLDAP: Samba's DC locator, in a namespace of its own ----------------------------------------


def test_samba_finds_the_dc_with_the_ldap_ping(
    workdir: Path, env: dict[str, str], smb_conf: Path
) -> None:
    needs("unshare")
    script = workdir / "finddc.py"
    script.write_text(FINDDC)
    # In a fresh network namespace only loopback exists: the listener takes the real ports
    # (no offset), Samba's ping goes to 127.0.0.1:389 there, and nothing leaves.
    listen = " ".join(listen_argv(workdir / "lab", "--ports", "cldap,dns"))
    inner = (
        f"ip link set lo up && {listen} > {workdir}/ns.out 2>&1 & "
        "pid=$!; for i in $(seq 100); do grep -q '^Ready' "
        f"{workdir}/ns.out && break; sleep 0.1; done; "
        f"{SAMBA_PYTHON} {script} {smb_conf} {DOMAIN}; code=$?; "
        "kill -INT $pid; wait $pid; exit $code"
    )
    done = run([needs("unshare"), "--net", "sh", "-c", inner], env)
    listened = (workdir / "ns.out").read_text()
    assert done.returncode == 0, done.stdout + done.stderr + listened
    facts = dict(line.split(" ", 1) for line in done.stdout.splitlines())
    assert facts == {
        "command": "23",
        "pdc_dns_name": HOST,
        "dns_domain": DOMAIN,
        "forest": DOMAIN,
        "pdc_name": "DC1",
        "domain_name": "PORTCALL",
        "server_site": "Default-First-Site-Name",
        "server_type": "5117",
    }
    assert f"-> cldap 389/udp: cldap; heard: LDAP PING {DOMAIN}; ended: answered (" in listened
