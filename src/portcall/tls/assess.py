"""From a finished handshake to `TlsFacts`, and from `TlsFacts` to findings a person can act on."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime, timedelta

from cryptography import x509

from portcall.tls.certs import CertificateError, facts_from_certificate, load_certificate
from portcall.tls.context import UNTRUSTED_ERRORS, is_time_only
from portcall.tls.facts import CertificateFacts, LegacyCause, TlsFacts
from portcall.tls.names import NameMatch, match_name, parse_ip
from portcall.verdicts import Finding, FindingCode

DEFAULT_EXPIRING_DAYS = 30

#: Certificates whose facts a run keeps, read once each: a server shows the same certificate
#: on each of its TLS ports (one for SMTP, IMAP, POP3, HTTP and LDAP is how Exchange is set
#: up), and servers of one organisation often share one too.
CERTIFICATES_KEPT = 256


def tls_facts(
    *,
    version: str | None,
    cipher: tuple[str, str, int] | None,
    der: bytes | None,
    legacy: bool,
    trusted: bool | None,
    trust_error: str | None,
    checked_name: str | None,
    legacy_causes: list[LegacyCause] | None = None,
) -> TlsFacts:
    """What `SSLObject.version()`, `.cipher()` and `.getpeercert(True)` said, made into facts.

    `trusted` is None when the chain was not verified; pass the `chain_trusted` and `message`
    of `classify_verify_error` when verification failed.
    """
    facts = TlsFacts(
        version=version or "unknown",
        cipher=cipher[0] if cipher else "unknown",
        legacy=legacy,
        legacy_causes=list(legacy_causes or []),
        trusted=trusted,
        trust_error=trust_error,
        checked_name=checked_name,
    )
    if der is None:
        facts.notes.append("the server sent no certificate")
        return facts
    try:
        facts.certificate = _read(der)[1]
        if checked_name:
            match = _match(der, checked_name)
            facts.name_matches, facts.name_match_detail = match.matches, match.detail
    except CertificateError as err:
        facts.notes.append(f"the server's certificate cannot be read: {err}")
    return facts


@functools.lru_cache(maxsize=CERTIFICATES_KEPT)
def _read(der: bytes) -> tuple[x509.Certificate, CertificateFacts]:
    """A certificate and its facts, shared by every result that met it (facts are frozen)."""
    cert = load_certificate(der)
    return cert, facts_from_certificate(cert)


@functools.lru_cache(maxsize=CERTIFICATES_KEPT * 4)
def _match(der: bytes, name: str) -> NameMatch:
    return match_name(_read(der)[0], name)


def assess(
    tls: TlsFacts, *, now: datetime, expiring_days: int = DEFAULT_EXPIRING_DAYS
) -> list[Finding]:
    findings: list[Finding] = []
    cert = tls.certificate
    if cert is not None:
        findings += _validity(cert, now, expiring_days)
    if tls.name_matches is False:
        findings.append(_name_mismatch(tls))
    if tls.trusted is False and not is_time_only(tls.trust_error):
        reason = f": {tls.trust_error}" if tls.trust_error else ""
        findings.append(Finding(FindingCode.CERT_UNTRUSTED, f"certificate is not trusted{reason}"))
    if cert is not None and cert.self_signed:
        findings.append(_self_signed())
    if tls.legacy:
        findings.append(_legacy(tls))
    return findings


def _validity(cert: CertificateFacts, now: datetime, expiring_days: int) -> list[Finding]:
    if now < cert.not_before:
        return [
            Finding(
                FindingCode.CERT_NOT_YET_VALID,
                f"certificate is not valid until {_date(cert.not_before)} "
                f"({_when(cert.not_before - now)}): check the server's clock, or install a "
                f"certificate that is valid now",
            )
        ]
    if now >= cert.not_after:
        return [
            Finding(
                FindingCode.CERT_EXPIRED,
                f"certificate expired {_date(cert.not_after)} ({_when(cert.not_after - now)}): "
                f"install a renewed computer certificate",
            )
        ]
    if cert.not_after - now < timedelta(days=expiring_days):
        return [
            Finding(
                FindingCode.CERT_EXPIRING,
                f"certificate expires {_date(cert.not_after)} ({_when(cert.not_after - now)}): "
                f"renew it before then",
            )
        ]
    return []


def _name_mismatch(tls: TlsFacts) -> Finding:
    detail = tls.name_match_detail or "the certificate does not name the host"
    name = tls.checked_name
    if name and parse_ip(name) is None:
        # An IP-only detail already says what to do; a host name needs a certificate naming it.
        detail += f": install a certificate that names {name}"
    return Finding(FindingCode.CERT_NAME_MISMATCH, detail)


def _self_signed() -> Finding:
    return Finding(
        FindingCode.CERT_SELF_SIGNED,
        "certificate is self-signed: every client must be told to trust it; install one "
        "issued by the organisation's CA or a public CA",
    )


def _legacy(tls: TlsFacts) -> Finding:
    """One finding that names every reason the probe stepped down, each with its remedy."""
    causes = tls.legacy_causes or [LegacyCause.PROTOCOL]
    worked = f"{tls.version}, {tls.cipher}"
    key = tls.certificate.key if tls.certificate else "unknown key"
    return Finding(FindingCode.TLS_LEGACY, "; ".join(_CAUSES[c](worked, key) for c in causes))


def _old_protocol(worked: str, key: str) -> str:
    return (
        f"only legacy TLS works ({worked}); current clients refuse it: enable TLS 1.2 on the "
        "server or move the service to a newer one"
    )


def _intolerant(worked: str, key: str) -> str:
    return (
        f"the server drops the connection on a current TLS hello and answers only a TLS 1.0 "
        f"one ({worked}), as version-intolerant stacks and middleboxes do; current clients do "
        "not fall back: update the server's TLS stack or the device in front of it, and enable "
        "TLS 1.2"
    )


def _weak(code: int) -> _Wording:
    def wording(worked: str, key: str) -> str:
        advice = UNTRUSTED_ERRORS[code]
        return (
            f"the chain is accepted only below today's security level ({worked}, {key}): {advice}"
        )

    return wording


def _old_ciphers(worked: str, key: str) -> str:
    return (
        f"the server offers only RC4/3DES-era suites ({worked}), which current clients and TLS "
        "libraries refuse; the certificate was read from the server's hello, the handshake "
        "not finished: enable AES suites on the server (Windows Server 2003 needs the update "
        "that adds them) or move the service to a newer one"
    )


_Wording = Callable[[str, str], str]

_CAUSES: dict[LegacyCause, _Wording] = {
    LegacyCause.PROTOCOL: _old_protocol,
    LegacyCause.VERSION_INTOLERANT: _intolerant,
    LegacyCause.WEAK_KEY: _weak(66),
    LegacyCause.WEAK_CA_KEY: _weak(67),
    LegacyCause.WEAK_SIGNATURE: _weak(68),
    LegacyCause.OLD_CIPHERS: _old_ciphers,
}


def _date(moment: datetime) -> str:
    return moment.date().isoformat()


def _when(delta: timedelta) -> str:
    """'in 5 days', '12 days ago', 'in 3 hours': how far a moment is from now."""
    span = abs(delta)
    if span >= timedelta(days=1):
        amount = _plural(span.days, "day")
    else:
        amount = _plural(max(1, span.seconds // 3600), "hour")
    return f"in {amount}" if delta > timedelta(0) else f"{amount} ago"


def _plural(count: int, unit: str) -> str:
    return f"{count} {unit}" if count == 1 else f"{count} {unit}s"
