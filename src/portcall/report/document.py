"""A `portcall.check/1` document read for the reports: checked, then laid out as a matrix.

The HTML, JUnit and Markdown reports (and the dashboard) all read the document through this
module, so they agree on which hosts and ports there are, in which order, and how healthy
each one is. The document is checked field by field before any report reads it: a hand-edited
or foreign JSON file is a usage error that names the field, never a traceback in a template.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from portcall.report.inert import inert
from portcall.verdicts import HEALTH_ORDER, Verdict, worst_health

SCHEMA = "portcall.check/1"

VERDICTS: tuple[str, ...] = tuple(str(v) for v in Verdict)


class ReportInputError(ValueError):
    """The input is not a `portcall.check/1` document a report can be made from."""


#: What the reports read of each result, and the JSON types each field may have.
_RESULT_FIELDS: dict[str, tuple[type, ...]] = {
    "host": (str,),
    "address": (str, type(None)),
    "port": (int,),
    "key": (str,),
    "verdict": (str,),
    "health": (str,),
    "required": (bool,),
    "reason": (str,),
    "protocol": (str, type(None)),
    "product": (str, type(None)),
    "banner": (str, type(None)),
    "capabilities": (list,),
    "findings": (list,),
    "tls": (dict, type(None)),
    "details": (dict,),
    "timings_ms": (dict,),
}
_TOP_FIELDS: dict[str, tuple[type, ...]] = {
    "portcall": (str,),
    "catalog": (str,),
    "started": (str,),
    "finished": (str,),
    "health": (str,),
    "results": (list,),
}


def check_document(document: Any) -> dict[str, Any]:
    """`document` itself when it is a `portcall.check/1` document the reports can read."""
    if not isinstance(document, dict):
        raise ReportInputError(f"the JSON is a {_json_type(document)}, not an object")
    schema = document.get("schema")
    if schema is None:
        raise ReportInputError(f"the JSON has no schema field: not a {SCHEMA} document")
    if schema != SCHEMA:
        raise ReportInputError(f"the document's schema is {schema!r}, not {SCHEMA}")
    _check_fields(document, _TOP_FIELDS, "the document")
    _check_choice(document["health"], HEALTH_ORDER, "health")
    for index, result in enumerate(document["results"]):
        check_result(result, f"results[{index}]")
    locate = document.get("locate")
    if locate is not None:
        _check_locate(locate)
    return document


def check_result(result: Any, where: str) -> None:
    if not isinstance(result, dict):
        raise ReportInputError(f"{where} is not an object")
    _check_fields(result, _RESULT_FIELDS, where)
    _check_choice(result["verdict"], VERDICTS, f"{where}.verdict")
    _check_choice(result["health"], HEALTH_ORDER, f"{where}.health")
    _check_choice(result.get("transport", "tcp"), ("tcp", "udp"), f"{where}.transport")
    _check_tls(result["tls"], f"{where}.tls")
    for number, finding in enumerate(result["findings"]):
        if not isinstance(finding, dict) or not all(
            isinstance(finding.get(name), str) for name in ("code", "severity", "message")
        ):
            raise ReportInputError(f"{where}.findings[{number}] needs code, severity, message")


def _check_tls(tls: dict[str, Any] | None, where: str) -> None:
    """The parts of the TLS facts the reports take apart: lists must be lists."""
    if tls is None:
        return
    if not isinstance(tls.get("notes", []), list):
        raise ReportInputError(f"{where}.notes is a {_json_type(tls['notes'])}, not a list")
    certificate = tls.get("certificate")
    if certificate is None:
        return
    if not isinstance(certificate, dict):
        raise ReportInputError(f"{where}.certificate is a {_json_type(certificate)}")
    for name in ("dns_names", "ip_addresses"):
        if not isinstance(certificate.get(name, []), list):
            raise ReportInputError(f"{where}.certificate.{name} is not a list")


def _check_locate(locate: Any) -> None:
    if not isinstance(locate, dict) or not isinstance(locate.get("steps"), list):
        raise ReportInputError("locate is not an object with a list of steps")
    for index, step in enumerate(locate["steps"]):
        check_result(step, f"locate.steps[{index}]")


def _check_fields(value: dict[str, Any], fields: dict[str, tuple[type, ...]], where: str) -> None:
    for name, types in fields.items():
        if name not in value:
            raise ReportInputError(f"{where} has no field {name!r}")
        # bool is an int to Python, never a port number to JSON.
        wrong_bool = isinstance(value[name], bool) and bool not in types
        if wrong_bool or not isinstance(value[name], types):
            raise ReportInputError(f"{where}.{name} is a {_json_type(value[name])}")


def _check_choice(value: Any, choices: tuple[str, ...], where: str) -> None:
    if value not in choices:
        raise ReportInputError(f"{where} is {value!r}, not one of {', '.join(choices)}")


def _json_type(value: Any) -> str:
    names = {bool: "boolean", int: "number", float: "number", str: "string", list: "list"}
    return "null" if value is None else names.get(type(value), "object")


def visible(text: str) -> str:
    """`text` with any control, bidi or invisible character written as an escape.

    The document's strings are inert already when portcall wrote them; a document edited by
    hand may not be. Backslashes are kept as they are, so that inert text is not escaped twice.
    """
    parts = text.split("\\")
    shown = "\\".join(inert(part, 10 * len(part) + 1) for part in parts)
    # Not characters at all, and the only ones inert lets through that XML 1.0 refuses.
    return shown.replace("\ufffe", "\\ufffe").replace("\uffff", "\\uffff")


def visible_tree(value: Any) -> Any:
    """`value` with `visible` applied to every string in it, keys included."""
    if isinstance(value, str):
        return visible(value)
    if isinstance(value, dict):
        return {visible(str(k)): visible_tree(v) for k, v in value.items()}
    if isinstance(value, list):
        return [visible_tree(item) for item in value]
    return value


def worst(states: list[str]) -> str:
    """The worst of some health states; healthy when there are none."""
    return str(worst_health(states))


@dataclass(frozen=True)
class Column:
    """One port of the matrix: 25/tcp smtp."""

    port: int
    transport: str
    key: str

    @property
    def label(self) -> str:
        return f"{self.port}/{self.transport}"

    @property
    def name(self) -> str:
        return f"{self.label} {self.key}"


@dataclass
class Row:
    """One host (and address) of the matrix, with its results by column."""

    host: str
    address: str | None
    health: str = HEALTH_ORDER[0]
    notes: list[str] = field(default_factory=list)
    cells: dict[Column, dict[str, Any]] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """The host as JUnit classnames and tables show it: the address when it differs."""
        if self.address is None or self.address == self.host:
            return self.host
        return f"{self.host}[{self.address}]"


@dataclass
class Matrix:
    rows: list[Row]
    columns: list[Column]
    counts: dict[str, int]

    def column_health(self, column: Column) -> str:
        return worst([row.cells[column]["health"] for row in self.rows if column in row.cells])


def column_of(result: dict[str, Any]) -> Column:
    return Column(result["port"], result.get("transport", "tcp"), result["key"])


def matrix(document: dict[str, Any]) -> Matrix:
    """Hosts as rows in the order the results name them, ports as columns in port order."""
    rows: dict[tuple[str, str | None], Row] = {}
    for result in document["results"]:
        where = (result["host"], result["address"])
        row = rows.setdefault(where, Row(*where))
        row.cells[column_of(result)] = result
    for row in rows.values():
        row.health = worst([cell["health"] for cell in row.cells.values()])
    _apply_host_summary(rows, document.get("hosts"))
    columns = sorted({c for row in rows.values() for c in row.cells}, key=_column_order)
    counts = Counter(result["verdict"] for result in document["results"])
    return Matrix(list(rows.values()), columns, {v: counts[v] for v in VERDICTS if counts[v]})


def _column_order(column: Column) -> tuple[int, str, str]:
    return (column.port, column.transport, column.key)


def _apply_host_summary(rows: dict[tuple[str, str | None], Row], hosts: Any) -> None:
    """The document's own verdict on each host, which a host where nothing answers makes
    worse than any one of its ports."""
    for entry in hosts if isinstance(hosts, list) else []:
        if not isinstance(entry, dict):
            continue
        row = rows.get((str(entry.get("host")), entry.get("address")))
        if row is None:
            continue
        if entry.get("health") in HEALTH_ORDER:
            row.health = worst([row.health, entry["health"]])
        notes = entry.get("notes")
        row.notes = [n for n in notes if isinstance(n, str)] if isinstance(notes, list) else []
