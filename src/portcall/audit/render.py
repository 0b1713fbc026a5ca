"""The audit for people (one line per probed flow) and for programs (`portcall.audit/1`)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from portcall.audit.judge import AuditLine, Status, matches_plan
from portcall.report.inert import inert, inert_tree
from portcall.report.json_report import dumps
from portcall.topology.flows import FlowEnd
from portcall.topology.render import describe_end

SCHEMA = "portcall.audit/1"

_MARK = {Status.OK: "ok   ", Status.DRIFT: "DRIFT", Status.UNVERIFIED: "?    "}


def audit_text(lines: Sequence[AuditLine], source: str) -> str:
    out = [_line(line) for line in lines]
    out.append(summary(lines, source))
    return "\n".join(out) + "\n"


def _line(line: AuditLine) -> str:
    target = line.target
    check = f", check: {line.check}" if line.check is not None else ""
    text = (
        f"{_MARK[line.status]} {describe_end(target.source)} -> {_destination(line)}  "
        f"{target.port}/{target.transport}  {line.summary} ({line.verdict or 'not probed'}"
        f"{check})"
    )
    if line.hint:
        text += f"\n        {inert(line.hint)}"
    return text


def _destination(line: AuditLine) -> str:
    target = line.target
    if target.address is None or target.destination.kind == "host":
        return describe_end(target.destination)
    return f"{target.destination.name} (at {target.address})"


def summary(lines: Sequence[AuditLine], source: str) -> str:
    counts = Counter(line.status for line in lines)
    verdict = "the firewalls match the plan" if matches_plan(lines) else "the firewalls drift"
    return (
        f"From {source}: {len(lines)} flows probed: {counts[Status.OK]} ok, "
        f"{counts[Status.DRIFT]} drift, {counts[Status.UNVERIFIED]} unverified; {verdict}"
    )


def audit_json(lines: Sequence[AuditLine], source: str, topology: str) -> str:
    counts = Counter(str(line.status) for line in lines)
    document = {
        "schema": SCHEMA,
        "topology": topology,
        "from": source,
        "matches_plan": matches_plan(lines),
        "counts": {str(s): counts[str(s)] for s in Status},
        "flows": [_flow(line) for line in lines],
    }
    return dumps(inert_tree(document))


def _flow(line: AuditLine) -> dict[str, Any]:
    target = line.target
    return {
        "source": _end(target.source, None),
        "destination": _end(target.destination, target.address),
        "port": target.port,
        "transport": target.transport,
        "service": target.entry.key if target.entry else None,
        "expected": str(target.expected),
        "observed": str(line.observed),
        "status": str(line.status),
        "connection": str(line.verdict) if line.verdict else None,
        "check": str(line.check) if line.check else None,
        "reason": line.reason,
        "hint": line.hint,
        "firewalls": list(target.firewalls),
        "reasons": list(target.reasons),
    }


def _end(end: FlowEnd, probed: str | None) -> dict[str, Any]:
    document: dict[str, Any] = {
        "name": end.name,
        "kind": str(end.kind),
        "zone": end.zone,
        "addresses": end.addresses(),
    }
    if end.excluded:
        document["excluded"] = [str(n) for n in end.excluded]
    if probed is not None:
        document["probed"] = probed
    return document
