"""`portcall check --catalog windows-dc` against the real Samba AD DC of `test_samba_dc`, run
from the client namespace as an administrator would run it from an Exchange server: one verdict
per port of the catalog, over TCP and UDP, with the facts the DC really has."""

from __future__ import annotations

import json
import sys
from typing import Any

import jsonschema
import pytest

from tests.interop.lab.daemons.samba import DC_ADDRESS, DC_FQDN, DNS_DOMAIN, REALM
from tests.interop.samba_domain import SITE, Domain
from tests.test_json_schema import SCHEMA_FILE

pytestmark = pytest.mark.interop


def check(domain: Domain, *args: str) -> tuple[int, dict[str, Any]]:
    argv = [sys.executable, "-m", "portcall", "check", "--json", "--timeout", "3", *args]
    run = domain.run(argv)
    assert run.stdout, f"check printed nothing: {run.stderr[-2000:]}"
    document: dict[str, Any] = json.loads(run.stdout)
    return run.returncode, document


def by_place(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f"{r['port']}/{r['transport']}": r for r in document["results"]}


def validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator(schema)


@pytest.fixture(scope="module")
def dc_check(domain: Domain) -> dict[str, dict[str, Any]]:
    _code, document = check(domain, "--catalog", "windows-dc", "--domain", DNS_DOMAIN, DC_ADDRESS)
    assert sorted(validator().iter_errors(document), key=str) == []
    assert document["catalog"] == "windows-dc"
    results = by_place(document)
    for place, result in sorted(results.items()):
        print(place, result["verdict"], result["reason"])
    return results


SERVED = [
    "53/udp",
    "53/tcp",
    "88/udp",
    "88/tcp",
    "464/udp",
    "464/tcp",
    "135/tcp",
    "445/tcp",
    "389/udp",
    "389/tcp",
    "636/tcp",
    "3268/tcp",
    "3269/tcp",
]


@pytest.mark.parametrize("place", SERVED)
def test_every_dc_service_answers_ok(dc_check: dict[str, dict[str, Any]], place: str) -> None:
    result = dc_check[place]
    assert result["verdict"] == "ok", result["reason"]
    assert result["reason"].startswith(f"{place.removesuffix('/tcp')} ok:")


def test_dns_names_the_dc_over_both_transports(dc_check: dict[str, dict[str, Any]]) -> None:
    for place in ("53/udp", "53/tcp"):
        details = dc_check[place]["details"]
        assert details["soa"]["primary"] == DC_FQDN
        assert [t["target"] for t in details["locator"]["targets"]] == [DC_FQDN]


def test_kerberos_and_kpasswd_tell_the_realm(dc_check: dict[str, dict[str, Any]]) -> None:
    for place in ("88/udp", "88/tcp", "464/udp", "464/tcp"):
        assert dc_check[place]["details"]["realm"] == REALM


def test_ntp_is_closed_on_samba_and_optional(dc_check: dict[str, dict[str, Any]]) -> None:
    """Samba serves no NTP: the port unreachable comes back, and the row is optional."""
    result = dc_check["123/udp"]
    assert result["verdict"] == "refused"
    assert "ICMP port unreachable" in result["reason"]
    assert result["health"] == "healthy"


def test_cldap_tells_what_a_dc_locator_sees(dc_check: dict[str, dict[str, Any]]) -> None:
    netlogon = dc_check["389/udp"]["details"]["netlogon"]
    assert netlogon["dc_name"] == DC_FQDN
    assert netlogon["domain"] == DNS_DOMAIN
    assert netlogon["site"] == SITE
    assert {"GC", "KDC", "WRITABLE", "TIMESERV"} <= set(netlogon["flag_names"])


def test_the_directory_rpc_port_is_dynamic_on_samba(dc_check: dict[str, dict[str, Any]]) -> None:
    result = dc_check["135/tcp"]
    drsuapi = result["details"]["interfaces"]["drsuapi"]
    assert 49152 <= drsuapi["port"] <= 65535
    assert [f["code"] for f in result["findings"]] == ["dc-rpc-dynamic"]
    assert result["health"] == "warnings"


def test_smb_negotiates_and_names_the_dc(dc_check: dict[str, dict[str, Any]]) -> None:
    details = dc_check["445/tcp"]["details"]
    assert details["signing_required"] is True
    assert details["ntlm"]["dns_computer"] == DC_FQDN


def test_the_global_catalog_says_so(dc_check: dict[str, dict[str, Any]]) -> None:
    assert dc_check["3268/tcp"]["details"]["global_catalog_ready"] is True


