"""DNS (RFC 1035) as a domain controller's client sees it: the SOA of the domain and the SRV
record the DC locator asks for first (MS-ADTS 6.3.6.1), over UDP or TCP (section 4.2); client
and server roles. Messages are encoded and decoded with dnspython; `messages` only frames them.

The server role answers as a DC's DNS server for its own domain: the zone's SOA and NS, the DC
locator's SRV records, the DC's address, NXDOMAIN for other names of the domain and REFUSED for
names outside it.
"""

from __future__ import annotations

from portcall.protocols.dns.client import TRUNCATED_NOTE, DnsClient
from portcall.protocols.dns.messages import (
    DC_SRV_RECORDS,
    DECODE_ERRORS,
    LOCATOR_SRV,
    MAX_RECORDS,
    RCODE_MEANINGS,
    DnsFraming,
    MalformedMessage,
    parse,
    rcode_meaning,
    rcode_name,
)
from portcall.protocols.dns.server import HEADER_SIZE, MAX_QUERIES, TTL, DnsServer
from portcall.protocols.framing import MAX_MESSAGE, TRANSPORTS

__all__ = [
    "DC_SRV_RECORDS",
    "DECODE_ERRORS",
    "HEADER_SIZE",
    "LOCATOR_SRV",
    "MAX_MESSAGE",
    "MAX_QUERIES",
    "MAX_RECORDS",
    "RCODE_MEANINGS",
    "TRANSPORTS",
    "TRUNCATED_NOTE",
    "TTL",
    "DnsClient",
    "DnsFraming",
    "DnsServer",
    "MalformedMessage",
    "parse",
    "rcode_meaning",
    "rcode_name",
]
