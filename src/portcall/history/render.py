"""`portcall history` and `portcall diff` as plain text (one line per run or change) and as
small JSON documents.

Every string from a document or the database passes through report/inert.py before it is
shown: banners, products and certificate serials were chosen by whoever runs the server, and
a database file may come from anywhere.

JSON documents (fields are only ever added within a schema version):

``portcall.history/1``: ``{"schema", "database", "runs": [run, ...]}``, newest run first.

``portcall.diff/1``: ``{"schema", "database", "old": run, "new": run, "changed": bool,
"changes": [change, ...]}``.

A run is ``{"id", "started", "finished", "catalog", "targets": [host, ...], "health",
"source": "check"|"serve", "counts": {verdict: number}}``. A change is ``{"host", "address",
"port", "transport", "key", "kind", "old", "new", "note", "old_not_after",
"new_not_after"}``, kind one of ``history.diff.KINDS``; for a certificate, old and new are the
serials and note is added, removed, renewed, replaced or reissued.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from portcall.history.diff import Change
from portcall.history.store import RunInfo
from portcall.report.inert import inert, inert_tree

HISTORY_SCHEMA = "portcall.history/1"
DIFF_SCHEMA = "portcall.diff/1"
#: How many hosts of a run the text listing names before "+N more".
_HOSTS_SHOWN = 3
_HEADINGS = ("ID", "STARTED", "FINISHED", "SOURCE", "CATALOG", "HEALTH", "TARGETS", "VERDICTS")


def history_json(runs: list[RunInfo], database: Path) -> str:
    document = {
        "schema": HISTORY_SCHEMA,
        "database": str(database),
        "runs": [run.to_dict() for run in runs],
    }
    return _dumps(document)


def history_text(runs: list[RunInfo], database: Path) -> str:
    if not runs:
        return f"No runs recorded in {inert(database)}.\n"
    rows = [_HEADINGS, *(_run_row(run) for run in runs)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_HEADINGS) - 1)]
    return "".join(_line(row, widths) for row in rows)


def _line(row: tuple[str, ...], widths: list[int]) -> str:
    """The row in columns; the last column, the longest, is not padded."""
    padded = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
    return "  ".join([*padded, row[-1]]).rstrip() + "\n"


def _run_row(run: RunInfo) -> tuple[str, ...]:
    hosts = ", ".join(run.targets[:_HOSTS_SHOWN])
    if len(run.targets) > _HOSTS_SHOWN:
        hosts += f" +{len(run.targets) - _HOSTS_SHOWN} more"
    counts = ", ".join(f"{verdict} {number}" for verdict, number in run.counts.items())
    fields = (run.started[:19], run.finished[:19], run.source, run.catalog, run.health, hosts)
    return (str(run.id), *(inert(field, 80) for field in fields), inert(counts or "-"))


def diff_json(old: RunInfo, new: RunInfo, changes: list[Change], database: Path) -> str:
    document = {
        "schema": DIFF_SCHEMA,
        "database": str(database),
        "old": old.to_dict(),
        "new": new.to_dict(),
        "changed": bool(changes),
        "changes": [change.to_dict() for change in changes],
    }
    return _dumps(document)


def diff_text(old: RunInfo, new: RunInfo, changes: list[Change]) -> str:
    said = f"{len(changes)} change{'' if len(changes) == 1 else 's'}" if changes else "no changes"
    head = f"run {old.id} ({inert(old.started[:19])}) -> run {new.id} ({inert(new.started[:19])})"
    return "\n".join([f"{head}: {said}", *map(change_line, changes)]) + "\n"


def change_line(change: Change) -> str:
    """One change as one line; every value from a peer is inert."""
    port = f"{inert(change.host)} {change.where} ({inert(change.key)})"
    return f"{port} {_DESCRIBE.get(change.kind, _plain)(change)}"


def _value(value: str | None) -> str:
    return "(none)" if value is None else inert(value)


def _quoted(value: str | None) -> str:
    return "(none)" if value is None else f'"{inert(value)}"'


def _plain(change: Change) -> str:
    return f"{inert(change.kind)}: {_value(change.old)} -> {_value(change.new)}"


def _certificate(change: Change) -> str:
    serial = f"serial {_value(change.old)} -> {_value(change.new)}"
    ends = f"not after {_value(change.old_not_after)} -> {_value(change.new_not_after)}"
    return f"certificate {inert(change.note)}: {serial}, {ends}"


_DESCRIBE: dict[str, Callable[[Change], str]] = {
    "appeared": lambda c: f"appeared: {_value(c.new)}",
    "disappeared": lambda c: f"disappeared (was {_value(c.old)})",
    "finding-added": lambda c: f"finding added: {_value(c.new)}",
    "finding-removed": lambda c: f"finding removed: {_value(c.old)}",
    "certificate": _certificate,
    "cert-expiring": lambda c: f"certificate expiring: {_value(c.old)} -> {_value(c.new)}",
    "product": lambda c: f"product: {_quoted(c.old)} -> {_quoted(c.new)}",
    "banner": lambda c: f"banner: {_quoted(c.old)} -> {_quoted(c.new)}",
}


def _dumps(document: dict[str, Any]) -> str:
    return json.dumps(inert_tree(document), indent=2, ensure_ascii=False) + "\n"
