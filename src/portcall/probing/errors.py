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
from portcall.protocols.sniff import identify, non_conforming
from portcall.verdicts import LocalFault, Verdict


class Phase(StrEnum):
    RESOLVE = "resolve"
    CONNECT = "connect"
    TLS = "tls"
    CONVERSATION = "conversation"
    #: A UDP request is out and no reply has come yet (UDP has no connection to wait for).
    REQUEST = "request"


@dataclass
class ProbeFailure(Exception):
    """A probe attempt that ended without a usable answer, already given its verdict."""

    verdict: Verdict
    detail: str
    detected: str | None = None
    #: Where the probe stood when it failed (None: not from a connection, e.g. a second look).
    phase: Phase | None = None
    #: For portcall's own defect (see `defect`): the exception, named, for the report.
    internal_error: str | None = None

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
    expected: str | None = None,
) -> ProbeFailure:
    """The verdict for `exc`, raised in `phase` on a connection to `address`, after the peer
    sent `first_bytes` where `expected` (a protocol's display name) should have answered. A
    fault of this machine raises `LocalFault` instead: no verdict."""
    if isinstance(exc, ProbeFailure):
        return exc
    failure = _classify(exc, phase, Evidence(first_bytes, expected), timeout, address)
    failure.phase = phase
    return failure


def defect(bug: Exception) -> ProbeFailure:
    """An exception no row of the table expects: a reply portcall's parsers could not take.
    The closed vocabulary has no verdict for "portcall is wrong", so it is `wrong-protocol`
    with a reason that says whose fault it is and what to send with a report."""
    what = f"{type(bug).__name__}: {bug}"[:200]
    return ProbeFailure(
        Verdict.WRONG_PROTOCOL,
        f"portcall could not make sense of the reply ({what}); this is a defect in portcall: "
        "please report it with the server's banner",
        internal_error=what,
    )


@dataclass(frozen=True)
class Evidence:
    """What the peer sent before things went wrong, and what should have sent it."""

    first_bytes: bytes
    expected: str | None = None

    def detected(self) -> str | None:
        """Who answered: another protocol by name, or the expected one, non-conforming."""
        name = identify(self.first_bytes)
        if name is not None and name == self.expected:
            return non_conforming(name)
        return name

    def same_service(self) -> bool:
        """The expected protocol itself answered (it greeted), whatever went wrong later."""
        return self.expected is not None and identify(self.first_bytes) == self.expected


def _classify(
    exc: BaseException, phase: Phase, evidence: Evidence, timeout: float, address: str | None
) -> ProbeFailure:
    if isinstance(exc, RemoteProtocolError):
        if phase is Phase.TLS:  # portcall's own hello met an alert or a non-TLS answer
            return ProbeFailure(Verdict.TLS_FAILED, f"TLS handshake failed: {exc}")
        return _remote(exc, evidence)
    if isinstance(exc, TimeoutError):
        return _timeout(phase, evidence, timeout)
    if isinstance(exc, socket.gaierror):
        return ProbeFailure(Verdict.UNRESOLVED, f"the name does not resolve ({exc.strerror})")
    if isinstance(exc, ssl.SSLError):
        return ProbeFailure(Verdict.TLS_FAILED, f"TLS handshake failed: {_ssl_reason(exc)}")
    if isinstance(exc, ConnectionRefusedError):
        if phase is Phase.REQUEST:
            return ProbeFailure(
                Verdict.REFUSED,
                "an ICMP port unreachable came back (nothing listens on this UDP port)",
            )
        return ProbeFailure(Verdict.REFUSED, "the connection was refused (nothing listens)")
    if isinstance(exc, OSError):
        return _os_error(exc, phase, evidence, address)
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


def _remote(exc: RemoteProtocolError, evidence: Evidence) -> ProbeFailure:
    if isinstance(exc, WrongProtocol):
        return ProbeFailure(Verdict.WRONG_PROTOCOL, str(exc), exc.detected)
    if isinstance(exc, StartTLSUnavailable):
        return ProbeFailure(Verdict.NO_STARTTLS, str(exc))
    if isinstance(exc, ServiceRefused):
        return ProbeFailure(Verdict.REFUSED, str(exc))
    detected = evidence.detected()
    if isinstance(exc, ReplyTooLong) and detected:
        return ProbeFailure(Verdict.WRONG_PROTOCOL, f"{detected} answered ({exc})", detected)
    if isinstance(exc, PeerClosed):
        said = "after a partial reply" if evidence.first_bytes else "without saying anything"
        return ProbeFailure(Verdict.SILENT, f"the peer closed the connection {said}")
    return ProbeFailure(Verdict.WRONG_PROTOCOL, str(exc), detected)


