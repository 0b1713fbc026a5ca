"""The JUnit XML report, for the test views of CI systems.

Layout: one `<testsuite>` per host (and address) inside `<testsuites>`, one `<testcase>` per
port: `classname` is the host ("mail.example.com", or "mail.example.com[192.0.2.10]" when the
address differs from the name as typed), `name` is the port ("25/tcp smtp"). GitLab shows the
classname as the suite, Jenkins as the class.

How health maps to JUnit:

- failures (a broken verdict, a required port closed, an error finding such as an expired
  certificate): ``<failure type="<verdict>">``, or ``type="<finding code>"`` when the verdict
  is ok and a finding fails it; the reason is the message, the details are the text.
- warnings (an expiring or self-signed certificate, legacy TLS): ``<failure type="warning">``.
  `portcall check` exits 1 on warnings, which fails a CI job, and the report has to show why:
  GitLab's merge-request summary lists failed and errored tests only, Jenkins and the GitHub
  JUnit actions show the failure message; a `<skipped>` would read as "not checked", is
  left out of GitLab's summary, and `<system-out>` alone is shown by none of them.
  The `type` keeps warnings apart from failures for whoever filters on it.
- healthy, including a closed optional port (information): a passing testcase, its reason in
  `<system-out>`.

A host where no checked port answers is a warning of the host as a whole: it gets one more
testcase, "host answers", failing with ``type="warning"``. The DC locator's steps of a
`check --locate` run form a suite of their own, "locate DOMAIN". Nothing maps to `<error>`
(the check itself ran) or `<skipped>`, so their counts are 0.

Built with ElementTree; XML 1.0 cannot hold most control characters at all, so any that a
hand-edited document carries are written as escapes first (see document.visible).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from portcall.report.document import Row, column_of, matrix, visible_tree

HOST_TESTCASE = "host answers"


def render_junit(document: dict[str, Any]) -> str:
    """The JUnit XML report of a `portcall.check/1` document."""
    shown = visible_tree(document)
    root = ET.Element("testsuites", name=f"portcall check ({shown['catalog']})")
    for row in matrix(shown).rows:
        root.append(_host_suite(row, shown["started"]))
    locate = shown.get("locate")
    if isinstance(locate, dict):
        root.append(_locate_suite(locate, shown["started"]))
    _total(root)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def _host_suite(row: Row, started: str) -> ET.Element:
    suite = ET.Element("testsuite", name=row.label, timestamp=started)
    _properties(suite, {"host": row.host, "address": row.address or "", "health": row.health})
    for result in row.cells.values():
        suite.append(port_testcase(result, row.label))
    if row.notes:
        case = ET.SubElement(suite, "testcase", classname=row.label, name=HOST_TESTCASE, time="0")
        notes = "\n".join(row.notes)
        ET.SubElement(case, "failure", type="warning", message=row.notes[0]).text = notes
    _count(suite)
    return suite


def _locate_suite(locate: dict[str, Any], started: str) -> ET.Element:
    name = f"locate {locate.get('domain', '')}".strip()
    suite = ET.Element("testsuite", name=name, timestamp=started)
    for step in locate.get("steps", []):
        suite.append(port_testcase(step, name))
    if not locate.get("chosen"):
        case = ET.SubElement(suite, "testcase", classname=name, name="a DC chosen", time="0")
        why = str(locate.get("why", "no domain controller found"))
        ET.SubElement(case, "failure", type="locate", message=why).text = why
    _count(suite)
    return suite


def port_testcase(result: dict[str, Any], classname: str) -> ET.Element:
    """One port of one host as a testcase: failing when its health is not healthy."""
    name = column_of(result).name
    case = ET.Element("testcase", classname=classname, name=name, time=_seconds(result))
    health = result["health"]
    if health != "healthy":
        kind = "warning" if health == "warnings" else _failure_type(result)
        failure = ET.SubElement(case, "failure", type=kind, message=_message(result))
        failure.text = "\n".join(_detail_lines(result))
    ET.SubElement(case, "system-out").text = result["reason"]
    return case


def _failure_type(result: dict[str, Any]) -> str:
    """The verdict, unless the verdict is ok (or only information) and a finding fails it."""
    errors = [f["code"] for f in result["findings"] if f["severity"] == "error"]
    if result["verdict"] == "ok" and errors:
        return str(errors[0])
    return str(result["verdict"])


def _message(result: dict[str, Any]) -> str:
    problems = [f["message"] for f in result["findings"] if f["severity"] in ("error", "warning")]
    if result["verdict"] == "ok" and problems:
        return f"{result['reason']}; {'; '.join(problems)}"
    return str(result["reason"])


def _detail_lines(result: dict[str, Any]) -> list[str]:
    lines = [f"verdict: {result['verdict']} (health: {result['health']})"]
    lines.append(f"reason: {result['reason']}")
    if result["required"]:
        lines.append("required: this port must answer")
    lines += [f"{f['severity']} {f['code']}: {f['message']}" for f in result["findings"]]
    lines += [f"{label}: {result[field]}" for label, field in _PLAIN if result.get(field)]
    lines += _tls_lines(result["tls"])
    return lines


_PLAIN = (("protocol", "protocol"), ("product", "product"), ("banner", "banner"))


def _tls_lines(tls: Any) -> list[str]:
    if not isinstance(tls, dict):
        return []
    lines = [f"tls: {tls.get('version')} {tls.get('cipher')}"]
    cert = tls.get("certificate")
    if isinstance(cert, dict):
        names = [*cert.get("dns_names", []), *cert.get("ip_addresses", [])]
        lines.append(f"certificate subject: {cert.get('subject')}")
        lines.append(f"certificate issuer: {cert.get('issuer')}")
        lines.append(f"certificate names: {', '.join(map(str, names)) or 'none'}")
        lines.append(f"certificate not after: {cert.get('not_after')}")
        lines.append(f"certificate serial: {cert.get('serial')}")
    if tls.get("trust_error"):
        lines.append(f"trust: {tls['trust_error']}")
    return lines


def _seconds(result: dict[str, Any]) -> str:
    total = result["timings_ms"].get("total", 0)
    milliseconds = total if isinstance(total, int | float) and total >= 0 else 0
    return f"{milliseconds / 1000:.3f}"


def _properties(suite: ET.Element, values: dict[str, str]) -> None:
    holder = ET.SubElement(suite, "properties")
    for name, value in values.items():
        ET.SubElement(holder, "property", name=name, value=value)


def _count(suite: ET.Element) -> None:
    cases = suite.findall("testcase")
    suite.set("tests", str(len(cases)))
    suite.set("failures", str(sum(1 for case in cases if case.find("failure") is not None)))
    suite.set("errors", "0")
    suite.set("skipped", "0")
    suite.set("time", _sum_time(cases))


def _sum_time(elements: list[ET.Element]) -> str:
    return f"{sum(float(e.get('time', '0')) for e in elements):.3f}"


def _total(root: ET.Element) -> None:
    suites = root.findall("testsuite")
    for name in ("tests", "failures", "errors"):
        root.set(name, str(sum(int(suite.get(name, "0")) for suite in suites)))
    root.set("time", _sum_time(suites))
