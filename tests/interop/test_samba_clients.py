"""portcall's own domain-controller client roles (DNS, Kerberos, CLDAP, the RPC endpoint mapper,
SMB2 and the NTLM identity behind it) against the real Samba AD DC of `test_samba_dc`, from the
client namespace, each asserted against the facts that module lists: what a DC locator and a
firewall plan need to know, read by portcall rather than by Samba's or standard tools.

Beyond those facts, what portcall reads shows more of Samba 4.17: the endpoint mapper's towers
carry the address 0.0.0.0 (every address of the DC); the SMB2 server GUID is the DC's
lower-case NetBIOS name as the GUID's bytes, the same on every connection, and signing is
required; the NTLM challenge names no forest (no MsvAvDnsTreeName) and gives version 6.1
build 0.

Each role runs in a subprocess under `ip netns exec` (`dc_drive`), since a Python 3.11 process
cannot open one socket in another network namespace.
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from portcall.protocols.kerberos.messages import KDC_ERR_C_PRINCIPAL_UNKNOWN
from tests.interop.lab.daemons.samba import DC_ADDRESS, DC_FQDN, DNS_DOMAIN, NETBIOS_DOMAIN, REALM
from tests.interop.samba_domain import DYNAMIC_RPC, SITE, SRV_NAME, Domain, endpoints

pytestmark = pytest.mark.interop

#: The directory above `tests`, so that the subprocess finds `tests.interop.dc_drive`.
ROOT = Path(__file__).resolve().parents[2]
NETBIOS_NAME = "DC1"
PORTS = {"dns": 53, "kerberos": 88, "cldap": 389, "epm": 135, "smb": 445}


def drive(domain: Domain, protocol: str, transport: str) -> dict[str, Any]:
    """What portcall's `protocol` client learnt from the DC over `transport` (ServiceInfo)."""
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    argv = [sys.executable, "-m", "tests.interop.dc_drive", protocol, transport, DC_ADDRESS]
    result = domain.run([*argv, str(PORTS[protocol]), DNS_DOMAIN], env={"PYTHONPATH": path})
    assert result.stdout, f"the driver printed nothing: {result.stderr[-2000:]}"
    outcome: dict[str, Any] = json.loads(result.stdout)
    assert "info" in outcome, f"{protocol} over {transport}: {outcome}"
    print(f"{protocol}/{transport}: {json.dumps(outcome['info'], sort_keys=True)}")
    assert result.returncode == 0
    info: dict[str, Any] = outcome["info"]
    return info


# DNS -------------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_dns_client_reads_the_soa_and_the_locator_srv(domain: Domain, transport: str) -> None:
    info = drive(domain, "dns", transport)
    details = info["details"]
    assert details["domain"] == DNS_DOMAIN
    assert details["transport"] == transport
    soa = details["soa"]
    assert soa["rcode"] == "NOERROR" and soa["authoritative"] is True
    assert (soa["zone"], soa["zone_apex"]) == (DNS_DOMAIN, True)
    assert soa["primary"] == DC_FQDN
    assert soa["responsible"] == f"hostmaster.{DNS_DOMAIN}"
    # The serial is the one Samba's zone has right now, as dig reads it.
    dig = domain.run(["dig", "+short", f"@{DC_ADDRESS}", DNS_DOMAIN, "SOA"])
    assert soa["serial"] == int(dig.stdout.split()[2])
    locator = details["locator"]
    assert locator["name"] == SRV_NAME
    assert locator["rcode"] == "NOERROR" and locator["authoritative"] is True
    assert locator["truncated"] is False
    assert [(t["target"], t["port"], t["priority"], t["weight"]) for t in locator["targets"]] == [
        (DC_FQDN, 389, 0, 100)
    ]
    assert info["banner"] == f"SOA {DC_FQDN} serial {soa['serial']}; DCs {DC_FQDN}"
    assert info["notes"] == []


# Kerberos --------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_kerberos_client_gets_principal_unknown_from_the_realm(
    domain: Domain, transport: str
) -> None:
    info = drive(domain, "kerberos", transport)
    details = info["details"]
    assert details["transport"] == transport
    assert details["realm_asked"] == REALM
    assert details["error_code"] == KDC_ERR_C_PRINCIPAL_UNKNOWN == 6
    assert details["error_name"] == "KDC_ERR_C_PRINCIPAL_UNKNOWN"
    assert details["realm"] == REALM
    # The KDC names itself as the TGS of its realm, and the probe principal was never real.
    assert details["server"] == f"krbtgt/{REALM}"
    assert details["principal"].startswith("portcall-probe-")
    assert info["banner"] == f"KRB-ERROR KDC_ERR_C_PRINCIPAL_UNKNOWN from realm {REALM}"


