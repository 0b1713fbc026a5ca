"""Probe one port of one host: connect, speak its protocol, judge TLS, give one verdict."""

from __future__ import annotations

import asyncio
import ssl
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from portcall.catalog import PortEntry, TlsMode
from portcall.probing.driver import Connection, Conversation, converse
from portcall.probing.errors import ProbeFailure
from portcall.probing.reasons import failure_reason, ok_reason
from portcall.probing.sniffing import name_plaintext_service, name_tls_service
from portcall.protocols import client_for
from portcall.protocols.base import ProbeOptions
from portcall.tls.assess import assess, tls_facts
from portcall.tls.context import classify_verify_error, client_context, is_protocol_mismatch
from portcall.verdicts import LocalFault, Result, Verdict

#: One probe may take this many times --timeout in all, across TLS retries and second looks.
PROBE_BUDGET = 3

#: Protocols whose server speaks first: silence there may be TLS waiting for a ClientHello.
SERVER_FIRST = frozenset({"smtp", "pop3", "imap", "nntp", "routing"})


@dataclass(frozen=True)
class Settings:
    timeout: float = 5.0
    cafile: str | None = None
    servername: str | None = None
    expiring_days: int = 30
    client_name: str = "portcall.invalid"


@dataclass(frozen=True)
class Endpoint:
    """A resolved target: the name the user typed and the address it stands for."""

    host: str
    address: str
    is_address: bool


@dataclass
class _TlsState:
    """Where the probe stands on the ladder of TLS contexts."""

    deadline: float
    verify: bool = True
    legacy: bool = False
    trust_error: str | None = None
    chain_trusted: bool = False

    def time_left(self, timeout: float) -> float:
        """Seconds the next connection may take: `timeout`, less near the probe's deadline."""
        left = self.deadline - asyncio.get_running_loop().time()
        return max(0.05, min(timeout, left))


async def probe(endpoint: Endpoint, entry: PortEntry, settings: Settings) -> Result:
    """The verdict for `entry.port` on `endpoint`; never raises for anything the peer does."""
    start = time.perf_counter()
    result = Result(endpoint.host, entry.port, entry.key, Verdict.OK, "", endpoint.address)
    try:
        conversation, state = await _climb_tls_ladder(endpoint, entry, settings)
    except ProbeFailure as failure:
        result.verdict = failure.verdict
        result.reason = failure_reason(entry, failure)
        result.protocol = failure.detected
    except LocalFault:
        raise  # this machine's fault: no verdict about the target
    except Exception as bug:
        # A reply our parser could not take is our defect, not the peer's; one such port
        # must not cost the results of all the others.
        _record_defect(result, entry, bug)
    else:
        _record(result, endpoint, entry, settings, conversation, state)
    result.timings["total"] = time.perf_counter() - start
    return result


def _record_defect(result: Result, entry: PortEntry, bug: Exception) -> None:
    result.verdict = Verdict.WRONG_PROTOCOL
    what = f"{type(bug).__name__}: {bug}"[:200]
    result.reason = (
        f"{entry.port} {result.verdict}: portcall could not make sense of the reply ({what}); "
        "this is a defect in portcall: please report it with the server's banner"
    )
    result.details["internal_error"] = what


def _record(
    result: Result,
    endpoint: Endpoint,
    entry: PortEntry,
    settings: Settings,
    conversation: Conversation,
    state: _TlsState,
) -> None:
    info = conversation.info
    result.protocol = info.protocol
    result.product = info.product
    result.banner = info.banner
    result.capabilities = list(info.capabilities)
    result.details = dict(info.details)
    if entry.tls is TlsMode.STARTTLS and info.starttls_offered is not None:
        result.details["starttls_offered"] = info.starttls_offered
    if info.notes:
        result.details["notes"] = list(info.notes)
    result.timings.update(conversation.timings)
    session = conversation.tls
    if session is not None:
        result.tls = tls_facts(
            version=session.version,
            cipher=session.cipher,
            der=session.der,
            legacy=state.legacy,
            trusted=state.verify or state.chain_trusted,
            trust_error=state.trust_error,
            checked_name=_checked_name(endpoint, settings),
        )
        result.findings = assess(
            result.tls, now=datetime.now(UTC), expiring_days=settings.expiring_days
        )
    result.reason = ok_reason(entry, result)


