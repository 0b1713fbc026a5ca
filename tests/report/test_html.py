"""The HTML report of real and hostile documents: the matrix, the details, and peer text
kept as text."""

from __future__ import annotations

import copy
import re
from typing import Any

from portcall.report.formats import FORMATS
from portcall.report.html import render_html
from tests.report.chromium import elements, find
from tests.report.conftest import BRANCH, DEAD, HOSTILE_BANNER, MAIL, valid


def cell(page: str, host: str, column: str) -> list[Any]:
    """The matrix cell of `host` in `column` (e.g. "993-tcp-imaps"), as a list of elements
    from the cell's <td> to the next one."""
    found = elements(page)
    row = next(i for i, e in enumerate(found) if e.tag == "tr" and e.attrs.get("data-host") == host)
    start = next(
        i
        for i in range(row, len(found))
        if found[i].tag == "td" and found[i].attrs.get("data-column") == column
    )
    end = next((i for i in range(start + 1, len(found)) if found[i].tag in ("td", "tr")), None)
    return found[start:end]


def test_every_result_is_a_cell_coloured_by_its_verdict(lab_document: dict[str, Any]) -> None:
    page = render_html(lab_document)
    rows = find(page, "tr", class_="host-row")
    assert [r.attrs["data-host"] for r in rows] == [MAIL, BRANCH, DEAD]
    assert [r.attrs["data-health"] for r in rows] == ["failures", "failures", "warnings"]
    for result in lab_document["results"]:
        column = f"{result['port']}-{result['transport']}-{result['key']}"
        td = cell(page, result["host"], column)[0]
        assert {"cell", f"verdict-{result['verdict']}", f"health-{result['health']}"} <= td.classes
        assert td.attrs["data-verdict"] == result["verdict"]
    assert len(find(page, "td", class_="cell")) == len(lab_document["results"]) == 51
    assert len(find(page, "th", class_="port")) == 17


def test_the_faults_show_where_they_are(lab_document: dict[str, Any]) -> None:
    page = render_html(lab_document)
    assert "verdict-no-starttls" in cell(page, MAIL, "110-tcp-pop3")[0].classes
    assert "verdict-wrong-protocol" in cell(page, BRANCH, "25-tcp-smtp")[0].classes
    assert "verdict-refused" in cell(page, DEAD, "25-tcp-smtp")[0].classes
    imaps = cell(page, MAIL, "993-tcp-imaps")
    assert {"verdict-ok", "health-failures"} <= imaps[0].classes
    # The port's column and the host's row carry the worst health of their cells.
    assert find(page, "th", data_column="993-tcp-imaps")[0].attrs["data-health"] == "failures"
    assert find(page, "td", class_="port-health", data_column="80-tcp-http")[0].text == "healthy"
    notes = find(page, "span", class_="note")
    assert len(notes) == 1 and "no checked port answers" in notes[0].text


def test_a_cell_opens_to_the_reason_findings_and_certificate(
    lab_document: dict[str, Any],
) -> None:
    page = render_html(lab_document)
    imaps = cell(page, MAIL, "993-tcp-imaps")
    result = next(r for r in lab_document["results"] if r["host"] == MAIL and r["key"] == "imaps")
    certificate = result["tls"]["certificate"]
    texts = {e.attrs.get("class", e.tag): e.text for e in imaps}
    assert [e.tag for e in imaps[:3]] == ["td", "details", "summary"]
    assert texts["reason"] == result["reason"]
    assert texts["subject"] == certificate["subject"]
    assert texts["issuer"] == certificate["issuer"]
    assert texts["serial"] == certificate["serial"]
    assert texts["not-after"] == certificate["not_after"]
    assert "127.0.0.1" in texts["sans"] and "mail.portcall.test" in texts["sans"]
    assert texts["banner"] == result["banner"]
    finding = next(e for e in imaps if "finding" in e.classes)
    assert "severity-error" in finding.classes
    assert "TLSv1.3" in "".join(e.text for e in imaps)


def test_the_summary_counts_what_the_document_holds(lab_document: dict[str, Any]) -> None:
    page = render_html(lab_document)
    counts = {e.attrs["data-verdict"]: e for e in find(page, "li", class_="count")}
    assert set(counts) == {"ok", "refused", "no-starttls", "wrong-protocol"}
    refused = sum(r["verdict"] == "refused" for r in lab_document["results"])
    assert f">{refused}<" in re.sub(r"\s+", "", page.split('data-verdict="refused"')[1][:120])
    assert find(page, "span", id="overall-health")[0].text == "failures"
    assert find(page, "dd", id="count-hosts")[0].text == "3"
    assert find(page, "dd", id="version")[0].text == lab_document["portcall"]
    assert find(page, "dd", id="catalog")[0].text == "exchange-2000"


