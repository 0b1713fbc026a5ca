"""The port catalog: which ports a deployment uses, and what each one needs.

The built-in catalogs are `exchange-2000`, Microsoft's table of Exchange 2000/2003 ports as
data, and `windows-dc`, the ports an Exchange server needs on its domain controllers. A user's
own catalog in the same TOML format replaces them with `--catalog FILE`; several catalogs
checked in one run are merged (`merge_catalogs`).
"""

from __future__ import annotations

import re
import tomllib
import unicodedata
from dataclasses import dataclass, replace
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Any

DEFAULT_CATALOG = "exchange-2000"
#: The catalogs shipped with portcall, by the name `--catalog` accepts.
BUILTIN_CATALOGS = ("exchange-2000", "windows-dc")

PROTOCOLS = (
    "smtp",
    "pop3",
    "imap",
    "nntp",
    "ldap",
    "http",
    "routing",
    "dns",
    "kerberos",
    "kpasswd",
    "cldap",
    "dcerpc",
    "smb",
    "ntp",
)
TRANSPORTS = ("tcp", "udp")
#: The transports each protocol can be probed over (the first is its usual one).
PROTOCOL_TRANSPORTS: dict[str, tuple[str, ...]] = {
    **{name: ("tcp",) for name in PROTOCOLS},
    "dns": ("udp", "tcp"),
    "kerberos": ("udp", "tcp"),
    "kpasswd": ("udp", "tcp"),
    "cldap": ("udp", "tcp"),
    "ntp": ("udp",),
}
#: Protocols that speak TLS (implicit or STARTTLS) when a row says so.
TLS_PROTOCOLS = frozenset({"smtp", "pop3", "imap", "nntp", "ldap", "http", "routing"})
_KEY = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")


class TlsMode(StrEnum):
    NONE = "none"
    STARTTLS = "starttls"
    IMPLICIT = "implicit"


@dataclass(frozen=True)
class PortEntry:
    key: str
    port: int
    protocol: str
    tls: TlsMode
    component: str
    description: str
    needs: str
    hint: str
    transport: str = "tcp"
    tls_required: bool = True
    optional: bool = False

    @property
    def service(self) -> str:
        """The service without its port: "IMAP4 over TLS", "DNS"."""
        name = _DISPLAY[self.protocol]
        return name + " over TLS" if self.tls is TlsMode.IMPLICIT else name

    @property
    def label(self) -> str:
        """How a person names the row: "IMAP4 over TLS (993)", "DNS (53/udp)"."""
        name = self.service
        if len(PROTOCOL_TRANSPORTS[self.protocol]) > 1:
            return f"{name} ({self.port}/{self.transport})"
        return f"{name} ({self.where})"

    @property
    def where(self) -> str:
        """The port as people write it: "25" over TCP, "53/udp" over UDP."""
        return port_text(self.port, self.transport)

    def to_dict(self) -> dict[str, object]:
        return {
            "key": self.key,
            "port": self.port,
            "transport": self.transport,
            "protocol": self.protocol,
            "tls": str(self.tls),
            "tls_required": self.tls_required,
            "optional": self.optional,
            "component": self.component,
            "description": self.description,
            "needs": self.needs,
            "hint": self.hint,
        }


_DISPLAY = {
    "smtp": "SMTP",
    "pop3": "POP3",
    "imap": "IMAP4",
    "nntp": "NNTP",
    "ldap": "LDAP",
    "http": "HTTP",
    "routing": "Exchange routing",
    "dns": "DNS",
    "kerberos": "Kerberos",
    "kpasswd": "Kerberos password change",
    "cldap": "CLDAP",
    "dcerpc": "RPC endpoint mapper",
    "smb": "SMB",
    "ntp": "NTP",
}


def port_text(port: int, transport: str = "tcp") -> str:
    """ "25" for a TCP port, "53/udp" for a UDP one: TCP is what a bare port number means."""
    return str(port) if transport == "tcp" else f"{port}/{transport}"


