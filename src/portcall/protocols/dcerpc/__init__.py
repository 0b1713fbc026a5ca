"""The DCE/RPC endpoint mapper on TCP 135 (C706, MS-RPCE), client and server roles.

The client binds to the endpoint mapper and asks it, with ept_map, for the TCP ports of the
directory replication interface (DRSUAPI) and of Netlogon: the RPC ports a firewall between
Exchange and the domain controllers must allow, and whether they lie in a dynamic range. The
server role maps both to the port it is given, and lists both with ept_lookup. PDUs and NDR
are packed with `struct`.
"""

from __future__ import annotations

from portcall.protocols.dcerpc.client import STATUS_NAMES, EpmClient, status_name
from portcall.protocols.dcerpc.messages import (
    BIND,
    BIND_ACK,
    BIND_NAK,
    DC_INTERFACES,
    DRSUAPI,
    DYNAMIC_RANGES,
    EPM,
    EPT_LOOKUP,
    EPT_MAP,
    EPT_S_NO_MORE_ENTRIES,
    EPT_S_NOT_REGISTERED,
    FAULT,
    MAX_FRAGMENTS,
    NDR,
    NETLOGON,
    REQUEST,
    RESPONSE,
    Interface,
    MalformedPdu,
    Pdu,
    bind,
    bind_ack,
    dynamic_range,
    fault,
    pdu,
    request,
    response,
)
from portcall.protocols.dcerpc.server import (
    ACCESS_DENIED,
    DEFAULT_RPC_PORT,
    MAX_CALLS,
    DirectoryRpcServer,
    EpmServer,
)
from portcall.protocols.dcerpc.towers import (
    MAX_FLOORS,
    MAX_TOWERS,
    Tower,
    lookup_response,
    map_request,
    map_response,
    parse_map_response,
    parse_tower,
    tcp_tower,
)

__all__ = [
    "ACCESS_DENIED",
    "BIND",
    "BIND_ACK",
    "BIND_NAK",
    "DC_INTERFACES",
    "DEFAULT_RPC_PORT",
    "DRSUAPI",
    "DYNAMIC_RANGES",
    "EPM",
    "EPT_LOOKUP",
    "EPT_MAP",
    "EPT_S_NOT_REGISTERED",
    "EPT_S_NO_MORE_ENTRIES",
    "FAULT",
    "MAX_CALLS",
    "MAX_FLOORS",
    "MAX_FRAGMENTS",
    "MAX_TOWERS",
    "NDR",
    "NETLOGON",
    "REQUEST",
    "RESPONSE",
    "STATUS_NAMES",
    "DirectoryRpcServer",
    "EpmClient",
    "EpmServer",
    "Interface",
    "MalformedPdu",
    "Pdu",
    "Tower",
    "bind",
    "bind_ack",
    "dynamic_range",
    "fault",
    "lookup_response",
    "map_request",
    "map_response",
    "parse_map_response",
    "parse_tower",
    "pdu",
    "request",
    "response",
    "status_name",
    "tcp_tower",
]
