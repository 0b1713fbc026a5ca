"""Does a certificate name the host we asked for? RFC 6125 section 6, client side.

`ssl.match_hostname` is gone from Python 3.12 and contexts here run with `check_hostname`
off, so the match is ours: DNS-IDs from the subjectAltName, the subject CN only as a last
resort, IP addresses only against iPAddress entries.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from cryptography import x509

from portcall.tls.certs import IPAddress, common_names, san_dns_names, san_ip_addresses

#: How many names a detail lists before it summarises the rest.
_LISTED = 6

NO_IP_SAN = "the certificate names no IP addresses"
CHECK_BY_NAME = "check by host name or pass --servername"
WILDCARD_RULE = "a wildcard must be the whole left-most label, with two or more labels after it"


@dataclass(frozen=True)
class NameMatch:
    matches: bool
    detail: str


def match_name(cert: x509.Certificate, name: str) -> NameMatch:
    wanted = name.strip()
    if not wanted:
        return NameMatch(False, "no name was given to check the certificate against")
    address = parse_ip(wanted)
    if address is not None:
        return _match_ip(cert, address)
    return _match_dns(cert, wanted)


def parse_ip(text: str) -> IPAddress | None:
    """An IPv4 or IPv6 literal (brackets allowed) as an address, else None."""
    try:
        address = ipaddress.ip_address(text.removeprefix("[").removesuffix("]"))
    except ValueError:
        return None
    return _unmapped(address)


def _unmapped(address: IPAddress) -> IPAddress:
    # ::ffff:192.0.2.1 is the same host as 192.0.2.1; compare them as one.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _match_ip(cert: x509.Certificate, address: IPAddress) -> NameMatch:
    # RFC 6125 section 1.7.2 leaves IPs out; RFC 5280 iPAddress SANs are the only IP-IDs,
    # and neither wildcards nor the CN apply to them.
    presented = [_unmapped(ip) for ip in san_ip_addresses(cert)]
    if not presented:
        dns = san_dns_names(cert) or common_names(cert)[-1:]
        names = f" (it names {_listing(dns)})" if dns else ""
        return NameMatch(False, f"{NO_IP_SAN}{names}; {CHECK_BY_NAME}")
    listed = _listing([str(ip) for ip in presented])
    if address in presented:
        return NameMatch(True, f"{address} is among the certificate's IP addresses ({listed})")
    return NameMatch(False, f"certificate names IP addresses {listed}; not {address}")


def _match_dns(cert: x509.Certificate, name: str) -> NameMatch:
    reference = to_a_label(name)
    if reference is None:
        return NameMatch(False, f"{name!r} is not a valid host name")
    dns = san_dns_names(cert)
    if dns:
        return _match_san(dns, reference)
    return _match_cn(common_names(cert)[-1:], reference)


def _match_san(dns: list[str], reference: str) -> NameMatch:
    for presented in dns:
        if dns_id_matches(presented, reference):
            if _is_wildcard(presented):
                return NameMatch(True, f"{reference} matches the certificate's {presented}")
            return NameMatch(True, f"certificate names {reference}")
    detail = f"certificate names {_listing(dns)}; not {reference}"
    ignored = [p for p in dns if _is_wildcard(p) and not _usable_wildcard(_normal(p))]
    if ignored:
        detail += f" ({', '.join(ignored)} ignored: {WILDCARD_RULE})"
    return NameMatch(False, detail)


def _match_cn(common: list[str], reference: str) -> NameMatch:
    # RFC 6125 section 6.4.4: the CN counts only when there is no DNS-ID at all.
    if not common:
        return NameMatch(
            False,
            f"certificate names no host at all (no DNS subject alternative names, no "
            f"common name); not {reference}",
        )
    cn = common[0]
    if dns_id_matches(cn, reference):
        return NameMatch(
            True,
            f"matched the legacy common name (CN={cn}) only; the certificate has no DNS "
            f"subject alternative names, which browsers and current TLS libraries require",
        )
    return NameMatch(
        False,
        f"certificate names only the common name {cn} (no DNS subject alternative "
        f"names); not {reference}",
    )


def dns_id_matches(presented: str, reference: str) -> bool:
    """Compare one presented DNS-ID (maybe a wildcard) with a normalised reference name."""
    pattern = _normal(presented)
    if not pattern:
        return False
    if not _is_wildcard(pattern):
        return pattern == reference
    if not _usable_wildcard(pattern):
        return False
    host, _, parent = reference.partition(".")
    # RFC 6125 section 6.4.3: "*" stands for exactly one whole left-most label.
    return bool(host) and parent == pattern[2:]


def _is_wildcard(pattern: str) -> bool:
    return "*" in pattern


def _usable_wildcard(pattern: str) -> bool:
    # Only "*.<at least two labels>"; "*.com", "f*.example.com" and "*.*.example" fail.
    # Without a public-suffix list, "*.co.uk" cannot be told from "*.example.com".
    if not pattern.startswith("*."):
        return False
    rest = pattern[2:].split(".")
    return len(rest) >= 2 and all(rest) and "*" not in pattern[1:]


def _normal(presented: str) -> str:
    return to_a_label(presented) or presented.strip().rstrip(".").lower()


def to_a_label(name: str) -> str | None:
    """Lower-case A-label form without a trailing dot, or None when it cannot be encoded.

    The standard library codec follows IDNA 2003 (RFC 3490), which agrees with IDNA 2008 for
    the names mail servers carry.
    """
    labels = name.strip().rstrip(".").split(".")
    if not all(labels):
        return None
    try:
        encoded = [label if label.isascii() else label.encode("idna").decode() for label in labels]
    except UnicodeError:
        return None
    return ".".join(encoded).lower()


def _listing(names: list[str]) -> str:
    shown = ", ".join(names[:_LISTED])
    more = len(names) - _LISTED
    return f"{shown} and {more} more" if more > 0 else shown
