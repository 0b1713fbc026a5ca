"""The one vocabulary every part of portcall speaks: verdicts, findings and results.

A probe of one (host, port) ends in exactly one `Verdict`. What it learnt besides the verdict
(certificate problems, legacy TLS) is a list of `Finding`s, each with a `Severity`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from portcall.tls.facts import TlsFacts


class LocalFault(Exception):
    """Something on this machine, not on the target, keeps the check from being made: too few
    file descriptors or buffers, no route from here, an unusable trust store.

    Never a verdict: a run that meets one stops and says so, with its own exit code, because
    whatever it had concluded about the targets would be a statement about this machine.
    """


class Verdict(StrEnum):
    """How one probe of one port ended; the set is closed."""

    OK = "ok"
    REFUSED = "refused"
    FILTERED = "filtered"
    UNREACHABLE = "unreachable"
    UNRESOLVED = "unresolved"
    SILENT = "silent"
    WRONG_PROTOCOL = "wrong-protocol"
    NO_STARTTLS = "no-starttls"
    TLS_FAILED = "tls-failed"


#: Verdicts that say nothing is listening or reachable: information unless the port is required.
ABSENT = frozenset({Verdict.REFUSED, Verdict.FILTERED, Verdict.UNREACHABLE, Verdict.UNRESOLVED})

#: Verdicts that say something answered, but not the right service or not in the right way.
BROKEN = frozenset(
    {Verdict.SILENT, Verdict.WRONG_PROTOCOL, Verdict.NO_STARTTLS, Verdict.TLS_FAILED}
)

#: Verdicts that fail a run whether the port is required or not. A name that does not
#: resolve is a failure: a typo in a target list must not pass as "nothing listens".
FAILING = BROKEN | {Verdict.UNRESOLVED}


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


class FindingCode(StrEnum):
    CERT_EXPIRED = "cert-expired"
    CERT_NOT_YET_VALID = "cert-not-yet-valid"
    CERT_EXPIRING = "cert-expiring"
    CERT_NAME_MISMATCH = "cert-name-mismatch"
    CERT_UNTRUSTED = "cert-untrusted"
    CERT_SELF_SIGNED = "cert-self-signed"
    TLS_LEGACY = "tls-legacy"
    #: The DC's directory RPC port is dynamic: firewalls would need the whole range.
    DC_RPC_DYNAMIC = "dc-rpc-dynamic"


#: The severity each finding carries; one table so that every report agrees.
FINDING_SEVERITY: dict[FindingCode, Severity] = {
    FindingCode.CERT_EXPIRED: Severity.ERROR,
    FindingCode.CERT_NOT_YET_VALID: Severity.ERROR,
    FindingCode.CERT_NAME_MISMATCH: Severity.ERROR,
    FindingCode.CERT_UNTRUSTED: Severity.ERROR,
    FindingCode.CERT_EXPIRING: Severity.WARNING,
    FindingCode.CERT_SELF_SIGNED: Severity.WARNING,
    FindingCode.TLS_LEGACY: Severity.WARNING,
    FindingCode.DC_RPC_DYNAMIC: Severity.WARNING,
}


@dataclass(frozen=True)
class Finding:
    code: FindingCode
    message: str

    @property
    def severity(self) -> Severity:
        return FINDING_SEVERITY[self.code]

    def to_dict(self) -> dict[str, str]:
        return {"code": str(self.code), "severity": str(self.severity), "message": self.message}


class Health(StrEnum):
    """The overall state of a run, which decides the exit code."""

    HEALTHY = "healthy"
    WARNINGS = "warnings"
    FAILURES = "failures"


#: Health states, best first: a host, a port or a run is as healthy as its worst part.
HEALTH_ORDER: Final = (Health.HEALTHY, Health.WARNINGS, Health.FAILURES)


def worst_health(states: Iterable[str]) -> Health:
    """The worst of some health states (names or members); healthy when there are none."""
    return max((Health(state) for state in states), key=HEALTH_ORDER.index, default=Health.HEALTHY)


@dataclass
class Result:
    """Everything portcall learnt about one port of one host."""

    host: str
    port: int
    key: str
    verdict: Verdict
    reason: str
    address: str | None = None
    protocol: str | None = None
    findings: list[Finding] = field(default_factory=list)
    product: str | None = None
    banner: str | None = None
    capabilities: list[str] = field(default_factory=list)
    details: dict[str, object] = field(default_factory=dict)
    tls: TlsFacts | None = None
    timings: dict[str, float] = field(default_factory=dict)
    required: bool = False
    #: "tcp" or "udp": ports 53/tcp and 53/udp are two results.
    transport: str = "tcp"

    @property
    def where(self) -> str:
        """The port as people write it: "25" over TCP, "53/udp" over UDP."""
        return str(self.port) if self.transport == "tcp" else f"{self.port}/{self.transport}"

    def health(self) -> Health:
        if self.verdict in FAILING or (self.required and self.verdict in ABSENT):
            return Health.FAILURES
        severities = {f.severity for f in self.findings}
        if Severity.ERROR in severities:
            return Health.FAILURES
        if Severity.WARNING in severities:
            return Health.WARNINGS
        return Health.HEALTHY


#: Why a host where no checked port answered is a warning even when each port alone is not.
NOTHING_ANSWERS = (
    "no checked port answers on this host: check the address, that the servers run, and the "
    "firewalls between here and there"
)


def silent_hosts(results: list[Result]) -> list[str]:
    """Hosts (in order) that resolved but where every checked port is refused, filtered or
    unreachable: a wrong address or a dead host, not a healthy one."""
    answered: dict[str, bool] = {}
    for r in results:
        if r.verdict is Verdict.UNRESOLVED:
            answered[r.host] = True  # already a failure of its own
        else:
            answered[r.host] = answered.get(r.host, False) or r.verdict not in ABSENT
    return [host for host, any_answer in answered.items() if not any_answer]


def overall_health(results: list[Result]) -> Health:
    states = {r.health() for r in results}
    if silent_hosts(results):
        states.add(Health.WARNINGS)
    return worst_health(states)
