"""The lab itself, proven with independent clients (OpenLDAP's ldapsearch, openssl s_client,
Python's own http.client) run inside the lab's namespace."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.interop.lab.base import Daemon
from tests.interop.lab.daemons.nginx import EXCHANGE_PAGE, ROOT_PAGE, Nginx
from tests.interop.lab.daemons.slapd import ROOT_DN, ROOT_PASSWORD, SUFFIX, Slapd
from tests.interop.lab.lab import NETNS_ETC, Lab

pytestmark = pytest.mark.interop

HOST = "mail.lab.test"
LEGACY_PORT = 4443

# nft's parser wants a line end (not ";") after "reject with tcp reset".
NFT_DROP_80_RESET_443 = """
table inet lab {
    chain input {
        type filter hook input priority 0;
        tcp dport 80 drop
        tcp dport 443 reject with tcp reset
    }
}
"""

# Runs inside the namespace: one HTTP(S) GET by name, verified against the given CA file.
_HTTP_GET = """
import http.client, ssl, sys
scheme, host, port, path, ca = sys.argv[1:6]
if scheme == "https":
    context = ssl.create_default_context(cafile=ca)
    conn = http.client.HTTPSConnection(host, int(port), context=context, timeout=5)
else:
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
try:
    conn.request("GET", path)
    reply = conn.getresponse()
    print(reply.status, reply.read().decode().strip())
except Exception as error:
    print(type(error).__name__, error)
    sys.exit(1)
"""

# Runs inside the namespace: how a TCP connect to a port ends.
_CONNECT = """
import socket, sys
try:
    socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=float(sys.argv[2])).close()
    print("connected")
except TimeoutError:
    print("timeout")
except ConnectionRefusedError:
    print("refused")
