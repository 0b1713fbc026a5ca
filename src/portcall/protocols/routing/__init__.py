"""The Exchange 2000/2003 routing engine (RESvc) on TCP 691: read its banner (client role) or
say it (server role).

Servers of one routing group exchange link state over this port (Microsoft KB 842026). The
service speaks first, with one line (nmap-service-probes, NULL probe, service `resvc`):

    {0000004c} NODEINFO (5) {38}Version: <version> Microsoft Routing Server ready<CR><LF>

Binary link-state data may follow the line end (nmap's pattern expects two more bytes), so only
the line is read. The number in the second braces is not a byte count of the text that follows
it (that text is longer than 38 bytes for any version), so nothing here relies on it.

We send nothing: the traffic that follows the banner has no public description, and a made-up
message could upset a routing master that owns the group's link-state table. For the same reason
the server role says its banner and then only listens: it never interprets what a peer sends.
"""

from __future__ import annotations

from portcall.protocols.routing.client import (
    RoutingClient,
)
from portcall.protocols.routing.messages import (
    HEAD_SHAPE,
    HEX_DIGITS,
    NODE_INFO,
    PRODUCT,
    VERSION_TEXT,
)
from portcall.protocols.routing.server import (
    BANNER_OPENING,
    BANNER_TAIL,
    DISCARD_LIMIT,
    ROUTING_VERSIONS,
    RoutingServer,
    routing_banner,
)

__all__ = [
    "BANNER_OPENING",
    "BANNER_TAIL",
    "DISCARD_LIMIT",
    "HEAD_SHAPE",
    "HEX_DIGITS",
    "NODE_INFO",
    "PRODUCT",
    "ROUTING_VERSIONS",
    "VERSION_TEXT",
    "RoutingClient",
    "RoutingServer",
    "routing_banner",
]
