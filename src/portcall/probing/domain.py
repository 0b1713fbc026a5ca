"""Which Active Directory domain a domain controller serves, for the protocols that must name
it in their request (DNS asks for the domain's SOA and SRV, Kerberos for a principal of its
realm, the LDAP ping for the domain).

In order: the domain the user gave (`--domain`), the one the target's DNS name implies
(dc1.example.com serves example.com), the one the DC's rootDSE names (its
defaultNamingContext, DC=example,DC=com). When none is known the probes still run, asking about
`UNKNOWN_DOMAIN`: any DNS server, KDC or DC answers that too, which proves the service, and the
result says the domain was unknown.
"""

from __future__ import annotations

from typing import Final

from portcall.probing.driver import Connection, converse
from portcall.probing.errors import ProbeFailure
from portcall.protocols.base import LocalProtocolError, ProbeOptions, domain_of
from portcall.protocols.ldap import LdapClient

#: The protocols whose request names the AD domain.
NEEDS_DOMAIN: Final = frozenset({"dns", "kerberos", "kpasswd", "cldap"})
#: Asked about when no domain is known: a name that exists nowhere (RFC 2606).
UNKNOWN_DOMAIN: Final = "domain.invalid"
#: The note a result carries when it asked about `UNKNOWN_DOMAIN`.
UNKNOWN_NOTE: Final = (
    "the Active Directory domain is not known (the target is an address and the rootDSE on "
    "389 did not name it): asked about domain.invalid, which proves the service answers but "
    "not that it serves your domain; give --domain"
)
#: The LDAP port whose rootDSE names the domain.
ROOTDSE_PORT: Final = 389


def implied_domain(host: str) -> str | None:
    """The domain `host`'s DNS name implies, or None for an address or a one-label name."""
    try:
        return domain_of(host)
    except LocalProtocolError:
        return None


def domain_from_dn(dn: str) -> str | None:
    """DC=example,DC=com -> example.com; None when the DN has no DC components."""
    labels = []
    for part in dn.split(","):
        name, _, value = part.strip().partition("=")
        if name.strip().upper() == "DC" and value.strip():
            labels.append(value.strip())
    return ".".join(labels).lower() or None


async def domain_from_rootdse(address: str, host: str, timeout: float) -> str | None:
    """The domain the LDAP rootDSE at `address` names, or None when it cannot be read."""
    client = LdapClient(ProbeOptions(host=host, port=ROOTDSE_PORT))
    try:
        conversation = await converse(Connection(address, ROOTDSE_PORT, timeout), client)
    except ProbeFailure:
        return None
    rootdse = conversation.info.details.get("rootdse")
    if not isinstance(rootdse, dict):
        return None
    for name in ("defaultNamingContext", "rootDomainNamingContext"):
        values = next((v for k, v in rootdse.items() if k.lower() == name.lower()), None)
        if isinstance(values, list) and values:
            domain = domain_from_dn(str(values[0]))
            if domain:
                return domain
    return None
