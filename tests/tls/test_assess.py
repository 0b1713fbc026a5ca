from __future__ import annotations

from dataclasses import asdict, replace
from datetime import timedelta

import pytest

from portcall.tls.assess import assess, tls_facts
from portcall.tls.context import TIME_ERRORS, UNTRUSTED_ERRORS
from portcall.tls.facts import TlsFacts
from portcall.verdicts import FindingCode, Severity
from tests.tls.conftest import DAY, NOW, Issued, Pki

CIPHER = ("TLS_AES_256_GCM_SHA384", "TLSv1.3", 256)


def facts_for(
    issued: Issued | None,
    *,
    name: str | None = "mail.example.com",
    trusted: bool | None = True,
    trust_error: str | None = None,
    legacy: bool = False,
) -> TlsFacts:
    return tls_facts(
        version="TLSv1.3",
        cipher=CIPHER,
        der=issued.der if issued else None,
        legacy=legacy,
        trusted=trusted,
        trust_error=trust_error,
        checked_name=name,
    )


def codes(tls: TlsFacts) -> list[FindingCode]:
    return [f.code for f in assess(tls, now=NOW)]


def test_tls_facts_as_a_dict_are_every_field_in_order(valid: Issued) -> None:
    """`to_dict` is `dataclasses.asdict` but for the dates, written as text, and the days
    left, added; its lists are copies."""
    tls = facts_for(valid)
    tls.notes.append("a note")
    data = tls.to_dict(now=NOW)
    expected = asdict(tls)
    certificate = expected["certificate"]
    for stamp in ("not_before", "not_after"):
        certificate[stamp] = certificate[stamp].isoformat()
    certificate["days_left"] = tls.certificate.days_left(NOW) if tls.certificate else None
    assert data == expected
    assert list(data) == list(expected) and list(data["certificate"]) == list(certificate)
    assert data["notes"] is not tls.notes
    # The certificate's text is made once and shared: each result gets its own copy.
    assert tls.certificate is not None
    data["certificate"]["dns_names"].append("changed.example.com")  # type: ignore[index]
    data["certificate"]["subject"] = "changed"  # type: ignore[index]
    assert tls.to_dict(now=NOW) == expected


def test_tls_facts_from_handshake_results(valid: Issued) -> None:
    tls = facts_for(valid)
    assert tls.version == "TLSv1.3"
    assert tls.cipher == "TLS_AES_256_GCM_SHA384"
    assert tls.certificate is not None
    assert tls.certificate.dns_names == ["mail.example.com", "owa.example.com"]
    assert tls.checked_name == "mail.example.com"
    assert tls.name_matches is True
    assert tls.name_match_detail == "certificate names mail.example.com"
    certificate = tls.to_dict()["certificate"]
    assert isinstance(certificate, dict)
    assert certificate["not_after"] == "2024-09-29T12:00:00+00:00"


def test_healthy_certificate_has_no_findings(valid: Issued) -> None:
    assert assess(facts_for(valid), now=NOW) == []


def test_expired_certificate(expired: Issued) -> None:
    [finding] = assess(facts_for(expired), now=NOW)
    assert finding.code == FindingCode.CERT_EXPIRED
    assert finding.severity == Severity.ERROR
    assert finding.message == (
        "certificate expired 2024-03-01 (12 days ago): install a renewed computer certificate"
    )


def test_not_yet_valid_certificate(not_yet_valid: Issued) -> None:
    [finding] = assess(facts_for(not_yet_valid), now=NOW)
    assert finding.code == FindingCode.CERT_NOT_YET_VALID
    assert finding.message.startswith("certificate is not valid until 2024-03-18 (in 5 days):")
    assert "clock" in finding.message


@pytest.mark.parametrize(
    ("left", "expected"),
    [
        (timedelta(days=29, hours=23), [FindingCode.CERT_EXPIRING]),
        (timedelta(days=30), []),
        (timedelta(hours=3), [FindingCode.CERT_EXPIRING]),
        (timedelta(0), [FindingCode.CERT_EXPIRED]),
    ],
)
def test_expiring_threshold(pki: Pki, left: timedelta, expected: list[FindingCode]) -> None:
    issued = pki.issue(not_before=NOW - 60 * DAY, not_after=NOW + left)
    assert codes(facts_for(issued)) == expected


