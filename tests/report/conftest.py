"""Documents for the report tests: a real check of responders on three loopback hosts, and a
hand-made one whose server says hostile things; both checked against the published schema."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from portcall.api import check_async
from portcall.catalog import Catalog, load_catalog
from portcall.probing.probe import Settings
from portcall.report.json_report import check_document, dumps
from portcall.responders.certs import ensure_lab, server_context
from portcall.responders.server import Fault, Responder, ResponderConfig
from portcall.tls.facts import CertificateFacts, TlsFacts
from portcall.verdicts import Finding, FindingCode, Result, Verdict

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "docs" / "portcall.check-1.schema.json").read_text())
LAB_NAME = "mail.portcall.test"
#: The hosts of the lab check: two answer (with faults), nothing listens on the third.
MAIL, BRANCH, DEAD = "127.0.0.1", "127.0.0.2", "127.0.0.3"
HOSTILE_BANNER = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'
HOSTILE_TITLE = "<script>document.title='owned'</script>"

#: Faults of the first host (as in `portcall demo`) and of the second.
MAIL_FAULTS = {
    "imaps": Fault(certificate="expired"),
    "pop3": Fault(starttls=False),
    "nntps": Fault(closed=True),
    "smtps": Fault(closed=True),
    "routing": Fault(protocol="smtp"),
}
BRANCH_FAULTS = {"smtp": Fault(protocol="http"), "smtps": Fault(closed=True)}


def valid(document: dict[str, Any]) -> dict[str, Any]:
    """`document`, after checking it against docs/portcall.check-1.schema.json."""
    jsonschema.validate(json.loads(dumps(document)), SCHEMA)
    return document


def _with_ports(catalog: Catalog, ports: dict[str, int]) -> Catalog:
    entries = tuple(dataclasses.replace(e, port=ports[e.key]) for e in catalog.entries)
    return dataclasses.replace(catalog, entries=entries)


def _catalog_port(result: Result, catalog: Catalog) -> Result:
    """The result as if the catalog port had been probed, so that reports read 25, 110 …"""
    entry = catalog.by_key(result.key)
    assert entry is not None
    reason = re.sub(rf"\b{result.port}\b", str(entry.port), result.reason)
    return dataclasses.replace(result, port=entry.port, reason=reason)


async def _lab_check(directory: Path) -> list[Result]:
    lab = ensure_lab(directory, LAB_NAME)
    contexts = {
        "host": server_context(lab.host_cert, lab.host_key),
        "expired": server_context(lab.expired_cert, lab.expired_key),
    }
    catalog = load_catalog()
    first = ResponderConfig(ephemeral=True, hostname=LAB_NAME, idle_timeout=4)
    async with Responder(catalog.entries, first, tls=contexts, faults=MAIL_FAULTS) as mail:
        probed = _with_ports(catalog, mail.ports)
        # The second host answers on the same port numbers as the first, on its own address.
        second = ResponderConfig(binds=(BRANCH,), hostname=LAB_NAME, idle_timeout=4)
        branch = Responder(probed.entries, second, tls=contexts, faults=BRANCH_FAULTS)
        async with branch:
            settings = Settings(timeout=1.5, cafile=str(lab.ca_cert), servername=LAB_NAME)
            results = await check_async([MAIL, BRANCH, DEAD], catalog=probed, settings=settings)
    return [_catalog_port(result, catalog) for result in results]


@pytest.fixture(scope="session")
def lab_document(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A real check of responders on 127.0.0.1 and 127.0.0.2 and of a dead 127.0.0.3."""
    started = datetime.now(UTC)
    results = asyncio.run(_lab_check(tmp_path_factory.mktemp("lab")))
    return valid(check_document(results, catalog="exchange-2000", started=started))


@pytest.fixture(scope="session")
def lab_json(lab_document: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("doc") / "results.json"
    path.write_text(dumps(lab_document), encoding="utf-8")
    return path


def hostile_results() -> list[Result]:
    """A server whose every word is an attack on the report that shows it."""
    now = datetime.now(UTC)
    cert = CertificateFacts(
        subject=f"CN={HOSTILE_BANNER}",
        issuer="CN=evil | `ca` [x](http://evil.example)",
        common_name=HOSTILE_BANNER,
        dns_names=[HOSTILE_BANNER],
        ip_addresses=[],
        not_before=now - timedelta(days=1),
        not_after=now + timedelta(days=5),
        serial="0BADC0DE",
        sha256="00" * 32,
        key="RSA 2048",
        signature_algorithm="sha256WithRSAEncryption",
        self_signed=True,
    )
    tls = TlsFacts(version="TLSv1.2", cipher="ECDHE-RSA-AES128-GCM-SHA256", certificate=cert)
    smtp = Result(
        host="evil.example.test",
        port=25,
        key="smtp",
        verdict=Verdict.WRONG_PROTOCOL,
        reason=f"25 wrong-protocol: greeting {HOSTILE_TITLE} | col \x1b[31m\nnext",
        address="127.0.0.9",
        protocol="smtp",
        product=HOSTILE_TITLE,
        banner=HOSTILE_BANNER,
        findings=[Finding(FindingCode.CERT_EXPIRING, f"expires soon {HOSTILE_BANNER}")],
        tls=tls,
        timings={"total": 0.25},
    )
    imap = Result(
        host="evil.example.test",
        port=143,
        key="imap",
        verdict=Verdict.OK,
        reason="143 ok: @admin see www.evil.example/x and <b>bold</b> *stars* ~~gone~~",
        address="127.0.0.9",
        findings=[Finding(FindingCode.CERT_SELF_SIGNED, "self-signed `x` | y")],
        tls=tls,
    )
    return [smtp, imap]


@pytest.fixture(scope="session")
def hostile_document() -> dict[str, Any]:
    started = datetime.now(UTC)
    return valid(check_document(hostile_results(), catalog="exchange-2000", started=started))
