"""The JUnit report: valid against the Jenkins xUnit plugin's schema, one testcase per host and
port, failures and warnings where the check found them, counts that add up."""

from __future__ import annotations

import copy
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import xmlschema

from portcall.report.formats import FORMATS
from portcall.report.junit import render_junit
from tests.report.conftest import BRANCH, DEAD, HOSTILE_BANNER, MAIL

XSD = Path(__file__).with_name("junit-10.xsd")


@pytest.fixture(scope="module")
def schema() -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(str(XSD))


def parsed(text: str, schema: xmlschema.XMLSchema) -> ET.Element:
    schema.validate(text)
    return ET.fromstring(text)


def cases(root: ET.Element) -> dict[tuple[str, str], ET.Element]:
    return {(c.get("classname", ""), c.get("name", "")): c for c in root.iter("testcase")}


def test_one_suite_per_host_one_case_per_port(
    lab_document: dict[str, Any], schema: xmlschema.XMLSchema
) -> None:
    root = parsed(render_junit(lab_document), schema)
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == [MAIL, BRANCH, DEAD]
    found = cases(root)
    for result in lab_document["results"]:
        name = f"{result['port']}/{result['transport']} {result['key']}"
        assert (result["host"], name) in found
    # The dead host's ports pass one by one; the host as a whole does not.
    assert len(found) == len(lab_document["results"]) + 1
    assert found[(DEAD, "host answers")].find("failure").get("type") == "warning"


def test_failures_carry_the_verdict_or_finding(
    lab_document: dict[str, Any], schema: xmlschema.XMLSchema
) -> None:
    found = cases(parsed(render_junit(lab_document), schema))
    failing = {key: c.find("failure") for key, c in found.items() if c.find("failure") is not None}
    assert {key: f.get("type") for key, f in failing.items()} == {
        (MAIL, "110/tcp pop3"): "no-starttls",
        (MAIL, "993/tcp imaps"): "cert-expired",
        (MAIL, "691/tcp routing"): "wrong-protocol",
        (BRANCH, "25/tcp smtp"): "wrong-protocol",
        (DEAD, "host answers"): "warning",
    }
    imaps = failing[(MAIL, "993/tcp imaps")]
    assert "certificate expired" in imaps.get("message", "")
    assert "certificate serial: " in (imaps.text or "")
    # A closed optional port is information: it passes, its reason in system-out.
    closed = found[(MAIL, "563/tcp nntps")]
    assert closed.find("failure") is None
    assert "refused" in (closed.findtext("system-out") or "")


def test_counts_add_up(lab_document: dict[str, Any], schema: xmlschema.XMLSchema) -> None:
    root = parsed(FORMATS["junit"](lab_document), schema)
    for suite in root.findall("testsuite"):
        testcases = suite.findall("testcase")
        assert suite.get("tests") == str(len(testcases))
        failed = sum(c.find("failure") is not None for c in testcases)
        assert suite.get("failures") == str(failed)
        assert suite.get("errors") == suite.get("skipped") == "0"
        seconds = sum(float(c.get("time", "")) for c in testcases)
        assert abs(float(suite.get("time", "")) - seconds) < 0.01
    assert root.get("tests") == "52" and root.get("failures") == "5"
    total_ms = sum(r["timings_ms"].get("total", 0) for r in lab_document["results"])
    assert abs(float(root.get("time", "")) - total_ms / 1000) < 0.05


def test_warnings_fail_with_their_own_type(
    hostile_document: dict[str, Any], schema: xmlschema.XMLSchema
) -> None:
    found = cases(parsed(render_junit(hostile_document), schema))
    classname = "evil.example.test[127.0.0.9]"
    imap = found[(classname, "143/tcp imap")].find("failure")
    assert imap is not None and imap.get("type") == "warning"
    assert "self-signed `x` | y" in imap.get("message", "")
    smtp = found[(classname, "25/tcp smtp")].find("failure")
    assert smtp is not None and smtp.get("type") == "wrong-protocol"
    assert f"banner: {HOSTILE_BANNER}" in (smtp.text or "")


def test_control_characters_never_reach_the_xml(
    hostile_document: dict[str, Any], schema: xmlschema.XMLSchema
) -> None:
    edited = copy.deepcopy(hostile_document)
    edited["results"][0]["banner"] = "nul\x00 esc\x1b[2J bell\x07 \ufffe end"
    edited["results"][0]["reason"] = "tab\tand\x0bvt"
    text = render_junit(edited)
    smtp = parsed(text, schema).find(".//testcase[@name='25/tcp smtp']/failure")
    assert smtp is not None
    assert "banner: nul\\x00 esc\\x1b[2J bell\\x07 \\ufffe end" in (smtp.text or "")
    assert smtp.get("message") == "tab\\x09and\\x0bvt"


def test_a_located_dc_is_a_suite(lab_document: dict[str, Any], schema: xmlschema.XMLSchema) -> None:
    document = copy.deepcopy(lab_document)
    document["results"], document["hosts"] = [], []
    step = copy.deepcopy(lab_document["results"][0]) | {"key": "locate-dns"}
    document["locate"] = {
        "domain": "example.test",
        "dns_server": "127.0.0.53",
        "steps": [step],
        "dcs": [],
        "chosen": None,
        "chosen_address": None,
        "why": "no SRV record for _ldap._tcp.dc._msdcs.example.test",
    }
    root = parsed(render_junit(document), schema)
    suite = root.find("testsuite[@name='locate example.test']")
    assert suite is not None and suite.get("tests") == "2" and suite.get("failures") == "1"
    failure = suite.find("testcase[@name='a DC chosen']/failure")
    assert failure is not None and "no SRV record" in failure.get("message", "")
