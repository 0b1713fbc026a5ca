"""The client role: asks for the SOA of the domain and for the SRV record the DC locator reads
first, `_ldap._tcp.dc._msdcs.<domain>`, and reports what the server answered to each."""

from __future__ import annotations

import secrets
from collections.abc import Generator
from typing import Any

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
from dns.rdtypes.ANY.SOA import SOA
from dns.rdtypes.IN.SRV import SRV

from portcall.protocols.base import (
    Event,
    Handshake,
    PeerClosed,
    ProbeOptions,
    ReplyTooLong,
    Send,
    ServiceInfo,
    Steps,
    WrongProtocol,
)
from portcall.protocols.dns.messages import (
    LOCATOR_SRV,
    MAX_RECORDS,
    DnsFraming,
    MalformedMessage,
    domain_name,
    parse,
    rcode_meaning,
    rcode_name,
)
from portcall.protocols.sniff import identify

#: Replies over UDP with another ID read, at most, while waiting for the one to a question.
MAX_STRAYS = 8
#: What the client says when a reply over UDP came with TC set.
TRUNCATED_NOTE = (
    "a reply came truncated (TC): it holds only part of the answer, and this probe does not"
    " retry over TCP"
)


class DnsClient(DnsFraming, Handshake):
    """Asks for the domain's SOA, then for `_ldap._tcp.dc._msdcs.<domain>` SRV, on one
    connection over TCP or as two datagram exchanges over UDP.

    `query_ids` fixes the two message IDs (for recorded transcripts); by default they are
    random, as RFC 5452 asks. A reply with TC set (truncated, RFC 1035 4.1.1) is read for what
    it holds and noted (`TRUNCATED_NOTE`, `truncated` in its details); the client does not
    retry over TCP: probing 53/tcp is a probe of its own.
    """

    protocol = "dns"
    display_name = "DNS"

    def __init__(
        self,
        options: ProbeOptions | None = None,
        *,
        domain: str | None = None,
        transport: str | None = None,
        query_ids: tuple[int, int] | None = None,
    ) -> None:
        # Without options (a role used on its own) the protocol's usual transport, UDP.
        transport = transport or (options.transport if options is not None else "udp")
        options = options or ProbeOptions()
        self.domain = domain_name(domain or options.ad_domain())
        self._ids = query_ids or (secrets.randbelow(65536), secrets.randbelow(65536))
        self._set_transport(transport)
        super().__init__(options)

    def run(self) -> Steps:
        try:
            soa = yield from self._ask(self.domain, dns.rdatatype.SOA, self._ids[0])
            locator = dns.name.from_text(LOCATOR_SRV, self.domain)
            srv = yield from self._ask(locator, dns.rdatatype.SRV, self._ids[1])
        except (PeerClosed, ReplyTooLong, MalformedMessage):
            if identify(self.first_bytes) is not None:
                raise self.wrong_protocol() from None
            raise
        return self._info(soa, srv)

    def _ask(
        self, name: dns.name.Name, rdtype: dns.rdatatype.RdataType, query_id: int
    ) -> Generator[Event, None, dns.message.Message]:
        query = dns.message.make_query(name, rdtype, id=query_id)
        yield Send(self.frame(query.to_wire()))
        for _ in range(MAX_STRAYS):
            wire = yield from self.read_message()
            try:
                reply = parse(wire)
            except MalformedMessage:
                # Over TCP the first bytes are a length prefix: the message names the stranger.
                detected = identify(wire)
                if detected is not None:
                    raise WrongProtocol(self.display_name, detected) from None
                raise
            if not reply.flags & dns.flags.QR:
                raise MalformedMessage("the reply is a query, not a response")
            if reply.id == query.id or self.transport == "tcp":
                break
            # Over UDP a reply to an earlier question (a repeat of it was sent after a lost or
            # slow datagram) may still arrive: it is dropped, as resolvers do (RFC 5452 9.1).
        if reply.id != query.id:
            raise MalformedMessage(f"the reply's ID {reply.id} is not the query's {query.id}")
        if reply.question != query.question and reply.rcode() != dns.rcode.FORMERR:
            raise MalformedMessage(f"the reply answers another question than {name} {rdtype.name}")
        return reply

    def _info(self, soa: dns.message.Message, srv: dns.message.Message) -> ServiceInfo:
        soa_details = _soa_details(soa, self.domain)
        srv_details = _srv_details(srv)
        info = ServiceInfo(protocol=self.protocol)
        info.details = {
            "domain": self.domain.to_text(omit_final_dot=True),
            "transport": self.transport,
            "soa": soa_details,
            "locator": srv_details,
        }
        primary = soa_details.get("primary")
        if primary:
            info.banner = f"SOA {primary} serial {soa_details['serial']}"
        targets = srv_details.get("targets")
        if isinstance(targets, list) and targets:
            dcs = ", ".join(str(t["target"]) for t in targets[:4])
            more = f" and {len(targets) - 4} more" if len(targets) > 4 else ""
            info.banner = f"{info.banner or 'no SOA'}; DCs {dcs}{more}"
        if (soa.flags | srv.flags) & dns.flags.TC:
            info.notes.append(TRUNCATED_NOTE)
        return info


