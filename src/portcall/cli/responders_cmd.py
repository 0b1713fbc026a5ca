"""`portcall listen` and `portcall demo`: the responders that play the real services."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import click

from portcall.cli.common import (
    Seconds,
    UsageProblem,
    ad_domain_value,
    catalog_option,
    open_catalog,
    ports_option,
    protocol_option,
    select_entries,
)
from portcall.cli.group import EXIT_FAILURES, EXIT_HEALTHY, app
from portcall.probing import loop
from portcall.protocols.base import PROFILES
from portcall.report.json_report import dumps
from portcall.report.terminal import render


#: One label of a DNS name (RFC 1123 2.1: letters, digits, inner hyphens; 63 at most).
def _not_blank(value: str | None, option: str) -> str | None:
    """An option given as "" is a mistake (an unset variable), not a wish for the default."""
    if value is not None and not value.strip():
        raise UsageProblem(f"{option} is empty", f"give a value, or leave {option} out")
    return value


def _domain(value: str | None) -> str | None:
    """--domain: a DC's domain has two labels or more (a lone label is a NetBIOS name)."""
    return ad_domain_value(value, "--domain", min_labels=2)


def _no_blank_binds(values: tuple[str, ...]) -> tuple[str, ...]:
    for value in values:
        _not_blank(value, "--bind")
    return values


