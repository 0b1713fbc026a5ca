"""Product names read from banners: one table of patterns shared by every protocol module."""

from __future__ import annotations

import re
from collections.abc import Callable

_Namer = Callable[[re.Match[str]], str]


def _exchange(match: re.Match[str]) -> str:
    # The store's protocols report the Exchange build: 6.0.x is Exchange 2000, 6.5.x is 2003.
    version = match.group("version")
    edition = "2003" if version.startswith("6.5") else "2000"
    return f"Microsoft Exchange {edition} ({version})"


def _smtpsvc(match: re.Match[str]) -> str:
    # The SMTP banner reports the Windows SMTP service build, not Exchange's: 5.0.2195 is
    # Windows 2000, 6.0.3790 Windows Server 2003. Exchange shows itself only in EHLO.
    version = match.group("version")
    windows = "Windows Server 2003" if version.startswith("6.0.3790") else "Windows 2000"
    if not version.startswith(("5.0.2195", "6.0.3790")):
        windows = "Windows"
    return f"Microsoft SMTP Service {version} ({windows})"


def _fixed(name: str) -> _Namer:
    return lambda match: name


def _with_version(name: str) -> _Namer:
    def namer(match: re.Match[str]) -> str:
        version = match.groupdict().get("version")
        return f"{name} {version}" if version else name

    return namer


_PATTERNS: tuple[tuple[re.Pattern[str], _Namer], ...] = (
    (re.compile(r"Microsoft ESMTP MAIL Service, Version: (?P<version>[\d.]+)"), _smtpsvc),
    (
        re.compile(
            r"Microsoft Exchange (?:Server )?(?:2000|2003) \S+ server version (?P<version>[\d.]+)"
        ),
        _exchange,
    ),
    (re.compile(r"Microsoft Routing Server"), _fixed("Microsoft Exchange routing engine (RESvc)")),
    (re.compile(r"ESMTP Postfix"), _fixed("Postfix")),
    (re.compile(r"\bDovecot\b"), _fixed("Dovecot")),
    (re.compile(r"InterNetNews(?: NNRP)? server INN (?P<version>[\d.]+)"), _with_version("INN")),
    (re.compile(r"\bINN (?P<version>\d[\d.]*)"), _with_version("INN")),
    (re.compile(r"Cyrus IMAP\S* v?(?P<version>[\d.]+)?"), _with_version("Cyrus IMAP")),
    (re.compile(r"\bExim (?P<version>[\d.]+)"), _with_version("Exim")),
    (re.compile(r"\bSendmail (?P<version>[\d.]+)", re.I), _with_version("Sendmail")),
    (re.compile(r"^nginx(?:/(?P<version>[\d.]+))?", re.I), _with_version("nginx")),
    (re.compile(r"^Apache(?:/(?P<version>[\d.]+))?"), _with_version("Apache httpd")),
    (re.compile(r"^Microsoft-IIS/(?P<version>[\d.]+)"), _with_version("Microsoft IIS")),
    (re.compile(r"^OpenLDAP"), _fixed("OpenLDAP")),
)


def product_from_text(text: str | None) -> str | None:
    """The product a banner or Server header names, or None when it names none we know."""
    if not text:
        return None
    for pattern, namer in _PATTERNS:
        match = pattern.search(text)
        if match:
            return namer(match)
    return None
