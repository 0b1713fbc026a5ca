"""The tls-legacy finding names why the probe stepped down, and the remedy for that cause."""

from __future__ import annotations

import ssl

import pytest

from portcall.tls.assess import assess, tls_facts
from portcall.tls.context import (
    UNTRUSTED_ERRORS,
    client_context,
    is_version_intolerance,
    legacy_cause,
    wants_raw_hello,
)
from portcall.tls.facts import LegacyCause
from portcall.verdicts import FindingCode
from tests.tls.conftest import NOW, Issued


def legacy_finding(issued: Issued, causes: list[LegacyCause], version: str = "TLSv1.2") -> str:
    tls = tls_facts(
        version=version,
        cipher=("ECDHE-RSA-AES128-GCM-SHA256", version, 128),
        der=issued.der,
        legacy=True,
        legacy_causes=causes,
        trusted=True,
        trust_error=None,
        checked_name="mail.example.com",
    )
    found = [f for f in assess(tls, now=NOW) if f.code is FindingCode.TLS_LEGACY]
    assert len(found) == 1
    return found[0].message


@pytest.mark.parametrize(
    ("cause", "code"),
    [
        (LegacyCause.WEAK_KEY, 66),
        (LegacyCause.WEAK_CA_KEY, 67),
        (LegacyCause.WEAK_SIGNATURE, 68),
    ],
)
def test_weak_crypto_names_its_remedy_not_tls12(
    cn_only: Issued, cause: LegacyCause, code: int
) -> None:
    message = legacy_finding(cn_only, [cause])
    assert UNTRUSTED_ERRORS[code] in message
    assert "TLSv1.2, ECDHE-RSA-AES128-GCM-SHA256, RSA 2048" in message
    assert "enable TLS 1.2" not in message


def test_an_old_protocol_keeps_the_enable_tls12_advice(cn_only: Issued) -> None:
    for causes in ([LegacyCause.PROTOCOL], []):
        message = legacy_finding(cn_only, causes, "TLSv1")
        assert message.startswith("only legacy TLS works (TLSv1, ")
        assert message.endswith("enable TLS 1.2 on the server or move the service to a newer one")


def test_intolerance_and_old_ciphers_each_say_what_to_do(cn_only: Issued) -> None:
    message = legacy_finding(
        cn_only, [LegacyCause.VERSION_INTOLERANT, LegacyCause.OLD_CIPHERS], "TLSv1"
    )
    first, second = message.split("; the server offers only")
    assert "drops the connection on a current TLS hello" in first
    assert "device in front of it" in first
    assert "enable AES suites on the server" in second


def test_verify_codes_and_reasons_pick_the_cause() -> None:
    weak = ssl.SSLCertVerificationError(1, "certificate verify failed")
    weak.verify_code = 68
    assert legacy_cause(weak) is LegacyCause.WEAK_SIGNATURE
    refused = ssl.SSLError(1, "alert")
    refused.reason = "TLSV1_ALERT_PROTOCOL_VERSION"
    assert legacy_cause(refused) is LegacyCause.PROTOCOL
    assert wants_raw_hello(refused)
    plaintext = ssl.SSLError(1, "wrong version")
    plaintext.reason = "WRONG_VERSION_NUMBER"
    assert not wants_raw_hello(plaintext)
    assert not wants_raw_hello(weak)
    assert is_version_intolerance(ConnectionResetError())
    assert not is_version_intolerance(refused)


def test_the_fallback_context_is_tls1_only_and_cached() -> None:
    fallback = client_context(verify=False, legacy=True, tls1_only=True)
    assert fallback.maximum_version is ssl.TLSVersion.TLSv1
    assert fallback.options & ssl.OP_NO_TICKET
    assert fallback is client_context(verify=False, legacy=True, tls1_only=True)
    # Without `legacy` the cap is ignored: the modern context stays the modern context.
    modern = client_context(verify=False, legacy=False)
    assert client_context(verify=False, legacy=False, tls1_only=True) is modern
