"""The JSON document of a check run: a versioned schema, described in the README.

Within one schema version fields are only ever added, never renamed or removed.

Every string is inert (report/inert.py): a server's words arrive as text with its control,
bidi and invisible characters, and any backslash, written as escapes, never as themselves.
A consumer printing a field (``jq -r``) thus prints nothing a terminal would obey. The raw
characters are not kept anywhere in the document, on purpose. Each string is cut at
``inert.DOCUMENT_LIMIT`` characters.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

import orjson

from portcall import __version__
from portcall.report.inert import DOCUMENT_LIMIT, inert_tree, is_plain
from portcall.verdicts import (
    ABSENT,
    NOTHING_ANSWERS,
    Health,
    Result,
    overall_health,
    silent_hosts,
    worst_health,
)

if TYPE_CHECKING:
    from portcall.probing.locate import Located

SCHEMA = "portcall.check/1"


def result_to_dict(result: Result) -> dict[str, Any]:
    """One result, every string in it inert: banners, capabilities, details, certificate
    fields and the reasons that quote them are a peer's words (see report/inert.py)."""
    document: dict[str, Any] = inert_tree(_fields(result))
    return document


def result_to_json(result: Result) -> str:
    """`result_to_dict` as one line of compact JSON. A result in which no string needs
    escaping (the common case) is serialized once, and judged by its serialization, without a
    walk through its strings: JSON escapes every control character, quote and backslash, so a
    line of printable ASCII without a backslash, within the length limit, holds only plain
    strings, which `inert_tree` would have left as they are."""
    fields = _fields(result)
    line = _line(fields)
    if is_plain(line, DOCUMENT_LIMIT):
        return line
    return _line(inert_tree(fields))


def _line(tree: dict[str, Any]) -> str:
    """`tree` as compact JSON, by orjson (a tenth of the standard library's time for a
    result); what orjson refuses (an integer beyond 64 bits) by the standard library."""
    try:
        return orjson.dumps(tree, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:
        return _LINE.encode(tree)


#: `_line`'s second encoder, made once (`json.dumps` with options makes one per call); a
#: result is a tree of fresh dicts and lists, so no check for cycles is needed.
_LINE: Final = json.JSONEncoder(ensure_ascii=False, check_circular=False, separators=(",", ":"))


def _fields(result: Result) -> dict[str, Any]:
    return {
        "host": result.host,
        "address": result.address,
        "port": result.port,
        "transport": result.transport,
        "key": result.key,
        "verdict": str(result.verdict),
        "health": str(result.health()),
        "required": result.required,
        "reason": result.reason,
        "protocol": result.protocol,
        "product": result.product,
        "banner": result.banner,
        "capabilities": list(result.capabilities),
        "findings": [finding.to_dict() for finding in result.findings],
        "tls": result.tls.to_dict() if result.tls else None,
        "details": result.details,
        "timings_ms": {name: round(value * 1000, 1) for name, value in result.timings.items()},
    }


def locate_to_dict(located: Located) -> dict[str, Any]:
    """What `check --locate` found: each step's result, the DCs and the one chosen."""
    chosen = located.chosen
    document = {
        "domain": located.domain,
        "dns_server": located.dns_server,
        "steps": [result_to_dict(step) for step in located.steps],
        "dcs": [
            {"name": c.name, "addresses": c.addresses, "closest": c.closest}
            for c in located.candidates
        ],
        "chosen": chosen.name if chosen else None,
        "chosen_address": chosen.addresses[0] if chosen else None,
        "why": located.why,
    }
    tree: dict[str, Any] = inert_tree(document)
    return tree


def check_document(
    results: list[Result],
    *,
    catalog: str,
    started: datetime,
    located: Located | None = None,
) -> dict[str, Any]:
    extra = {} if located is None else {"locate": locate_to_dict(located)}
    return {
        "schema": SCHEMA,
        "portcall": __version__,
        "catalog": catalog,
        "started": started.isoformat(),
        "finished": datetime.now(UTC).isoformat(),
        "health": str(overall_health(results)),
        "results": [result_to_dict(r) for r in results],
        "hosts": inert_tree(hosts_summary(results)),
        **extra,
    }


def hosts_summary(results: list[Result]) -> list[dict[str, Any]]:
    """One entry per host: its health as a whole, which a wrong address can fail alone."""
    silent = set(silent_hosts(results))
    summary: dict[tuple[str, str | None], dict[str, Any]] = {}
    for r in results:
        entry = summary.setdefault(
            (r.host, r.address),
            {"host": r.host, "address": r.address, "health": [], "answered": 0},
        )
        entry["health"].append(r.health())
        entry["answered"] += r.verdict not in ABSENT
    for (host, _address), entry in summary.items():
        notes = [NOTHING_ANSWERS] if host in silent else []
        states = set(entry["health"]) | ({Health.WARNINGS} if notes else set())
        entry["health"] = str(worst_health(states))
        entry["notes"] = notes
    return list(summary.values())


def dumps(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, default=str, ensure_ascii=False) + "\n"
