"""`portcall listen`: serve catalog ports until a signal, saying who reached each one."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import signal
import socket
import ssl
import sys
from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path
from typing import Final

from portcall.catalog import PortEntry, TlsMode, port_text
from portcall.probing.targets import TargetError, parse_target
from portcall.protocols import SERVERS
from portcall.protocols.base import LocalProtocolError, ServerOptions
from portcall.responders.certs import LabError, default_lab_dir, ensure_lab, server_context
from portcall.responders.log import line_printer
from portcall.responders.server import HOST_CERTIFICATE, RPC_KEY, Responder, ResponderConfig

_TLS_WORDS = {TlsMode.NONE: "", TlsMode.STARTTLS: ", STARTTLS", TlsMode.IMPLICIT: ", TLS"}
#: The protocols whose server roles answer for an Active Directory domain.
DOMAIN_PROTOCOLS: Final = frozenset({"dns", "kerberos", "kpasswd", "cldap", "smb"})


@dataclass(frozen=True)
class TlsSetup:
    """The certificate the responders present, and what to tell clients about trusting it."""

    contexts: dict[str, ssl.SSLContext]
    description: list[str]


def default_hostname() -> str:
    """This machine's name, without a DNS query (a responder must start with no network)."""
    return socket.gethostname().lower() or "localhost"


def check_hostname(name: str) -> str:
    """`name` if it can stand in a certificate and a banner; raises `LabError` otherwise."""
    hint = "give the one name clients use for this server, such as mail.example.com"
    try:
        targets = parse_target(name)
    except TargetError as exc:
        raise LabError(f"--hostname: {exc}", hint) from exc
    if "/" in name or len(targets) != 1:
        raise LabError(f"--hostname: '{name}' is a range, not one host name", hint)
    return targets[0].name


def prepare_tls(
    hostname: str | None, *, cert: str | None, key: str | None, cert_dir: str | None
) -> tuple[str, TlsSetup]:
    """The host name to claim, and the TLS setup for it; raises `LabError` for bad input."""
    name = check_hostname(hostname or default_hostname())
    directory = Path(cert_dir).expanduser() if cert_dir else None
    return name, tls_setup(name, cert=cert, key=key, cert_dir=directory)


def tls_setup(
    hostname: str, *, cert: str | None, key: str | None, cert_dir: Path | None
) -> TlsSetup:
    """The user's certificate when given, else the lab's (made on first use)."""
    if cert is not None and key is not None:
        context = server_context(cert, key)
        return TlsSetup({HOST_CERTIFICATE: context}, [f"TLS: certificate {cert} (key {key})"])
    lab = ensure_lab(cert_dir or default_lab_dir(), hostname)
    context = server_context(lab.host_cert, lab.host_key)
    return TlsSetup(
        {HOST_CERTIFICATE: context},
        [
            f"TLS: lab certificate {lab.host_cert} for {hostname}, localhost, 127.0.0.1 and ::1",
            f"     signed by the lab CA {lab.ca_cert}; clients trust it with",
            f"     portcall check --ca {lab.ca_cert} --servername {hostname} TARGET",
        ],
    )


def listening_lines(entries: list[PortEntry], ports: dict[str, int]) -> list[str]:
    """One line per row: catalog port, the port really listened on, what answers there.
    UDP ports read "53/udp": 53 over UDP and over TCP are different sockets, and a firewall
    rule for one passes nothing of the other."""
    lines = [f"  {'port':>9}  {'on':>9}  {'key':<12} service"]
    for entry in entries:
        service = _service(entry)
        where, on = entry.where, port_text(ports[entry.key], entry.transport)
        lines.append(f"  {where:>9}  {on:>9}  {entry.key:<12} {service}")
    return lines


def _service(entry: PortEntry) -> str:
    if entry.key == RPC_KEY:
        return "directory RPC port (DRSUAPI, Netlogon), as the endpoint mapper names it"
    return f"{entry.label}{_TLS_WORDS[entry.tls]}"


