"""The settings of `portcall serve`: defaults, the TOML file of `--config`, the command line.

A configuration file holds any of these keys (every one optional)::

    listen = "127.0.0.1:9691"          # HOST:PORT, [IPv6]:PORT
    allow = ["127.0.0.0/8", "::1/128"]  # networks /probe may reach; a name must resolve inside
    catalog = "exchange-2000"           # a built-in catalog, a TOML file, or a list of them
    timeout = 5.0                       # seconds one connection may take (as `check --timeout`)
    probe_timeout = 15.0                # seconds one /probe may take at most
    max_concurrent = 4                  # probes at once; one more is answered 503
    ca = "lab-ca.pem"                   # trust these CA certificates instead of the system's
    save = true                         # record each /probe in the history database
    db = "history.sqlite3"              # that database (default: portcall's own)

Relative file names (catalog, ca, db) are read from the file's own directory, so a
configuration keeps working from wherever the exporter is started. An unknown key is an
error: a misspelt `alow` must not leave the exporter open to defaults. Options given on the
command line win over the file.
"""

from __future__ import annotations

import ipaddress
import math
import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from portcall.catalog import BUILTIN_CATALOGS

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9691
#: Loopback only: an exporter reachable from elsewhere must be opened up on purpose.
DEFAULT_ALLOW: tuple[Network, ...] = (
    ipaddress.ip_network("127.0.0.0/8"),
    ipaddress.ip_network("::1/128"),
)
#: Bounds of the numbers a user may set; outside them a value is a typo, not a wish.
TIMEOUT_RANGE = (0.1, 120.0)
PROBE_TIMEOUT_RANGE = (0.5, 600.0)
CONCURRENT_RANGE = (1, 256)


class ConfigError(ValueError):
    """A setting that cannot be used: what is wrong, and a hint how to write it."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint


@dataclass(frozen=True)
class ServeConfig:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    allow: tuple[Network, ...] = DEFAULT_ALLOW
    #: Catalog names or files, merged in order; empty: the default built-in catalog.
    catalog: tuple[str, ...] = ()
    #: Seconds one connection may take (a whole port's probe takes at most three times this).
    timeout: float = 5.0
    #: Seconds one /probe may take; Prometheus's scrape timeout header may only lower it.
    probe_timeout: float = 15.0
    max_concurrent: int = 4
    ca: str | None = None
    save: bool = False
    db: str | None = None

    @property
    def listen(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def parse_listen(text: str) -> tuple[str, int]:
    """`HOST:PORT` (`[::1]:9691` for IPv6) as a host and a port; port 0 picks a free one."""
    host, colon, port_text = text.strip().rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        host = ""  # an IPv6 address without brackets is ambiguous
    if not colon or not host or not port_text.isdigit() or int(port_text) > 65535:
        raise ConfigError(
            f"listen: '{text}' is not HOST:PORT",
            "examples: 127.0.0.1:9691, 0.0.0.0:9691, [::1]:9691",
        )
    return host, int(port_text)


def parse_network(text: str) -> Network:
    """An allowed network (`10.0.0.0/24`) or a single address (`192.0.2.7`)."""
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        raise ConfigError(
            f"allow: '{text}' is not an IP network",
            "examples: 127.0.0.0/8, 192.0.2.0/24, 2001:db8::/64, 192.0.2.7",
        ) from None


def read_file(path: str) -> dict[str, Any]:
    """The settings a configuration file holds, checked and converted, by ServeConfig field."""
    file = Path(path)
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read '{path}': {exc.strerror or exc}") from exc
    except UnicodeDecodeError:
        raise ConfigError(f"'{path}' is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"'{path}' is not valid TOML: {exc}") from None
    return _settings(data, file.parent)


def _settings(data: dict[str, Any], base: Path) -> dict[str, Any]:
    unknown = sorted(set(data) - set(_READERS))
    if unknown:
        raise ConfigError(
            f"unknown setting {', '.join(unknown)}", f"the settings: {', '.join(_READERS)}"
        )
    values: dict[str, Any] = {}
    for key, value in data.items():
        values.update(_READERS[key](value, base))
    return values


def combine(file_values: dict[str, Any], cli_values: dict[str, Any]) -> ServeConfig:
    """The defaults, overridden by the file, overridden by the command line (None: not given)."""
    known = {f.name for f in fields(ServeConfig)}
    chosen = {**file_values, **{k: v for k, v in cli_values.items() if v is not None}}
    config = replace(ServeConfig(), **{k: v for k, v in chosen.items() if k in known})
    if config.probe_timeout < config.timeout:
        raise ConfigError(
            f"probe_timeout ({config.probe_timeout:g}) is shorter than timeout "
            f"({config.timeout:g})",
            "a probe needs at least one connection's time: raise probe_timeout",
        )
    return config


def _listen(value: Any, _base: Path) -> dict[str, Any]:
    host, port = parse_listen(_text(value, "listen"))
    return {"host": host, "port": port}


def _allow(value: Any, _base: Path) -> dict[str, Any]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(i, str) for i in items):
        raise ConfigError("allow must be a network or a non-empty list of networks")
    return {"allow": tuple(parse_network(item) for item in items)}


def _catalog(value: Any, base: Path) -> dict[str, Any]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(i, str) for i in items):
        raise ConfigError(
            "catalog must be a catalog name or file, or a list of them",
            f"built-in catalogs: {', '.join(BUILTIN_CATALOGS)}",
        )
    return {"catalog": tuple(i if i in BUILTIN_CATALOGS else _path(i, base) for i in items)}


def _number(key: str, low: float, high: float) -> Any:
    def read(value: Any, _base: Path) -> dict[str, Any]:
        number = value if isinstance(value, int | float) and not isinstance(value, bool) else None
        if number is None or math.isnan(number) or not low <= number <= high:
            raise ConfigError(f"{key} must be a number of seconds from {low:g} to {high:g}")
        return {key: float(number)}

    return read


def _max_concurrent(value: Any, _base: Path) -> dict[str, Any]:
    low, high = CONCURRENT_RANGE
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"max_concurrent must be a whole number from {low} to {high}")
    return {"max_concurrent": value}


def _save(value: Any, _base: Path) -> dict[str, Any]:
    if not isinstance(value, bool):
        raise ConfigError("save must be true or false")
    return {"save": value}


def _file(key: str) -> Any:
    def read(value: Any, base: Path) -> dict[str, Any]:
        return {key: _path(_text(value, key), base)}

    return read


def _text(value: Any, key: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{key} must be a non-empty string")
    return value


def _path(text: str, base: Path) -> str:
    path = Path(text).expanduser()
    return str(path if path.is_absolute() else base / path)


_READERS: dict[str, Any] = {
    "listen": _listen,
    "allow": _allow,
    "catalog": _catalog,
    "timeout": _number("timeout", *TIMEOUT_RANGE),
    "probe_timeout": _number("probe_timeout", *PROBE_TIMEOUT_RANGE),
    "max_concurrent": _max_concurrent,
    "ca": _file("ca"),
    "save": _save,
    "db": _file("db"),
}