def test_expiring_message_and_custom_threshold(pki: Pki) -> None:
    issued = pki.issue(not_before=NOW - DAY, not_after=NOW + 45 * DAY)
    tls = facts_for(issued)
    assert codes(tls) == []
    [finding] = assess(tls, now=NOW, expiring_days=60)
    assert finding.severity == Severity.WARNING
    assert finding.message == "certificate expires 2024-04-27 (in 45 days): renew it before then"


def test_expiry_within_hours_is_said_in_hours(pki: Pki) -> None:
    issued = pki.issue(not_before=NOW - DAY, not_after=NOW + timedelta(hours=5))
    [finding] = assess(facts_for(issued), now=NOW)
    assert "(in 5 hours)" in finding.message


def test_name_mismatch(valid: Issued) -> None:
    tls = facts_for(valid, name="mail2.example.com")
    assert tls.name_matches is False
    [finding] = assess(tls, now=NOW)
    assert finding.code == FindingCode.CERT_NAME_MISMATCH
    assert finding.message == (
        "certificate names mail.example.com, owa.example.com; not mail2.example.com: "
        "install a certificate that names mail2.example.com"
    )


def test_ip_mismatch_keeps_the_servername_advice(valid: Issued) -> None:
    [finding] = assess(facts_for(valid, name="192.0.2.10"), now=NOW)
    assert finding.code == FindingCode.CERT_NAME_MISMATCH
    assert finding.message.endswith("check by host name or pass --servername")


def test_cn_only_match_is_not_a_finding(cn_only: Issued) -> None:
    tls = facts_for(cn_only, name="exchange.corp.example")
    assert tls.name_matches is True
    assert "legacy common name" in (tls.name_match_detail or "")


def test_unchecked_name_is_not_a_finding(valid: Issued) -> None:
    tls = facts_for(valid, name=None)
    assert tls.name_matches is None
    assert codes(tls) == []


def test_untrusted_chain(valid: Issued) -> None:
    tls = facts_for(valid, trusted=False, trust_error=UNTRUSTED_ERRORS[20])
    [finding] = assess(tls, now=NOW)
    assert finding.code == FindingCode.CERT_UNTRUSTED
    assert finding.message == f"certificate is not trusted: {UNTRUSTED_ERRORS[20]}"


def test_trust_failing_only_on_the_dates_is_reported_as_expiry(expired: Issued) -> None:
    tls = facts_for(expired, trusted=False, trust_error=TIME_ERRORS[10])
    assert codes(tls) == [FindingCode.CERT_EXPIRED]


def test_unverified_chain_is_not_a_finding(valid: Issued) -> None:
    assert codes(facts_for(valid, trusted=None)) == []


def test_self_signed_and_untrusted(self_signed: Issued) -> None:
    tls = facts_for(self_signed, trusted=False, trust_error=UNTRUSTED_ERRORS[18])
    found = assess(tls, now=NOW)
    assert [f.code for f in found] == [FindingCode.CERT_UNTRUSTED, FindingCode.CERT_SELF_SIGNED]
    assert found[1].severity == Severity.WARNING


def test_legacy_tls(valid: Issued) -> None:
    tls = replace(facts_for(valid, legacy=True), version="TLSv1", cipher="ECDHE-RSA-AES256-SHA")
    [finding] = assess(tls, now=NOW)
    assert finding.code == FindingCode.TLS_LEGACY
    assert finding.message.startswith("only legacy TLS works (TLSv1, ECDHE-RSA-AES256-SHA)")


def test_every_problem_at_once(pki: Pki) -> None:
    issued = pki.issue(cn="old.example.com", dns=(), not_before=NOW - 99 * DAY, not_after=NOW - DAY)
    tls = facts_for(issued, name="mail.example.com", trusted=False, trust_error="x", legacy=True)
    assert codes(tls) == [
        FindingCode.CERT_EXPIRED,
        FindingCode.CERT_NAME_MISMATCH,
        FindingCode.CERT_UNTRUSTED,
        FindingCode.TLS_LEGACY,
    ]


def test_no_certificate() -> None:
    tls = facts_for(None)
    assert tls.certificate is None
    assert tls.name_matches is None
    assert tls.notes == ["the server sent no certificate"]
    assert assess(tls, now=NOW) == []


def test_unreadable_certificate_becomes_a_note() -> None:
    tls = tls_facts(
        version=None,
        cipher=None,
        der=b"junk",
        legacy=False,
        trusted=None,
        trust_error=None,
        checked_name="mail.example.com",
    )
    assert tls.version == "unknown" and tls.cipher == "unknown"
    assert tls.certificate is None
    assert tls.notes[0].startswith("the server's certificate cannot be read")
