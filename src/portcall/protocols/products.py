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


_SMTPSVC = re.compile(r"Microsoft ESMTP MAIL Service, Version: (?P<version>[\d.]+)")


def exchange_smtp_product(banner: str | None) -> str:
    """Name the Exchange release behind an SMTP banner whose EHLO showed Exchange's verbs.

    The banner only tells the Windows build. Exchange 2003 runs on Windows 2000 and on
    Windows Server 2003, Exchange 2000 only on Windows 2000, so a 5.0.2195 build cannot tell
    the two releases apart.
    """
    match = _SMTPSVC.search(banner or "")
    if match is None:
        return "Microsoft Exchange"
    version = match.group("version")
    if version.startswith("6.0.3790"):
        return f"Microsoft Exchange 2003 (SMTP service {version})"
    if version.startswith("5.0.2195"):
        return f"Microsoft Exchange 2000 or 2003 (SMTP service {version})"
    return f"Microsoft Exchange (SMTP service {version})"


def _fixed(name: str) -> _Namer:
    return lambda match: name


def _with_version(name: str) -> _Namer:
    def namer(match: re.Match[str]) -> str:
        version = match.groupdict().get("version")
        return f"{name} {version}" if version else name

    return namer


_PATTERNS: tuple[tuple[re.Pattern[str], _Namer], ...] = (
    (_SMTPSVC, _smtpsvc),
    (
        re.compile(
            r"Microsoft Exchange (?:Server )?(?:2000|2003) \S+ server version (?P<version>[\d.]+)"
        ),
        _exchange,
    ),
    (re.compile(r"Microsoft Routing Server"), _fixed("Microsoft Exchange routing engine (RESvc)")),
    # Debian's default smtpd_banner names the distribution; a bare "(3.7.11)" is the version.
    (re.compile(r"ESMTP Postfix \((?P<version>\d[\d.]*)\)"), _with_version("Postfix")),
    (re.compile(r"ESMTP Postfix"), _fixed("Postfix")),
    (re.compile(r"\bDovecot\b"), _fixed("Dovecot")),
    # The IIS NNTP service that Exchange 2000/2003 uses never says "Microsoft" in its greeting.
    (
        re.compile(r"\bNNTP Service (?P<version>\d[\d.]*) Version: \d"),
        _with_version("Microsoft NNTP Service"),
    ),
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