@app.command()
@click.option(
    "--bind",
    "binds",
    multiple=True,
    default=("127.0.0.1",),
    show_default=True,
    metavar="ADDR",
    callback=lambda _ctx, _param, values: _no_blank_binds(values),
    help="Listen on this address (repeatable; 0.0.0.0 or :: for every interface).",
)
@catalog_option
@ports_option
@protocol_option
@click.option(
    "--port-offset",
    type=click.IntRange(0, 65534),
    default=0,
    show_default=True,
    help="Listen on catalog port + N (10000 needs no root: 25 becomes 10025).",
)
@click.option(
    "--profile",
    type=click.Choice(PROFILES),
    default="exchange2003",
    show_default=True,
    help="Answer like Exchange 2003, Exchange 2000, or a neutral server.",
)
@click.option(
    "--hostname",
    metavar="NAME",
    callback=lambda _ctx, _param, value: _not_blank(value, "--hostname"),
    help="Name in banners and the certificate.",
)
@click.option(
    "--domain",
    metavar="DOMAIN",
    callback=lambda _ctx, _param, value: _not_blank(value, "--domain"),
    help="Active Directory domain the domain-controller rows answer for (DNS zone, Kerberos "
    "realm in upper case, CLDAP, NTLM); default: the --hostname's (dc1.example.com gives "
    "example.com).",
)
@click.option(
    "--rpc-port",
    type=click.IntRange(1, 65535),
    default=49152,
    show_default=True,
    help="The directory's RPC port the endpoint mapper names; served too when the endpoint "
    "mapper is, and moved by --port-offset like every port.",
)
@click.option("--cert", metavar="FILE", help="Present this certificate (PEM) instead of the lab's.")
@click.option("--key", metavar="FILE", help="The unencrypted private key (PEM) of --cert.")
@click.option("--cert-dir", metavar="DIR", help="Keep the lab CA and certificates here.")
@click.option(
    "--max-connections",
    type=click.IntRange(1, 65536),
    default=256,
    show_default=True,
    help="Connections open at once; more are closed at once.",
)
@click.option(
    "--idle-timeout",
    type=Seconds(0.1, 3600),
    default=30.0,
    show_default=True,
    help="Seconds a client is kept without sending a whole command (a client that trickles "
    "bytes counts as silent).",
)
@click.option(
    "--max-per-client",
    type=click.IntRange(0, 65536),
    default=0,
    show_default=True,
    help="Connections one client address may hold at once (0: no limit but --max-connections).",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Processes serving the same ports (SO_REUSEPORT), for a benchmark of many hosts.",
)
def listen(
    binds: tuple[str, ...],
    catalog_path: tuple[str, ...],
    ports_text: str | None,
    protocols: tuple[str, ...],
    port_offset: int,
    profile: str,
    hostname: str | None,
    domain: str | None,
    rpc_port: int,
    cert: str | None,
    key: str | None,
    cert_dir: str | None,
    max_connections: int,
    idle_timeout: float,
    max_per_client: int,
    workers: int,
) -> None:
    """Answer on every catalog port as the real service would, until Ctrl-C or SIGTERM.

    Prints one line per connection: who came in, on which port, what it said. Run it where
    the server will stand, then `portcall check` from the other side of the firewall. TLS
    ports present a lab certificate for the host name (made once, signed by a lab CA whose
    file is printed) unless --cert and --key give one. With --catalog windows-dc it plays a
    domain controller: DNS, Kerberos and CLDAP over UDP and TCP, the endpoint mapper and the
    RPC port it names, SMB and LDAP.
    """
    from portcall.responders.binding import BindError
    from portcall.responders.certs import LabError
    from portcall.responders.listen import domain_problem, prepare_tls, run_listen, servable
    from portcall.responders.server import ResponderConfig

    entries, missing = servable(select_entries(open_catalog(catalog_path), ports_text, protocols))
    for entry in missing:
        click.echo(f"Note: no responder speaks {entry.protocol} yet; {entry.label} is left out.")
    if not entries:
        raise UsageProblem("no row left to serve", "choose other rows with --ports or --protocol")
    if (cert is None) != (key is None) or (cert is not None and cert_dir is not None):
        raise UsageProblem(
            "--cert and --key go together, and exclude --cert-dir",
            "give --cert FILE --key FILE, or --cert-dir DIR for the lab certificates",
        )
    try:
        name, tls = prepare_tls(hostname, cert=cert, key=key, cert_dir=cert_dir)
    except LabError as exc:
        raise UsageProblem(str(exc), exc.hint) from exc
    problem = domain_problem(entries, name, _domain(domain))
    if problem is not None:
        raise UsageProblem(
            problem, "give --domain example.com, or a --hostname such as dc1.example.com"
        )
    config = ResponderConfig(
        binds=binds,
        port_offset=port_offset,
        hostname=name,
        profile=profile,
        max_connections=max_connections,
        max_per_client=max_per_client or None,
        idle_timeout=idle_timeout,
        domain=_domain(domain) or "",
        rpc_port=rpc_port,
    )
    try:
        responder = run_listen(entries, config, tls, click.echo, workers)
    except BindError as exc:
        raise UsageProblem(str(exc), exc.hint) from exc
    whose = f" by this process of {workers}" if workers > 1 else ""
    click.echo(
        f"Stopped: {responder.served} connections served, {responder.turned_away} turned away"
        f"{whose}."
    )


@app.command()
@click.option("--json", "as_json", is_flag=True, help="Write the plan, what was seen, the check.")
def demo(as_json: bool) -> None:
    """Check responders that have four faults on purpose: a tour of what portcall finds.

    Responders on 127.0.0.1 play an Exchange 2003 server on ports the system picks; one port
    has an expired certificate, one no STARTTLS, one is closed and one is answered by the
    wrong protocol. Needs no server and no network. Exit 0 when portcall saw exactly the
    planned faults, 2 otherwise.
    """
    from portcall.responders.demo import DEMO_HOSTNAME, demo_document, explanation, run_demo

    with tempfile.TemporaryDirectory(prefix="portcall-demo-") as directory:
        run = loop.run(run_demo(Path(directory)))
    if as_json:
        click.echo(dumps(demo_document(run)), nl=False)
    else:
        click.echo(
            f"Responders on 127.0.0.1 play Exchange 2003 as {DEMO_HOSTNAME}, on ports the "
            "system picked; each row shows the catalog port it stands for."
        )
        render(run.results, run.catalog, sys.stdout, rich_output=sys.stdout.isatty())
        for line in explanation(run):
            click.echo(line)
    sys.exit(EXIT_HEALTHY if run.as_planned else EXIT_FAILURES)