@dataclass(frozen=True)
class Catalog:
    name: str
    title: str
    source: str
    entries: tuple[PortEntry, ...]

    def by_port(self, port: int, transport: str | None = None) -> PortEntry | None:
        """The row of `port` (over `transport`, or the first row of that port)."""
        return next(
            (
                e
                for e in self.entries
                if e.port == port and (transport is None or e.transport == transport)
            ),
            None,
        )

    def by_key(self, key: str) -> PortEntry | None:
        return next((e for e in self.entries if e.key == key), None)

    def select(
        self, *, ports: set[int] | None = None, protocols: set[str] | None = None
    ) -> list[PortEntry]:
        return [
            e
            for e in self.entries
            if (ports is None or e.port in ports) and (protocols is None or e.protocol in protocols)
        ]


class CatalogError(ValueError):
    """A catalog file that cannot be used; the message names the row, the field and why."""


def load_catalog(path: str | Path | None = None) -> Catalog:
    """The default built-in catalog, a built-in one by name (`windows-dc`), or the user's file
    at `path`; a file of that name in the working directory comes before a built-in one only
    when written as a path (`./windows-dc`)."""
    if path is None or str(path) in BUILTIN_CATALOGS:
        name = DEFAULT_CATALOG if path is None else str(path)
        text = resources.files(__package__).joinpath(f"{name}.toml").read_text()
        origin = f"built-in catalog {name}"
    else:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            builtin = f" (built-in catalogs: {', '.join(BUILTIN_CATALOGS)})"
            raise CatalogError(
                f"cannot read catalog {path}: {exc.strerror or exc}{builtin}"
            ) from exc
        except UnicodeDecodeError as exc:
            raise CatalogError(f"catalog {path} is not UTF-8 text") from exc
        origin = str(path)
    return parse_catalog(text, origin)


def merge_catalogs(catalogs: list[Catalog]) -> Catalog:
    """One catalog of several, for a run that checks them all: rows in order, a port that two
    catalogs both list (LDAP 389/tcp is in exchange-2000 and windows-dc) kept once, from the
    first. Keys are made unique with the later catalog's name when they clash."""
    if len(catalogs) == 1:
        return catalogs[0]
    entries: list[PortEntry] = []
    seen_ports: set[tuple[int, str]] = set()
    seen_keys: set[str] = set()
    for catalog in catalogs:
        for entry in catalog.entries:
            if (entry.port, entry.transport) in seen_ports:
                continue
            if entry.key in seen_keys:
                entry = replace(entry, key=f"{catalog.name}-{entry.key}"[:32])
            seen_ports.add((entry.port, entry.transport))
            seen_keys.add(entry.key)
            entries.append(entry)
    return Catalog(
        name="+".join(c.name for c in catalogs),
        title="; ".join(c.title for c in catalogs if c.title),
        source="; ".join(c.source for c in catalogs if c.source),
        entries=tuple(entries),
    )


def parse_catalog(text: str, origin: str = "catalog") -> Catalog:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"{origin}: not valid TOML: {exc}") from exc
    unknown = sorted(set(data) - {"catalog", "port"})
    if unknown:
        raise CatalogError(
            f"{origin}: unknown table '{unknown[0]}'; a catalog has [catalog] and [[port]]"
        )
    head = _head(data.get("catalog", {}), origin)
    rows = data.get("port")
    if not isinstance(rows, list) or not rows:
        raise CatalogError(f"{origin}: no [[port]] rows; a catalog needs at least one")
    entries = tuple(_entry(row, index, origin) for index, row in enumerate(rows, start=1))
    _check_unique(entries, origin)
    return Catalog(
        name=head.get("name", Path(origin).stem),
        title=head.get("title", ""),
        source=head.get("source", ""),
        entries=entries,
    )


_HEAD_FIELDS = ("name", "title", "source")


def _head(head: Any, origin: str) -> dict[str, str]:
    if not isinstance(head, dict):
        raise CatalogError(f"{origin}: [catalog] must be a table")
    for name, value in head.items():
        where = f"{origin}: [catalog], field '{name}'"
        if name not in _HEAD_FIELDS:
            raise CatalogError(
                f"{where}: unknown field; known fields are {', '.join(_HEAD_FIELDS)}"
            )
        if not isinstance(value, str) or not value.strip():
            raise CatalogError(f"{where}: must be a non-empty text")
        if not _printable(value):
            raise CatalogError(f"{where}: holds a control or invisible character")
    return {name: value.strip() for name, value in head.items()}


