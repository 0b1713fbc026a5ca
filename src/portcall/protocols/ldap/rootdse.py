"""The rootDSE the responder shows: a Windows 2000 or Windows Server 2003 domain
controller's (MS-ADTS 3.1.1.3.2) or a plain LDAPv3 one naming no product."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

from portcall.protocols.base import ServerOptions
from portcall.protocols.ldap.messages import ACTIVE_DIRECTORY_OID, Attributes

NEUTRAL_VENDOR: Final = "portcall responder"

#: supportedControl: long-standing Active Directory controls (MS-ADTS 3.1.1.3.4.1): paged
#: results, SD flags, sort, notification, show deleted, lazy commit, DirSync, extended DN, tree
#: delete, cross-domain move, stats, verify name, sort response, domain scope.
AD_CONTROLS: Final = tuple(
    f"1.2.840.113556.1.4.{n}"
    for n in (319, 801, 473, 528, 417, 619, 841, 529, 805, 521, 970, 1338, 474, 1339)
)
#: The Active Directory V51 capability that Windows Server 2003 adds (MS-ADTS 3.1.1.3.4.3).
AD_V51_OID: Final = "1.2.840.113556.1.4.1670"
#: Extended operations of a Windows Server 2003 DC besides StartTLS: dynamic refresh (RFC 2589)
#: and fast concurrent bind. A Windows 2000 DC supports none, StartTLS included (MS-ADTS
#: 3.1.1.3.4.2), so the exchange2000 profile lists none and refuses StartTLS.
AD_EXTENSIONS: Final = ("1.3.6.1.4.1.1466.101.119.1", "1.2.840.113556.1.4.1781")
#: A fixed update sequence number: a real DC's grows with every change it makes.
_HIGHEST_USN: Final = "20471"


def _domain_dn(hostname: str, *, upper: bool = True) -> str:
    """The domain's DN from the host name: mail.example.test is in DC=example,DC=test."""
    labels = hostname.rstrip(".").split(".")
    domain = labels[1:] or labels
    prefix = "DC" if upper else "dc"
    return ",".join(f"{prefix}={label}" for label in domain)


@dataclass(frozen=True)
class _Forest:
    """The names a DC of a one-domain forest shows, all derived from its host name."""

    base: str
    config: str
    schema: str
    server: str

    @classmethod
    def of(cls, hostname: str) -> _Forest:
        base = _domain_dn(hostname)
        config = f"CN=Configuration,{base}"
        computer = hostname.split(".")[0].upper()[:15]  # a NetBIOS name
        server = f"CN={computer},CN=Servers,CN=Default-First-Site-Name,CN=Sites,{config}"
        return cls(base, config, f"CN=Schema,{config}", server)


def ad_rootdse(options: ServerOptions, extensions: list[str], now: datetime) -> Attributes:
    """A Windows Server 2003 (exchange2003) or Windows 2000 DC's rootDSE (MS-ADTS 3.1.1.3.2)."""
    windows_2003 = options.profile == "exchange2003"
    forest = _Forest.of(options.hostname)
    contexts = [forest.base, forest.config, forest.schema]
    if windows_2003:  # the DNS application partitions arrived with Windows Server 2003
        contexts += [f"DC=DomainDnsZones,{forest.base}", f"DC=ForestDnsZones,{forest.base}"]
    # Windows 2000 offers Kerberos (GSSAPI, GSS-SPNEGO) only (MS-ADTS 3.1.1.3.4.5).
    mechanisms = ["GSSAPI", "GSS-SPNEGO"] + (["EXTERNAL", "DIGEST-MD5"] if windows_2003 else [])
    level = ["2"] if windows_2003 else ["0"]
    attributes = [
        ("currentTime", [now.strftime("%Y%m%d%H%M%S.0Z")]),
        ("subschemaSubentry", [f"CN=Aggregate,{forest.schema}"]),
        ("dsServiceName", [f"CN=NTDS Settings,{forest.server}"]),
        ("namingContexts", contexts),
        ("defaultNamingContext", [forest.base]),
        ("schemaNamingContext", [forest.schema]),
        ("configurationNamingContext", [forest.config]),
        ("rootDomainNamingContext", [forest.base]),
        ("supportedControl", list(AD_CONTROLS)),
        ("supportedLDAPVersion", ["3", "2"]),
        ("highestCommittedUSN", [_HIGHEST_USN]),
        ("supportedSASLMechanisms", mechanisms),
        ("dnsHostName", [options.hostname]),
        ("serverName", [forest.server]),
        ("supportedCapabilities", [ACTIVE_DIRECTORY_OID] + ([AD_V51_OID] if windows_2003 else [])),
        ("supportedExtension", extensions),
        ("isSynchronized", ["TRUE"]),
        ("isGlobalCatalogReady", ["TRUE" if options.global_catalog else "FALSE"]),
        ("domainFunctionality", level),
        ("forestFunctionality", level),
        ("domainControllerFunctionality", level),
    ]
    return [(name, values) for name, values in attributes if values]


def neutral_rootdse(hostname: str, extensions: list[str]) -> Attributes:
    """A plain LDAPv3 rootDSE (RFC 4512 section 5.1, RFC 3045 vendorName) naming no product."""
    attributes = [
        ("namingContexts", [_domain_dn(hostname, upper=False)]),
        ("supportedLDAPVersion", ["3"]),
        ("supportedExtension", extensions),
        ("vendorName", [NEUTRAL_VENDOR]),
    ]
    return [(name, values) for name, values in attributes if values]