"""


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab() as lab:
        legacy = Nginx(
            name="nginx-legacy", http_ports=(), tls_ports=(LEGACY_PORT,), tls_protocols="TLSv1"
        )
        lab.start(Slapd(), Nginx(), legacy)
        yield lab


@pytest.fixture(scope="module")
def odd_lab() -> Iterator[Lab]:
    """Daemons with the wrong certificates, and a slapd that refuses StartTLS."""
    with Lab() as lab:
        lab.start(Slapd(cert="expired", starttls=False), Nginx(cert="wrong-name"))
        yield lab


def ldapsearch(
    lab: Lab, url: str, *options: str, ca: Path | None = None, base: str = ""
) -> subprocess.CompletedProcess[str]:
    env = {"LDAPTLS_CACERT": str(ca or lab.pki.ca_cert), "LDAPTLS_REQCERT": "demand"}
    scope = ["-s", "base"] if base == "" else []
    argv = ["ldapsearch", "-x", "-LLL", "-o", "nettimeout=5", "-H", url, *options]
    return lab.run([*argv, *scope, "-b", base, "(objectClass=*)", "namingContexts", "cn"], env=env)


def s_client(lab: Lab, port: int, *options: str) -> subprocess.CompletedProcess[str]:
    argv = ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-CAfile"]
    return lab.run([*argv, str(lab.pki.ca_cert), *options], input="", timeout=10)


def http_get(lab: Lab, scheme: str, port: int, path: str) -> subprocess.CompletedProcess[str]:
    argv = ["python3", "-c", _HTTP_GET, scheme, HOST, str(port), path, str(lab.pki.ca_cert)]
    return lab.run(argv)


def connect(lab: Lab, port: int, timeout: float = 1.0) -> str:
    return lab.run(["python3", "-c", _CONNECT, str(port), str(timeout)]).stdout.strip()


# -- slapd -------------------------------------------------------------------------------


@pytest.mark.parametrize("port", [389, 3268])
def test_anonymous_root_dse_on_plain_ports(lab: Lab, port: int) -> None:
    result = ldapsearch(lab, f"ldap://127.0.0.1:{port}")
    assert result.returncode == 0, result.stderr
    assert f"namingContexts: {SUFFIX}" in result.stdout


@pytest.mark.parametrize("port", [389, 3268])
def test_starttls_verifies_against_the_lab_ca(lab: Lab, port: int) -> None:
    result = ldapsearch(lab, f"ldap://{HOST}:{port}", "-ZZ")
    assert result.returncode == 0, result.stderr
    assert f"namingContexts: {SUFFIX}" in result.stdout


def test_starttls_fails_against_another_trust_anchor(lab: Lab) -> None:
    # A certificate that is not the lab CA as the only trust anchor: the chain cannot verify,
    # so the success above really was a verification.
    result = ldapsearch(lab, f"ldap://{HOST}:389", "-ZZ", ca=lab.pki.wrong_name_cert)
    assert result.returncode != 0
    assert "ldap_start_tls: Connect error" in result.stderr


@pytest.mark.parametrize("port", [636, 3269])
def test_ldaps_ports(lab: Lab, port: int) -> None:
    result = ldapsearch(lab, f"ldaps://{HOST}:{port}")
    assert result.returncode == 0, result.stderr
    assert f"namingContexts: {SUFFIX}" in result.stdout


def test_directory_is_seeded_and_needs_a_bind(lab: Lab) -> None:
    bound = ldapsearch(lab, "ldap://127.0.0.1:389", "-D", ROOT_DN, "-w", ROOT_PASSWORD, base=SUFFIX)
    assert bound.returncode == 0, bound.stderr
    assert "cn: postmaster" in bound.stdout
    anonymous = ldapsearch(lab, "ldap://127.0.0.1:389", base=SUFFIX)
    assert anonymous.returncode == 50  # insufficientAccessRights (RFC 4511 appendix A)
    assert "postmaster" not in anonymous.stdout


def test_starttls_false_refuses_starttls_but_serves_ldaps(odd_lab: Lab) -> None:
    plain = ldapsearch(odd_lab, "ldap://127.0.0.1:389")
    assert f"namingContexts: {SUFFIX}" in plain.stdout
    starttls = ldapsearch(odd_lab, "ldap://127.0.0.1:389", "-ZZ")
    assert starttls.returncode != 0
    assert "unsupported extended operation" in starttls.stderr
    ldaps = s_client(odd_lab, 636)
    assert "CN = mail.lab.test" in ldaps.stdout
    assert "Verify return code: 10 (certificate has expired)" in ldaps.stdout


# -- nginx -------------------------------------------------------------------------------


def test_https_presents_the_lab_certificate(lab: Lab) -> None:
    result = s_client(lab, 443, "-servername", HOST, "-verify_hostname", HOST)
    assert result.returncode == 0, result.stderr
    assert "subject=O = portcall lab, CN = mail.lab.test" in result.stdout
    assert "issuer=O = portcall lab, CN = portcall lab CA" in result.stdout
    assert "Verify return code: 0 (ok)" in result.stdout


def test_https_offers_tls13(lab: Lab) -> None:
    result = s_client(lab, 443, "-tls1_3")
    # The session block ("Protocol  : ...") waits for a TLS 1.3 ticket; this line does not.
    assert "New, TLSv1.3, Cipher is" in result.stdout


def test_http_and_https_pages(lab: Lab) -> None:
    assert http_get(lab, "http", 80, "/").stdout.strip() == f"200 {ROOT_PAGE}"
    assert http_get(lab, "https", 443, "/exchange/").stdout.strip() == f"200 {EXCHANGE_PAGE}"


def test_legacy_tls_server_refuses_a_modern_client(lab: Lab) -> None:
    modern = http_get(lab, "https", LEGACY_PORT, "/")
    assert modern.returncode == 1
    assert modern.stdout.startswith("SSLError")
    legacy = s_client(lab, LEGACY_PORT, "-tls1", "-cipher", "DEFAULT:@SECLEVEL=0")
    assert "Protocol  : TLSv1\n" in legacy.stdout
    assert "Verify return code: 0 (ok)" in legacy.stdout


def test_wrong_name_certificate(odd_lab: Lab) -> None:
    result = s_client(odd_lab, 443, "-verify_hostname", HOST)
    assert "CN = other.lab.test" in result.stdout
    assert "Verify return code: 62 (hostname mismatch)" in result.stdout


def test_extra_plain_http_port() -> None:
    with Lab() as lab:
        lab.start(Nginx(http_ports=(), tls_ports=(), plain_http_ports=(563,)))
        assert http_get(lab, "http", 563, "/").stdout.strip() == f"200 {ROOT_PAGE}"
        assert connect(lab, 80) == "refused"


# -- the lab -----------------------------------------------------------------------------


def test_nft_drop_times_out_and_reject_refuses() -> None:
    with Lab() as lab:
        lab.start(Nginx())
        assert connect(lab, 80) == "connected"
        lab.nft(NFT_DROP_80_RESET_443)
        assert connect(lab, 80) == "timeout"
        assert connect(lab, 443) == "refused"


def test_lab_exit_removes_everything() -> None:
    with Lab() as lab:
        daemon = Nginx()
        lab.start(daemon)
        netns, workdir = lab.netns, lab.workdir
        assert netns in _netns_names()
        pid = _pid(daemon)
    assert netns not in _netns_names()
    assert not (NETNS_ETC / netns).exists()
    assert not workdir.exists()
    assert not Path(f"/proc/{pid}").exists()


def test_failed_start_stops_what_was_started() -> None:
    with Lab() as lab:
        first = Nginx()
        with pytest.raises(RuntimeError, match="Address already in use"):
            lab.start(first, Nginx(name="same-ports"))
        assert lab.daemons == []
        assert not Path(f"/proc/{_pid(first)}").exists()
        assert connect(lab, 80) == "refused"


def _netns_names() -> list[str]:
    listing = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    return [line.split()[0] for line in listing.stdout.splitlines() if line.strip()]


def _pid(daemon: Daemon) -> int:
    process = getattr(daemon, "_process", None)
    assert process is not None
    return int(process.process.pid)
