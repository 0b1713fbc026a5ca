"""The server role: answers as a domain controller's DNS server answers for its own domain:
the SOA and NS of the zone, the SRV records of the DC locator, the DC's address; NXDOMAIN for
other names in the domain and REFUSED for names outside it (it recurses for nobody)."""

from __future__ import annotations

import ipaddress
from typing import Final

import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from portcall.protocols.base import (
    PeerClosed,
    ReplyTooLong,
    Send,
    ServerHandshake,
    ServerOptions,
    ServerSteps,
)
from portcall.protocols.dns.messages import (
    DC_SRV_RECORDS,
    DnsFraming,
    MalformedMessage,
    domain_name,
    parse,
)
from portcall.protocols.framing import MAX_MESSAGE

#: Time to live of every record served: short, since the responder is a stand-in.
TTL: Final = 600
#: The header of a message: ID, flags, four counts (RFC 1035 4.1.1).
HEADER_SIZE: Final = 12
#: Queries one TCP connection may ask before the responder hangs up.
MAX_QUERIES: Final = 100
#: The DC's address when nobody says which: the responder's own loopback.
LOOPBACK: Final = "127.0.0.1"


def dc_host_name(options: ServerOptions | None, domain: str) -> str:
    """The DC's DNS name: the responder's host name, completed with `domain` when it is a
    single label (a machine called "dc1" serving portcall.test is dc1.portcall.test); without
    options, dc1 of the domain."""
    domain = domain.strip().rstrip(".")
    if options is None:
        return f"dc1.{domain}"
    host = options.hostname.strip().rstrip(".")
    return host if "." in host else f"{host}.{domain}"


class DnsServer(DnsFraming, ServerHandshake):
    """Authoritative for `domain`, with one domain controller `dc_name` at `dc_address`.

    A keyword left out comes from the options, so that `server_for("dns", options)` serves:
    the domain is `options.ad_domain()`, the DC the responder's host name, its address
    `options.dc_address`, the transport `options.transport`. Without options the transport is
    UDP, DNS's usual one.
    """

    protocol = "dns"
    display_name = "DNS"

    def __init__(
        self,
        options: ServerOptions | None = None,
        *,
        domain: str | None = None,
        dc_name: str | None = None,
        dc_address: str | None = None,
        transport: str | None = None,
        serial: int = 1,
    ) -> None:
        given = options or ServerOptions()
        zone = domain if domain is not None else given.ad_domain()
        self.domain = domain_name(zone)
        self.dc_name = domain_name(dc_name or dc_host_name(options, zone))
        self.dc_address = str(ipaddress.ip_address(dc_address or given.dc_address or LOOPBACK))
        self.serial = serial
        default_transport = given.transport if options is not None else "udp"
        self._set_transport(transport or default_transport)
        super().__init__(options)
        self.reply_limit = MAX_MESSAGE

    def serve(self) -> ServerSteps:
        for _ in range(MAX_QUERIES):
            try:
                wire = yield from self.read_message()
            except (PeerClosed, ReplyTooLong):
                return
            reply = self.answer(wire)
            if reply is not None:
                yield Send(self.frame(reply))
            elif self.transport == "tcp":
                return  # a stream that is not DNS cannot be resynchronised

    def answer(self, wire: bytes) -> bytes | None:
        """The response to one query, or None when the bytes deserve none."""
        try:
            query = parse(wire)
        except MalformedMessage:
            self.heard.append("(malformed query)")
            return _format_error(wire)
        if query.flags & dns.flags.QR:
            self.heard.append("(a response, not a query)")
            return None
        response = dns.message.make_response(query)
        if query.opcode() != dns.opcode.QUERY or len(query.question) != 1:
            self.heard.append(f"{dns.opcode.to_text(query.opcode())} (not answered)")
            code = dns.rcode.NOTIMP if query.opcode() != dns.opcode.QUERY else dns.rcode.FORMERR
            response.set_rcode(code)
            return response.to_wire()
        question = query.question[0]
        self.heard.append(
            f"QUERY {question.name.to_text(omit_final_dot=True)[:200]}"
            f" {dns.rdatatype.to_text(question.rdtype)}"
        )
        self._fill(response, question.name, question.rdtype, question.rdclass)
        return response.to_wire()

    def _fill(
        self,
        response: dns.message.Message,
        name: dns.name.Name,
        rdtype: dns.rdatatype.RdataType,
        rdclass: dns.rdataclass.RdataClass,
    ) -> None:
        if rdclass != dns.rdataclass.IN or not name.is_subdomain(self.domain):
            response.flags &= ~dns.flags.AA
            response.set_rcode(dns.rcode.REFUSED)
            return
        response.flags |= dns.flags.AA
        records = self._records()
        if name not in {rrset.name for rrset in records}:
            response.set_rcode(dns.rcode.NXDOMAIN)
            response.authority.append(self._soa())
            return
        anything = rdtype == dns.rdatatype.ANY
        matching = [r for r in records if r.name == name and (anything or r.rdtype == rdtype)]
        response.answer.extend(matching)
        if not matching:
            response.authority.append(self._soa())  # NOERROR with no data (RFC 2308 2.2)
        if any(r.rdtype == dns.rdatatype.SRV for r in matching):
            response.additional.extend(r for r in records if r.name == self.dc_name)

    def _records(self) -> list[dns.rrset.RRset]:
        """Every record of the zone."""
        dc = self.dc_name.to_text()
        address_type = "AAAA" if ":" in self.dc_address else "A"
        records = [self._soa(), _rrset(self.domain, "NS", dc)]
        records += [_rrset(self.dc_name, address_type, self.dc_address)]
        for label, port in DC_SRV_RECORDS:
            owner = dns.name.from_text(label, self.domain)
            records.append(_rrset(owner, "SRV", f"0 100 {port} {dc}"))
        return records

    def _soa(self) -> dns.rrset.RRset:
        responsible = dns.name.from_text("hostmaster", self.domain).to_text()
        text = f"{self.dc_name.to_text()} {responsible} {self.serial} 900 600 86400 3600"
        return _rrset(self.domain, "SOA", text)


def _rrset(name: dns.name.Name, rdtype: str, text: str) -> dns.rrset.RRset:
    return dns.rrset.from_text(name, TTL, "IN", rdtype, text)


def _format_error(wire: bytes) -> bytes | None:
    """FORMERR with the query's ID, when the bytes hold at least a header that is a query
    (RFC 1035 4.1.1); nothing otherwise, as a server cannot tell whom to answer."""
    if len(wire) < HEADER_SIZE or wire[2] & 0x80:
        return None
    flags = 0x8000 | (wire[2] & 0x78) << 8 | dns.rcode.FORMERR
    return wire[:2] + flags.to_bytes(2, "big") + bytes(8)


__all__ = ["HEADER_SIZE", "LOOPBACK", "MAX_QUERIES", "TTL", "DnsServer", "dc_host_name"]
