"""Real `portcall.check/1` documents for the history tests, made the way `check` makes them:
from `Result`s through report/json_report.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from portcall.report.json_report import check_document
from portcall.tls.facts import CertificateFacts, TlsFacts
from portcall.verdicts import Finding, FindingCode, Result, Verdict

HOST = "mail.example.test"
START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def tls(serial: str, not_after: datetime) -> TlsFacts:
    certificate = CertificateFacts(
        subject=f"CN={HOST}",
        issuer="CN=lab CA",
        common_name=HOST,
        dns_names=[HOST],
        ip_addresses=[],
        not_before=not_after - timedelta(days=365),
        not_after=not_after,
        serial=serial,
        sha256=serial.lower() * 2,
        key="EC P-256",
        signature_algorithm="ecdsa-with-SHA256",
        self_signed=False,
    )
    return TlsFacts(version="TLSv1.3", cipher="TLS_AES_256_GCM_SHA384", certificate=certificate)


def result(
    port: int,
    key: str,
    verdict: Verdict = Verdict.OK,
    *,
    host: str = HOST,
    address: str | None = "192.0.2.10",
    certificate: tuple[str, datetime] | None = None,
    banner: str | None = None,
    product: str | None = None,
    findings: tuple[FindingCode, ...] = (),
) -> Result:
    return Result(
        host=host,
        port=port,
        key=key,
        verdict=verdict,
        reason=f"{key} answered" if verdict is Verdict.OK else f"{key}: {verdict}",
        address=address,
        protocol=key,
        findings=[Finding(code, f"{code} on {key}") for code in findings],
        product=product,
        banner=banner,
        tls=tls(*certificate) if certificate else None,
        timings={"connect": 0.001},
    )


def document(results: list[Result], *, at: datetime = START) -> dict[str, Any]:
    """The document of a run that started and finished at `at` (days_left counted then)."""
    made = check_document(results, catalog="exchange-2000", started=at)
    made["finished"] = at.isoformat()
    return made
