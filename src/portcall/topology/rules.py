"""The seven rules that turn a deployment into the flows it needs.

Rules 2 and 3 follow Microsoft's front-end/back-end white paper and its domain-controller
port list (KB 280132, KB 270836): front-ends relay to back-ends without TLS, and every
Exchange server needs DNS, Kerberos, LDAP, the RPC endpoint mapper, SMB and the directory's
RPC port on its domain controllers, and the Global Catalog port on its global catalogs.
"""

from __future__ import annotations

from collections.abc import Callable

from portcall.topology.flows import Transport
from portcall.topology.model import EXCHANGE_ROLES, ClientRule, Host
from portcall.topology.planner import Origin, Planner, host_end

#: Rule 2: what a front-end relays each protocol to, on the back-end, without TLS.
RELAY = {
    "http": ("http", 80),
    "imap": ("imap", 143),
    "pop3": ("pop3", 110),
    "nntp": ("nntp", 119),
    "smtp": ("smtp", 25),
}

#: Rule 3: Exchange server to domain controller.
DC_PORTS: tuple[tuple[int, Transport, str], ...] = (
    (53, "tcp", "DNS"),
    (53, "udp", "DNS"),
    (88, "tcp", "Kerberos"),
    (88, "udp", "Kerberos"),
    (389, "tcp", "LDAP"),
    (389, "udp", "LDAP over UDP (the DC locator's ping)"),
    (135, "tcp", "RPC endpoint mapper"),
    (445, "tcp", "SMB"),
)
GC_PORT = 3268
ROUTING_PORT = 691
SMTP_PORT = 25
SRS_PORT = 379

RPC_WARNING = (
    "rpc-port is not set: Exchange reaches the domain controllers' directory on an RPC port "
    "they choose at start-up; make it static on each DC (the value 'TCP/IP Port' of the "
    "NTDS Parameters registry key, KB 224196) and give it as rpc-port"
)


def _row(planner: Planner, port: int, transport: Transport) -> str | None:
    """The catalog row of the port, as a reason names it: "IMAP4 (143), catalog row imap"."""
    entry = planner.topology.catalog.by_port(port)
    if entry is not None and transport == "tcp":
        return f"{entry.label}, catalog row {entry.key}"
    return None


def _label(planner: Planner, port: int, transport: Transport, name: str) -> str:
    """A named port with its catalog row where it has one: "Global Catalog: LDAP (3268), …"."""
    row = _row(planner, port, transport)
    return f"{name}: {row}" if row else f"{name} ({port}/{transport})"


def _plain(planner: Planner, port: int, name: str) -> str:
    return _row(planner, port, "tcp") or f"{name} ({port}/tcp)"


def _service(planner: Planner, port: int, transport: Transport) -> str | None:
    entry = planner.topology.catalog.by_port(port)
    return entry.key if entry is not None and transport == "tcp" else None


def _host_origin(host: Host) -> Origin:
    return Origin(host.line, f"hosts.{host.name}")


def rule_clients(planner: Planner) -> None:
    catalog = planner.topology.catalog
    for index, client in enumerate(planner.topology.clients):
        origin = Origin(client.line, f"clients[{index}]")
        sources, destinations = planner.ends(client.source), planner.ends(client.destination)
        _warn_empty(planner, origin, client.source, client.destination)
        for key in client.services:
            entry = catalog.by_key(key)
            assert entry is not None  # the loader checked every key
            reason = (
                f"rule 1 (clients, line {client.line}): {client.source} may reach "
                f"{client.destination} on {entry.label}, catalog row {key}"
            )
            for source in sources:
                for destination in destinations:
                    planner.add(source, destination, entry.port, "tcp", reason, origin, key)


def _warn_empty(planner: Planner, origin: Origin, source: str, destination: str) -> None:
    for name in (source, destination):
        if not planner.ends(name):
            planner.warn(f"{origin.field} (line {origin.line}): no host has role {name}")


def _offered(planner: Planner, host: Host) -> list[str]:
    """The catalog services some client rule offers on `host`."""
    offered: list[str] = []
    for client in planner.topology.clients:
        if _names_host(client, host):
            offered += [s for s in client.services if s not in offered]
    return offered


def _names_host(client: ClientRule, host: Host) -> bool:
    return client.destination in (host.name, host.zone) or client.destination in host.roles


