"""The deployment as a topology file describes it: zones, firewalls, hosts and their roles.

Everything here has been validated already (see `loader`); the line numbers point back into
the file so that an error found later, while planning, can still name where to look.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from portcall.catalog import Catalog
from portcall.topology.flows import Network, Transport

SCHEMA = "portcall.topology/1"

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

ROLES = (
    "front-end",
    "back-end",
    "bridgehead",
    "domain-controller",
    "global-catalog",
    "srs",
    "exchange-5.5",
)
#: The roles that make a host an Exchange server (rule 3: they talk to the domain controllers).
EXCHANGE_ROLES = frozenset({"front-end", "back-end", "bridgehead"})


class TopologyError(ValueError):
    """A topology that cannot be used: where in the file, which field, and what is allowed."""

    def __init__(self, origin: str, line: int, field: str, allowed: str) -> None:
        self.origin = origin
        self.line = line
        self.field = field
        self.allowed = allowed
        where = f"{origin}:{line}" if line else origin
        super().__init__(f"{where}: {field}: {allowed}")


@dataclass(frozen=True)
class Zone:
    name: str
    networks: tuple[Network, ...]
    line: int


@dataclass(frozen=True)
class Firewall:
    name: str
    zones: tuple[str, str]
    line: int


@dataclass(frozen=True)
class Host:
    name: str
    address: Address
    zone: str
    roles: tuple[str, ...]
    routing_group: str | None
    master: bool
    line: int


@dataclass(frozen=True)
class ClientRule:
    """Rule 1: who may reach which catalog services on which hosts."""

    source: str
    destination: str
    services: tuple[str, ...]
    line: int


@dataclass(frozen=True)
class ManualFlow:
    """Rule 7: a flow stated by hand, by port or by catalog service."""

    source: str
    destination: str
    ports: tuple[tuple[int, Transport], ...]
    services: tuple[str, ...]
    why: str
    line: int


@dataclass(frozen=True)
class Topology:
    origin: str
    catalog: Catalog
    rpc_port: int | None
    zones: dict[str, Zone]
    firewalls: dict[str, Firewall]
    hosts: dict[str, Host]
    clients: tuple[ClientRule, ...]
    flows: tuple[ManualFlow, ...]

    def hosts_with_role(self, role: str) -> list[Host]:
        return [h for h in self.hosts.values() if role in h.roles]

    def hosts_in_zone(self, zone: str) -> list[Host]:
        return [h for h in self.hosts.values() if h.zone == zone]

    def fail(self, line: int, field: str, allowed: str) -> TopologyError:
        return TopologyError(self.origin, line, field, allowed)
