"""The port catalog: which ports a deployment uses, and what each one needs.

The built-in catalog (`exchange-2000`) is Microsoft's table of Exchange 2000/2003 ports as
data. A user's own catalog in the same TOML format replaces it with `--catalog FILE`.
"""

from __future__ import annotations

import re
import tomllib
import unicodedata
from dataclasses import dataclass
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Any

DEFAULT_CATALOG = "exchange-2000"

PROTOCOLS = ("smtp", "pop3", "imap", "nntp", "ldap", "http", "routing")
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
    def label(self) -> str:
        """How a person names the row: "IMAP4 over TLS (993)"."""
        name = _DISPLAY[self.protocol]
        if self.tls is TlsMode.IMPLICIT:
            name += " over TLS"
        return f"{name} ({self.port})"

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
}


@dataclass(frozen=True)
class Catalog:
    name: str
    title: str
    source: str
    entries: tuple[PortEntry, ...]

    def by_port(self, port: int) -> PortEntry | None:
        return next((e for e in self.entries if e.port == port), None)

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
    """The built-in catalog, or the user's file at `path`."""
    if path is None:
        text = resources.files(__package__).joinpath(f"{DEFAULT_CATALOG}.toml").read_text()
        origin = f"built-in catalog {DEFAULT_CATALOG}"
    else:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise CatalogError(f"cannot read catalog {path}: {exc.strerror or exc}") from exc
        except UnicodeDecodeError as exc:
            raise CatalogError(f"catalog {path} is not UTF-8 text") from exc
        origin = str(path)
    return parse_catalog(text, origin)


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
    if row.get("transport", "tcp") != "tcp":
        raise fail("transport", "only tcp can be probed")
    protocol = row.get("protocol")
    if protocol not in PROTOCOLS:
        raise fail("protocol", f"{protocol!r} is not one of {', '.join(PROTOCOLS)}")
    tls = row.get("tls", "none")
    if tls not in {m.value for m in TlsMode}:
        raise fail("tls", f"{tls!r} is not one of none, starttls, implicit")
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
    for attribute in ("key", "port"):
        seen: dict[object, int] = {}
        for index, entry in enumerate(entries, start=1):
            value = getattr(entry, attribute)
            if value in seen:
                raise CatalogError(
                    f"{origin}: row {index} ({entry.key}), field '{attribute}': "
                    f"{value!r} is already used by row {seen[value]}"
                )
            seen[value] = index
