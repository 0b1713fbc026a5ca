"""No field of the JSON document carries a raw control, bidi or invisible character, whatever the
peer said: a consumer that prints a field (``jq -r .results[].banner``) prints it inert."""

from __future__ import annotations

import json
import unicodedata
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from portcall.report.json_report import check_document, dumps, result_to_dict, result_to_json
from portcall.tls.facts import CertificateFacts, TlsFacts
from portcall.verdicts import Finding, FindingCode, Result, Verdict

HOSTILE = "\x1b[2J\x1b]0;owned\x07<script>alert(1)</script>[red]x[/red]\u202eabc\u200b\u061c\r\nrow"


def hostile_result() -> Result:
    now = datetime.now(UTC)
    cert = CertificateFacts(
        subject=f"CN={HOSTILE}",
        issuer=f"CN={HOSTILE}",
        common_name=HOSTILE,
        dns_names=[HOSTILE, "mail.example.test"],
        ip_addresses=[],
        not_before=now - timedelta(days=1),
        not_after=now + timedelta(days=90),
        serial="01",
        sha256="00" * 32,
        key="RSA 2048",
        signature_algorithm="sha256WithRSAEncryption",
        self_signed=True,
    )
    tls = TlsFacts(version="TLSv1.3", cipher="TLS_AES_128_GCM_SHA256", certificate=cert)
    tls.notes.append(HOSTILE)
    return Result(
        host="127.0.0.1",
        port=25,
        key="smtp",
        verdict=Verdict.WRONG_PROTOCOL,
        reason=f'25 wrong-protocol: greeting "{HOSTILE}"',
        address="127.0.0.1",
        protocol="SMTP",
        product=HOSTILE,
        banner=HOSTILE,
        capabilities=[HOSTILE, f"AUTH {HOSTILE}"],
        details={"ehlo": [HOSTILE], HOSTILE: {"nested": [HOSTILE]}},
        findings=[Finding(FindingCode.CERT_SELF_SIGNED, HOSTILE)],
        tls=tls,
    )


def strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (*strings(k), *strings(v))]
    if isinstance(value, list):
        return [s for item in value for s in strings(item)]
    return []


def test_every_string_of_the_document_is_inert() -> None:
    text = dumps(check_document([hostile_result()], catalog="t", started=datetime.now(UTC)))
    document = json.loads(text)
    found = strings(document)
    assert len(found) > 20
    for value in found:
        bad = [c for c in value if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp")]
        assert bad == [], value
    result = document["results"][0]
    assert result["banner"].startswith("\\x1b[2J\\x1b]0;owned\\x07<script>")
    assert "\\u202eabc\\u200b\\u061c\\x0d\\x0arow" in result["banner"]
    assert result["tls"]["certificate"]["dns_names"][0] == result["banner"]
    assert "\\x1b" in result["reason"]
    assert any("\\u202e" in key for key in result["details"])


def _variants() -> list[Result]:
    """Results that take the one-pass way and results that must be walked string by string."""
    plain = hostile_result()
    plain.reason = plain.banner = plain.product = "25 ok: Postfix answered"
    plain.capabilities = ["PIPELINING", "SIZE 10240000"]
    plain.details = {"ehlo": ["mail.example.test"], "tuple": ("a", "b"), "count": 3}
    plain.findings = []
    assert plain.tls is not None and plain.tls.certificate is not None
    plain.tls.certificate = replace(plain.tls.certificate, subject="CN=mail", issuer="CN=ca",
                                    common_name="mail", dns_names=["mail"])  # fmt: skip
    plain.tls.notes.clear()
    one_each = []
    for odd in ['a "quoted" word', "C:\\path", "caf\u00e9", "DEL\x7f", "x" * 9000, "tab\there"]:
        result = replace(plain, details={**plain.details, "odd": odd})
        one_each.append(result)
    return [plain, hostile_result(), *one_each]


def test_a_result_line_is_the_inert_document_whichever_way_it_was_made() -> None:
    """`result_to_json` judges a result by its serialization when it can; its line is always
    exactly the inert result `result_to_dict` gives, as compact JSON on one line."""
    for result in _variants():
        expected = json.dumps(result_to_dict(result), ensure_ascii=False, separators=(",", ":"))
        assert result_to_json(result) == expected
    assert "\\\\x7f" in result_to_json(_variants()[5])  # DEL, which JSON leaves as it is


def test_a_result_orjson_refuses_is_written_all_the_same() -> None:
    """An integer beyond 64 bits, and a key that is no string, in a result's details: the
    line is the standard library's, in the same compact form."""
    result = replace(_variants()[0], details={"big": 2**70, 7: "seven"})
    line = result_to_json(result)
    assert line == json.dumps(result_to_dict(result), ensure_ascii=False, separators=(",", ":"))
    assert json.loads(line)["details"] == {"big": 2**70, "7": "seven"}