# CLDAP -----------------------------------------------------------------------------------


def test_cldap_ping_reads_what_a_dc_locator_sees(domain: Domain) -> None:
    info = drive(domain, "cldap", "udp")
    assert info["details"]["result"] == "success"
    netlogon = info["details"]["netlogon"]
    assert netlogon["opcode"] == "LOGON_SAM_LOGON_RESPONSE_EX"
    assert {name: netlogon[name] for name in ("forest", "domain", "dc_name")} == {
        "forest": DNS_DOMAIN,
        "domain": DNS_DOMAIN,
        "dc_name": DC_FQDN,
    }
    assert (netlogon["netbios_domain"], netlogon["netbios_name"]) == (NETBIOS_DOMAIN, NETBIOS_NAME)
    assert (netlogon["site"], netlogon["client_site"]) == (SITE, SITE)
    assert netlogon["user"] == ""
    # Exactly Samba's flags: PDC, GC, LDAP, DS, KDC, TIMESERV, CLOSEST, WRITABLE,
    # GOOD_TIMESERV, FULL_SECRET_DOMAIN_6.
    assert netlogon["flags"] == 0x13FD
    assert {"GC", "KDC", "LDAP", "WRITABLE", "CLOSEST"} <= set(info["capabilities"])
    assert netlogon["flag_names"] == info["capabilities"]
    assert info["product"] == "Active Directory domain controller"
    assert info["banner"] == f"{DC_FQDN} (domain {DNS_DOMAIN}, site {SITE})"


# DCE/RPC endpoint mapper -----------------------------------------------------------------


def test_endpoint_mapper_client_maps_drsuapi_and_netlogon_to_dynamic_ports(
    domain: Domain,
) -> None:
    info = drive(domain, "epm", "tcp")
    interfaces = info["details"]["interfaces"]
    assert set(interfaces) == {"drsuapi", "netlogon"}
    for found in interfaces.values():
        assert found["status"] == "ok", found
        assert found["port"] in DYNAMIC_RPC
        assert found["dynamic_range"] == "49152-65535"
        # Samba's towers carry 0.0.0.0: the port is open on every address of the DC.
        assert found["address"] == "0.0.0.0"
    assert interfaces["drsuapi"]["port"] != interfaces["netlogon"]["port"]
    # The ports are the ones rpcclient's epmlookup lists for the same interfaces.
    listed = endpoints(domain)
    assert {interfaces["drsuapi"]["port"]} == listed["drsuapi"]
    assert {interfaces["netlogon"]["port"]} == listed["netlogon"]
    assert info["notes"] == []


# SMB2 and the NTLM identity --------------------------------------------------------------


def test_smb_client_negotiates_3_1_1_and_reads_the_ntlm_identity(domain: Domain) -> None:
    info = drive(domain, "smb", "tcp")
    details = info["details"]
    assert details["dialect"] == "3.1.1"
    assert info["banner"] == "SMB 3.1.1, signing required"
    # A Samba AD DC requires signing (server signing = mandatory is the DC default).
    assert details["signing_enabled"] is True
    assert details["signing_required"] is True
    # Samba's server GUID is its lower-case NetBIOS name, NUL-padded, as the GUID's bytes.
    guid = uuid.UUID(bytes_le=NETBIOS_NAME.lower().encode().ljust(16, b"\0"))
    assert details["server_guid"] == str(guid)
    ntlm = details["ntlm"]
    assert ntlm["netbios_computer"] == NETBIOS_NAME
    assert ntlm["netbios_domain"] == NETBIOS_DOMAIN
    assert ntlm["dns_computer"] == DC_FQDN
    assert ntlm["dns_domain"] == DNS_DOMAIN
    # Samba sends no forest name (MsvAvDnsTreeName), and NT 6.1 build 0 as its version.
    assert "dns_forest" not in ntlm
    assert ntlm["os_version"] == "6.1.0"
    assert ntlm["target_name"] == NETBIOS_DOMAIN


def test_smb_server_guid_is_stable_across_connections(domain: Domain) -> None:
    """The GUID is the server's own, not a value made up per connection."""
    first = drive(domain, "smb", "tcp")["details"]["server_guid"]
    assert drive(domain, "smb", "tcp")["details"]["server_guid"] == first
