"""A real Active Directory domain controller (Samba) and what each of its ports serves, proven
from a client namespace with Samba's own and standard clients (dig, kinit, ldapsearch,
smbclient, rpcclient) and, for CLDAP, which no such client speaks, a hand-built request.

The facts below are what Debian 12's Samba 4.17 really serves once provisioned by the
fixture; the protocol clients of the domain-controller catalog are asserted against them.

* Domain: realm ``PORTCALL.TEST``, DNS domain ``portcall.test``, NetBIOS domain ``PORTCALL``;
  forest = domain. DC ``dc1.portcall.test`` (NetBIOS ``DC1``) at 10.99.0.5, client 10.99.0.10;
  site ``Default-First-Site-Name``. Functional levels 4 (Windows 2008 R2).
* 53 tcp/udp, DNS (Samba's internal server, authoritative, ``aa``): the SOA of portcall.test is
  ``dc1.portcall.test. hostmaster.portcall.test.``; ``_ldap._tcp.dc._msdcs.portcall.test SRV``
  is ``0 100 389 dc1.portcall.test.`` over UDP and TCP alike. Forwarding is off, so names
  outside the zone fail at once instead of waiting for a resolver.
* 88 tcp/udp, Kerberos (Heimdal KDC): an AS-REQ for an unknown principal gets KRB-ERROR
  KDC_ERR_C_PRINCIPAL_UNKNOWN (6), which MIT kinit reports as "Client '...' not found in
  Kerberos database". 464 tcp/udp is kpasswd.
* 389 tcp, LDAP; 3268 tcp, Global Catalog: the same rootDSE, read anonymously:
  ``dnsHostName: dc1.portcall.test``, ``isGlobalCatalogReady: TRUE``,
  ``defaultNamingContext: DC=portcall,DC=test``, ``ldapServiceName:
  portcall.test:dc1$@PORTCALL.TEST``, ``serverName: CN=DC1,CN=Servers,
  CN=Default-First-Site-Name,CN=Sites,CN=Configuration,DC=portcall,DC=test``,
  ``vendorName: Samba Team (https://www.samba.org)``, SASL GSS-SPNEGO, GSSAPI, NTLM. No
  ``supportedExtension`` is listed, yet StartTLS works on both; a simple bind on plain 389 is
  refused with strongerAuthRequired (8).
* 636 tcp, LDAPS; 3269 tcp, GC over TLS: a certificate Samba makes on first start, subject
  ``CN=DC1.portcall.test`` (no subjectAltName), signed by the CA in DIR/private/tls/ca.pem.
* 389 udp, CLDAP: the Netlogon search ``(&(DnsDomain=portcall.test)(NtVer=\\06\\00\\00\\00))``
  is answered with a NETLOGON_SAM_LOGON_RESPONSE_EX (opcode 23): forest and domain
  ``portcall.test``, DC ``dc1.portcall.test``, NetBIOS ``PORTCALL`` / ``DC1``, DC site
  ``Default-First-Site-Name``, client site the same (no subnets are defined, the only site
  wins), user name empty, NtVersion 5 (1 and 5EX). Flags exactly 0x000013fd: PDC, GC, LDAP, DS,
  KDC, TIMESERV, CLOSEST, WRITABLE, GOOD_TIMESERV and FULL_SECRET_DOMAIN_6; none of the
  DNS_CONTROLLER/DNS_DOMAIN/DNS_FOREST flags, and no DS_8 or later (Samba 4.17 runs at the
  Windows 2008 R2 functional level).
* 135 tcp, DCE/RPC endpoint mapper (also ncacn_http on 593, not listened on): dynamic TCP
  ports from 49152 up, in registration order: netlogon on 49152, drsuapi (the directory,
  with lsarpc, dssetup, backupkey, dnsserver) on 49153, samr and wkssvc on 49154. These ports
  are dynamic ("rpc server dynamic port range"); none is static unless configured.
* 445 tcp, SMB: dialect SMB3_11 negotiated by smbclient; anonymous share listing shows
  IPC$ ("IPC Service (Samba 4.17.12-Debian)"), netlogon and sysvol. 139 tcp is NetBIOS
  session, UDP 137/138 NetBIOS name and datagram services.
"""

