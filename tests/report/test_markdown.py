"""The Markdown report, rendered by a real CommonMark parser with tables and raw HTML on (as
GitHub renders it): one table row per result, and nothing a server said turns into markup."""

from __future__ import annotations

import re
from typing import Any

from markdown_it import MarkdownIt

from portcall.report.formats import FORMATS
from portcall.report.markdown import cell, render_markdown
from tests.report.chromium import elements, find
from tests.report.conftest import DEAD, HOSTILE_BANNER

COLUMNS = 7


def as_github_would(text: str) -> str:
    parser = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
    return parser.render(text)


def test_one_row_per_result(lab_document: dict[str, Any]) -> None:
    text = render_markdown(lab_document)
    page = as_github_would(text)
    rows = find(page, "tr")
    assert len(rows) == len(lab_document["results"]) + 1
    assert len(find(page, "td")) == COLUMNS * len(lab_document["results"])
    assert [e.text for e in find(page, "th")] == [
        "Host",
        "Port",
        "Key",
        "Verdict",
        "Health",
        "Reason",
        "Findings",
    ]
    summary = text.splitlines()[0]
    assert summary.startswith("**portcall check: failures**: 51 results on 3 hosts (")
    assert "2 wrong-protocol" in summary and "1 no-starttls" in summary
    assert f"- {DEAD}: no checked port answers" in text


def test_a_row_says_what_was_found(lab_document: dict[str, Any]) -> None:
    page = as_github_would(FORMATS["markdown"](lab_document))
    cells = [e.text for e in find(page, "td")]
    rows = [cells[i : i + COLUMNS] for i in range(0, len(cells), COLUMNS)]
    imaps = next(r for r in rows if r[0] == "127.0.0.1" and r[2] == "imaps")
    assert imaps[1:5] == ["993/tcp", "imaps", "ok", "failures"]
    assert imaps[6].startswith("error cert-expired: certificate expired")
    result = next(
        r for r in lab_document["results"] if r["host"] == "127.0.0.1" and r["key"] == "imaps"
    )
    assert imaps[5] == result["reason"]


def test_peer_text_cannot_break_the_table_or_add_markup(hostile_document: dict[str, Any]) -> None:
    text = render_markdown(hostile_document)
    page = as_github_would(text)
    tags = {e.tag for e in elements(page)}
    assert tags <= {"p", "strong", "table", "thead", "tbody", "tr", "th", "td"}, tags
    assert len(find(page, "td")) == COLUMNS * 2
    cells = [e.text for e in find(page, "td")]
    assert cells[5].startswith("25 wrong-protocol: greeting <script>document.title=")
    assert "| col \\x1b[31m\\x0anext" in cells[5]
    assert cells[6] == f"warning cert-expiring: expires soon {HOSTILE_BANNER}"
    assert cells[13] == "warning cert-self-signed: self-signed `x` | y"
    # Nothing a linkifier would take for a link is left as it was.
    assert not re.search(r"https?://|www\.", text)


def test_a_cell_is_one_line() -> None:
    assert cell("one\r\ntwo\nthree\u2028four") == "one two three four"
    assert cell("a|b") == "a\\|b" and cell("`x`") == "\\`x\\`"
    assert cell("<img src=x>") == "\\<img src=x\\>"
    assert cell("[a](http://x)") == "\\[a\\](http\\://x)"
