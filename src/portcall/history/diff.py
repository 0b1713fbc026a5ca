"""What changed between two runs: one `Change` per difference on one host and port.

Results are matched on (host, transport, port); a host checked on several addresses is
matched address by address. Compared per port: whether it was checked at all
(appeared/disappeared), the address, the verdict, the finding codes (added/removed), the
certificate (serial and end of validity: renewed, replaced, added, removed; expiring when it
came within `expiring_days` of its end), the product and the banner. Timings, reasons and
`days_left` are not compared: they move from run to run without anything having changed.

Documents are untrusted input: a missing or mistyped field reads as absent, never as an error.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from portcall.history.fields import as_dict, as_list, as_text

#: Every kind of change, in the order they are reported for one port.
KINDS = (
    "appeared",
    "disappeared",
    "address",
    "verdict",
    "finding-added",
    "finding-removed",
    "certificate",
    "cert-expiring",
    "product",
    "banner",
)

DEFAULT_EXPIRING_DAYS = 30


@dataclass(frozen=True)
class Change:
    """One difference on one port. `old` and `new` are the values compared (None: absent);
    for a certificate they are its serial, with its end of validity beside them."""

    host: str
    port: int
    transport: str
    key: str
    kind: str
    old: str | None = None
    new: str | None = None
    note: str = ""
    address: str | None = None
    old_not_after: str | None = None
    new_not_after: str | None = None

    @property
    def where(self) -> str:
        """The port as people write it: "25" over TCP, "53/udp" over UDP."""
        return str(self.port) if self.transport == "tcp" else f"{self.port}/{self.transport}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


Make = Callable[..., Change]
Slot = tuple[str, str, int]


def diff_documents(
    old: dict[str, Any], new: dict[str, Any], *, expiring_days: int = DEFAULT_EXPIRING_DAYS
) -> list[Change]:
    """The changes from run `old` to run `new` (two `portcall.check/1` documents), in the
    order of the new run's results, then the ports only the old run had."""
    before, after = _slots(old), _slots(new)
    times = (_moment(as_dict(old).get("finished")), _moment(as_dict(new).get("finished")))
    changes: list[Change] = []
    for slot in dict.fromkeys([*after, *before]):
        for was, now in _pairs(before.get(slot, []), after.get(slot, [])):
            changes += _compare(slot, was, now, times, expiring_days)
    return changes


def _slots(document: object) -> dict[Slot, list[dict[str, Any]]]:
    slots: dict[Slot, list[dict[str, Any]]] = {}
    for entry in as_list(as_dict(document).get("results")):
        result = as_dict(entry)
        host, port = as_text(result.get("host")), result.get("port")
        if host is None or type(port) is not int:
            continue
        transport = as_text(result.get("transport")) or "tcp"
        slots.setdefault((host, transport, port), []).append(result)
    return slots


def _pairs(
    old: list[dict[str, Any]], new: list[dict[str, Any]]
) -> Iterator[tuple[dict[str, Any] | None, dict[str, Any] | None]]:
    """One result on each side is one port, even at a new address; several (one per address
    of the host) are matched by address."""
    if len(old) == 1 and len(new) == 1:
        yield old[0], new[0]
        return
    was = {as_text(r.get("address")): r for r in old}
    now = {as_text(r.get("address")): r for r in new}
    for address in dict.fromkeys([*now, *was]):
        yield was.get(address), now.get(address)


def _compare(
    slot: Slot,
    old: dict[str, Any] | None,
    new: dict[str, Any] | None,
    times: tuple[datetime | None, datetime | None],
    expiring_days: int,
) -> list[Change]:
    host, transport, port = slot
    either = as_dict(new if new is not None else old)
    key, address = as_text(either.get("key")) or "", as_text(either.get("address"))

    def make(kind: str, was: str | None = None, now: str | None = None, **more: Any) -> Change:
        return Change(host, port, transport, key, kind, was, now, address=address, **more)

    if old is None:
        return [make("appeared", None, as_text(either.get("verdict")))]
    if new is None:
        return [make("disappeared", as_text(either.get("verdict")), None)]
    added = _finding_codes(new) - _finding_codes(old)
    return [
        *_simple(make, "address", old, new, "address"),
        *_simple(make, "verdict", old, new, "verdict"),
        *_findings(make, old, new),
        *_certificate(make, old, new),
        *_expiring(make, old, new, times, expiring_days, "cert-expiring" in added),
        *_simple(make, "product", old, new, "product"),
        *_banner(make, old, new),
    ]