from __future__ import annotations

import re
import struct
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from ldap3 import BASE, DEREF_NEVER
from ldap3.operation.search import search_operation
from ldap3.protocol.rfc4511 import LDAPMessage, MessageID, ProtocolOp
from pyasn1.codec.ber import decoder, encoder

from tests.interop.lab.daemons.samba import (
    CLIENT_ADDRESS,
    DC_ADDRESS,
    DC_FQDN,
    DNS_DOMAIN,
    NETBIOS_DOMAIN,
    REALM,
)
from tests.interop.samba_domain import (
    DYNAMIC_RPC,
    SITE,
    SRV_NAME,
    Domain,
    endpoints,
)

pytestmark = pytest.mark.interop

# NETLOGON_SAM_LOGON_RESPONSE_EX flags (MS-ADTS 6.3.1.2, DS_FLAG).
DS_PDC_FLAG = 0x00000001
DS_GC_FLAG = 0x00000004
DS_LDAP_FLAG = 0x00000008
DS_DS_FLAG = 0x00000010
DS_KDC_FLAG = 0x00000020
DS_TIMESERV_FLAG = 0x00000040
DS_CLOSEST_FLAG = 0x00000080
DS_WRITABLE_FLAG = 0x00000100
DS_GOOD_TIMESERV_FLAG = 0x00000200
DS_FULL_SECRET_DOMAIN_6_FLAG = 0x00001000
LOGON_SAM_LOGON_RESPONSE_EX = 23
NETLOGON_NT_VERSION_5EX = 0x00000004

# Runs inside the client namespace: one datagram out, the first datagram back (hex).
_UDP_EXCHANGE = """
import socket, sys
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
    sock.settimeout(5)
    sock.sendto(bytes.fromhex(sys.argv[3]), (sys.argv[1], int(sys.argv[2])))
    print(sock.recv(65535).hex())
"""

# Runs inside the client namespace: how a TCP connect to each port ends.
_CONNECT = """
import socket, sys
for port in sys.argv[2:]:
    try:
        socket.create_connection((sys.argv[1], int(port)), timeout=3).close()
        print(port, "connected")
    except OSError as error:
        print(port, type(error).__name__)
"""


# DNS -------------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["UDP", "TCP"])
def test_dns_srv_record_of_the_dcs_lists_dc1(domain: Domain, transport: str) -> None:
    argv = ["dig", f"@{DC_ADDRESS}", SRV_NAME, "SRV"]
    if transport == "TCP":
        argv.insert(1, "+tcp")
    result = domain.run(argv)
    assert result.returncode == 0, result.stderr
    assert "status: NOERROR" in result.stdout
    assert re.search(r"flags: qr aa\b", result.stdout), result.stdout
    answer = re.search(rf"^{re.escape(SRV_NAME)}\.\s+\d+\s+IN\s+SRV\s+(.+)$", result.stdout, re.M)
    assert answer is not None, result.stdout
    assert answer.group(1).split() == ["0", "100", "389", f"{DC_FQDN}."]
    assert f"SERVER: {DC_ADDRESS}#53({DC_ADDRESS}) ({transport})" in result.stdout


def test_dns_soa_of_the_domain_names_dc1(domain: Domain) -> None:
    result = domain.run(["dig", "+short", f"@{DC_ADDRESS}", DNS_DOMAIN, "SOA"])
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[:2] == [f"{DC_FQDN}.", f"hostmaster.{DNS_DOMAIN}."]


def test_dns_a_record_of_dc1_is_its_address(domain: Domain) -> None:
    result = domain.run(["dig", "+short", f"@{DC_ADDRESS}", DC_FQDN, "A"])
    assert result.stdout.split() == [DC_ADDRESS]