def _timeout(phase: Phase, evidence: Evidence, timeout: float) -> ProbeFailure:
    if phase is Phase.REQUEST:
        return ProbeFailure(
            Verdict.FILTERED,
            f"no reply to the UDP request within {timeout:g}s, sent three times (dropped by a "
            "firewall, or the host is down; a closed UDP port would have sent an ICMP port "
            "unreachable, unless a firewall drops that too)",
        )
    if phase is Phase.CONNECT:
        return ProbeFailure(
            Verdict.FILTERED,
            f"no answer to the connection attempt within {timeout:g}s (dropped by a firewall, "
            "or the host is down)",
        )
    if phase is Phase.TLS:
        return ProbeFailure(Verdict.SILENT, f"no answer to the TLS handshake within {timeout:g}s")
    if evidence.same_service():
        return ProbeFailure(
            Verdict.SILENT,
            f"the {evidence.expected} service greeted, then said nothing usable within "
            f"{timeout:g}s",
        )
    detected = evidence.detected()
    if detected:
        return ProbeFailure(
            Verdict.WRONG_PROTOCOL, f"{detected} answered, then nothing usable", detected
        )
    said = "a partial reply" if evidence.first_bytes else "nothing"
    return ProbeFailure(
        Verdict.SILENT, f"connected, but the service said {said} within {timeout:g}s"
    )


def _os_error(exc: OSError, phase: Phase, evidence: Evidence, address: str | None) -> ProbeFailure:
    fault = local_fault(exc, address)
    if fault is not None:
        raise fault from exc
    if exc.errno in _UNREACHABLE_ERRNOS:
        return ProbeFailure(Verdict.UNREACHABLE, f"no route to the host ({exc.strerror})")
    if _is_reset(exc):
        return _reset(phase, evidence)
    return ProbeFailure(Verdict.UNREACHABLE, f"{exc.strerror or exc}")


def _is_reset(exc: OSError) -> bool:
    # asyncio reports a reset that arrives while the connect completes as a plain OSError
    # ("Connect call failed") carrying ECONNRESET, not as ConnectionResetError.
    return isinstance(exc, ConnectionResetError | BrokenPipeError) or exc.errno in (
        errno.ECONNRESET,
        errno.EPIPE,
    )


def _reset(phase: Phase, evidence: Evidence) -> ProbeFailure:
    if phase is Phase.CONNECT:
        return ProbeFailure(
            Verdict.SILENT, "the connection was accepted, then reset at once (nothing was said)"
        )
    if phase is Phase.TLS:
        return ProbeFailure(Verdict.TLS_FAILED, "the connection was reset during the TLS handshake")
    if evidence.same_service():
        return ProbeFailure(
            Verdict.SILENT, f"the {evidence.expected} service greeted, then reset the connection"
        )
    detected = evidence.detected()
    if detected:
        return ProbeFailure(Verdict.WRONG_PROTOCOL, f"{detected} answered, then reset", detected)
    return ProbeFailure(Verdict.SILENT, "the connection was reset before a usable reply")


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
    #: TLS answered a second look, but the handshake had stalled: part of an answer, then
    #: nothing (or, behind STARTTLS, nothing after the service agreed to upgrade).
    TLS_STALLED = "tls-stalled"


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
    Sighting.TLS_STALLED: (
        Verdict.TLS_FAILED,
        "TLS handshake stalled: {what}, then no more of the handshake within the deadline",
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
    detected = {
        Sighting.TLS_FOR_PLAINTEXT: "TLS",
        Sighting.TLS_STALLED: "TLS",
        Sighting.TLS_UNFINISHED: None,
    }.get(sighting, what)
    return ProbeFailure(verdict, template.format(what=what, expected=expected), detected)
