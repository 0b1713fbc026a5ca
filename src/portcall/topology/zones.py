"""Which zone an address lies in, what a catch-all zone leaves out, and which firewalls stand
between two zones.

Zones match most-specific first: `internet: ["0.0.0.0/0"]` holds every address that no other
zone's network holds, so its other zones' networks are `excluded` from it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping

from portcall.topology.flows import Network
from portcall.topology.model import Address, Firewall, Zone


def zone_of(zones: Iterable[Zone], address: Address) -> Zone | None:
    """The zone whose network holding `address` is the most specific, if any holds it."""
    best: tuple[int, Zone] | None = None
    for zone in zones:
        for network in zone.networks:
            inside = address.version == network.version and address in network
            if inside and (best is None or network.prefixlen > best[0]):
                best = (network.prefixlen, zone)
    return None if best is None else best[1]


def excluded_networks(zones: Iterable[Zone], zone: Zone) -> tuple[Network, ...]:
    """The other zones' networks that lie inside one of `zone`'s and so are not part of it."""
    inner: set[Network] = set()
    for other in zones:
        if other.name == zone.name:
            continue
        for network in other.networks:
            if any(_strictly_inside(network, own) for own in zone.networks):
                inner.add(network)
    return tuple(sorted(_outermost(inner), key=_order))


def nesting_conflict(zones: Iterable[Zone]) -> tuple[Zone, Network, str] | None:
    """A network claimed by two zones, or a zone's network inside another zone's network that
    lies itself inside the first zone (A holds B holds A): the rules could not express either.
    Returns the offending zone, its network and why."""
    owner: dict[Network, Zone] = {}
    for zone in zones:
        for network in zone.networks:
            first = owner.setdefault(network, zone)
            if first.name != zone.name:
                return zone, network, f"is already in zone {first.name}"
    for network, zone in owner.items():
        for middle, other in owner.items():
            if other.name == zone.name or not _strictly_inside(network, middle):
                continue
            if any(_strictly_inside(middle, own) for own in zone.networks):
                return (
                    zone,
                    network,
                    (
                        f"lies inside zone {other.name}'s {middle}, which lies inside zone "
                        f"{zone.name} again; split the networks so that zones nest only once"
                    ),
                )
    return None


def firewall_path(
    firewalls: Mapping[str, Firewall], start: str, goal: str
) -> tuple[tuple[str, ...], bool] | None:
    """The firewalls crossed from zone `start` to zone `goal`, in order, by the shortest path
    (ties broken by the order the file lists the firewalls), and whether another path of the
    same length exists. None when no path joins the zones."""
    if start == goal:
        return (), False
    paths: dict[str, tuple[str, ...]] = {start: ()}
    ways: dict[str, int] = {start: 1}
    queue = deque([start])
    while queue:
        zone = queue.popleft()
        for firewall in firewalls.values():
            if zone not in firewall.zones:
                continue
            after = firewall.zones[1] if firewall.zones[0] == zone else firewall.zones[0]
            if after not in paths:
                paths[after] = (*paths[zone], firewall.name)
                ways[after] = ways[zone]
                queue.append(after)
            elif len(paths[after]) == len(paths[zone]) + 1:
                ways[after] += ways[zone]
    if goal not in paths:
        return None
    return paths[goal], ways[goal] > 1


def _strictly_inside(inner: Network, outer: Network) -> bool:
    return (
        inner.version == outer.version
        and inner.prefixlen > outer.prefixlen
        and inner.subnet_of(outer)  # type: ignore[arg-type]
    )


def _outermost(networks: set[Network]) -> list[Network]:
    """Drop networks that another one in the set already covers."""
    return [n for n in networks if not any(_strictly_inside(n, m) for m in networks)]


def _order(network: Network) -> tuple[int, int, int]:
    return network.version, int(network.network_address), network.prefixlen