# Kerberos --------------------------------------------------------------------------------


@pytest.mark.parametrize(("transport", "trace"), [("udp", "dgram"), ("tcp", "stream")])
def test_kerberos_unknown_principal_is_not_found(
    domain: Domain, transport: str, trace: str
) -> None:
    config = domain.krb5_udp if transport == "udp" else domain.krb5_tcp
    env = {
        "KRB5_CONFIG": str(config),
        "KRB5CCNAME": f"FILE:{domain.client.workdir / 'ccache'}",
        "KRB5_TRACE": "/dev/stderr",
    }
    result = domain.run(["kinit", "no-such-principal"], env=env)
    assert result.returncode != 0
    assert f"Client 'no-such-principal@{REALM}' not found in Kerberos database" in result.stderr, (
        result.stderr
    )
    # KRB5KDC_ERR_C_PRINCIPAL_UNKNOWN: the com_err base -1765328384 plus KRB-ERROR code 6.
    assert "Received error from KDC: -1765328378/" in result.stderr
    # MIT's trace names the transport of each exchange; the answer came over the one asked.
    assert re.search(rf"Received answer \(\d+ bytes\) from {trace} {DC_ADDRESS}:88", result.stderr)
    other = "stream" if trace == "dgram" else "dgram"
    assert f"from {other} {DC_ADDRESS}" not in result.stderr


# LDAP, GC, TLS ---------------------------------------------------------------------------


def _root_dse(
    domain: Domain, url: str, *options: str, ca: Path | None = None
) -> dict[str, list[str]]:
    env = {"LDAPTLS_CACERT": str(ca)} if ca else {}
    argv = [
        "ldapsearch",
        "-x",
        "-LLL",
        "-o",
        "ldif-wrap=no",
        *options,
        "-H",
        url,
        "-b",
        "",
        "-s",
        "base",
        "*",
        "+",
    ]
    result = domain.run(argv, env=env)
    assert result.returncode == 0, f"{url}: {result.stderr}"
    attributes: dict[str, list[str]] = {}
    for line in result.stdout.splitlines():
        name, sep, value = line.partition(": ")
        if sep:
            attributes.setdefault(name, []).append(value)
    return attributes


@pytest.mark.parametrize("port", [389, 3268])
def test_ldap_and_gc_root_dse(domain: Domain, port: int) -> None:
    dse = _root_dse(domain, f"ldap://{DC_ADDRESS}:{port}")
    assert dse["dnsHostName"] == [DC_FQDN]
    assert dse["isGlobalCatalogReady"] == ["TRUE"]
    assert dse["defaultNamingContext"] == ["DC=portcall,DC=test"]
    assert dse["ldapServiceName"] == [f"{DNS_DOMAIN}:dc1$@{REALM}"]
    assert dse["serverName"] == [
        f"CN=DC1,CN=Servers,CN={SITE},CN=Sites,CN=Configuration,DC=portcall,DC=test"
    ]
    assert "supportedExtension" not in dse


@pytest.mark.parametrize(
    ("url", "options"),
    [
        (f"ldap://{DC_FQDN}:389", ("-ZZ",)),
        (f"ldap://{DC_FQDN}:3268", ("-ZZ",)),
        (f"ldaps://{DC_FQDN}:636", ()),
        (f"ldaps://{DC_FQDN}:3269", ()),
    ],
)
def test_tls_with_the_ca_samba_made(domain: Domain, url: str, options: tuple[str, ...]) -> None:
    dse = _root_dse(domain, url, *options, ca=domain.dc.ca_cert)
    assert dse["dnsHostName"] == [DC_FQDN]


