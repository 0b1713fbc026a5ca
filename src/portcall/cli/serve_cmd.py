"""`portcall serve`: the Prometheus exporter (the library is `portcall.serve`)."""

from __future__ import annotations

from typing import Any

import click

from portcall.catalog import Catalog
from portcall.cli.common import (
    Seconds,
    UsageProblem,
    catalog_option,
    check_trust_store,
    open_catalog,
)
from portcall.cli.group import app
from portcall.probing import loop
from portcall.probing.gates import open_file_budget
from portcall.probing.scheduler import Limits, connections_wanted
from portcall.serve import ConfigError, Exporter, ServeConfig, combine, read_file
from portcall.serve import config as settings
from portcall.serve.app import serve_until_stopped

_CONFIG_HELP = """Read defaults from FILE (TOML; the command line wins): listen = "HOST:PORT",
allow = ["NETWORK", ...], catalog = "NAME|FILE" (or a list), timeout = SECONDS,
probe_timeout = SECONDS, max_concurrent = N, ca = "FILE", save = true|false, db = "FILE".
Relative files are read from FILE's directory."""


@app.command()
@click.option(
    "--listen",
    metavar="HOST:PORT",
    help=f"Answer HTTP here ([::1]:PORT for IPv6).  [default: {settings.DEFAULT_HOST}:"
    f"{settings.DEFAULT_PORT}]",
)
@click.option(
    "--allow",
    "allow",
    multiple=True,
    metavar="NETWORK",
    help="Probe only targets inside this network (repeatable); a name must resolve inside "
    "with every address.  [default: 127.0.0.0/8 and ::1/128]",
)
@click.option("--config", "config_path", metavar="FILE", help=_CONFIG_HELP)
@catalog_option
@click.option(
    "--timeout",
    type=Seconds(*settings.TIMEOUT_RANGE),
    help="Seconds one connection may take.  [default: 5]",
)
@click.option(
    "--probe-timeout",
    type=Seconds(*settings.PROBE_TIMEOUT_RANGE),
    help="Seconds one /probe may take; Prometheus's scrape timeout lowers it.  [default: 15]",
)
@click.option(
    "--max-concurrent",
    type=click.IntRange(*settings.CONCURRENT_RANGE),
    help="Probes at once; one more is answered 503.  [default: 4]",
)
@click.option("--ca", "ca", metavar="FILE", help="Trust these CA certificates (PEM).")
@click.option(
    "--save/--no-save",
    default=None,
    help="Record each /probe in the history database (see portcall history).",
)
@click.option("--db", "db", metavar="FILE", help="The history database --save writes to.")
def serve(config_path: str | None, **options: Any) -> None:
    """Serve Prometheus metrics of checks made on request, until Ctrl-C or SIGTERM.

    \b
    /probe?target=HOST[&ports=PORTS][&protocol=PROTO]  check HOST, answer metrics
    /metrics                                            the exporter's own metrics
    /                                                   a dashboard of the latest results

    Only targets inside --allow are probed (403 for others), loopback unless
    told. A scrape configuration for Prometheus is in docs/prometheus.yml.
    """
    config = _config(config_path, options)
    catalog = open_catalog(config.catalog)
    if config.ca is not None:
        check_trust_store(config.ca)
    _file_budget(config, catalog)
    store = _open_store(config)
    exporter = Exporter(config, catalog, store=store)
    try:
        loop.run(_serve(exporter))
    finally:
        if store is not None:
            store.close()


def _config(path: str | None, options: dict[str, Any]) -> ServeConfig:
    """The defaults, then the file's settings, then the options given here."""
    try:
        file_values = read_file(path) if path is not None else {}
    except ConfigError as exc:
        raise UsageProblem(f"--config: {exc}", exc.hint or "see portcall serve --help") from exc
    try:
        config = combine(file_values, _given(options))
    except ConfigError as exc:
        raise UsageProblem(str(exc), exc.hint or None) from exc
    if config.db is not None and not config.save:
        raise UsageProblem("--db is the database of --save", "add --save, or leave --db out")
    return config


def _given(options: dict[str, Any]) -> dict[str, Any]:
    values = {k: options[k] for k in ("timeout", "probe_timeout", "max_concurrent", "ca", "db")}
    values["save"] = options["save"]
    values["catalog"] = tuple(options["catalog_path"]) or None
    if options["listen"] is not None:
        try:
            values["host"], values["port"] = settings.parse_listen(options["listen"])
        except ConfigError as exc:
            raise UsageProblem(f"--{exc}", exc.hint) from exc
    try:
        values["allow"] = tuple(settings.parse_network(n) for n in options["allow"]) or None
    except ConfigError as exc:
        raise UsageProblem(f"--{exc}", exc.hint) from exc
    return values


def _file_budget(config: ServeConfig, catalog: Catalog) -> None:
    wanted = connections_wanted(Limits(), config.max_concurrent, len(catalog.entries))
    _, note = open_file_budget(wanted)
    if note is not None:
        click.echo(f"warning: {note}", err=True)


def _open_store(config: ServeConfig) -> Any:
    """The history database, opened now so that an unusable one stops the start."""
    if not config.save:
        return None
    from portcall.history.store import HistoryError, Store

    try:
        return Store(config.db)
    except HistoryError as exc:
        raise UsageProblem(f"--save: {exc}", "give another database with --db FILE") from exc


async def _serve(exporter: Exporter) -> None:
    ready = False

    def announce() -> None:
        nonlocal ready
        ready = True
        where = ", ".join(_url(host, port) for host, port in exporter.listening)
        allowed = ", ".join(str(n) for n in exporter.config.allow)
        click.echo(f"portcall serve: listening on {where}; probing allowed in {allowed}")

    try:
        await serve_until_stopped(exporter, announce)
    except OSError as exc:
        if ready:
            raise
        raise UsageProblem(
            f"--listen: cannot listen on {exporter.config.listen}: {exc.strerror or exc}",
            "choose another address or port with --listen HOST:PORT",
        ) from exc


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"
