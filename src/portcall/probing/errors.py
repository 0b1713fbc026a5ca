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
from portcall.verdicts import Verdict


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


_UNREACHABLE_ERRNOS = {errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN, errno.EADDRNOTAVAIL}


def classify(exc: BaseException, phase: Phase, first_bytes: bytes, timeout: float) -> ProbeFailure:
    """The verdict for `exc`, raised in `phase`, after the peer sent `first_bytes`."""
    if isinstance(exc, ProbeFailure):
        return exc
    if isinstance(exc, RemoteProtocolError):
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
        return _os_error(exc, phase, first_bytes)
    raise exc


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


def _os_error(exc: OSError, phase: Phase, first_bytes: bytes) -> ProbeFailure:
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
    reason = exc.reason or exc.strerror or str(exc)
    return str(reason).replace("_", " ").lower()
