"""The flows a plan requires: the one shape that `plan`, every firewall emitter and `audit`
share.

A flow is one port and transport from one side to the other. Each side is a host (one
address), a zone (its networks) or a zone that catches "everything else", such as
``internet: ["0.0.0.0/0"]``: its `excluded` networks are those of the other zones, which
emitters must leave out so that a flow to the internet never opens the DMZ as well.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Transport = Literal["tcp", "udp"]


class EndKind(StrEnum):
    HOST = "host"
    ZONE = "zone"


@dataclass(frozen=True)
class FlowEnd:
    """One side of a flow."""

    #: The host's or the zone's name, as the topology spells it.
    name: str
    kind: EndKind
    #: The zone this side lies in (a zone's own name for a zone).
    zone: str
    #: The addresses it covers: a host's single address as a /32 or /128, or a zone's networks.
    networks: tuple[Network, ...]
    #: Networks inside `networks` that belong to other, more specific zones: not this side.
    excluded: tuple[Network, ...] = ()

    def addresses(self) -> list[str]:
        return [str(n) for n in self.networks]


@dataclass(frozen=True)
class Flow:
    """A connection that must be allowed: new connections from `source` to `destination`."""

    source: FlowEnd
    destination: FlowEnd
    port: int
    transport: Transport
    #: The firewalls the flow crosses, in path order from source to destination.
    firewalls: tuple[str, ...]
    #: Why the flow exists: each rule that asked for it, with the catalog row where one did.
    reasons: tuple[str, ...] = field(default=())
    #: The catalog key of the service, when the flow serves one (for example "imaps").
    service: str | None = None

    @property
    def key(self) -> tuple[str, str, int, str]:
        """What makes two flows the same flow (their reasons then merge)."""
        return (self.source.name, self.destination.name, self.port, self.transport)