def rule_front_to_back(planner: Planner) -> None:
    topology = planner.topology
    back_ends = topology.hosts_with_role("back-end")
    for front in topology.hosts_with_role("front-end"):
        for key in _offered(planner, front):
            entry = topology.catalog.by_key(key)
            if entry is None or entry.protocol not in RELAY:
                continue
            plain, port = RELAY[entry.protocol]
            reason = (
                f"rule 2 (front-end to back-end): {front.name} relays {entry.label} "
                f"to the back-end on {_plain(planner, port, plain)}, without TLS"
            )
            for back in back_ends:
                planner.add(
                    host_end(front), host_end(back), port, "tcp", reason, _host_origin(front), plain
                )


def rule_domain_controllers(planner: Planner) -> None:
    topology = planner.topology
    servers = [h for h in topology.hosts.values() if EXCHANGE_ROLES & set(h.roles)]
    ports = list(DC_PORTS)
    if topology.rpc_port is not None:
        ports.append((topology.rpc_port, "tcp", "the directory's static RPC port (rpc-port)"))
    targets = [
        (dc, ports, "domain controller") for dc in topology.hosts_with_role("domain-controller")
    ]
    targets += [
        (gc, [(GC_PORT, "tcp", "Global Catalog")], "global catalog")
        for gc in topology.hosts_with_role("global-catalog")
    ]
    for server in servers:
        for target, target_ports, what in targets:
            for port, transport, name in target_ports:
                label = _label(planner, port, transport, name)
                reason = f"rule 3 (Exchange server to {what}): {label}"
                planner.add(
                    host_end(server),
                    host_end(target),
                    port,
                    transport,
                    reason,
                    _host_origin(server),
                    _service(planner, port, transport),
                )
    if servers and topology.rpc_port is None and topology.hosts_with_role("domain-controller"):
        planner.warn(RPC_WARNING)


def rule_routing_groups(planner: Planner) -> None:
    hosts = list(planner.topology.hosts.values())
    label = _plain(planner, ROUTING_PORT, "Exchange routing")
    for master in (h for h in hosts if h.master):
        reason = f"rule 4 (routing group {master.routing_group}): member to master, {label}"
        for member in hosts:
            if member.routing_group == master.routing_group:
                planner.add(
                    host_end(member),
                    host_end(master),
                    ROUTING_PORT,
                    "tcp",
                    reason,
                    _host_origin(member),
                    _service(planner, ROUTING_PORT, "tcp"),
                )


def rule_bridgeheads(planner: Planner) -> None:
    bridgeheads = planner.topology.hosts_with_role("bridgehead")
    label = _plain(planner, SMTP_PORT, "SMTP")
    for one in bridgeheads:
        for other in bridgeheads:
            if one.routing_group == other.routing_group:
                continue
            reason = (
                f"rule 5 (between routing groups {one.routing_group} and "
                f"{other.routing_group}): bridgehead to bridgehead, mail and link state on {label}"
            )
            planner.add(
                host_end(one),
                host_end(other),
                SMTP_PORT,
                "tcp",
                reason,
                _host_origin(one),
                _service(planner, SMTP_PORT, "tcp"),
            )


def rule_site_replication(planner: Planner) -> None:
    topology = planner.topology
    label = _plain(planner, SRS_PORT, "Site Replication Service")
    reason = f"rule 6 (Exchange 5.5 to Site Replication Service): {label}"
    for old in topology.hosts_with_role("exchange-5.5"):
        for srs in topology.hosts_with_role("srs"):
            planner.add(
                host_end(old),
                host_end(srs),
                SRS_PORT,
                "tcp",
                reason,
                _host_origin(old),
                _service(planner, SRS_PORT, "tcp"),
            )


def rule_manual(planner: Planner) -> None:
    catalog = planner.topology.catalog
    for index, stated in enumerate(planner.topology.flows):
        origin = Origin(stated.line, f"flows[{index}]")
        sources, destinations = planner.ends(stated.source), planner.ends(stated.destination)
        _warn_empty(planner, origin, stated.source, stated.destination)
        why = stated.why or "stated by hand"
        wanted: list[tuple[int, Transport, str | None]] = [
            (port, transport, None) for port, transport in stated.ports
        ]
        for key in stated.services:
            entry = catalog.by_key(key)
            assert entry is not None  # the loader checked every key
            wanted.append((entry.port, "tcp", key))
        wanted = list(dict.fromkeys(wanted))
        for port, transport, row in wanted:
            reason = f"rule 7 (flows, line {stated.line}): {why}"
            for source in sources:
                for destination in destinations:
                    service = row or _service(planner, port, transport)
                    planner.add(source, destination, port, transport, reason, origin, service)


RULES: tuple[Callable[[Planner], None], ...] = (
    rule_clients,
    rule_front_to_back,
    rule_domain_controllers,
    rule_routing_groups,
    rule_bridgeheads,
    rule_site_replication,
    rule_manual,
)