def test_the_page_fetches_nothing_and_prints(lab_document: dict[str, Any]) -> None:
    page = FORMATS["html"](lab_document)
    for e in elements(page):
        assert e.tag not in ("link", "img", "iframe", "object", "embed"), e
        assert "src" not in e.attrs and "href" not in e.attrs, e
    assert "url(" not in page and "@import" not in page
    assert "@media print" in page and "print-color-adjust: exact" in page
    assert len(find(page, "script")) == 1


def test_peer_text_stays_text(hostile_document: dict[str, Any]) -> None:
    page = render_html(hostile_document)
    scripts = find(page, "script")
    assert len(scripts) == 1 and "alert" not in scripts[0].text
    assert not find(page, "img") and not find(page, "b")
    for e in elements(page):
        assert not any(name.startswith("on") for name in e.attrs), e
    banner = find(page, "pre", class_="banner")
    assert [b.text for b in banner] == [HOSTILE_BANNER]
    # The escape sequence and line break the reason held are shown as escapes.
    reason = find(page, "p", class_="reason")[0].text
    assert "\\x1b[31m\\x0anext" in reason and "\x1b" not in page
    assert find(page, "title")[0].text == "portcall report: exchange-2000 (failures)"


def test_a_hand_edited_document_is_made_visible_too(hostile_document: dict[str, Any]) -> None:
    edited = copy.deepcopy(hostile_document)
    edited["results"][0]["banner"] = "bell\x07 rtl\u202e end"
    page = render_html(edited)
    assert find(page, "pre", class_="banner")[0].text == "bell\\x07 rtl\\u202e end"


def test_a_port_not_checked_on_a_host_is_an_empty_cell(lab_document: dict[str, Any]) -> None:
    document = copy.deepcopy(lab_document)
    document["results"] = [
        r
        for r in document["results"]
        if (r["host"], r["key"]) in ((MAIL, "smtp"), (BRANCH, "pop3"), (BRANCH, "smtp"))
    ]
    page = render_html(valid(document))
    empty = find(page, "td", class_="empty")
    assert [(e.attrs["data-column"]) for e in empty] == ["110-tcp-pop3"]
    assert cell(page, MAIL, "110-tcp-pop3")[0].attrs["data-verdict"] == ""


def test_the_dashboard_changes_only_its_heading_and_refresh(
    lab_document: dict[str, Any],
) -> None:
    report = render_html(lab_document).splitlines()
    dashboard = render_html(lab_document, dashboard=True, refresh_seconds=30).splitlines()
    changed = [line for line in dashboard if line not in report]
    assert changed == [
        '<meta http-equiv="refresh" content="30">',
        "<title>portcall dashboard (failures)</title>",
        '<body class="dashboard">',
        '<h1 id="title">portcall dashboard</h1>',
    ]
    assert len(dashboard) == len(report) + 1


def test_a_title_is_text(lab_document: dict[str, Any]) -> None:
    page = render_html(lab_document, title="<i>Q3</i> audit")
    assert find(page, "h1")[0].text == "<i>Q3</i> audit" and not find(page, "i")


def test_a_located_dc_shows_its_steps(lab_document: dict[str, Any]) -> None:
    document = copy.deepcopy(lab_document)
    step = copy.deepcopy(document["results"][0]) | {"key": "locate-dns", "host": "10.9.9.9"}
    document["locate"] = {
        "domain": "example.test",
        "dns_server": "127.0.0.53",
        "steps": [step],
        "dcs": [{"name": "dc1.example.test", "addresses": ["127.0.0.1"], "closest": True}],
        "chosen": "dc1.example.test",
        "chosen_address": "127.0.0.1",
        "why": "the only DC",
    }
    page = render_html(valid(document))
    assert find(page, "strong", id="locate-chosen")[0].text == "dc1.example.test"
    assert len(find(page, "li", class_="step")) == 1
    document["results"] = []
    document["hosts"] = []
    empty = render_html(valid(document))
    assert find(empty, "p", id="no-results") and not find(empty, "table")
