"""The responders as clients that owe portcall nothing see them: the standard library's mail
and web clients, ldap3, OpenLDAP's ldapsearch and OpenSSL's s_client.

Each test starts the whole exchange2003 catalog on ephemeral loopback ports with the lab
certificates, lets one client do what it does against a real server, checks the certificate
against the lab CA wherever the client can, and finds that client's connection in the
responder's log under the row's catalog key.
"""

from __future__ import annotations

import http.client
import imaplib
import poplib
import smtplib
import ssl
import subprocess
from pathlib import Path
from typing import Any

import ldap3
import pytest
from ldap3.core.exceptions import LDAPSocketOpenError

from portcall.responders.certs import LabCertificates
from tests.responders.running import (
    LAB_HOST,
    STARTTLS_OID,
    SUBPROCESS_TIMEOUT,
    Served,
    assert_tls,
    check_ad_rootdse,
    check_ldapsearch_rootdse,
    ldap3_server,
    ldapsearch,
    local_port,
    logged,
    needs,
    offers_starttls,
)

#: ldap3 checks names with a function Python has deprecated; the warning is theirs.
pytestmark = pytest.mark.filterwarnings("ignore:ssl.match_hostname:DeprecationWarning")

#: What a well-behaved client sees once it has said goodbye (the server closes after its reply).
CLOSED_BY_CLIENT = ("the responder closed", "the client closed")


class PinnedName(ssl.SSLContext):
    """A client context that checks the certificate for `name` whatever address was dialled.

    The standard library's clients hand the address they connected to (here 127.0.0.1) to the
    TLS layer as the name to check; pinning it is how they are made to check the lab host name.
    """

    name = LAB_HOST

    def wrap_socket(self, sock: Any, *args: Any, **kwargs: Any) -> Any:
        kwargs["server_hostname"] = self.name
        return super().wrap_socket(sock, *args, **kwargs)


def pinned(lab: LabCertificates, name: str = LAB_HOST) -> PinnedName:
    context = PinnedName(ssl.PROTOCOL_TLS_CLIENT)  # verifies the chain and the name
    context.load_verify_locations(cafile=str(lab.ca_cert))
    context.name = name
    return context


# -- SMTP --------------------------------------------------------------------------------------


def test_smtplib_sees_exchange_extensions_then_upgrades_with_starttls(
    served: Served, lab: LabCertificates
) -> None:
    with smtplib.SMTP("127.0.0.1", served.port("smtp"), timeout=10) as client:
        code, _ = client.ehlo("client.example.test")
        assert code == 250
        for extension in ("x-link2state", "xexch50", "starttls"):
            assert client.has_extn(extension), client.esmtp_features
        assert client.starttls(context=pinned(lab))[0] == 220
        client.ehlo("client.example.test")
        # RFC 3207 section 4.2: STARTTLS is not offered again once TLS is in place.
        assert not client.has_extn("starttls")
        assert client.has_extn("xexch50")
        # Exchange greets with its own name and the client's address in brackets.
        assert (client.ehlo_resp or b"").startswith(b"mail.example.test Hello [127.0.0.1]")
        # Exchange lists AUTH twice (AUTH and AUTH=LOGIN); smtplib merges both lines.
        assert set(client.esmtp_features["auth"].split()) == {"GSSAPI", "NTLM", "LOGIN"}
        peer = local_port(client.sock)
        assert client.quit()[0] == 221
    record = logged(served, "smtp", peer)
    assert record.heard == [
        "EHLO client.example.test",
        "STARTTLS",
        "EHLO client.example.test",
        "QUIT",
    ]
    assert_tls(record)
    assert record.ended in CLOSED_BY_CLIENT


def test_smtplib_over_implicit_tls_on_the_465_row(served: Served, lab: LabCertificates) -> None:
    with smtplib.SMTP_SSL("127.0.0.1", served.port("smtps"), context=pinned(lab), timeout=10) as c:
        assert c.ehlo("client.example.test")[0] == 250
        assert c.has_extn("x-link2state") and not c.has_extn("starttls")
        peer = local_port(c.sock)
        assert c.quit()[0] == 221
    record = logged(served, "smtps", peer)
    assert record.heard == ["EHLO client.example.test", "QUIT"]
    assert_tls(record)


@pytest.mark.parametrize("flaw", ["another name", "another CA"])
def test_a_client_that_expects_another_certificate_refuses_the_lab_one(
    served: Served, lab: LabCertificates, flaw: str
) -> None:
    """The verifying contexts above do verify: with a name or a CA the lab certificate does not
    match, the same client refuses it."""
    # Without the lab CA, only the system's roots: the name (127.0.0.1) matches, the issuer not.
    context = (
        pinned(lab, "other.example.test")
        if flaw == "another name"
        else ssl.create_default_context()
    )
    with pytest.raises(ssl.SSLCertVerificationError):
        smtplib.SMTP_SSL("127.0.0.1", served.port("smtps"), context=context, timeout=10)
    assert logged(served, "smtps").ended.startswith("TLS handshake")