def _printable(text: str) -> bool:
    """No control, format (bidi, zero-width) or separator character: a catalog's words are
    printed in reports and must read as they are written."""
    return not any(
        unicodedata.category(c) in ("Cc", "Cf", "Cs", "Zl", "Zp") for c in text if c != "\n"
    )


_TEXT_FIELDS = ("component", "description", "needs", "hint")
_KNOWN = {"key", "port", "transport", "protocol", "tls", "tls_required", "optional", *_TEXT_FIELDS}


def _entry(row: Any, index: int, origin: str) -> PortEntry:
    if not isinstance(row, dict):
        raise CatalogError(f"{origin}: row {index} is not a table")
    where = f"{origin}: row {index}"
    if isinstance(row.get("key"), str):
        where += f" ({row['key']})"

    def fail(name: str, why: str) -> CatalogError:
        return CatalogError(f"{where}, field '{name}': {why}")

    unknown = sorted(set(row) - _KNOWN)
    if unknown:
        raise fail(unknown[0], f"unknown field; known fields are {', '.join(sorted(_KNOWN))}")
    key = row.get("key")
    if not isinstance(key, str) or not _KEY.match(key):
        raise fail("key", "must be 1-32 lower-case letters, digits or dashes")
    port = row.get("port")
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        raise fail("port", f"must be a whole number from 1 to 65535, not {port!r}")
    protocol = row.get("protocol")
    if protocol not in PROTOCOLS:
        raise fail("protocol", f"{protocol!r} is not one of {', '.join(PROTOCOLS)}")
    transport = row.get("transport", "tcp")
    if transport not in TRANSPORTS:
        raise fail("transport", f"{transport!r} is not one of {', '.join(TRANSPORTS)}")
    if transport not in PROTOCOL_TRANSPORTS[protocol]:
        allowed = " or ".join(PROTOCOL_TRANSPORTS[protocol])
        raise fail("transport", f"{protocol} is probed over {allowed}, not {transport}")
    tls = row.get("tls", "none")
    if tls not in {m.value for m in TlsMode}:
        raise fail("tls", f"{tls!r} is not one of none, starttls, implicit")
    if tls != "none" and protocol not in TLS_PROTOCOLS:
        raise fail("tls", f'{protocol} has no TLS here; write tls = "none"')
    if tls == "starttls" and protocol in ("http", "routing"):
        raise fail("tls", f"{protocol} has no STARTTLS")
    texts = {}
    for name in _TEXT_FIELDS:
        value = row.get(name)
        if not isinstance(value, str) or not value.strip():
            raise fail(name, "must be a non-empty text")
        if not _printable(value):
            raise fail(name, "holds a control or invisible character")
        texts[name] = value.strip()
    flags = {}
    for name, default in (("tls_required", True), ("optional", False)):
        value = row.get(name, default)
        if not isinstance(value, bool):
            raise fail(name, "must be true or false")
        flags[name] = value
    return PortEntry(
        key=key,
        port=port,
        transport=transport,
        protocol=protocol,
        tls=TlsMode(tls),
        component=texts["component"],
        description=texts["description"],
        needs=texts["needs"],
        hint=texts["hint"],
        tls_required=flags["tls_required"],
        optional=flags["optional"],
    )


def _check_unique(entries: tuple[PortEntry, ...], origin: str) -> None:
    """Keys are unique, and so is each port over each transport (53/tcp and 53/udp are two)."""
    for attribute in ("key", "port"):
        seen: dict[object, int] = {}
        for index, entry in enumerate(entries, start=1):
            value = entry.key if attribute == "key" else (entry.port, entry.transport)
            if value in seen:
                shown = repr(entry.key) if attribute == "key" else entry.where
                raise CatalogError(
                    f"{origin}: row {index} ({entry.key}), field '{attribute}': "
                    f"{shown} is already used by row {seen[value]}"
                )
            seen[value] = index
