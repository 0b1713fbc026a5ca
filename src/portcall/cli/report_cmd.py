"""portcall report: the HTML, JUnit or Markdown report of a saved check (`check --json -o F`)."""

from __future__ import annotations

from pathlib import PurePath

import click

from portcall.cli.common import UsageProblem, output_option, write_atomically
from portcall.cli.group import app

#: The format an output file's suffix implies when --format is not given.
_BY_SUFFIX = {".xml": "junit", ".md": "markdown", ".markdown": "markdown"}
_FORMAT_NAMES = ("html", "junit", "markdown")


def chosen_format(format_name: str | None, output: str | None) -> str:
    """--format, else what -o's suffix implies (.xml JUnit, .md Markdown), else HTML."""
    if format_name is not None:
        return format_name
    suffix = PurePath(output).suffix.lower() if output else ""
    return _BY_SUFFIX.get(suffix, "html")


@app.command("report")
@click.argument("results", metavar="RESULTS.json")
@click.option(
    "--format",
    "format_name",
    type=click.Choice(_FORMAT_NAMES),
    help="The report: html (one self-contained page), junit (XML for CI test views) or "
    "markdown (a table for a ticket or a pull request). Default: from -o's suffix (.xml "
    "junit, .md markdown), else html.",
)
@click.option("--title", metavar="TEXT", help="The HTML report's heading and title.")
@output_option
def report(results: str, format_name: str | None, title: str | None, output: str | None) -> None:
    """Write the report of a check saved with `portcall check --json -o RESULTS.json`.

    RESULTS.json is any portcall.check/1 document ('-' reads standard input). The report
    goes to the screen, or with -o to FILE. Exits 0 once the report is written, whatever the
    health of the checked ports (the check's own exit code says that), 64 for bad input.
    """
    # Imported here: the templates are only read when a report is made.
    from portcall.report.formats import FORMATS, ReportInputError, load_document
    from portcall.report.html import render_html

    try:
        document = load_document(results)
    except ReportInputError as exc:
        raise UsageProblem(
            str(exc),
            "give the JSON that `portcall check --json -o FILE` wrote (schema portcall.check/1)",
        ) from exc
    name = chosen_format(format_name, output)
    if title is not None and name != "html":
        raise UsageProblem("--title is for the HTML report", "add --format html, or drop --title")
    text = render_html(document, title=title) if name == "html" else FORMATS[name](document)
    if output is None:
        click.echo(text, nl=False)
    else:
        write_atomically(output, text)