def test_tls_is_verified_against_the_ca(domain: Domain) -> None:
    """The TLS tests prove something: another CA is not accepted."""
    env = {"LDAPTLS_CACERT": str(domain.client.pki.ca_cert)}
    result = domain.run(
        ["ldapsearch", "-x", "-ZZ", "-H", f"ldap://{DC_FQDN}", "-b", "", "-s", "base"], env=env
    )
    assert result.returncode != 0
    assert "Connect error" in result.stderr or "certificate" in result.stderr, result.stderr


def test_simple_bind_on_plain_ldap_needs_stronger_authentication(domain: Domain) -> None:
    result = domain.run(
        [
            "ldapsearch",
            "-x",
            "-H",
            f"ldap://{DC_ADDRESS}",
            "-D",
            f"Administrator@{DNS_DOMAIN}",
            "-w",
            "wrong",
            "-b",
            "",
            "-s",
            "base",
        ]
    )
    assert result.returncode == 8, result.stderr
    assert "Strong(er) authentication required" in result.stderr


# CLDAP -----------------------------------------------------------------------------------


def _netlogon_request(message_id: int) -> bytes:
    """The DC locator's LDAP ping (MS-ADTS 6.3.3): rootDSE search for the Netlogon attribute."""
    ldap_filter = rf"(&(DnsDomain={DNS_DOMAIN})(NtVer=\06\00\00\00))"
    request = search_operation(
        "", ldap_filter, BASE, DEREF_NEVER, ["Netlogon"], 0, 0, False, False, False
    )
    message = LDAPMessage()
    message["messageID"] = MessageID(message_id)
    message["protocolOp"] = ProtocolOp().setComponentByName("searchRequest", request)
    return bytes(encoder.encode(message))


def _compressed_name(blob: bytes, offset: int) -> tuple[str, int]:
    """A DNS name with RFC 1035 4.1.4 compression; returns it and the offset after it."""
    labels: list[str] = []
    end: int | None = None
    for _ in range(64):  # a bound against pointer loops
        length = blob[offset]
        if length >= 0xC0:
            if end is None:
                end = offset + 2
            offset = ((length & 0x3F) << 8) | blob[offset + 1]
        elif length == 0:
            return ".".join(labels), (offset + 1 if end is None else end)
        else:
            labels.append(blob[offset + 1 : offset + 1 + length].decode())
            offset += 1 + length
    raise ValueError("name compression loops")


@dataclass(frozen=True)
class SamLogonResponseEx:
    opcode: int
    flags: int
    forest: str
    domain: str
    host: str
    netbios_domain: str
    netbios_computer: str
    user: str
    dc_site: str
    client_site: str
    nt_version: int


def _sam_logon_response_ex(blob: bytes) -> SamLogonResponseEx:
    """NETLOGON_SAM_LOGON_RESPONSE_EX (MS-ADTS 6.3.1.9) without the optional socket address."""
    opcode, _sbz, flags = struct.unpack_from("<HHI", blob, 0)
    offset = 8 + 16  # the domain GUID
    fields = ("forest", "domain", "host", "netbios_domain", "netbios_computer", "user")
    names: dict[str, str] = {}
    for field in (*fields, "dc_site", "client_site"):
        names[field], offset = _compressed_name(blob, offset)
    (nt_version,) = struct.unpack_from("<I", blob, offset)
    return SamLogonResponseEx(opcode=opcode, flags=flags, nt_version=nt_version, **names)


def _cldap_ping(domain: Domain) -> list[LDAPMessage]:
    request = _netlogon_request(message_id=4711)
    result = domain.run([sys.executable, "-c", _UDP_EXCHANGE, DC_ADDRESS, "389", request.hex()])
    assert result.returncode == 0, f"no CLDAP answer: {result.stderr}"
    data = bytes.fromhex(result.stdout.strip())
    messages = []
    while data:
        message, data = decoder.decode(data, asn1Spec=LDAPMessage())
        messages.append(message)
    return messages


