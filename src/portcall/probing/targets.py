"""Targets as the user typed them: host names, IPv4/IPv6 addresses and CIDR ranges."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

#: A CIDR range larger than this is almost certainly a typo (a /8 instead of a /28).
MAX_RANGE_ADDRESSES = 4096

_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62})(?:\.[A-Za-z0-9_-]{1,63})*\.?$"
)


class TargetError(ValueError):
    """A target that cannot be understood; the message says which and how to write it."""


@dataclass(frozen=True)
class Target:
    #: The name as the user gave it (an address for IPs and range members).
    name: str
    #: True when `name` is an IP address literal: no DNS, and certificates need IP SANs.
    is_address: bool = False
    #: The address of a name already resolved elsewhere (the DC locator's DNS): no lookup.
    address: str | None = None


def parse_target(spec: str) -> list[Target]:
    """One command-line target as the hosts it stands for."""
    text = spec.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    if not text:
        raise TargetError("an empty target: give a host name, an IP address or a CIDR range")
    if "/" in text:
        return _expand_range(spec, text)
    try:
        return [Target(str(ipaddress.ip_address(text)), is_address=True)]
    except ValueError:
        pass
    if _looks_numeric(text) or not _HOSTNAME.match(text):
        raise TargetError(
            f"'{spec}' is not a host name, an IP address or a CIDR range "
            "(examples: mail.example.com, 192.0.2.10, 2001:db8::25, 192.0.2.0/28)"
        )
    return [Target(text.rstrip(".").lower())]


def parse_targets(specs: list[str]) -> list[Target]:
    seen: dict[str, Target] = {}
    for spec in specs:
        for target in parse_target(spec):
            seen.setdefault(target.name, target)
    return list(seen.values())


def _looks_numeric(text: str) -> bool:
    # "192.0.2.300" must not be taken for a host name and sent to DNS.
    return all(part.isdigit() for part in text.split(".") if part)


def _expand_range(spec: str, text: str) -> list[Target]:
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError as exc:
        raise TargetError(f"'{spec}' is not a valid CIDR range: {exc}") from exc
    if network.num_addresses > MAX_RANGE_ADDRESSES:
        raise TargetError(
            f"'{spec}' holds {network.num_addresses} addresses; portcall checks at most "
            f"{MAX_RANGE_ADDRESSES} per range: split it or use a longer prefix"
        )
    hosts = list(network.hosts()) if network.num_addresses > 2 else list(network)
    return [Target(str(address), is_address=True) for address in hosts]


def read_target_list(text: str, origin: str) -> list[str]:
    """Targets from a list (`-iL FILE`, as nmap reads one): separated by spaces or line ends,
    a `#` starting a comment to the line's end."""
    specs: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        for word in line.split("#", 1)[0].split():
            if any(ord(c) < 32 or ord(c) == 127 for c in word):
                raise TargetError(f"{origin}, line {number}: a target holds a control character")
            specs.append(word)
    return specs


def excluded(targets: list[Target], specs: list[str]) -> list[Target]:
    """`targets` less those that `specs` (names, addresses, CIDR ranges) name."""
    names: set[str] = set()
    networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    for spec in specs:
        text = spec.strip()
        if "/" in text:
            try:
                networks.append(ipaddress.ip_network(text, strict=False))
            except ValueError as exc:
                raise TargetError(f"'{spec}' is not a valid CIDR range: {exc}") from exc
            continue
        names.update(target.name for target in parse_target(text))
    kept = []
    for target in targets:
        if target.name in names:
            continue
        if target.is_address:
            address = ipaddress.ip_address(target.name)
            if any(address.version == n.version and address in n for n in networks):
                continue
        kept.append(target)
    return kept
