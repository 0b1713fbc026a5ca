"""Expected against observed: one status and one hint per probed flow."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from portcall.audit.selection import Expected, Target
from portcall.verdicts import Verdict

#: Verdicts that say the connection never reached the destination.
BLOCKED = frozenset({Verdict.FILTERED, Verdict.UNREACHABLE, Verdict.UNRESOLVED})


class Observed(StrEnum):
    REACHABLE = "reachable"
    BLOCKED = "blocked"
    UNVERIFIED = "unverified"


class Status(StrEnum):
    OK = "ok"
    DRIFT = "drift"
    UNVERIFIED = "unverified"


@dataclass(frozen=True)
class Probed:
    """What the network said: the connection's verdict and, on a catalog port, `check`'s."""

    verdict: Verdict | None
    reason: str
    check: Verdict | None = None


@dataclass(frozen=True)
class AuditLine:
    target: Target
    observed: Observed
    status: Status
    #: The connection's verdict (refused, filtered, ok, ...), or None when not probed.
    verdict: Verdict | None
    #: `check`'s verdict on a catalog port, or None.
    check: Verdict | None
    reason: str
    hint: str

    @property
    def summary(self) -> str:
        """The line's meaning in words: "allowed and reachable" and its three siblings."""
        if self.observed is Observed.UNVERIFIED:
            return "not verified"
        return _SUMMARY[(self.target.expected, self.observed)]


_SUMMARY = {
    (Expected.ALLOW, Observed.REACHABLE): "allowed and reachable",
    (Expected.ALLOW, Observed.BLOCKED): "allowed but blocked",
    (Expected.BLOCK, Observed.BLOCKED): "blocked as planned",
    (Expected.BLOCK, Observed.REACHABLE): "reachable but should be blocked",
}


def unprobed(target: Target) -> str | None:
    """Why `target` cannot be probed from here, or None when it can."""
    if target.transport == "udp" and target.entry is None:
        # A UDP port answers only the request it understands; silence proves nothing here.
        return (
            f"portcall has no {target.port}/udp request: no catalog row speaks to that port, "
            "so test it with the service's own client"
        )
    if target.address is None:
        zone = target.destination.name
        return f"a flow to the whole zone {zone}: give an address in it with --sample {zone}=ADDR"
    return None


def judge(target: Target, probed: Probed) -> AuditLine:
    if probed.verdict is None:
        return AuditLine(
            target, Observed.UNVERIFIED, Status.UNVERIFIED, None, None, probed.reason, probed.reason
        )
    observed = Observed.BLOCKED if probed.verdict in BLOCKED else Observed.REACHABLE
    status = (
        Status.OK
        if (observed is Observed.REACHABLE) == (target.expected is Expected.ALLOW)
        else Status.DRIFT
    )
    if status is Status.DRIFT and target.expected is Expected.BLOCK and not target.firewalls:
        status = Status.UNVERIFIED  # no network firewall can block it; the hint says who can
    hint = _hint(target, observed, probed)
    return AuditLine(target, observed, status, probed.verdict, probed.check, probed.reason, hint)


def _hint(target: Target, observed: Observed, probed: Probed) -> str:
    allowed = target.expected is Expected.ALLOW
    if allowed and observed is Observed.REACHABLE:
        return _service_hint(probed)
    if not allowed and observed is Observed.BLOCKED:
        return ""
    if not target.firewalls:
        return (
            f"no firewall stands between {target.source.name} and {target.destination.name}: "
            "only the host's own firewall can "
            + ("block" if observed is Observed.REACHABLE else "have blocked")
            + " it (portcall firewall --target windows)"
        )
    if allowed:
        return _blocked_hint(target)
    return _open_hint(target, probed)


def _service_hint(probed: Probed) -> str:
    if probed.verdict is Verdict.REFUSED:
        return f"the firewalls pass it; the host refused it ({probed.reason})"
    if probed.check is not None and probed.check is not Verdict.OK:
        return f"the firewalls pass it; the service is not right: {probed.reason}"
    return ""


def _blocked_hint(target: Target) -> str:
    why = f" ({target.reasons[0]})" if target.reasons else ""
    return (
        f"look at firewall {_names(target.firewalls)}: it needs a rule letting "
        f"{target.source.name} reach {target.destination.name} on "
        f"{target.port}/{target.transport}{why}; or the host is down"
    )


def _open_hint(target: Target, probed: Probed) -> str:
    text = (
        f"firewall {_names(target.firewalls)} lets {target.port}/{target.transport} from "
        f"{target.source.name} to {target.destination.name} through; the plan has no such "
        "flow: remove the rule that opens it"
    )
    if probed.verdict is Verdict.REFUSED:
        text += (
            " (the connection was refused: with a drop policy the refusal came from the host, "
            "past the firewall; a firewall that rejects with a TCP reset instead of dropping "
            "looks the same)"
        )
    return text


def _names(firewalls: Sequence[str]) -> str:
    """ "outer", or "inner or outer" (path order): any one of them may be the cause."""
    return " or ".join(firewalls)


def matches_plan(lines: Sequence[AuditLine]) -> bool:
    """Whether the firewalls match the plan: no line drifts."""
    return all(line.status is not Status.DRIFT for line in lines)
