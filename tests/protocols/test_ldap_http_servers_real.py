"""The LDAP, HTTP and routing server roles on real loopback sockets, read by clients that owe
nothing to this project: ldap3, OpenLDAP's ldapsearch, Python's http.client. Our own clients
talk to the same sockets last.

A small asyncio driver below serves the handshakes; it only moves bytes, so what the clients
see is what the server roles say.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import ipaddress
import os
import shutil
import socket
import ssl
import subprocess
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from portcall.protocols import server_for
from portcall.protocols.base import (
    CLOSE,
    Done,
    Handshake,
    ProbeOptions,
    Send,
    ServerHandshake,
    ServerOptions,
    ServiceInfo,
    StartTLS,
)
from portcall.protocols.http import HttpClient
from portcall.protocols.ldap import LdapClient
from portcall.protocols.routing import RoutingClient

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import ldap3

#: ldap3 checks names with a function Python has deprecated; the warning is theirs.
pytestmark = pytest.mark.filterwarnings("ignore:ssl.match_hostname:DeprecationWarning")

HOST = "dc1.example.test"
LOOPBACK = "127.0.0.1"
TIMEOUT = 10.0
AD_OID = "1.2.840.113556.1.4.800"


# -- a throwaway certificate ---------------------------------------------------------------------


@dataclass(frozen=True)
class Certificate:
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, self.key)
        return context

    def client_context(self) -> ssl.SSLContext:
        # Verified for real: the certificate is its own CA and names 127.0.0.1.
        return ssl.create_default_context(cafile=str(self.cert))


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)])
    now = datetime.now(UTC)
    names = [x509.DNSName(HOST), x509.IPAddress(ipaddress.ip_address(LOOPBACK))]
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory = tmp_path_factory.mktemp("tls")
    paths = Certificate(directory / "host.crt", directory / "host.key")
    paths.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


# -- the driver ----------------------------------------------------------------------------------


class Responders:
    """Server handshakes on loopback ports, served by an event loop of their own thread so
    that blocking clients (ldap3, subprocesses, http.client) can run in the test itself."""

    def __init__(self, certificate: Certificate) -> None:
        self._tls = certificate.server_context()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self._servers: list[asyncio.Server] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        #: Every server handshake, in the order the connections came.
        self.handshakes: list[ServerHandshake] = []

    def serve(self, protocol: str, tls: str = "none", **options: Any) -> int:
        """Listen for `protocol`; tls is "none", "starttls" or "implicit". Returns the port."""
        settings = ServerOptions(
            hostname=HOST, starttls=tls == "starttls", implicit_tls=tls == "implicit", **options
        )
        start = self._listen(protocol, settings, self._tls if tls == "implicit" else None)
        return asyncio.run_coroutine_threadsafe(start, self.loop).result(TIMEOUT)

    async def _listen(
        self, protocol: str, options: ServerOptions, implicit: ssl.SSLContext | None
    ) -> int:
        async def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            self._tasks.add(task)
            self._writers.add(writer)
            try:
                await self._converse(server_for(protocol, options), reader, writer)
            finally:
                self._tasks.discard(task)
                self._writers.discard(writer)

        server = await asyncio.start_server(accepted, LOOPBACK, 0, ssl=implicit)
        self._servers.append(server)
        port: int = server.sockets[0].getsockname()[1]
        return port

    async def _converse(
        self, hs: ServerHandshake, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.handshakes.append(hs)
        try:
            while (event := hs.next_event()) is not CLOSE:
                if isinstance(event, Send):
                    writer.write(event.data)
                    await writer.drain()
                elif isinstance(event, StartTLS):
                    # No client here pipelines after StartTLS, so nothing sits unread in
                    # `reader` that the upgrade would wrongly keep.
                    await writer.start_tls(self._tls)
                    hs.tls_started()
                else:
                    hs.receive_data(await asyncio.wait_for(reader.read(65536), TIMEOUT))
        except (OSError, ssl.SSLError, TimeoutError):
            pass  # the client went away or broke TLS: this connection is over
        finally:
            writer.close()
            with contextlib.suppress(OSError, ssl.SSLError):
                await writer.wait_closed()

    def finished(self) -> list[list[str]]:
        """What each connection heard, once every connection has ended."""

        async def settle() -> None:
            await asyncio.gather(*self._tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(settle(), self.loop).result(TIMEOUT)
        return [hs.heard for hs in self.handshakes]

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self.loop).result(TIMEOUT)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(TIMEOUT)
        self.loop.close()

    async def _stop(self) -> None:
        for server in self._servers:
            server.close()
        # Connections still open end as if the client had vanished: each task then returns
        # by itself (cancelling one makes Python 3.11's stream callback log an error).
        for writer in list(self._writers):
            writer.transport.abort()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for server in self._servers:
            await server.wait_closed()


@pytest.fixture
def responders(certificate: Certificate) -> Iterator[Responders]:
    running = Responders(certificate)
    try:
        yield running
    finally:
        running.close()
    assert not running.thread.is_alive()
    assert running.loop.is_closed()


def ask(
    hs: Handshake, port: int, certificate: Certificate, *, implicit: bool = False
) -> ServiceInfo:
    """Run one of our client handshakes over a blocking socket."""
    context = certificate.client_context()
    sock: socket.socket = socket.create_connection((LOOPBACK, port), timeout=TIMEOUT)
    try:
        if implicit:
            sock = context.wrap_socket(sock, server_hostname=LOOPBACK)
        while not isinstance(event := hs.next_event(), Done):
            if isinstance(event, Send):
                sock.sendall(event.data)
            elif isinstance(event, StartTLS):
                sock = context.wrap_socket(sock, server_hostname=LOOPBACK)
                hs.tls_started()
            else:
                hs.receive_data(sock.recv(65536))
        return event.info
    finally:
        sock.close()


# -- LDAP with ldap3 -----------------------------------------------------------------------------


def ldap3_server(port: int, certificate: Certificate, *, ldaps: bool = False) -> ldap3.Server:
    tls = ldap3.Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=str(certificate.cert))
    return ldap3.Server(LOOPBACK, port=port, use_ssl=ldaps, tls=tls, get_info=ldap3.DSA)


def check_ad_info(info: Any, *, global_catalog: bool = False) -> None:
    assert info is not None, "ldap3 read no rootDSE"
    assert info.naming_contexts == [
        "DC=example,DC=test",
        "CN=Configuration,DC=example,DC=test",
        "CN=Schema,CN=Configuration,DC=example,DC=test",
        "DC=DomainDnsZones,DC=example,DC=test",
        "DC=ForestDnsZones,DC=example,DC=test",
    ]
    assert sorted(int(version) for version in info.supported_ldap_versions) == [2, 3]
    assert "GSS-SPNEGO" in info.supported_sasl_mechanisms
    assert info.other["dnsHostName"] == [HOST]
    assert AD_OID in [feature[0] for feature in info.supported_features]
    assert info.other["isGlobalCatalogReady"] == ["TRUE" if global_catalog else "FALSE"]


def test_ldap3_reads_the_rootdse_in_clear(responders: Responders, certificate: Certificate) -> None:
    server = ldap3_server(responders.serve("ldap", "starttls"), certificate)
    conn = ldap3.Connection(server, auto_bind=True)
    try:
        check_ad_info(server.info)
        assert any(ext[0] == "1.3.6.1.4.1.1466.20037" for ext in server.info.supported_extensions)
        assert not conn.search("DC=example,DC=test", "(objectClass=user)")
        assert conn.result["result"] == 1  # operationsError: Windows Server 2003 wants a bind
    finally:
        conn.unbind()
    [heard] = responders.finished()
    assert heard[:2] == ["BIND anonymous", "SEARCH base='' scope=baseObject"]
    assert heard[-2:] == ["SEARCH base='DC=example,DC=test' scope=wholeSubtree", "UNBIND"]


def test_ldap3_upgrades_with_starttls(responders: Responders, certificate: Certificate) -> None:
    server = ldap3_server(responders.serve("ldap", "starttls", global_catalog=True), certificate)
    conn = ldap3.Connection(server)
    try:
        conn.open()
        assert conn.start_tls()
        assert conn.bind()
        check_ad_info(server.info, global_catalog=True)
        assert conn.search("", "(objectClass=*)", ldap3.BASE, attributes=["dnsHostName"])
        assert conn.entries[0].dnsHostName.value == HOST
    finally:
        conn.unbind()
    [heard] = responders.finished()
    # ldap3 reads the rootDSE as it connects, and again after TLS and after the bind.
    assert heard[:2] == ["SEARCH base='' scope=baseObject", "EXTENDED 1.3.6.1.4.1.1466.20037"]
    assert heard[-1] == "UNBIND"
    assert set(heard[2:-1]) == {"BIND anonymous", "SEARCH base='' scope=baseObject"}


def test_ldap3_reads_the_rootdse_over_ldaps(
    responders: Responders, certificate: Certificate
) -> None:
    server = ldap3_server(responders.serve("ldap", "implicit"), certificate, ldaps=True)
    conn = ldap3.Connection(server, auto_bind=True)
    try:
        check_ad_info(server.info)
        # An implicit-TLS port does not offer StartTLS on top of itself.
        assert all(ext[0] != "1.3.6.1.4.1.1466.20037" for ext in server.info.supported_extensions)
    finally:
        conn.unbind()


def test_ldap3_sees_the_neutral_vendor(responders: Responders, certificate: Certificate) -> None:
    server = ldap3_server(responders.serve("ldap", "starttls", profile="neutral"), certificate)
    conn = ldap3.Connection(server, auto_bind=True)
    try:
        assert server.info.vendor_name == ["portcall responder"]
        assert server.info.naming_contexts == ["dc=example,dc=test"]
        assert not server.info.supported_features  # no Active Directory capability
    finally:
        conn.unbind()


def test_ldap3_wrong_password(responders: Responders, certificate: Certificate) -> None:
    server = ldap3_server(responders.serve("ldap"), certificate)
    conn = ldap3.Connection(
        server, user="CN=Administrator,CN=Users,DC=example,DC=test", password="pw"
    )
    assert not conn.bind()
    assert conn.result["result"] == 49
    assert "52e" in conn.result["message"]
    conn.unbind()


# -- LDAP with OpenLDAP's ldapsearch -------------------------------------------------------------

LDAPSEARCH = shutil.which("ldapsearch")
needs_ldapsearch = pytest.mark.skipif(LDAPSEARCH is None, reason="ldapsearch (ldap-utils) missing")


def ldapsearch(uri: str, *extra: str, home: Path) -> str:
    assert LDAPSEARCH is not None
    # HOME elsewhere keeps a personal .ldaprc out; the certificate is self-made.
    env = {**os.environ, "LDAPTLS_REQCERT": "never", "HOME": str(home)}
    command = [LDAPSEARCH, "-x", "-H", uri, *extra, "-s", "base", "-b", "", "(objectClass=*)", "+"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    assert done.returncode == 0, done.stderr
    return done.stdout


@needs_ldapsearch
@pytest.mark.parametrize(
    ("profile", "tls", "scheme", "extra"),
    [
        ("exchange2000", "starttls", "ldap", ()),
        ("exchange2003", "starttls", "ldap", ("-ZZ",)),
        ("exchange2003", "implicit", "ldaps", ()),
    ],
    ids=["clear", "starttls", "ldaps"],
)
def test_ldapsearch_reads_the_rootdse(
    responders: Responders,
    tmp_path: Path,
    profile: str,
    tls: str,
    scheme: str,
    extra: tuple[str, ...],
) -> None:
    port = responders.serve("ldap", tls, profile=profile)
    output = ldapsearch(f"{scheme}://{LOOPBACK}:{port}", *extra, home=tmp_path)
    level = "0" if profile == "exchange2000" else "2"
    assert "defaultNamingContext: DC=example,DC=test" in output
    assert "supportedLDAPVersion: 3" in output
    assert f"supportedCapabilities: {AD_OID}" in output
    assert f"domainControllerFunctionality: {level}" in output
    assert "result: 0 Success" in output
    upgrade = ["EXTENDED 1.3.6.1.4.1.1466.20037"] if extra else []
    heard = [*upgrade, "BIND anonymous", "SEARCH base='' scope=baseObject", "UNBIND"]
    assert responders.finished() == [heard]


@needs_ldapsearch
def test_ldapsearch_zz_fails_where_starttls_is_not_offered(
    responders: Responders, tmp_path: Path
) -> None:
    # Windows 2000 had no StartTLS; -ZZ must then fail, as it would against the real one.
    port = responders.serve("ldap", "starttls", profile="exchange2000")
    assert LDAPSEARCH is not None
    env = {**os.environ, "LDAPTLS_REQCERT": "never", "HOME": str(tmp_path)}
    command = [LDAPSEARCH, "-x", "-ZZ", "-H", f"ldap://{LOOPBACK}:{port}", "-s", "base", "-b", ""]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    assert done.returncode != 0
    assert "Protocol error" in done.stderr


# -- HTTP with http.client -----------------------------------------------------------------------


def check_owa(conn: http.client.HTTPConnection) -> None:
    conn.request("GET", "/")
    home = conn.getresponse()
    assert home.status == 200
    assert b"portcall responder" in home.read()
    assert home.getheader("Server") == "Microsoft-IIS/6.0"
    conn.request("GET", "/exchange/")  # the same keep-alive connection
    owa = conn.getresponse()
    owa.read()
    assert owa.status == 401
    assert owa.headers.get_all("WWW-Authenticate") == [
        "Negotiate",
        "NTLM",
        f'Basic realm="{HOST}"',
    ]


def test_http_client_in_clear(responders: Responders) -> None:
    conn = http.client.HTTPConnection(LOOPBACK, responders.serve("http"), timeout=TIMEOUT)
    try:
        check_owa(conn)
    finally:
        conn.close()
    assert responders.finished() == [["GET /", "GET /exchange/"]]


def test_http_client_over_tls(responders: Responders, certificate: Certificate) -> None:
    port = responders.serve("http", "implicit")
    context = certificate.client_context()
    conn = http.client.HTTPSConnection(LOOPBACK, port, timeout=TIMEOUT, context=context)
    try:
        check_owa(conn)
    finally:
        conn.close()


# -- our own clients through the same sockets ----------------------------------------------------


def test_our_ldap_client_with_starttls(responders: Responders, certificate: Certificate) -> None:
    port = responders.serve("ldap", "starttls")
    info = ask(LdapClient(ProbeOptions(starttls=True)), port, certificate)
    assert info.product == "Microsoft Active Directory (Windows Server 2003)"
    assert info.tls_upgraded is True
    assert info.details["global_catalog_ready"] is False


def test_our_ldap_client_over_ldaps(responders: Responders, certificate: Certificate) -> None:
    port = responders.serve("ldap", "implicit", global_catalog=True)
    info = ask(LdapClient(ProbeOptions(implicit_tls=True)), port, certificate, implicit=True)
    assert info.details["global_catalog_ready"] is True
    assert info.starttls_offered is False


def test_our_http_client(responders: Responders, certificate: Certificate) -> None:
    port = responders.serve("http", "implicit", profile="exchange2000")
    info = ask(HttpClient(ProbeOptions(host=HOST)), port, certificate, implicit=True)
    assert info.product == "Microsoft IIS 5.0 (Outlook Web Access)"
    assert info.details["owa"] is True


def test_our_routing_client(responders: Responders, certificate: Certificate) -> None:
    info = ask(RoutingClient(), responders.serve("routing"), certificate)
    assert info.product == "Microsoft Exchange routing engine (RESvc) 6.5.7638.1"


def test_the_routing_banner_on_a_raw_socket(responders: Responders) -> None:
    port = responders.serve("routing", profile="exchange2000")
    with socket.create_connection((LOOPBACK, port), timeout=TIMEOUT) as sock:
        banner = b""
        while not banner.endswith(b"\r\n  "):
            chunk = sock.recv(256)
            assert chunk, f"closed after {banner!r}"
            banner += chunk
        sock.sendall(b"\x00" * 100)
    assert banner == (
        b"{0000004c} NODEINFO (5) {38}Version: 6.0.6249.0 Microsoft Routing Server ready\r\n  "
    )
