"""What makes `/probe` safe to expose: which targets and ports a request may reach.

A request names one host. An address must lie inside an allowed network; a name is resolved
here, every address it resolves to must be allowed, and the probe then goes to exactly the
address checked (a `Target` carrying it), so a DNS answer that changes between the check and
the probe cannot lead the exporter elsewhere. Everything here happens before any packet is
sent to the target: a refused request costs the target nothing.

The exporter never probes itself: a target that is one of the exporter's listening addresses
(or loopback, when the exporter listens on every address) with its own port among the ports
asked is refused too, since the probe would only queue behind itself.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from portcall.catalog import PortEntry
from portcall.probing.targets import Target, TargetError, parse_target
from portcall.serve.config import Network
from portcall.verdicts import Result, Verdict

#: Seconds a name may take to resolve before the request is answered without a probe.
RESOLVE_TIMEOUT = 5.0
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class Refused(Exception):
    """A request the exporter will not carry out: the HTTP status, a plain reason, and its
    kind for the exporter's count of refusals (bad-request, not-allowed, own-port)."""

    def __init__(self, status: int, reason: str, kind: str = "bad-request") -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.kind = kind


@dataclass(frozen=True)
class Admitted:
    """A target cleared for probing, or a name that does not resolve (`target` None)."""

    name: str
    target: Target | None
    addresses: tuple[Address, ...]
    #: Why the name could not be resolved, when `target` is None.
    failure: str = ""


def one_host(text: str | None) -> Target:
    """The single host a request names: a name or an address, never a range."""
    if not text:
        raise Refused(400, "missing parameter: target=HOST")
    if "/" in text:
        raise Refused(400, f"target '{text}' is a range: /probe checks one host per request")
    try:
        targets = parse_target(text)
    except TargetError as exc:
        raise Refused(400, str(exc)) from None
    return targets[0]


async def admit(text: str | None, allowed: Sequence[Network]) -> Admitted:
    """The target of a request, resolved and checked against `allowed` (403 outside)."""
    target = one_host(text)
    if target.is_address:
        address = ipaddress.ip_address(target.name)
        _check_allowed(target.name, [address], allowed)
        return Admitted(target.name, target, (address,))
    try:
        addresses = await _resolve(target.name)
    except OSError as exc:
        return Admitted(target.name, None, (), _lookup_failure(target.name, exc))
    _check_allowed(target.name, addresses, allowed)
    return Admitted(target.name, Target(target.name, address=str(addresses[0])), addresses)


async def _resolve(name: str) -> tuple[Address, ...]:
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(RESOLVE_TIMEOUT):
            infos = await loop.getaddrinfo(name, None, type=socket.SOCK_STREAM)
    except TimeoutError:
        raise OSError("the name lookup timed out") from None
    found = dict.fromkeys(_address(str(info[4][0])) for info in infos)
    if not found:
        raise OSError("no address")
    return tuple(found)


def _address(text: str) -> Address:
    # A link-local IPv6 answer carries its zone ("fe80::1%eth0"): the address is the part
    # before it, and that is what must be allowed.
    return ipaddress.ip_address(text.split("%", 1)[0])


def _lookup_failure(name: str, exc: OSError) -> str:
    detail = exc.strerror if isinstance(exc, socket.gaierror) and exc.strerror else str(exc)
    return f"{name} does not resolve ({detail}): check the name and this machine's DNS"


def _check_allowed(name: str, addresses: Iterable[Address], allowed: Sequence[Network]) -> None:
    outside = [a for a in addresses if not any(a.version == n.version and a in n for n in allowed)]
    if outside:
        shown = ", ".join(str(a) for a in outside)
        via = "" if str(outside[0]) == name else f"{name} resolves to "
        raise Refused(
            403,
            f"{via}{shown}: outside the networks this exporter may probe "
            f"({', '.join(str(n) for n in allowed)}); see --allow",
            "not-allowed",
        )


def check_own_port(
    admitted: Admitted, entries: Iterable[PortEntry], listening: Iterable[tuple[str, int]]
) -> None:
    """Refuse (403) a probe that would reach the exporter itself."""
    for host, port in listening:
        bound = ipaddress.ip_address(host.split("%", 1)[0])
        for address in admitted.addresses:
            if _same_place(address, bound) and any(
                e.port == port and e.transport == "tcp" for e in entries
            ):
                raise Refused(
                    403,
                    f"{address} port {port} is this exporter itself; "
                    "leave that port out with ports=",
                    "own-port",
                )


def _same_place(address: Address, bound: Address) -> bool:
    if address == bound:
        return True
    # Listening on every address (0.0.0.0, ::) takes in loopback and every address of this
    # machine, of either family for "::".
    if not bound.is_unspecified or (address.version != bound.version and bound.version != 6):
        return False
    return address.is_loopback or _is_local(address)


def _is_local(address: Address) -> bool:
    """Whether `address` belongs to this machine: only then may a socket be bound to it.
    Binding sends nothing."""
    family = socket.AF_INET if address.version == 4 else socket.AF_INET6
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((str(address), 0))
        except OSError:
            return False
    return True


def unresolved_results(admitted: Admitted, entries: Iterable[PortEntry]) -> list[Result]:
    """The results of a name that does not resolve: no port can be probed."""
    results = []
    for entry in entries:
        result = Result(admitted.name, entry.port, entry.key, Verdict.UNRESOLVED, admitted.failure)
        result.transport = entry.transport
        results.append(result)
    return results
