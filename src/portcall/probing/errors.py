"""The one table that turns what went wrong at the I/O boundary into a verdict.

Every exception a probe can meet is mapped here, once, according to the phase it happened in
(a timeout while connecting means something else than a timeout after the greeting).
"""

from __future__ import annotations

import errno
import socket
import ssl
from dataclasses import dataclass
from enum import StrEnum

from portcall.protocols.base import (
    PeerClosed,
    RemoteProtocolError,
    ReplyTooLong,
    ServiceRefused,
    StartTLSUnavailable,
    WrongProtocol,
)
from portcall.protocols.sniff import identify
from portcall.verdicts import LocalFault, Verdict


class Phase(StrEnum):
    RESOLVE = "resolve"
    CONNECT = "connect"
    TLS = "tls"
    CONVERSATION = "conversation"


@dataclass
class ProbeFailure(Exception):
    """A probe attempt that ended without a usable answer, already given its verdict."""

    verdict: Verdict
    detail: str
    detected: str | None = None

    def __str__(self) -> str:
        return f"{self.verdict}: {self.detail}"


_UNREACHABLE_ERRNOS = {errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN}

#: Errors that say this machine ran short, whatever the target: each with what to do.
_LOCAL_ERRNOS = {
    errno.EMFILE: "raise the open-file limit (ulimit -n) or lower --concurrency",
    errno.ENFILE: "the whole system is out of file descriptors: lower --concurrency",
    errno.ENOBUFS: "the kernel is out of socket buffers: lower --concurrency",
    errno.ENOMEM: "this machine is out of memory: lower --concurrency",
    errno.EADDRNOTAVAIL: "no local address or port is free for the connection: lower "
    "--concurrency, or check this machine's addresses",
}


def classify(
    exc: BaseException,
    phase: Phase,
    first_bytes: bytes,
    timeout: float,
    address: str | None = None,
) -> ProbeFailure:
    """The verdict for `exc`, raised in `phase` on a connection to `address`, after the peer
    sent `first_bytes`. A fault of this machine raises `LocalFault` instead: no verdict."""
    if isinstance(exc, ProbeFailure):
        return exc
    if isinstance(exc, RemoteProtocolError):
        if phase is Phase.TLS:  # portcall's own hello met an alert or a non-TLS answer
            return ProbeFailure(Verdict.TLS_FAILED, f"TLS handshake failed: {exc}")
        return _remote(exc, first_bytes)
    if isinstance(exc, TimeoutError):
        return _timeout(phase, first_bytes, timeout)
    if isinstance(exc, socket.gaierror):
        return ProbeFailure(Verdict.UNRESOLVED, f"the name does not resolve ({exc.strerror})")
    if isinstance(exc, ssl.SSLError):
        return ProbeFailure(Verdict.TLS_FAILED, f"TLS handshake failed: {_ssl_reason(exc)}")
    if isinstance(exc, ConnectionRefusedError):
        return ProbeFailure(Verdict.REFUSED, "the connection was refused (nothing listens)")
    if isinstance(exc, OSError):
        return _os_error(exc, phase, first_bytes, address)
    raise exc


def local_fault(exc: OSError, address: str | None = None) -> LocalFault | None:
    """The `LocalFault` that `exc` stands for, or None when it speaks of the target.

    "No route" is the target's business when a router said so, and this machine's when its own
    routing table has no way there; a UDP connect asks the routing table without sending a
    packet, which tells the two apart.
    """
    what = f"{exc.strerror or exc}"
    advice = _LOCAL_ERRNOS.get(exc.errno or 0)
    if advice is not None:
        return LocalFault(f"this machine cannot open the connection ({what}): {advice}")
    no_route = exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH)
    if no_route and address is not None and not has_route(address):
        return LocalFault(
            f"this machine has no route to {address} ({what}): check its network "
            "interfaces and routes, or leave that address out"
        )
    return None