def domain_problem(entries: list[PortEntry], hostname: str, domain: str | None) -> str | None:
    """Why the domain-controller rows among `entries` cannot be served, or None: they need an
    Active Directory domain, from --domain or from a host name of at least two labels."""
    if not any(entry.protocol in DOMAIN_PROTOCOLS for entry in entries):
        return None
    try:
        ServerOptions(hostname=hostname, domain=domain or "").ad_domain()
    except LocalProtocolError:
        return (
            f"the domain-controller rows need an Active Directory domain; {hostname!r} names none"
        )
    return None


def servable(entries: list[PortEntry]) -> tuple[list[PortEntry], list[PortEntry]]:
    """The rows this version has a server role for, and those it has none for yet."""
    served: list[PortEntry] = []
    missing: list[PortEntry] = []
    for entry in entries:
        (served if has_server(entry.protocol) else missing).append(entry)
    return served, missing


def has_server(protocol: str) -> bool:
    """Whether the server role `SERVERS` names for `protocol` can be imported."""
    module_name, class_name = SERVERS[protocol].split(":")
    try:
        return hasattr(import_module(module_name), class_name)
    except ImportError:
        return False


def run_listen(
    entries: list[PortEntry],
    config: ResponderConfig,
    tls: TlsSetup,
    echo: Callable[[str], None],
    workers: int = 1,
) -> Responder:
    """Serve `entries` until SIGINT/SIGTERM, one line per connection on stdout; returns the
    stopped responder (for its counters). Raises `BindError` when a port cannot be had.

    With `workers` above 1, as many processes serve the same ports (SO_REUSEPORT): this one
    and `workers - 1` forked from it, each with its own event loop and limits, so that a
    benchmark of hundreds of hosts is not held back by one core. They stop with this one.
    """
    if workers > 1:
        config = dataclasses.replace(config, reuse_port=True)
    responder = Responder(entries, config, tls=tls.contexts, on_connection=line_printer(sys.stdout))
    children = [_fork_worker(entries, config, tls) for _ in range(workers - 1)]

    def ready(ports: dict[str, int]) -> None:
        echo(f"portcall listen: {config.profile} as {config.hostname} on {', '.join(config.binds)}")
        if any(entry.protocol in DOMAIN_PROTOCOLS for entry in entries):
            domain = ServerOptions(hostname=config.hostname, domain=config.domain).ad_domain()
            echo(f"Domain controller of {domain} (realm {domain.upper()})")
        for line in [*tls.description, *listening_lines(responder.entries, ports)]:
            echo(line)
        echo(
            f"Ready: {len(ports)} ports. One line per connection (or UDP datagram) follows; "
            "Ctrl-C stops."
        )

    try:
        asyncio.run(serve_until_signalled(responder, ready))
    finally:
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGTERM)
        for child in children:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(child, 0)
    return responder


def _fork_worker(entries: list[PortEntry], config: ResponderConfig, tls: TlsSetup) -> int:
    """A forked process serving the same ports; its pid. It ends on SIGTERM, or when this
    process is gone (it looks every second), and never returns here."""
    parent = os.getpid()
    child = os.fork()
    if child:
        return child
    code = 0
    try:
        printer = line_printer(sys.stdout)
        responder = Responder(entries, config, tls=tls.contexts, on_connection=printer)
        asyncio.run(serve_until_signalled(responder, lambda _ports: None, parent=parent))
    except BaseException:
        code = 1
    finally:
        sys.stdout.flush()
        os._exit(code)


async def serve_until_signalled(
    responder: Responder, on_ready: Callable[[dict[str, int]], None], parent: int | None = None
) -> None:
    """Start `responder`, call `on_ready` with its ports, and serve until SIGINT or SIGTERM
    (or, for a worker, until its `parent` process is gone)."""
    ports = await responder.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM)
    for number in signals:
        loop.add_signal_handler(number, stop.set)
    watch = asyncio.create_task(_orphaned(parent, stop)) if parent is not None else None
    try:
        on_ready(ports)
        await stop.wait()
    finally:
        if watch is not None:
            watch.cancel()
        for number in signals:
            loop.remove_signal_handler(number)
        await responder.stop()


async def _orphaned(parent: int, stop: asyncio.Event) -> None:
    """Set `stop` once the process that forked this one has ended."""
    while os.getppid() == parent:
        await asyncio.sleep(1.0)
    stop.set()
