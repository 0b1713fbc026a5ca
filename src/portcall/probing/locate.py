"""`check --locate DOMAIN`: find a domain controller the way Windows' DC locator does, from
where portcall runs ([MS-ADTS] 6.3.6): ask DNS for `_ldap._tcp.dc._msdcs.<domain>`, send the
LDAP ping (CLDAP) to each DC it lists, and take the one that says it is in the client's site
(the CLOSEST flag), else the first that answered in SRV order. Each step is a probe with a
verdict of its own, so that a locator failure names the step and the port that broke it.
"""

from __future__ import annotations

import asyncio
import ipaddress
from dataclasses import dataclass, field, replace
from typing import Final

import dns.asyncquery
import dns.exception
import dns.message
import dns.rdatatype
import dns.resolver

from portcall.catalog import PortEntry, load_catalog
from portcall.probing.probe import Endpoint, Settings, probe
from portcall.verdicts import Result, Verdict

#: DCs the locator pings at most, in SRV order (a large domain lists hundreds).
MAX_DCS: Final = 16
#: The DS_CLOSEST_FLAG's name in a CLDAP result: the DC is in the client's site.
CLOSEST: Final = "CLOSEST"


class LocateError(ValueError):
    """No DNS server to ask (none given, none in the resolver configuration)."""


@dataclass
class Candidate:
    """A DC the SRV record lists: its name, its addresses, and its CLDAP answer."""

    name: str
    addresses: list[str]
    ping: Result | None = None

    @property
    def answered(self) -> bool:
        return (
            self.ping is not None
            and self.ping.verdict is Verdict.OK
            and self.ping.details.get("netlogon") is not None
        )

    @property
    def closest(self) -> bool:
        return self.answered and self.ping is not None and CLOSEST in self.ping.capabilities


@dataclass
class Located:
    """What the locator found: every step's result, and the DC it chose (None: none)."""

    domain: str
    dns_server: str
    steps: list[Result] = field(default_factory=list)
    candidates: list[Candidate] = field(default_factory=list)
    chosen: Candidate | None = None

    @property
    def why(self) -> str:
        """One sentence on the choice, or on why there is none."""
        if self.chosen is not None:
            how = (
                "it says it is in this machine's site (CLOSEST)"
                if self.chosen.closest
                else "no DC said it is in this machine's site; it is the first that answered"
            )
            return f"chosen {self.chosen.name} ({self.chosen.addresses[0]}): {how}"
        if not self.steps or self.steps[0].verdict is not Verdict.OK:
            return f"no DC found: the DNS server {self.dns_server} did not answer"
        if not self.candidates:
            locator = self.steps[0].details.get("locator")
            rcode = locator.get("rcode") if isinstance(locator, dict) else None
            said = f" (it answered {rcode})" if rcode and rcode != "NOERROR" else ""
            return (
                f"no DC found: DNS at {self.dns_server} lists none for {self.domain}{said}: check "
                "the domain's name and that this DNS server knows the domain"
            )
        return (
            f"no DC found: none of the {len(self.candidates)} DCs DNS lists answered the LDAP ping"
        )


def system_dns_server() -> str:
    """The first name server of this machine's resolver configuration (/etc/resolv.conf)."""
    try:
        servers = dns.resolver.Resolver().nameservers
    except dns.exception.DNSException as exc:
        raise LocateError(f"cannot read this machine's DNS configuration: {exc}") from exc
    if not servers:
        raise LocateError("this machine's resolver configuration names no DNS server")
    return str(servers[0])


def _dc_row(key: str) -> PortEntry:
    """A row of the built-in windows-dc catalog, which has the dns and cldap rows."""
    entry = load_catalog("windows-dc").by_key(key)
    assert entry is not None, key
    return entry


async def locate(domain: str, settings: Settings, dns_server: str | None = None) -> Located:
    """Run the locator's steps for `domain`, asking `dns_server` (default: the system's)."""
    server = dns_server or system_dns_server()
    settings = replace(settings, domain=domain)
    located = Located(domain, server)
    dns_step = await probe(_endpoint(server, domain), _dc_row("dns"), settings)
    dns_step.key = "locate-dns"
    located.steps.append(dns_step)
    if dns_step.verdict is not Verdict.OK:
        return located
    located.candidates = await _candidates(dns_step, server, settings.timeout)
    pinged = [c for c in located.candidates if c.addresses]
    cldap = _dc_row("cldap")
    pings = await asyncio.gather(
        *(probe(_endpoint(c.addresses[0], domain, c.name), cldap, settings) for c in pinged)
    )
    for candidate, ping in zip(pinged, pings, strict=True):
        ping.key = "locate-cldap"
        candidate.ping = ping
        located.steps.append(ping)
    answered = [c for c in located.candidates if c.answered]
    located.chosen = next((c for c in answered if c.closest), answered[0] if answered else None)
    return located


def _endpoint(address: str, domain: str, name: str | None = None) -> Endpoint:
    return Endpoint(name or address, address, name is None, domain)


async def _candidates(step: Result, server: str, timeout: float) -> list[Candidate]:
    """The DCs the SRV answer lists, in its order, with their addresses (from the answer's
    additional records, else asked of the same server)."""
    locator = step.details.get("locator")
    targets = locator.get("targets", []) if isinstance(locator, dict) else []
    candidates = [
        Candidate(str(t["target"]), [str(a) for a in t.get("addresses", [])])
        for t in targets[:MAX_DCS]
    ]
    missing = [c for c in candidates if not c.addresses]
    found = await asyncio.gather(*(_addresses(c.name, server, timeout) for c in missing))
    for candidate, addresses in zip(missing, found, strict=True):
        candidate.addresses = addresses
    return candidates


async def _addresses(name: str, server: str, timeout: float) -> list[str]:
    """The A and AAAA records of `name` at `server`; none when it cannot say."""
    addresses: list[str] = []
    for rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
        query = dns.message.make_query(name, rdtype)
        try:
            reply = await dns.asyncquery.udp(query, server, timeout=timeout)
        except (dns.exception.DNSException, OSError):
            continue
        for rrset in reply.answer:
            if rrset.rdtype == rdtype:
                addresses += [str(ipaddress.ip_address(r.address)) for r in list(rrset)[:8]]
    return addresses
