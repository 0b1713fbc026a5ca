"""`portcall audit`: probe, from where it runs, what the plan allows and what it does not, and
say where the firewalls drift from the plan."""

from __future__ import annotations

from portcall.audit.judge import AuditLine, Observed, Status, matches_plan
from portcall.audit.run import run_audit
from portcall.audit.selection import Expected, Target, select_targets

__all__ = [
    "AuditLine",
    "Expected",
    "Observed",
    "Status",
    "Target",
    "matches_plan",
    "run_audit",
    "select_targets",
]
