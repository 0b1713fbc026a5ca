"""The LDAP, HTTP and routing rows of the responders beyond a client's first look: ldap3 doing
more than reading the rootDSE, the exchange2000 and neutral profiles as ldap3 and ldapsearch
see them, and portcall's own clients over real sockets.

Each test starts the whole catalog on ephemeral loopback ports with the lab certificates, under
the profile it needs, and reads what the responder heard from its connection log.
"""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import ldap3
import pytest

from portcall.protocols.base import (
    Done,
    Handshake,
    Pause,
    ProbeOptions,
    Send,
    ServiceInfo,
    StartTLS,
)
from portcall.protocols.http import HttpClient
from portcall.protocols.ldap import LdapClient
from portcall.protocols.routing import RoutingClient
from portcall.responders.certs import LabCertificates
from tests.responders.running import (
    LAB_HOST,
    STARTTLS_OID,
    Served,
    check_ad_rootdse,
    check_ldapsearch_rootdse,
    ldap3_server,
    ldapsearch,
    logged,
    offers_starttls,
)

#: ldap3 checks names with a function Python has deprecated; the warning is theirs.
pytestmark = pytest.mark.filterwarnings("ignore:ssl.match_hostname:DeprecationWarning")

LOOPBACK = "127.0.0.1"
TIMEOUT = 10  # seconds; ldap3 packs its receive timeout as an integer
ROOTDSE_READ = 'SEARCH base="" scope=baseObject'


@pytest.fixture
def exchange2000(contexts: dict[str, ssl.SSLContext]) -> Iterator[Served]:
    with Served(contexts, profile="exchange2000") as running:
        yield running


def ask(hs: Handshake, port: int, tls: ssl.SSLContext, *, implicit: bool = False) -> ServiceInfo:
    """Run one of portcall's client handshakes over a blocking socket."""
    sock: socket.socket = socket.create_connection((LOOPBACK, port), timeout=TIMEOUT)
    try:
        if implicit:
            sock = tls.wrap_socket(sock, server_hostname=LOOPBACK)
        while not isinstance(event := hs.next_event(), Done):
            if isinstance(event, Send):
                sock.sendall(event.data)
            elif isinstance(event, StartTLS):
                sock = tls.wrap_socket(sock, server_hostname=LOOPBACK)
                hs.tls_started()
            elif isinstance(event, Pause):
                time.sleep(event.seconds)
            else:
                hs.receive_data(sock.recv(65536))
        return event.info
    finally:
        sock.close()


# -- LDAP with ldap3 -----------------------------------------------------------------------------


def test_ldap3_may_read_the_rootdse_but_not_search_without_a_bind(
    served: Served, lab: LabCertificates
) -> None:
    server = ldap3_server(served, lab, "ldap")
    conn = ldap3.Connection(server, auto_bind=True, receive_timeout=TIMEOUT)
    try:
        check_ad_rootdse(server.info)
        assert offers_starttls(server.info)
        assert not conn.search("DC=example,DC=test", "(objectClass=user)")
        assert conn.result["result"] == 1  # operationsError: Windows Server 2003 wants a bind
    finally:
        conn.unbind()
    heard = logged(served, "ldap").heard
    assert heard[:2] == ["BIND anonymous", ROOTDSE_READ]
    assert heard[-2:] == ['SEARCH base="DC=example,DC=test" scope=wholeSubtree', "UNBIND"]


def test_ldap3_upgrades_the_global_catalog_with_starttls_then_binds(
    served: Served, lab: LabCertificates
) -> None:
    # The rootDSE alone: the schema's own reads would come between those this test counts.
    server = ldap3_server(served, lab, "gc", get_info=ldap3.DSA)
    conn = ldap3.Connection(server, receive_timeout=TIMEOUT)
    try:
        conn.open()
        assert conn.start_tls()
        assert conn.bind()
        check_ad_rootdse(server.info, global_catalog=True)
        assert conn.search("", "(objectClass=*)", ldap3.BASE, attributes=["dnsHostName"])
        assert conn.entries[0].dnsHostName.value == LAB_HOST
    finally:
        conn.unbind()
    heard = logged(served, "gc").heard
    # ldap3 reads the rootDSE as it connects, and again after TLS and after the bind.
    assert heard[:2] == [ROOTDSE_READ, f"EXTENDED {STARTTLS_OID}"]
    assert heard[-1] == "UNBIND"
    assert set(heard[2:-1]) == {"BIND anonymous", ROOTDSE_READ}