async def _climb_tls_ladder(
    endpoint: Endpoint, entry: PortEntry, settings: Settings
) -> tuple[Conversation, _TlsState]:
    """Talk to the port, stepping down from a verifying modern TLS context to an unverified
    legacy one as the server requires, so that a certificate is always read when there is one."""
    state = _TlsState(asyncio.get_running_loop().time() + settings.timeout * PROBE_BUDGET)
    while True:
        try:
            conversation = await _attempt(endpoint, entry, settings, state)
            return conversation, state
        except ssl.SSLCertVerificationError as err:
            if is_protocol_mismatch(err) and not state.legacy:
                # A 1024-bit key or a SHA-1 signature: refused at today's security level,
                # usual on Exchange 2000/2003. The legacy context judges the chain instead.
                state.legacy = True
                continue
            if not state.verify:
                raise ProbeFailure(Verdict.TLS_FAILED, f"TLS failed: {err.verify_message}") from err
            failure = classify_verify_error(err)
            state.verify = False
            state.trust_error = failure.message
            state.chain_trusted = failure.chain_trusted
        except ssl.SSLError as err:
            if state.legacy or not is_protocol_mismatch(err):
                raise await _tls_failure(
                    endpoint, entry, state.time_left(settings.timeout), err
                ) from err
            state.legacy = True
        except ProbeFailure as failure:
            left = state.time_left(settings.timeout)
            raise await _explain_silence(endpoint, entry, left, failure) from failure


async def _attempt(
    endpoint: Endpoint, entry: PortEntry, settings: Settings, state: _TlsState
) -> Conversation:
    context = None
    if entry.tls is not TlsMode.NONE:
        context = client_context(verify=state.verify, legacy=state.legacy, cafile=settings.cafile)
    implicit = entry.tls is TlsMode.IMPLICIT
    connection = Connection(
        address=endpoint.address,
        port=entry.port,
        timeout=state.time_left(settings.timeout),
        implicit_tls=context if implicit else None,
        starttls=context if entry.tls is TlsMode.STARTTLS else None,
        server_hostname=_sni(endpoint, settings),
    )
    options = ProbeOptions(
        host=endpoint.host,
        starttls=entry.tls is TlsMode.STARTTLS,
        starttls_required=entry.tls_required,
        implicit_tls=implicit,
        client_name=settings.client_name,
        port=entry.port,
    )
    return await converse(connection, client_for(entry.protocol, options))


async def _tls_failure(
    endpoint: Endpoint, entry: PortEntry, timeout: float, err: ssl.SSLError
) -> ProbeFailure:
    """A TLS handshake that failed for good: if plaintext answers instead, that is the fault."""
    failure = ProbeFailure(Verdict.TLS_FAILED, _describe_ssl_error(err))
    if entry.tls is not TlsMode.IMPLICIT:
        return failure
    detected = await name_plaintext_service(endpoint.address, entry.port, timeout)
    if detected is None or detected == "TLS":
        return failure  # a TLS alert: TLS does answer, it only refused this handshake
    return ProbeFailure(
        Verdict.WRONG_PROTOCOL,
        f"plaintext {detected} answered where TLS was expected from the first byte",
        detected,
    )


async def _explain_silence(
    endpoint: Endpoint, entry: PortEntry, timeout: float, failure: ProbeFailure
) -> ProbeFailure:
    """Silence where the server should speak first: TLS waiting for a ClientHello, or a
    client-speaks-first protocol such as HTTP waiting for a request. A second look names it."""
    if failure.verdict is not Verdict.SILENT or entry.protocol not in SERVER_FIRST:
        return failure
    if entry.tls is not TlsMode.IMPLICIT:
        version = await name_tls_service(endpoint.address, entry.port, timeout)
        if version is not None:
            detail = f"TLS ({version}) answered from the first byte where plaintext was expected"
            return replace(failure, verdict=Verdict.WRONG_PROTOCOL, detail=detail, detected="TLS")
    detected = await name_plaintext_service(endpoint.address, entry.port, timeout)
    if detected is None or detected == "TLS":
        return failure
    detail = f"{detected} answered a request, but said nothing first as {entry.label} would"
    return replace(failure, verdict=Verdict.WRONG_PROTOCOL, detail=detail, detected=detected)


def _describe_ssl_error(err: ssl.SSLError) -> str:
    reason = str(err.reason or err).replace("_", " ").lower()
    return f"TLS handshake failed ({reason})"


def _sni(endpoint: Endpoint, settings: Settings) -> str:
    if settings.servername:
        return settings.servername
    return "" if endpoint.is_address else endpoint.host


def _checked_name(endpoint: Endpoint, settings: Settings) -> str:
    return settings.servername or endpoint.host
