"""The report formats, one renderer each, in one table; and reading the document they render.

Every renderer takes a `portcall.check/1` document (as `check --json` writes it) and returns
the report as text. `portcall report`, `check --html/--junit` and the dashboard all look a
format up here, so adding one is adding a module and a row.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from portcall.report.document import ReportInputError, check_document
from portcall.report.html import render_html
from portcall.report.junit import render_junit
from portcall.report.markdown import render_markdown

__all__ = ["FORMATS", "Renderer", "ReportInputError", "load_document"]

Renderer = Callable[[dict[str, Any]], str]

FORMATS: dict[str, Renderer] = {
    "html": render_html,
    "junit": render_junit,
    "markdown": render_markdown,
}


def load_document(path: str) -> dict[str, Any]:
    """The `portcall.check/1` document in the file at `path` ("-" for standard input).

    Raises ReportInputError, whose message names the file and what is wrong with it.
    """
    name = "standard input" if path == "-" else f"'{path}'"
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ReportInputError(f"{name} does not exist") from None
    except IsADirectoryError:
        raise ReportInputError(f"{name} is a directory, not a file") from None
    except UnicodeDecodeError:
        raise ReportInputError(f"{name} is not UTF-8 text, so not JSON") from None
    except OSError as exc:
        raise ReportInputError(f"cannot read {name}: {exc.strerror or exc}") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReportInputError(
            f"{name} is not JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None
    try:
        return check_document(document)
    except ReportInputError as exc:
        raise ReportInputError(f"{name}: {exc}") from None