def _simple(
    make: Make, kind: str, old: dict[str, Any], new: dict[str, Any], field: str
) -> list[Change]:
    was, now = as_text(old.get(field)), as_text(new.get(field))
    return [] if was == now else [make(kind, was, now)]


def _finding_codes(result: dict[str, Any]) -> set[str]:
    codes = (as_text(as_dict(f).get("code")) for f in as_list(result.get("findings")))
    return {code for code in codes if code}


def _findings(make: Make, old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    was, now = _finding_codes(old), _finding_codes(new)
    return [make("finding-added", None, code) for code in sorted(now - was)] + [
        make("finding-removed", code, None) for code in sorted(was - now)
    ]


def _certificate_of(result: dict[str, Any]) -> tuple[str | None, str | None]:
    """The serial and end of validity of the certificate a result saw, or (None, None)."""
    certificate = as_dict(as_dict(result.get("tls")).get("certificate"))
    return as_text(certificate.get("serial")), as_text(certificate.get("not_after"))


def _certificate(make: Make, old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    (serial_was, end_was), (serial_now, end_now) = _certificate_of(old), _certificate_of(new)
    if (serial_was, end_was) == (serial_now, end_now):
        return []
    ends = {"old_not_after": end_was, "new_not_after": end_now}
    return [make("certificate", serial_was, serial_now, note=_how(old, new), **ends)]


def _how(old: dict[str, Any], new: dict[str, Any]) -> str:
    """renewed: another serial that lasts longer; replaced: another serial that does not;
    reissued: the same serial with other dates (a CA's mistake, or a test's)."""
    (serial_was, end_was), (serial_now, end_now) = _certificate_of(old), _certificate_of(new)
    if serial_was is None and end_was is None:
        return "added"
    if serial_now is None and end_now is None:
        return "removed"
    if serial_was == serial_now:
        return "reissued"
    return "renewed" if _later(_moment(end_now), _moment(end_was)) else "replaced"


def _later(one: datetime | None, other: datetime | None) -> bool:
    try:
        return one is not None and other is not None and one > other
    except TypeError:  # one naive, one aware: a document we did not write
        return False


def _expiring(
    make: Make,
    old: dict[str, Any],
    new: dict[str, Any],
    times: tuple[datetime | None, datetime | None],
    days: int,
    finding_added: bool,
) -> list[Change]:
    """A certificate that came within `days` of its end since the old run; said once, so not
    when the new run's own cert-expiring finding already says it."""
    left_was = _days_left(_certificate_of(old)[1], times[0])
    left_now = _days_left(_certificate_of(new)[1], times[1])
    if finding_added or left_now is None or left_now >= days:
        return []
    if left_was is not None and left_was < days:
        return []
    was = None if left_was is None else f"{left_was} days left"
    return [make("cert-expiring", was, f"{left_now} days left")]


def _days_left(not_after: str | None, at: datetime | None) -> int | None:
    end = _moment(not_after)
    if end is None or at is None:
        return None
    try:
        return (end - at).days
    except TypeError:  # one naive, one aware: a document we did not write
        return None


# Stamps that servers put in their greetings, which change on every connection.
_STAMPS = re.compile(
    r"(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun),?\s+)?\d{1,2}\s+[A-Z][a-z]{2}\s+\d{4}\s+"
    r"\d{1,2}:\d{2}(?::\d{2})?(?:\s*[+-]\d{4})?(?:\s*\([A-Za-z]+\))?"  # RFC 5322 date
    r"|\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?"  # ISO 8601
    r"|\b\d{1,2}:\d{2}:\d{2}\b"  # a bare time of day
    r"|<[^<>@\s]+@[^<>\s]+>"  # a POP3 APOP challenge: <process.clock@host>
)


def banner_shape(banner: str | None) -> str | None:
    """The banner without its date, time and challenge stamps: two greetings of the same
    server have the same shape."""
    return None if banner is None else _STAMPS.sub("<stamp>", banner)


def _banner(make: Make, old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    was, now = as_text(old.get("banner")), as_text(new.get("banner"))
    return [] if banner_shape(was) == banner_shape(now) else [make("banner", was, now)]


def _moment(value: object) -> datetime | None:
    text = as_text(value)
    if not text:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None