def _answer_header(reply: dns.message.Message) -> dict[str, Any]:
    code = reply.rcode()
    return {
        "rcode": rcode_name(code),
        "meaning": rcode_meaning(code),
        "authoritative": bool(reply.flags & dns.flags.AA),
        "truncated": bool(reply.flags & dns.flags.TC),
    }


def _soa_details(reply: dns.message.Message, domain: dns.name.Name) -> dict[str, Any]:
    details = _answer_header(reply)
    # The SOA of the domain itself, or, when the domain is not a zone apex, the enclosing
    # zone's SOA a server puts in the authority section.
    for section in (reply.answer, reply.authority):
        for rrset in section[:MAX_RECORDS]:
            if rrset.rdtype == dns.rdatatype.SOA and len(rrset) > 0:
                record: SOA = rrset[0]
                details["zone"] = rrset.name.to_text(omit_final_dot=True)
                details["zone_apex"] = rrset.name == domain
                details["primary"] = record.mname.to_text(omit_final_dot=True)
                details["responsible"] = record.rname.to_text(omit_final_dot=True)
                details["serial"] = int(record.serial)
                return details
    return details


def _srv_details(reply: dns.message.Message) -> dict[str, Any]:
    details = _answer_header(reply)
    details["name"] = reply.question[0].name.to_text(omit_final_dot=True)
    addresses = _addresses(reply)
    targets: list[dict[str, Any]] = []
    for rrset in reply.answer[:MAX_RECORDS]:
        if rrset.rdtype != dns.rdatatype.SRV:
            continue
        for record in list(rrset)[: MAX_RECORDS - len(targets)]:
            targets.append(_target(record, addresses))
    details["targets"] = sorted(targets, key=lambda t: (t["priority"], -t["weight"]))
    return details


def _target(record: SRV, addresses: dict[dns.name.Name, list[str]]) -> dict[str, Any]:
    return {
        "target": record.target.to_text(omit_final_dot=True),
        "port": int(record.port),
        "priority": int(record.priority),
        "weight": int(record.weight),
        "addresses": addresses.get(record.target, []),
    }


def _addresses(reply: dns.message.Message) -> dict[dns.name.Name, list[str]]:
    """The A and AAAA records a server added for the SRV targets."""
    found: dict[dns.name.Name, list[str]] = {}
    for rrset in reply.additional[:MAX_RECORDS]:
        if rrset.rdclass == dns.rdataclass.IN and rrset.rdtype in (
            dns.rdatatype.A,
            dns.rdatatype.AAAA,
        ):
            found.setdefault(rrset.name, []).extend(r.address for r in list(rrset)[:MAX_RECORDS])
    return found


__all__ = ["TRUNCATED_NOTE", "DnsClient"]