def test_ldap3_sees_the_neutral_vendor(
    contexts: dict[str, ssl.SSLContext], lab: LabCertificates
) -> None:
    with Served(contexts, profile="neutral") as served:
        server = ldap3_server(served, lab, "ldap")
        conn = ldap3.Connection(server, auto_bind=True, receive_timeout=TIMEOUT)
        try:
            assert server.info.vendor_name == ["portcall responder"]
            assert server.info.naming_contexts == ["dc=example,dc=test"]
            assert not server.info.supported_features  # no Active Directory capability
        finally:
            conn.unbind()


def test_ldap3_is_refused_a_wrong_password_as_active_directory_refuses_it(
    served: Served, lab: LabCertificates
) -> None:
    server = ldap3_server(served, lab, "ldap")
    user = "CN=Administrator,CN=Users,DC=example,DC=test"
    conn = ldap3.Connection(server, user=user, password="pw", receive_timeout=TIMEOUT)
    try:
        assert not conn.bind()
        assert conn.result["result"] == 49  # invalidCredentials
        assert "52e" in conn.result["message"]  # AD's "wrong password" data code
    finally:
        conn.unbind()


# -- LDAP with OpenLDAP's ldapsearch against Windows 2000 ----------------------------------------


def test_ldapsearch_reads_a_windows_2000_rootdse(
    exchange2000: Served, lab: LabCertificates, tmp_path: Path
) -> None:
    check_ldapsearch_rootdse(ldapsearch(exchange2000, lab, tmp_path, "plain"), level="0")
    assert logged(exchange2000, "ldap").heard == ["BIND anonymous", ROOTDSE_READ, "UNBIND"]


def test_ldapsearch_zz_fails_where_windows_2000_offers_no_starttls(
    exchange2000: Served, lab: LabCertificates, tmp_path: Path
) -> None:
    # Windows 2000 had no StartTLS; -ZZ must then fail, as it would against the real one.
    done = ldapsearch(exchange2000, lab, tmp_path, "starttls")
    assert done.returncode != 0
    assert "Protocol error" in done.stderr


# -- portcall's own clients through the same sockets ---------------------------------------------


def test_our_ldap_client_with_starttls(served: Served, client_tls: ssl.SSLContext) -> None:
    info = ask(LdapClient(ProbeOptions(starttls=True)), served.port("ldap"), client_tls)
    assert info.product == "Microsoft Active Directory (Windows Server 2003)"
    assert info.tls_upgraded is True
    assert info.details["global_catalog_ready"] is False


def test_our_ldap_client_over_ldaps_on_the_global_catalog(
    served: Served, client_tls: ssl.SSLContext
) -> None:
    client = LdapClient(ProbeOptions(implicit_tls=True))
    info = ask(client, served.port("gc-ssl"), client_tls, implicit=True)
    assert info.details["global_catalog_ready"] is True
    assert info.starttls_offered is False


def test_our_http_client_finds_windows_2000_owa(
    exchange2000: Served, client_tls: ssl.SSLContext
) -> None:
    client = HttpClient(ProbeOptions(host=LAB_HOST))
    info = ask(client, exchange2000.port("https"), client_tls, implicit=True)
    assert info.product == "Microsoft IIS 5.0 (Outlook Web Access)"
    assert info.details["owa"] is True


def test_our_routing_client(served: Served, client_tls: ssl.SSLContext) -> None:
    info = ask(RoutingClient(), served.port("routing"), client_tls)
    assert info.product == "Microsoft Exchange routing engine (RESvc) 6.5.7638.1"


def test_the_windows_2000_routing_banner_on_a_raw_socket(exchange2000: Served) -> None:
    with socket.create_connection((LOOPBACK, exchange2000.port("routing")), timeout=TIMEOUT) as s:
        banner = b""
        while not banner.endswith(b"\r\n  "):
            chunk = s.recv(256)
            assert chunk, f"closed after {banner!r}"
            banner += chunk
        s.sendall(b"\x00" * 100)
    assert banner == (
        b"{0000004c} NODEINFO (5) {38}Version: 6.0.6249.0 Microsoft Routing Server ready\r\n  "
    )