# -- POP3 --------------------------------------------------------------------------------------


def test_poplib_lists_stls_then_upgrades(served: Served, lab: LabCertificates) -> None:
    client = poplib.POP3("127.0.0.1", served.port("pop3"), timeout=10)
    try:
        welcome = client.getwelcome()
        assert welcome.startswith(b"+OK Microsoft Exchange Server 2003 POP3 server version")
        assert "STLS" in client.capa()
        assert client.stls(pinned(lab)).startswith(b"+OK")
        assert sorted(client.capa()) == ["TOP", "UIDL", "USER"]
        peer = local_port(client.sock)
        farewell = client.quit()
        assert farewell.startswith(b"+OK") and farewell.endswith(b"signing off.")
    finally:
        client.close()
    record = logged(served, "pop3", peer)
    # poplib.stls asks CAPA itself before it dares STLS.
    assert record.heard == ["CAPA", "CAPA", "STLS", "CAPA", "QUIT"]
    assert_tls(record)
    assert record.ended in CLOSED_BY_CLIENT


def test_poplib_over_implicit_tls_on_the_995_row(served: Served, lab: LabCertificates) -> None:
    client = poplib.POP3_SSL("127.0.0.1", served.port("pop3s"), context=pinned(lab), timeout=10)
    try:
        assert "STLS" not in client.capa()
        peer = local_port(client.sock)
        assert client.quit().startswith(b"+OK")
    finally:
        client.close()
    record = logged(served, "pop3s", peer)
    assert record.heard == ["CAPA", "QUIT"]
    assert_tls(record)


# -- IMAP --------------------------------------------------------------------------------------


def test_imaplib_sees_logindisabled_then_upgrades(served: Served, lab: LabCertificates) -> None:
    client = imaplib.IMAP4("127.0.0.1", served.port("imap"), timeout=10)
    try:
        assert {"STARTTLS", "LOGINDISABLED", "IMAP4REV1", "AUTH=NTLM"} <= set(client.capabilities)
        assert client.starttls(ssl_context=pinned(lab))[0] == "OK"
        # imaplib asks again after the upgrade (RFC 3501 section 6.2.1).
        assert "STARTTLS" not in client.capabilities
        assert "LOGINDISABLED" not in client.capabilities
        status, _ = client.capability()
        assert status == "OK"
        peer = local_port(client.sock)
    finally:
        # logout never raises: it closes the connection whatever the server says.
        goodbye, _ = client.logout()
    assert goodbye == "BYE"
    record = logged(served, "imap", peer)
    assert record.heard == ["CAPABILITY", "STARTTLS", "CAPABILITY", "CAPABILITY", "LOGOUT"]
    assert_tls(record)
    assert record.ended in CLOSED_BY_CLIENT


def test_imaplib_over_implicit_tls_on_the_993_row(served: Served, lab: LabCertificates) -> None:
    client = imaplib.IMAP4_SSL(
        "127.0.0.1", served.port("imaps"), ssl_context=pinned(lab), timeout=10
    )
    try:
        assert "STARTTLS" not in client.capabilities and "IMAP4REV1" in client.capabilities
        peer = local_port(client.sock)
    finally:
        goodbye, _ = client.logout()
    assert goodbye == "BYE"
    record = logged(served, "imaps", peer)
    assert record.heard == ["CAPABILITY", "LOGOUT"]
    assert_tls(record)


# -- LDAP: ldap3 -------------------------------------------------------------------------------


def ldap3_rootdse(served: Served, lab: LabCertificates, key: str, *, starttls: bool) -> Any:
    """Bind anonymously as ldap3 does (StartTLS first if asked) and return what it read of the
    rootDSE, after checking the connection in the responder's log."""
    bind = ldap3.AUTO_BIND_TLS_BEFORE_BIND if starttls else ldap3.AUTO_BIND_NO_TLS
    server = ldap3_server(served, lab, key)
    connection = ldap3.Connection(server, auto_bind=bind, receive_timeout=10)
    try:
        peer = local_port(connection.socket)
        assert connection.tls_started is starttls
    finally:
        connection.unbind()
    record = logged(served, key, peer)
    assert ("EXTENDED " + STARTTLS_OID in record.heard) is starttls
    assert record.heard[-1] == "UNBIND"
    return server.info


@pytest.mark.parametrize(("key", "starttls"), [("ldap", False), ("ldap", True), ("ldaps", False)])
def test_ldap3_reads_an_active_directory_rootdse(
    served: Served, lab: LabCertificates, key: str, starttls: bool
) -> None:
    info = ldap3_rootdse(served, lab, key, starttls=starttls)
    check_ad_rootdse(info)
    # An implicit-TLS port does not offer StartTLS on top of itself; on port 389 the list stays
    # the same once TLS runs.
    assert offers_starttls(info) is (key == "ldap")
    if starttls or key == "ldaps":
        assert_tls(served.record(key))
    else:
        assert served.record(key).tls is None