def has_route(address: str) -> bool:
    """Whether this machine's routing table has a way to `address` (no packet is sent)."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.connect((address, 9))
    except OSError:
        return False
    return True


def _remote(exc: RemoteProtocolError, first_bytes: bytes) -> ProbeFailure:
    if isinstance(exc, WrongProtocol):
        return ProbeFailure(Verdict.WRONG_PROTOCOL, str(exc), exc.detected)
    if isinstance(exc, StartTLSUnavailable):
        return ProbeFailure(Verdict.NO_STARTTLS, str(exc))
    if isinstance(exc, ServiceRefused):
        return ProbeFailure(Verdict.REFUSED, str(exc))
    detected = identify(first_bytes)
    if isinstance(exc, ReplyTooLong) and detected:
        return ProbeFailure(Verdict.WRONG_PROTOCOL, f"{detected} answered ({exc})", detected)
    if isinstance(exc, PeerClosed):
        said = "after a partial reply" if first_bytes else "without saying anything"
        return ProbeFailure(Verdict.SILENT, f"the peer closed the connection {said}")
    return ProbeFailure(Verdict.WRONG_PROTOCOL, str(exc), detected)


def _timeout(phase: Phase, first_bytes: bytes, timeout: float) -> ProbeFailure:
    if phase is Phase.CONNECT:
        return ProbeFailure(
            Verdict.FILTERED,
            f"no answer to the connection attempt within {timeout:g}s (dropped by a firewall, "
            "or the host is down)",
        )
    if phase is Phase.TLS:
        return ProbeFailure(Verdict.SILENT, f"no answer to the TLS handshake within {timeout:g}s")
    detected = identify(first_bytes)
    if detected:
        return ProbeFailure(
            Verdict.WRONG_PROTOCOL, f"{detected} answered, then nothing usable", detected
        )
    said = "a partial reply" if first_bytes else "nothing"
    return ProbeFailure(
        Verdict.SILENT, f"connected, but the service said {said} within {timeout:g}s"
    )


def _os_error(exc: OSError, phase: Phase, first_bytes: bytes, address: str | None) -> ProbeFailure:
    fault = local_fault(exc, address)
    if fault is not None:
        raise fault from exc
    if exc.errno in _UNREACHABLE_ERRNOS:
        return ProbeFailure(Verdict.UNREACHABLE, f"no route to the host ({exc.strerror})")
    if isinstance(exc, ConnectionResetError | BrokenPipeError) and phase is not Phase.CONNECT:
        if phase is Phase.TLS:
            return ProbeFailure(
                Verdict.TLS_FAILED, "the connection was reset during the TLS handshake"
            )
        detected = identify(first_bytes)
        if detected:
            return ProbeFailure(
                Verdict.WRONG_PROTOCOL, f"{detected} answered, then reset", detected
            )
        return ProbeFailure(Verdict.SILENT, "the connection was reset before a usable reply")
    return ProbeFailure(Verdict.UNREACHABLE, f"{exc.strerror or exc}")


def _ssl_reason(exc: ssl.SSLError) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError) and exc.verify_message:
        return f"certificate verification failed ({exc.verify_message})"
    reason = exc.reason or exc.strerror or str(exc)
    return str(reason).replace("_", " ").lower()


class Sighting(StrEnum):
    """What a second look (or a certificate-only peek) found where the expected handshake
    failed: each becomes one verdict through `sighted`."""

    PLAINTEXT_FOR_TLS = "plaintext-for-tls"
    TLS_FOR_PLAINTEXT = "tls-for-plaintext"
    SPEAKS_SECOND = "speaks-second"
    #: Implicit TLS whose certificate was read but whose handshake no TLS library here can
    #: finish: the service behind it was never spoken to, so it is not proven. (Behind
    #: STARTTLS the plaintext part proves the service, and the probe is judged `ok`.)
    TLS_UNFINISHED = "tls-unfinished"


_SIGHTINGS: dict[Sighting, tuple[Verdict, str]] = {
    Sighting.PLAINTEXT_FOR_TLS: (
        Verdict.WRONG_PROTOCOL,
        "plaintext {what} answered where TLS was expected from the first byte",
    ),
    Sighting.TLS_FOR_PLAINTEXT: (
        Verdict.WRONG_PROTOCOL,
        "TLS ({what}) answered from the first byte where plaintext was expected",
    ),
    Sighting.SPEAKS_SECOND: (
        Verdict.WRONG_PROTOCOL,
        "{what} answered a request, but said nothing first as {expected} would",
    ),
    Sighting.TLS_UNFINISHED: (
        Verdict.TLS_FAILED,
        "the certificate was read, but no TLS library here can finish a handshake with "
        "{what}, so the {expected} service behind TLS could not be checked",
    ),
}


def sighted(sighting: Sighting, what: str, expected: str = "") -> ProbeFailure:
    """The verdict for `sighting`; `what` names what answered, `expected` what should have."""
    verdict, template = _SIGHTINGS[sighting]
    detected = {Sighting.TLS_FOR_PLAINTEXT: "TLS", Sighting.TLS_UNFINISHED: None}.get(
        sighting, what
    )
    return ProbeFailure(verdict, template.format(what=what, expected=expected), detected)