def test_cldap_ping_answers_like_a_dc_locator_expects(domain: Domain) -> None:
    messages = _cldap_ping(domain)
    assert [int(m["messageID"]) for m in messages] == [4711, 4711]
    entry, done = (m["protocolOp"] for m in messages)
    assert entry.getName() == "searchResEntry"
    assert done.getName() == "searchResDone"
    assert int(done["searchResDone"]["resultCode"]) == 0
    attributes = {
        str(attribute["type"]): [bytes(value) for value in attribute["vals"]]
        for attribute in entry["searchResEntry"]["attributes"]
    }
    assert list(attributes) == ["netlogon"] or list(attributes) == ["Netlogon"]
    (blob,) = next(iter(attributes.values()))
    response = _sam_logon_response_ex(blob)
    assert response.opcode == LOGON_SAM_LOGON_RESPONSE_EX
    assert (response.forest, response.domain, response.host) == (DNS_DOMAIN, DNS_DOMAIN, DC_FQDN)
    assert (response.netbios_domain, response.netbios_computer) == (NETBIOS_DOMAIN, "DC1")
    assert (response.dc_site, response.client_site) == (SITE, SITE)
    assert response.nt_version & NETLOGON_NT_VERSION_5EX
    assert response.user == ""
    assert response.flags == (
        DS_PDC_FLAG
        | DS_GC_FLAG
        | DS_LDAP_FLAG
        | DS_DS_FLAG
        | DS_KDC_FLAG
        | DS_TIMESERV_FLAG
        | DS_CLOSEST_FLAG
        | DS_WRITABLE_FLAG
        | DS_GOOD_TIMESERV_FLAG
        | DS_FULL_SECRET_DOMAIN_6_FLAG
    ), hex(response.flags)


# SMB, RPC --------------------------------------------------------------------------------


def test_smb_negotiates_smb3_11_and_lists_the_dc_shares(domain: Domain) -> None:
    result = domain.run(
        ["smbclient", "-s", str(domain.smb_conf), "-L", f"//{DC_ADDRESS}", "-N", "-d", "10"]
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"negotiated dialect[SMB3_11] against server[{DC_ADDRESS}]" in result.stderr
    rows = [line.split() for line in result.stdout.splitlines()]
    shares = {row[0] for row in rows if len(row) > 1 and row[1] in ("Disk", "IPC")}
    assert {"IPC$", "netlogon", "sysvol"} <= shares
    assert "Samba 4." in result.stdout


def test_endpoint_mapper_lists_the_directory_and_netlogon_ports(domain: Domain) -> None:
    ports = endpoints(domain)
    assert ports["epmapper"] == {135}
    (drsuapi,) = ports["drsuapi"]
    (netlogon,) = ports["netlogon"]
    assert drsuapi in DYNAMIC_RPC and netlogon in DYNAMIC_RPC
    assert drsuapi != netlogon
    print(
        f"RPC: drsuapi {drsuapi}, netlogon {netlogon}, all {sorted(set().union(*ports.values()))}"
    )
    # The ports the mapper hands out really answer from the client.
    result = domain.run(
        [sys.executable, "-c", _CONNECT, DC_ADDRESS, "135", str(drsuapi), str(netlogon)]
    )
    assert result.stdout.split("\n")[:3] == [
        "135 connected",
        f"{drsuapi} connected",
        f"{netlogon} connected",
    ]


def test_rpc_over_smb_names_the_dc(domain: Domain) -> None:
    result = domain.run(
        ["rpcclient", "-s", str(domain.smb_conf), "-N", "-U%", DC_ADDRESS, "-c", "srvinfo"]
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[0] == "DC1"


def test_closed_port_is_refused_from_the_client(domain: Domain) -> None:
    """The namespace path is real: a port nothing serves is refused, not timed out."""
    result = domain.run([sys.executable, "-c", _CONNECT, DC_ADDRESS, "80"])
    assert result.stdout.strip() == "80 ConnectionRefusedError"
    assert CLIENT_ADDRESS in domain.run(["ip", "-4", "-o", "addr", "show"]).stdout
