"""The terminal report, plain and rich, shows a hostile peer's words without obeying them:
escapes, bidi and zero-width characters, carriage returns and rich markup all arrive inert."""

from __future__ import annotations

import dataclasses
import io

import pytest

from portcall.catalog import load_catalog
from portcall.report.terminal import render
from tests.report.test_json_inert import hostile_result

#: Raw characters no report may carry: ESC, BEL, CR, the C1 CSI, bidi override and isolate,
#: zero-width space, Arabic letter mark.
FORBIDDEN = "\x1b\x07\r\x9b\u202e\u2066\u200b\u061c"


@pytest.mark.parametrize("rich_output", [False, True], ids=["plain", "rich"])
def test_a_hostile_result_is_rendered_inert(
    rich_output: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "400")  # no escape folded across two lines of a cell
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    result = hostile_result()
    assert result.tls is not None and result.tls.certificate is not None
    # Without a common name the subject is shown.
    result.tls.certificate = dataclasses.replace(result.tls.certificate, common_name="")
    stream = io.StringIO()
    render([result], load_catalog(), stream, rich_output=rich_output)
    report = stream.getvalue()
    assert [c for c in report if c in FORBIDDEN] == []
    # The reason quoting the greeting, and the finding, are there, escaped; markup is literal.
    assert "\\x1b[2J\\x1b]0;owned\\x07<script>" in report
    assert "[red]x[/red]" in report
    assert "\\u202eabc\\u200b\\u061c\\x0d\\x0arow" in report
    assert "cert-self-signed" in report
    # No line of the report begins with the text after the peer's CR LF.
    assert not [line for line in report.splitlines() if line.lstrip("│ ").startswith("row")]
    if rich_output:
        assert "CN=\\x1b[2J" in report  # the certificate subject, in the TLS column
