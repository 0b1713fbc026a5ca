"""The Markdown report: a summary line and a GitHub-flavoured table, for a ticket or a PR.

GitHub renders HTML, links, mentions and emphasis found in Markdown, so every cell is
escaped: each ASCII punctuation character that Markdown or GitHub give a meaning is
backslash-escaped (CommonMark lets any ASCII punctuation be escaped so), which keeps a `|`
from ending a cell, a `<` from opening a tag, `[x](y)`, `http://` and `www.` from becoming
links and `@name` or `#1` from notifying anyone. Line breaks become spaces: a table row is one
line.
"""

from __future__ import annotations

import re
from typing import Any

from portcall.report.document import Matrix, column_of, matrix, visible_tree

#: What Markdown (CommonMark, GFM and GitHub's own autolinks) may read as syntax.
_SPECIAL = re.compile(r"([\\`*_\[\]<>#!|~@&$])")
#: "http://" and the like: GitHub links a scheme and "//" even without angle brackets.
_SCHEME = re.compile(r":(?=/)")
_WWW = re.compile(r"(www)\.", re.IGNORECASE)
_BREAKS = re.compile(r"\r\n|[\r\n\u2028\u2029]")

_HEADER = ("Host", "Port", "Key", "Verdict", "Health", "Reason", "Findings")


def cell(text: object) -> str:
    """`text` fit for one cell of a GFM table, shown literally."""
    flat = _BREAKS.sub(" ", str(text))
    escaped = _SCHEME.sub(r"\:", _SPECIAL.sub(r"\\\1", flat))
    return _WWW.sub(r"\1\\.", escaped).strip()


def render_markdown(document: dict[str, Any]) -> str:
    """The Markdown report of a `portcall.check/1` document."""
    shown = visible_tree(document)
    layout = matrix(shown)
    lines = [_summary(shown, layout), ""]
    if shown["results"]:
        lines += _table(shown["results"], layout)
    else:
        lines.append("No results.")
    lines += _host_notes(layout)
    lines += _locate(shown.get("locate"))
    return "\n".join(lines) + "\n"


def _summary(document: dict[str, Any], layout: Matrix) -> str:
    counts = ", ".join(f"{count} {verdict}" for verdict, count in layout.counts.items())
    hosts = len(layout.rows)
    return (
        f"**portcall check: {cell(document['health'])}**: {len(document['results'])} results "
        f"on {hosts} host{'s' if hosts != 1 else ''} ({counts or 'none'}); catalog "
        f"{cell(document['catalog'])}, {cell(document['started'])} to "
        f"{cell(document['finished'])}, portcall {cell(document['portcall'])}"
    )


def _table(results: list[dict[str, Any]], layout: Matrix) -> list[str]:
    labels = {(row.host, row.address): row.label for row in layout.rows}
    lines = ["| " + " | ".join(_HEADER) + " |", "|" + "---|" * len(_HEADER)]
    for result in results:
        host = labels[(result["host"], result["address"])]
        lines.append(_row(result, host))
    return lines


def _row(result: dict[str, Any], host: str) -> str:
    column = column_of(result)
    findings = "; ".join(f"{f['severity']} {f['code']}: {f['message']}" for f in result["findings"])
    required = " (required)" if result["required"] else ""
    cells = [
        host,
        column.label,
        column.key,
        result["verdict"],
        result["health"] + required,
        result["reason"],
        findings,
    ]
    return "| " + " | ".join(cell(value) for value in cells) + " |"


def _host_notes(layout: Matrix) -> list[str]:
    notes = [f"- {cell(row.label)}: {cell(note)}" for row in layout.rows for note in row.notes]
    return ["", *notes] if notes else []


def _locate(locate: Any) -> list[str]:
    if not isinstance(locate, dict):
        return []
    chosen = locate.get("chosen") or "none"
    line = (
        f"DC locator for {cell(locate.get('domain', ''))}: chosen {cell(chosen)}; "
        f"{cell(locate.get('why', ''))}"
    )
    steps = [
        f"- {cell(step['key'])} {cell(step['host'])}: {cell(step['verdict'])}: "
        f"{cell(step['reason'])}"
        for step in locate.get("steps", [])
    ]
    return ["", line, *steps]
