"""`portcall check` against real daemons in a network namespace: every verdict earned for real.

The check runs inside the lab's namespace (`ip netns exec`), so it reaches the daemons on the
namespace's own loopback and nothing else.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from tests.interop.lab.daemons.dovecot import Dovecot
from tests.interop.lab.daemons.inn import Inn
from tests.interop.lab.daemons.nginx import Nginx
from tests.interop.lab.daemons.postfix import Postfix
from tests.interop.lab.daemons.responder import Responder
from tests.interop.lab.daemons.slapd import Slapd
from tests.interop.lab.lab import Lab

pytestmark = pytest.mark.interop

HOST = "mail.lab.test"


def portcall(lab: Lab, *args: str, timeout: float = 5.0) -> tuple[int, dict[int, dict[str, Any]]]:
    """Run `portcall check` in the lab; the exit code and the JSON results by port."""
    argv = [sys.executable, "-m", "portcall", "check", HOST, "--ca", str(lab.pki.ca_cert)]
    argv += ["--json", "--timeout", str(timeout), *args]
    done = lab.run(argv, timeout=120)
    assert done.stdout, f"no output; stderr: {done.stderr}"
    document = json.loads(done.stdout)
    assert document["schema"] == "portcall.check/1"
    return done.returncode, {r["port"]: r for r in document["results"]}


def finding_codes(result: dict[str, Any]) -> set[str]:
    return {f["code"] for f in result["findings"]}


@pytest.fixture(scope="module")
def healthy() -> Iterator[Lab]:
    with Lab(HOST) as lab:
        lab.start(
            Slapd(plain_ports=(389, 379, 390, 3268)),
            Nginx(),
            Postfix(),
            Dovecot(),
            Inn(),
            Responder(ports=(691,)),
        )
        yield lab


EXPECTED_PRODUCTS = {
    389: "OpenLDAP",
    379: "OpenLDAP",
    390: "OpenLDAP",
    3268: "OpenLDAP",
    636: "OpenLDAP",
    3269: "OpenLDAP",
    143: "Dovecot",
    993: "Dovecot",
    110: "Dovecot",
    995: "Dovecot",
    119: "INN",
    563: "INN",
    80: "nginx",
    443: "nginx",
    25: "Postfix",
    465: "Postfix",
    691: "Microsoft Exchange routing engine",
}
TLS_PORTS = {389, 3268, 379, 390, 636, 3269, 143, 993, 110, 995, 119, 563, 443, 25, 465}


def test_every_port_of_a_healthy_lab_is_ok_with_its_product(healthy: Lab) -> None:
    code, results = portcall(healthy)
    for port, product in EXPECTED_PRODUCTS.items():
        result = results[port]
        assert result["verdict"] == "ok", (port, result["reason"])
        assert result["product"] and result["product"].startswith(product), (port, result)
        assert result["findings"] == [], (port, result["findings"])
    assert code == 0


def test_tls_facts_are_read_and_judged_on_every_tls_port(healthy: Lab) -> None:
    _, results = portcall(healthy)
    for port in TLS_PORTS:
        tls = results[port]["tls"]
        assert tls is not None, port
        assert tls["trusted"] is True, (port, tls)
        assert tls["name_matches"] is True, (port, tls)
        assert HOST in tls["certificate"]["dns_names"]
        assert tls["version"] in ("TLSv1.2", "TLSv1.3")


def test_protocol_details_come_from_the_wire(healthy: Lab) -> None:
    _, results = portcall(healthy, "--ports", "25,143,389,80")
    # Offered in plaintext; the capabilities kept are those asked again over TLS (RFC 3207 4.2).
    assert results[25]["details"]["starttls_offered"] is True
    assert "STARTTLS" not in results[25]["capabilities"]
    assert "PIPELINING" in results[25]["capabilities"]
    assert "IMAP4rev1" in results[143]["capabilities"]
    rootdse = results[389]["details"]["rootdse"]
    assert any("dc=lab" in v.lower() for v in _values(rootdse, "namingContexts"))
    statuses = {h["path"]: h["status"] for h in results[80]["details"]["http"]}
    assert statuses["/"] == 200


def _values(attributes: dict[str, list[str]], name: str) -> list[str]:
    return next(v for k, v in attributes.items() if k.lower() == name.lower())


def test_required_missing_port_is_a_failure() -> None:
    with Lab(HOST) as lab:
        lab.start(Nginx())
        code, results = portcall(lab, "--ports", "80,443,691", "--require", "691")
    assert results[691]["verdict"] == "refused"
    assert results[691]["health"] == "failures"
    assert code == 2
    assert results[80]["health"] == results[443]["health"] == "healthy"


def test_stopped_daemon_is_refused() -> None:
    with Lab(HOST) as lab:
        nginx = Nginx()
        lab.start(nginx)
        assert portcall(lab, "--ports", "80")[1][80]["verdict"] == "ok"
        nginx.stop()
        code, results = portcall(lab, "--ports", "80")
    assert results[80]["verdict"] == "refused"
    assert "80 refused" in results[80]["reason"]
    assert results[80]["health"] == "healthy"  # a closed port is information unless required
    assert code == 1  # ... but a host where no checked port answers at all is a warning


def test_firewall_drop_is_filtered() -> None:
    with Lab(HOST) as lab:
        lab.start(Nginx())
        lab.nft(
            "table inet portcall_test {\n"
            "  chain input {\n"
            "    type filter hook input priority 0;\n"
            "    tcp dport 80 drop\n"
            "  }\n"
            "}\n"
        )
        _, results = portcall(lab, "--ports", "80,443", timeout=1.5)
    assert results[80]["verdict"] == "filtered"
    assert results[443]["verdict"] == "ok"


def test_expired_certificate_is_found() -> None:
    with Lab(HOST) as lab:
        lab.start(Nginx(cert="expired"))
        code, results = portcall(lab, "--ports", "443")
    result = results[443]
    assert result["verdict"] == "ok"
    assert "cert-expired" in finding_codes(result)
    assert "cert-untrusted" not in finding_codes(result)  # the chain itself is the lab CA's
    assert code == 2


def test_certificate_for_another_name_is_a_mismatch() -> None:
    with Lab(HOST) as lab:
        lab.start(Nginx(cert="wrong-name"))
        _, results = portcall(lab, "--ports", "443")
    result = results[443]
    assert finding_codes(result) == {"cert-name-mismatch"}
    assert "other.lab.test" in result["tls"]["name_match_detail"]


def test_starttls_disabled_is_no_starttls() -> None:
    with Lab(HOST) as lab:
        lab.start(Postfix(starttls=False))
        code, results = portcall(lab, "--ports", "25")
    assert results[25]["verdict"] == "no-starttls"
    assert results[25]["reason"].startswith("25 no-starttls")
    assert code == 2


def test_another_protocol_on_a_port_is_named() -> None:
    with Lab(HOST) as lab:
        lab.start(Nginx(http_ports=(), tls_ports=(), plain_http_ports=(563, 119)))
        _, results = portcall(lab, "--ports", "563,119")
    for port in (563, 119):
        assert results[port]["verdict"] == "wrong-protocol", results[port]
        assert results[port]["protocol"] == "HTTP"
        assert "HTTP" in results[port]["reason"]


def test_tls_1_0_only_server_still_yields_its_certificate() -> None:
    with Lab(HOST) as lab:
        lab.start(Nginx(tls_protocols="TLSv1"))
        code, results = portcall(lab, "--ports", "443")
    result = results[443]
    assert result["verdict"] == "ok"
    assert result["tls"]["version"] == "TLSv1"
    assert result["tls"]["legacy"] is True
    assert result["tls"]["certificate"]["common_name"] == HOST
    assert finding_codes(result) == {"tls-legacy"}
    assert code == 1
