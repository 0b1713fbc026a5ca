"""The HTML report in a real browser: the DOM after its script ran, the filters a link's
fragment sets, a hostile banner staying text, and the screenshot the README shows."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from portcall.report.html import render_html
from tests.report.chromium import dump_dom, find, png_size, screenshot
from tests.report.conftest import BRANCH, DEAD, HOSTILE_BANNER, MAIL

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = ROOT / "docs" / "report.png"


@pytest.fixture(scope="module")
def lab_page(lab_document: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    page = tmp_path_factory.mktemp("page") / "report.html"
    page.write_text(render_html(lab_document), encoding="utf-8")
    return page


def shown_hosts(dom: str) -> list[str]:
    return [
        r.attrs["data-host"] for r in find(dom, "tr", class_="host-row") if "hidden" not in r.attrs
    ]


def test_the_matrix_after_the_script_ran(lab_page: Path, lab_document: dict[str, Any]) -> None:
    dom = dump_dom(lab_page)
    cells = find(dom, "td", class_="cell")
    assert len(cells) == len(lab_document["results"])
    verdicts = sorted(c.attrs["data-verdict"] for c in cells)
    assert verdicts == sorted(r["verdict"] for r in lab_document["results"])
    assert all(f"verdict-{c.attrs['data-verdict']}" in c.classes for c in cells)
    assert not find(dom, class_="filtered-out")
    assert shown_hosts(dom) == [MAIL, BRANCH, DEAD]
    assert find(dom, "span", id="shown-count")[0].text == "3 of 3 hosts shown"


def test_a_verdict_filter_from_the_fragment(lab_page: Path) -> None:
    dom = dump_dom(lab_page, "verdict=wrong-protocol,no-starttls")
    # The dead host has neither verdict: its row is hidden; the others keep only those cells.
    assert shown_hosts(dom) == [MAIL, BRANCH]
    kept = [c for c in find(dom, "td", class_="cell") if "filtered-out" not in c.classes]
    assert sorted(c.attrs["data-verdict"] for c in kept) == [
        "no-starttls",
        "wrong-protocol",
        "wrong-protocol",
    ]
    assert find(dom, "span", id="shown-count")[0].text == "2 of 3 hosts shown"
    boxes = {b.attrs["value"]: "checked" in b.attrs for b in find(dom, "input", name="verdict")}
    assert boxes["ok"] is True  # the attribute is the default; the state is in the classes


def test_a_host_filter_and_a_sort_from_the_fragment(lab_page: Path) -> None:
    dom = dump_dom(lab_page, "host=0.0.2")
    assert shown_hosts(dom) == [BRANCH]
    assert find(dom, "input", id="filter-host")
    # Sorted by the health of port 25: the host whose SMTP port is broken comes first.
    dom = dump_dom(lab_page, "sort=column:25-tcp-smtp")
    assert shown_hosts(dom) == [BRANCH, MAIL, DEAD]
    dom = dump_dom(lab_page, "sort=health")
    assert shown_hosts(dom) == [MAIL, BRANCH, DEAD]


def test_a_hostile_banner_is_text_in_the_browser(
    hostile_document: dict[str, Any], tmp_path: Path
) -> None:
    page = tmp_path / "hostile.html"
    page.write_text(render_html(hostile_document), encoding="utf-8")
    dom = dump_dom(page)
    assert [b.text for b in find(dom, "pre", class_="banner")] == [HOSTILE_BANNER]
    scripts = find(dom, "script")
    assert len(scripts) == 1 and "alert" not in scripts[0].text
    assert not find(dom, "img")
    # The product said <script>document.title='owned'</script>: the title is still ours.
    assert find(dom, "title")[0].text == "portcall report: exchange-2000 (failures)"
    assert find(dom, "span", id="shown-count")[0].text == "1 of 1 hosts shown"


def test_the_screenshot(lab_page: Path, tmp_path: Path) -> None:
    """The README's picture of a report: three hosts, faults among healthy ports. It is
    taken every run; docs/report.png is replaced only when missing or when asked for with
    PORTCALL_SCREENSHOT=update, so that a test run leaves the tree as it was."""
    shot = tmp_path / "report.png"
    screenshot(lab_page, shot)
    assert png_size(shot) == (1280, 900)
    assert 10_000 < shot.stat().st_size < 300_000
    if not SCREENSHOT.exists() or os.environ.get("PORTCALL_SCREENSHOT") == "update":
        SCREENSHOT.write_bytes(shot.read_bytes())
    assert png_size(SCREENSHOT) == (1280, 900)
