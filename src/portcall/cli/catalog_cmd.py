"""`portcall ports`: show the port catalog."""

from __future__ import annotations

import json

import click

from portcall.catalog import PROTOCOLS, Catalog, PortEntry
from portcall.cli.common import UsageProblem, catalog_option, open_catalog
from portcall.cli.group import app
from portcall.report.inert import inert


@app.command()
@catalog_option
@click.option("--protocol", type=click.Choice(PROTOCOLS), help="Only rows of this protocol.")
@click.option("--port", type=click.IntRange(1, 65535), help="Only the row of this port.")
@click.option("--json", "as_json", is_flag=True, help="Print the catalog as JSON.")
def ports(
    catalog_path: tuple[str, ...], protocol: str | None, port: int | None, as_json: bool
) -> None:
    """Show the port catalog: what each port is for, what it needs, what to check."""
    catalog = open_catalog(catalog_path)
    entries = catalog.select(
        ports={port} if port else None, protocols={protocol} if protocol else None
    )
    if as_json:
        document = {"catalog": catalog.name, "title": catalog.title, "source": catalog.source}
        click.echo(json.dumps({**document, "ports": [e.to_dict() for e in entries]}, indent=2))
        return
    if not entries:
        raise UsageProblem("no catalog row matches", "run `portcall ports` to see every row")
    _print_catalog(catalog, entries)


def _print_catalog(catalog: Catalog, entries: list[PortEntry]) -> None:
    # A catalog file may come from elsewhere: its text is shown inert, like a server's.
    title = inert(catalog.title or catalog.name)
    click.echo(f"{title} — {len(entries)} of {len(catalog.entries)} ports")
    if catalog.source:
        click.echo(f"Source: {inert(catalog.source)}")
    for e in entries:
        tls = {"none": "", "starttls": ", STARTTLS", "implicit": ", TLS from the first byte"}[e.tls]
        optional = " (optional)" if e.optional else ""
        click.echo(f"\n{e.port}/{e.transport}  {inert(e.key)}  {e.label}{tls}{optional}")
        for label, text in (
            ("served by", e.component),
            ("purpose", e.description),
            ("needs", e.needs),
            ("if it fails", e.hint),
        ):
            click.echo(f"  {label + ':':<12} {inert(text, 4000)}")
