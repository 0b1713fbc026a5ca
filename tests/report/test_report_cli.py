"""`portcall report`: a saved check to HTML, JUnit or Markdown, and bad input as usage errors."""

from __future__ import annotations

import io
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from portcall.report.formats import FORMATS
from tests.conftest import Cli
from tests.report.conftest import DEAD


def test_html_to_the_screen_by_default(portcall: Cli, lab_json: Path) -> None:
    done = portcall("report", lab_json)
    assert done.code == 0, done.err
    document = json.loads(lab_json.read_text())
    assert done.out == FORMATS["html"](document)
    assert done.out.startswith("<!DOCTYPE html>")


@pytest.mark.parametrize(
    ("name", "options", "expected"),
    [
        ("report.html", (), "html"),
        ("report.xml", (), "junit"),
        ("report.md", (), "markdown"),
        ("report.txt", ("--format", "markdown"), "markdown"),
        ("report.xml", ("--format", "html"), "html"),
    ],
)
def test_the_format_from_the_option_or_the_suffix(
    portcall: Cli,
    lab_json: Path,
    tmp_path: Path,
    name: str,
    options: tuple[str, ...],
    expected: str,
) -> None:
    target = tmp_path / name
    done = portcall("report", lab_json, *options, "-o", target)
    assert (done.code, done.out, done.err) == (0, "", "")
    document = json.loads(lab_json.read_text())
    assert target.read_text(encoding="utf-8") == FORMATS[expected](document)


def test_standard_input(portcall: Cli, lab_json: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(lab_json.read_text()))
    done = portcall("report", "-", "--format", "junit")
    assert done.code == 0, done.err
    assert ET.fromstring(done.out.encode()).get("tests") == "52"


def test_a_title(portcall: Cli, lab_json: Path) -> None:
    done = portcall("report", lab_json, "--title", "Q3 <audit>")
    assert '<h1 id="title">Q3 &lt;audit&gt;</h1>' in done.out
    refused = portcall("report", lab_json, "--format", "junit", "--title", "x")
    assert refused.code == 64 and "--title is for the HTML report" in refused.err


def _write(path: Path, content: Any) -> Path:
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (None, "does not exist"),
        ("{not json", "is not JSON (line 1, column 2"),
        ([1, 2], "the JSON is a list, not an object"),
        ({"results": []}, "has no schema field"),
        ({"schema": "portcall.demo/1"}, "schema is 'portcall.demo/1', not portcall.check/1"),
        ("lab:results[3].port=443", "results[3].port is a string"),
        ("lab:results[0].verdict=open", "results[0].verdict is 'open', not one of ok, refused"),
        ("lab:-catalog", "the document has no field 'catalog'"),
        ("lab:results[7].tls=TLSv1.3", "results[7].tls is a string"),
    ],
)
def test_bad_input_is_a_usage_error(
    portcall: Cli, lab_document: dict[str, Any], tmp_path: Path, content: Any, says: str
) -> None:
    path = tmp_path / "results.json"
    if isinstance(content, str) and content.startswith("lab:"):
        content = _edited(lab_document, content[4:])
    if content is not None:
        _write(path, content)
    done = portcall("report", path)
    assert done.code == 64 and done.out == ""
    assert f"Error: '{path}'" in done.err and says in done.err
    assert "Hint: give the JSON that `portcall check --json -o FILE` wrote" in done.err
    assert "Traceback" not in done.err


def _edited(document: dict[str, Any], change: str) -> dict[str, Any]:
    edited = json.loads(json.dumps(document))
    if change.startswith("-"):
        del edited[change[1:]]
        return edited
    where, value = change.split("=")
    index = int(where.split("[")[1].split("]")[0])
    field = where.split(".")[1]
    edited["results"][index][field] = value
    return edited


def test_a_directory_and_an_unknown_format(portcall: Cli, lab_json: Path, tmp_path: Path) -> None:
    done = portcall("report", tmp_path)
    assert done.code == 64 and "is a directory, not a file" in done.err
    done = portcall("report", lab_json, "--format", "pdf")
    assert done.code == 64 and "'pdf' is not one of 'html', 'junit', 'markdown'" in done.err
    done = portcall("report", lab_json, "-o", tmp_path / "missing" / "r.html")
    assert done.code == 64 and "does not exist" in done.err


def test_report_later_is_check_now(portcall: Cli, tmp_path: Path) -> None:
    """The report made later from the JSON equals the one `check --html/--junit` wrote."""
    saved, html, junit = tmp_path / "run.json", tmp_path / "run.html", tmp_path / "run.xml"
    check = portcall(
        "check",
        DEAD,
        "--ports",
        "25,110",
        "--timeout",
        "1",
        "--json",
        "-o",
        saved,
        "--html",
        html,
        "--junit",
        junit,
    )
    # Nothing listens on that address: two refused ports, a host that answers nothing.
    assert check.code == 1, check.err
    # check builds the document once per output, so "finished" may differ by a few
    # microseconds between the JSON and the HTML; all the rest is the same.
    written = html.read_text(encoding="utf-8")
    finished = json.loads(saved.read_text())["finished"]
    stamp = re.search(r'id="finished"><time datetime="([^"]+)"', written)
    assert stamp is not None
    assert portcall("report", saved).out == written.replace(stamp.group(1), finished)
    assert portcall("report", saved, "--format", "junit").out == junit.read_text(encoding="utf-8")
