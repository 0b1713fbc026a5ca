"""The HTML report: one self-contained file, a summary and a host x port matrix.

Rendered by Jinja2 from report/templates, with autoescape on: every string of the document
(a banner, a reason, a certificate field) reaches the page as text, never as markup. The page
fetches nothing (its CSS and script are inline) and carries all its data in the DOM; the script
only sorts rows and hides what the filters leave out, reading the filters from the address's
fragment too (``report.html#verdict=filtered&host=mail``), so a link can open a filtered view.

The dashboard of `portcall serve` is this page with `dashboard=True`: another heading and an
automatic refresh, nothing else.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import jinja2

from portcall.report.document import VERDICTS, Column, matrix, visible_tree


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("portcall.report", "templates"),
        # On for every template whatever its name: peer text must never become markup.
        autoescape=True,
        # A field missing from a hand-written document shows as nothing rather than failing.
        undefined=jinja2.ChainableUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_html(
    document: dict[str, Any],
    *,
    title: str | None = None,
    refresh_seconds: int | None = None,
    dashboard: bool = False,
) -> str:
    """The report of a `portcall.check/1` document as one HTML page.

    `dashboard` changes the heading and the title only; `refresh_seconds` makes the browser
    load the page again after that many seconds.
    """
    shown = visible_tree(document)
    layout = matrix(shown)
    default = "portcall dashboard" if dashboard else f"portcall report: {shown['catalog']}"
    template = _environment().get_template("report.html")
    return template.render(
        doc=shown,
        matrix=layout,
        title=title or default,
        refresh_seconds=refresh_seconds,
        dashboard=dashboard,
        verdicts=VERDICTS,
        column_id=column_id,
        locate=shown.get("locate") if isinstance(shown.get("locate"), dict) else None,
    )


def column_id(column: Column) -> str:
    """A token for the column, fit for a data attribute and a fragment: 25-tcp-smtp."""
    return f"{column.port}-{column.transport}-{column.key}"