@pytest.mark.parametrize("place", ["389/tcp", "3268/tcp", "636/tcp", "3269/tcp"])
def test_starttls_and_ldaps_give_tls_with_samba_s_certificate(
    dc_check: dict[str, dict[str, Any]], place: str
) -> None:
    """Samba's rootDSE lists no extension, but StartTLS works: the client asks regardless.
    Its self-made certificate names the DC, not the address checked, and no CA vouches for it."""
    result = dc_check[place]
    assert result["tls"]["version"] in ("TLSv1.2", "TLSv1.3")
    assert result["tls"]["certificate"]["common_name"].lower() == DC_FQDN
    codes = {f["code"] for f in result["findings"]}
    assert {"cert-untrusted", "cert-name-mismatch"} <= codes
    if place in ("389/tcp", "3268/tcp"):
        assert result["details"]["starttls_offered"] is True
        assert "StartTLS works, though the rootDSE does not list it" in result["details"]["notes"]


def test_the_domain_comes_from_the_rootdse_when_not_given(domain: Domain) -> None:
    _code, document = check(domain, "--catalog", "windows-dc", "--ports", "53,88", DC_ADDRESS)
    results = by_place(document)
    assert results["53/udp"]["details"]["domain"] == DNS_DOMAIN
    assert results["88/tcp"]["details"]["realm"] == REALM
    assert "notes" not in results["53/udp"]["details"]


def test_both_catalogs_in_one_run(domain: Domain) -> None:
    _code, document = check(
        domain,
        "--catalog",
        "exchange-2000",
        "--catalog",
        "windows-dc",
        "--domain",
        DNS_DOMAIN,
        DC_ADDRESS,
    )
    assert document["catalog"] == "exchange-2000+windows-dc"
    places = [f"{r['port']}/{r['transport']}" for r in document["results"]]
    assert len(places) == len(set(places)) == 27
    assert by_place(document)["389/udp"]["verdict"] == "ok"


def test_locate_finds_the_dc_and_checks_it(domain: Domain) -> None:
    code, document = check(domain, "--locate", DNS_DOMAIN, "--dns-server", DC_ADDRESS)
    assert sorted(validator().iter_errors(document), key=str) == []
    located = document["locate"]
    assert (located["domain"], located["dns_server"]) == (DNS_DOMAIN, DC_ADDRESS)
    assert [s["key"] for s in located["steps"]] == ["locate-dns", "locate-cldap"]
    assert all(s["verdict"] == "ok" for s in located["steps"])
    assert located["dcs"] == [{"name": DC_FQDN, "addresses": [DC_ADDRESS], "closest": True}]
    assert (located["chosen"], located["chosen_address"]) == (DC_FQDN, DC_ADDRESS)
    assert "CLOSEST" in located["why"]
    # Then the windows-dc catalog on the chosen DC, by its name.
    assert document["catalog"] == "windows-dc"
    assert {r["host"] for r in document["results"]} == {DC_FQDN}
    assert {r["address"] for r in document["results"]} == {DC_ADDRESS}
    assert by_place(document)["88/udp"]["details"]["realm"] == REALM
    assert code in (1, 2)  # Samba's self-signed LDAPS certificate is a finding


def test_locate_text_has_one_line_per_step(domain: Domain) -> None:
    argv = [sys.executable, "-m", "portcall", "check", "--timeout", "3", "--locate", DNS_DOMAIN]
    run = domain.run([*argv, "--dns-server", DC_ADDRESS, "--ports", "53,88"])
    lines = run.stdout.splitlines()
    assert lines[0] == f"Locating a domain controller of {DNS_DOMAIN} (DNS {DC_ADDRESS})"
    assert lines[1].startswith(f"  DNS SRV   {DC_ADDRESS}: 53/udp ok: DNS answered; SOA {DC_FQDN}")
    assert lines[2].startswith(f"  LDAP ping {DC_FQDN}: 389/udp ok: Active Directory")
    assert lines[3].startswith(f"  chosen {DC_FQDN} ({DC_ADDRESS}): it says it is in")
    assert run.returncode == 0, run.stdout


def test_locate_of_a_domain_nobody_serves_fails_at_the_first_step(domain: Domain) -> None:
    code, document = check(domain, "--locate", "elsewhere.test", "--dns-server", DC_ADDRESS)
    assert sorted(validator().iter_errors(document), key=str) == []
    assert code == 2
    located = document["locate"]
    assert located["chosen"] is None
    assert located["why"].startswith("no DC found: DNS at")
    assert document["results"] == []