@pytest.mark.parametrize(("key", "ready"), [("gc", "TRUE"), ("ldap", "FALSE")])
def test_ldap3_sees_the_global_catalog_only_on_its_row(
    served: Served, lab: LabCertificates, key: str, ready: str
) -> None:
    info = ldap3_rootdse(served, lab, key, starttls=False)
    assert info.other["isGlobalCatalogReady"] == [ready]


def test_ldap3_refuses_the_ldaps_certificate_without_the_lab_ca(served: Served) -> None:
    tls = ldap3.Tls(validate=ssl.CERT_REQUIRED)  # the system's roots only
    port = served.port("ldaps")
    server = ldap3.Server("127.0.0.1", port=port, use_ssl=True, tls=tls, connect_timeout=10)
    with pytest.raises(LDAPSocketOpenError, match="CERTIFICATE_VERIFY_FAILED"):
        ldap3.Connection(server, auto_bind=ldap3.AUTO_BIND_NO_TLS, receive_timeout=10)
    assert logged(served, "ldaps").ended.startswith("TLS handshake")


# -- LDAP: ldapsearch --------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["plain", "starttls", "ldaps"])
def test_ldapsearch_reads_the_rootdse(
    served: Served, lab: LabCertificates, tmp_path: Path, mode: str
) -> None:
    key = "ldaps" if mode == "ldaps" else "ldap"
    check_ldapsearch_rootdse(ldapsearch(served, lab, tmp_path, mode), level="2")
    record = logged(served, key)
    upgrade = [f"EXTENDED {STARTTLS_OID}"] if mode == "starttls" else []
    assert record.heard == [*upgrade, "BIND anonymous", 'SEARCH base="" scope=baseObject', "UNBIND"]
    if mode != "plain":
        assert_tls(record)
    else:
        assert record.tls is None


# -- HTTP --------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["http", "https"])
def test_http_client_gets_the_home_page_and_the_owa_challenge(
    served: Served, lab: LabCertificates, key: str
) -> None:
    connection: http.client.HTTPConnection
    if key == "https":
        port = served.port(key)
        connection = http.client.HTTPSConnection("127.0.0.1", port, context=pinned(lab))
    else:
        connection = http.client.HTTPConnection("127.0.0.1", served.port(key), timeout=10)
    try:
        connection.request("GET", "/")
        home = connection.getresponse()
        assert (home.status, home.getheader("Server")) == (200, "Microsoft-IIS/6.0")
        assert b"portcall responder" in home.read()
        peer = local_port(connection.sock)
        connection.request("GET", "/exchange/")  # the same keep-alive connection
        owa = connection.getresponse()
        owa.read()
        assert owa.status == 401
        challenges = owa.msg.get_all("WWW-Authenticate")
        assert challenges == ["Negotiate", "NTLM", f'Basic realm="{LAB_HOST}"']
    finally:
        connection.close()
    record = logged(served, key, peer)
    assert record.heard == ["GET /", "GET /exchange/"]
    if key == "https":
        assert_tls(record)


# -- STARTTLS: openssl s_client ----------------------------------------------------------------

#: Per protocol: what s_client types once TLS is up (the goodbye, so that the server closes),
#: the server's answer to it, and every command the responder should have heard.
S_CLIENT: dict[str, tuple[str, str, list[str]]] = {
    "smtp": ("QUIT", "221 2.0.0 ", ["EHLO client.example.test", "STARTTLS", "QUIT"]),
    "pop3": ("QUIT", "+OK Microsoft Exchange", ["STLS", "QUIT"]),
    "imap": ("a LOGOUT", "a OK LOGOUT", ["CAPABILITY", "STARTTLS", "LOGOUT"]),
    "nntp": ("QUIT", "205 ", ["CAPABILITIES", "STARTTLS", "QUIT"]),
}


@pytest.mark.parametrize("protocol", sorted(S_CLIENT))
def test_openssl_s_client_verifies_the_certificate_after_starttls(
    served: Served, lab: LabCertificates, protocol: str
) -> None:
    goodbye, answer, heard = S_CLIENT[protocol]
    argv = [needs("openssl"), "s_client", "-starttls", protocol, "-name", "client.example.test"]
    argv += ["-connect", f"127.0.0.1:{served.port(protocol)}", "-CAfile", str(lab.ca_cert)]
    argv += ["-verify_return_error", "-verify_hostname", LAB_HOST, "-servername", LAB_HOST]
    # -nocommands: a line starting with Q would otherwise end the session without sending it;
    # -ign_eof: wait for the server's goodbye and close instead of leaving at our end of input.
    argv += ["-brief", "-crlf", "-nocommands", "-ign_eof"]
    done = subprocess.run(
        argv,
        input=goodbye + "\n",
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    # -brief writes its summary of the handshake to stderr.
    assert "Verification: OK" in done.stderr, done.stderr
    assert f"Verified peername: {LAB_HOST}" in done.stderr, done.stderr
    assert answer in done.stdout, done.stdout
    record = logged(served, protocol)
    assert record.heard == heard
    assert_tls(record)
    assert record.ended == "the responder closed"
