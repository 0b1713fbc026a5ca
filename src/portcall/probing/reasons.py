"""One-line reasons a person can act on, tied to the catalog row."""

from __future__ import annotations

from portcall.catalog import PortEntry, TlsMode
from portcall.probing.errors import ProbeFailure
from portcall.protocols.sniff import NON_CONFORMING
from portcall.verdicts import Result, Verdict


def failure_reason(entry: PortEntry, failure: ProbeFailure) -> str:
    head = f"{entry.where} {failure.verdict}: {failure.detail}"
    if failure.verdict in (Verdict.REFUSED, Verdict.FILTERED) and entry.optional:
        return f"{head}. {entry.hint}"  # the hint of an optional row says why closed is fine
    if failure.internal_error is not None:
        return head  # portcall's own defect: no advice about the server fits
    if failure.detected is not None and failure.detected.startswith(NON_CONFORMING):
        return f"{head}. {_non_conforming(entry)}"
    advice = _ADVICE.get(failure.verdict)
    if advice is None:
        return f"{head}. {entry.hint}"
    return f"{head}. {advice(entry)}"


def _non_conforming(entry: PortEntry) -> str:
    return (
        f"{entry.component} answers, but breaks its protocol: check the server's software and "
        "any proxy or filter in front of it"
    )


def _refused(entry: PortEntry) -> str:
    return entry.hint


def _filtered(entry: PortEntry) -> str:
    return (
        f"Check that firewalls between here and the server allow {entry.transport.upper()} "
        f"{entry.port} ({entry.label})."
    )


def _unreachable(entry: PortEntry) -> str:
    return "Check the address and the routes between here and the server."


def _unresolved(entry: PortEntry) -> str:
    return "Check the name's spelling and the DNS servers this machine uses."


def _wrong(entry: PortEntry) -> str:
    return f"Another service holds port {entry.where}: {entry.component} should answer here."


def _no_starttls(entry: PortEntry) -> str:
    return f"STARTTLS needs a certificate the service can use: {entry.needs}"


def _tls_failed(entry: PortEntry) -> str:
    return f"{entry.label} needs a working certificate: {entry.needs}"


def _silent(entry: PortEntry) -> str:
    return f"Something accepts the connection but {entry.component} does not answer: {entry.hint}"


_ADVICE = {
    Verdict.REFUSED: _refused,
    Verdict.FILTERED: _filtered,
    Verdict.UNREACHABLE: _unreachable,
    Verdict.UNRESOLVED: _unresolved,
    Verdict.WRONG_PROTOCOL: _wrong,
    Verdict.NO_STARTTLS: _no_starttls,
    Verdict.TLS_FAILED: _tls_failed,
    Verdict.SILENT: _silent,
}


#: Protocols whose banner is a fact portcall put together (the realm, the SOA, the dialect)
#: rather than a greeting, and belongs in the reason.
_FACTS_IN_BANNER = frozenset({"dns", "kerberos", "kpasswd", "cldap", "dcerpc", "smb", "ntp"})


def ok_reason(entry: PortEntry, result: Result) -> str:
    # The port leads the reason; a DC protocol's facts follow, so its name need not repeat it.
    who = result.product or (entry.service if entry.protocol in _FACTS_IN_BANNER else entry.label)
    parts = [f"{entry.where} ok: {who} answered"]
    if entry.tls is TlsMode.STARTTLS:
        upgraded = result.tls is not None
        parts.append("STARTTLS works" if upgraded else "no STARTTLS (optional here)")
    if result.tls is not None:
        parts.append(f"{result.tls.version}")
    elif entry.protocol in _FACTS_IN_BANNER and result.banner:
        parts.append(result.banner)
    if result.findings:
        codes = ", ".join(str(f.code) for f in result.findings)
        parts.append(f"but {codes}")
    return "; ".join(parts)
