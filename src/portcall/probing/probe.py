"""Probe one port of one host: connect, speak its protocol, judge TLS, give one verdict."""

from __future__ import annotations

import asyncio
import ssl
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from portcall.catalog import PortEntry, TlsMode
from portcall.probing.domain import NEEDS_DOMAIN, UNKNOWN_DOMAIN, UNKNOWN_NOTE
from portcall.probing.driver import (
    Connection,
    ContextSource,
    Conversation,
    HandshakeFailed,
    RawHello,
    converse,
)
from portcall.probing.errors import Phase, ProbeFailure, Sighting, defect, sighted
from portcall.probing.gates import PRIORITY, seconds_waited, trust_memo, waiting
from portcall.probing.reasons import failure_reason, ok_reason
from portcall.probing.service_findings import service_findings
from portcall.probing.sniffing import name_plaintext_service, name_tls_service
from portcall.probing.stream import TlsSession, forget_frames
from portcall.protocols import client_for
from portcall.protocols.base import ProbeOptions
from portcall.tls.assess import assess, tls_facts
from portcall.tls.context import (
    classify_verify_error,
    client_context,
    is_protocol_mismatch,
    is_version_intolerance,
    legacy_cause,
    wants_raw_hello,
)
from portcall.tls.facts import LegacyCause
from portcall.tls.memo import Outcome, TrustMemo, chain_key
from portcall.tls.rawhello import TLS1_0, TLS1_2, client_hello
from portcall.verdicts import LocalFault, Result, Verdict

#: One probe may take this many times --timeout in all, across TLS retries and second looks.
PROBE_BUDGET = 3

#: Protocols whose server speaks first: silence there may be TLS waiting for a ClientHello.
SERVER_FIRST = frozenset({"smtp", "pop3", "imap", "nntp", "routing"})

#: Probes of this process whose exception was kept to the end (`probe`'s failures), and
#: other exceptions not let go of with `forget_frames`: the only source of the reference
#: cycles the scheduler sweeps for (`scheduler._sweep_cycles`).
_kept_exceptions = 0


def kept_exceptions() -> int:
    """How many exceptions (see `_kept_exceptions`) this process has met so far."""
    return _kept_exceptions


def _keep_exception() -> None:
    global _kept_exceptions
    _kept_exceptions += 1


@dataclass(frozen=True)
class Settings:
    timeout: float = 5.0
    cafile: str | None = None
    servername: str | None = None
    expiring_days: int = 30
    client_name: str = "portcall.invalid"
    #: The Active Directory domain the DC protocols ask about ("": found per host, see
    #: `portcall.probing.domain`).
    domain: str = ""
    #: Probe every address a name resolves to (IPv4 and IPv6), not only the first.
    all_addresses: bool = False


@dataclass(frozen=True)
class Endpoint:
    """A resolved target: the name the user typed and the address it stands for."""

    host: str
    address: str
    is_address: bool
    #: The AD domain the host serves, when known (`portcall.probing.domain`).
    domain: str | None = None


@dataclass
class _TlsState:
    """Where the probe stands on the ladder of TLS contexts, and why it stepped down."""

    deadline: float
    verify: bool = True
    legacy: bool = False
    #: The fallback hello: TLS 1.0 at most, for a server that dropped a current one.
    tls1_only: bool = False
    #: portcall's own hello, for suites no `ssl` context here has (RC4, 3DES).
    raw_hello: bool = False
    trust_error: str | None = None
    chain_trusted: bool = False
    causes: list[LegacyCause] = field(default_factory=list)
    #: Started without verification on the run's memory of chains (`tls.memo`): the chain's
    #: trust is looked up, or verified by a second handshake, once the conversation is done.
    looking_up: bool = False
    #: No handshake has been started yet: the first may take the memo's shortcut.
    fresh: bool = True
    #: The dropped modern hello that sent the probe to the TLS 1.0 fallback.
    dropped: HandshakeFailed | None = None
    #: Set when this probe's handshake is the run's first verifying one (`TrustMemo.first`).
    first: asyncio.Future[None] | None = None

    def from_the_top(self) -> None:
        """Leave the memo's shortcut: verify in the handshake, as without a memo."""
        self.looking_up = False
        self.verify = True
        self.trust_error = None
        self.chain_trusted = False

    def step_down(self, cause: LegacyCause) -> bool:
        self.legacy = True
        self.causes.append(cause)
        return True

    def time_left(self, timeout: float) -> float:
        """Seconds the next connection may take: `timeout`, less near the probe's deadline
        (which moves on by the time the probe spent waiting for its gates)."""
        left = self.deadline + seconds_waited() - asyncio.get_running_loop().time()
        return max(0.05, min(timeout, left))


async def probe(endpoint: Endpoint, entry: PortEntry, settings: Settings) -> Result:
    """The verdict for `entry.port` on `endpoint`; never raises for anything the peer does."""
    start = time.perf_counter()
    result = Result(endpoint.host, entry.port, entry.key, Verdict.OK, "", endpoint.address)
    result.transport = entry.transport
    try:
        conversation, state = await _climb_tls_ladder(endpoint, entry, settings)
    except LocalFault:
        raise  # this machine's fault: no verdict about the target
    except Exception as exc:
        _keep_exception()  # its frames may hold the connection in a cycle
        # A reply our parser could not take is our defect, not the peer's; one such port
        # must not cost the results of all the others. The table decides either way.
        failure = exc if isinstance(exc, ProbeFailure) else defect(exc)
        result.verdict = failure.verdict
        result.reason = failure_reason(entry, failure)
        result.protocol = failure.detected
        if failure.internal_error is not None:
            result.details["internal_error"] = failure.internal_error
    else:
        _record(result, endpoint, entry, settings, conversation, state)
    result.timings["total"] = time.perf_counter() - start
    # Of the total, the time spent waiting for a connection or conversation slot: in a large
    # run most of a probe's total may be its turn coming, not the server answering.
    result.timings["waited"] = seconds_waited()
    return result


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
    if entry.protocol in NEEDS_DOMAIN and endpoint.domain is None:
        info.notes.append(UNKNOWN_NOTE)
    if info.notes:
        result.details["notes"] = list(info.notes)
    result.timings.update(conversation.timings)
    session = conversation.tls
    if session is not None:
        _record_tls(result, endpoint, settings, session, state)
    result.findings = service_findings(entry.protocol, result.details) + result.findings
    result.reason = ok_reason(entry, result)
    if session is not None and not session.finished and entry.tls is TlsMode.IMPLICIT:
        cipher = session.cipher[0] if session.cipher else "its suites"
        failure = sighted(Sighting.TLS_UNFINISHED, cipher, entry.label)
        result.verdict = failure.verdict
        result.reason = failure_reason(entry, failure)


def _record_tls(
    result: Result, endpoint: Endpoint, settings: Settings, session: TlsSession, state: _TlsState
) -> None:
    """TLS facts and findings. A certificate read from portcall's own hello (an unfinished
    handshake) gets no trust verdict: nothing proved the server holds its key."""
    result.tls = tls_facts(
        version=session.version,
        cipher=session.cipher,
        der=session.der,
        legacy=state.legacy,
        legacy_causes=state.causes,
        trusted=(state.verify or state.chain_trusted) if session.finished else None,
        trust_error=state.trust_error if session.finished else None,
        checked_name=_checked_name(endpoint, settings),
    )
    if not session.finished:
        result.tls.notes.append(UNVERIFIED_CHAIN)
    result.findings = assess(
        result.tls, now=datetime.now(UTC), expiring_days=settings.expiring_days
    )


#: Why a certificate read from portcall's own hello carries no trust verdict.
UNVERIFIED_CHAIN = (
    "the chain was not verified: it was read from the server's hello, and the handshake that "
    "would have proven the server holds the key could not be finished"
)


async def _climb_tls_ladder(
    endpoint: Endpoint, entry: PortEntry, settings: Settings
) -> tuple[Conversation, _TlsState]:
    """Talk to the port, stepping down from a verifying modern TLS context to an unverified
    legacy one, a TLS 1.0 fallback and portcall's own hello as the server requires, so that
    a certificate is always read when there is one. All steps share one deadline."""
    state = _TlsState(asyncio.get_running_loop().time() + settings.timeout * PROBE_BUDGET)
    memo = trust_memo() if entry.tls is not TlsMode.NONE else None
    try:
        return await _climb(endpoint, entry, settings, state, memo)
    finally:
        if state.first is not None and not state.first.done():
            state.first.set_result(None)  # no outcome to remember: the others wait no more


async def _climb(
    endpoint: Endpoint,
    entry: PortEntry,
    settings: Settings,
    state: _TlsState,
    memo: TrustMemo | None,
) -> tuple[Conversation, _TlsState]:
    while True:
        try:
            conversation = await _attempt(endpoint, entry, settings, state)
            if memo is None or await _settle_trust(
                endpoint, entry, settings, state, memo, conversation
            ):
                return conversation, state
            state.from_the_top()
        except HandshakeFailed as failed:
            if state.looking_up:
                forget_frames(failed)
                state.from_the_top()  # anything unusual: the ladder as without a memo
                continue
            if _retry(state, failed):
                forget_frames(failed)  # only its message is kept, as the step down's cause
            else:
                failed = _what_failed(state, failed)
                left = state.time_left(settings.timeout)
                raise await _tls_failure(endpoint, entry, left, failed) from failed.cause
        except ProbeFailure as failure:
            left = state.time_left(settings.timeout)
            raise await _explain_silence(endpoint, entry, left, failure) from failure


async def _settle_trust(
    endpoint: Endpoint,
    entry: PortEntry,
    settings: Settings,
    state: _TlsState,
    memo: TrustMemo,
    conversation: Conversation,
) -> bool:
    """Record what the handshake showed of its chain in `memo`, or, on the memo's shortcut,
    take the chain's trust from it (verifying with a second handshake a chain not seen yet).
    False when the shortcut met something only the full ladder judges rightly."""
    session = conversation.tls
    if session is None or not session.finished:
        return True
    key = chain_key(session.chain or ((session.der,) if session.der else ()), legacy=state.legacy)
    if not state.looking_up:
        if state.verify:
            memo.remember(key, Outcome(trusted=True))
        elif state.trust_error is not None:
            memo.remember(key, Outcome(False, state.trust_error, state.chain_trusted))
        return True
    outcome = memo.get(key)
    if outcome is None:
        outcome = await _verify_chain_once(endpoint, entry, settings, state, memo, key)
        if outcome is None:
            return False
    state.looking_up = False
    state.verify = outcome.trusted
    state.trust_error = outcome.error
    state.chain_trusted = outcome.chain_trusted
    return True


async def _verify_chain_once(
    endpoint: Endpoint,
    entry: PortEntry,
    settings: Settings,
    state: _TlsState,
    memo: TrustMemo,
    key: str,
) -> Outcome | None:
    """`_verify_chain`, remembered; while another probe verifies the same chain, its outcome
    is waited for (as time waited, holding no slot) instead of a handshake of this probe's
    own. When that other verification ended without an outcome, this probe makes its own."""
    pending = memo.verifying.get(key)
    if pending is not None:
        with waiting():
            outcome = await asyncio.shield(pending)
        if outcome is not None:
            return outcome
    mine: asyncio.Future[Outcome | None] = asyncio.get_running_loop().create_future()
    memo.verifying[key] = mine
    outcome = None
    try:
        outcome = await _verify_chain(endpoint, entry, settings, state)
        if outcome is not None:
            memo.remember(key, outcome)
        return outcome
    finally:
        if memo.verifying.get(key) is mine:
            del memo.verifying[key]
        mine.set_result(outcome)  # None, also when cancelled: the waiters verify themselves


async def _verify_chain(
    endpoint: Endpoint, entry: PortEntry, settings: Settings, state: _TlsState
) -> Outcome | None:
    """A verifying handshake on the same rung, for a chain the memo does not know: its
    outcome, or None when it failed otherwise than by the chain's trust."""
    trial = replace(state, verify=True, looking_up=False, causes=list(state.causes))
    try:
        await _attempt(endpoint, entry, settings, trial)
    except HandshakeFailed as failed:
        forget_frames(failed)
        err = failed.cause
        if not isinstance(err, ssl.SSLCertVerificationError) or is_protocol_mismatch(err):
            return None  # a weak key or signature: the ladder steps down and says why
        failure = classify_verify_error(err)
        return Outcome(False, failure.message, failure.chain_trusted)
    except ProbeFailure:
        _keep_exception()
        return None
    return Outcome(trusted=True)


def _retry(state: _TlsState, failed: HandshakeFailed) -> bool:
    """Whether another rung deserves a try after `failed`; moves `state` there if so."""
    err = failed.cause
    if isinstance(err, ssl.SSLCertVerificationError):
        return _retry_verification(state, err)
    if is_version_intolerance(err) and not state.tls1_only and not state.raw_hello:
        state.tls1_only, state.dropped = True, failed
        return state.step_down(LegacyCause.VERSION_INTOLERANT)
    if state.dropped is not None and _refuses_old_versions(err):
        return False  # it speaks TLS, only not this old: no version intolerance after all
    if not isinstance(err, ssl.SSLError) or not is_protocol_mismatch(err):
        return False
    if not state.legacy:
        return state.step_down(legacy_cause(err))
    if wants_raw_hello(err) and not state.raw_hello:
        state.raw_hello = True
        return state.step_down(LegacyCause.OLD_CIPHERS)
    return False


def _refuses_old_versions(err: OSError) -> bool:
    return isinstance(err, ssl.SSLError) and err.reason == "TLSV1_ALERT_PROTOCOL_VERSION"


def _what_failed(state: _TlsState, failed: HandshakeFailed) -> HandshakeFailed:
    """The failure to report. A server that answers the TLS 1.0 fallback with a
    protocol_version alert speaks TLS and refuses the old version: it was not
    version-intolerant, and the drop of the modern hello (a reset, an overloaded or
    restarting server, a middlebox) is what went wrong."""
    if state.dropped is not None and _refuses_old_versions(failed.cause):
        return state.dropped
    return failed


def _retry_verification(state: _TlsState, err: ssl.SSLCertVerificationError) -> bool:
    if is_protocol_mismatch(err) and not state.legacy:
        # A 1024-bit key or a SHA-1 signature: refused at today's security level, usual on
        # Exchange 2000/2003. The legacy context judges the rest of the chain.
        return state.step_down(legacy_cause(err))
    if not state.verify:
        return False
    failure = classify_verify_error(err)
    state.verify = False
    state.trust_error = failure.message
    state.chain_trusted = failure.chain_trusted
    memo = trust_memo()
    if memo is not None:
        memo.start_unverified = True  # the chain itself is remembered once the retry is done
    return True


async def _attempt(
    endpoint: Endpoint, entry: PortEntry, settings: Settings, state: _TlsState
) -> Conversation:
    context: ContextSource | None = None
    if entry.tls is not TlsMode.NONE:

        def context() -> ssl.SSLContext:
            # Chosen when the handshake starts, not when the probe did: by then the run may
            # have learnt enough chains to take the memo's shortcut (`tls.memo`).
            memo = trust_memo()
            if state.fresh and memo is not None and memo.start_unverified:
                state.verify, state.looking_up = False, True
            state.fresh = False
            if state.verify and memo is not None and memo.first is None and memo.undecided():
                memo.first = state.first = asyncio.get_running_loop().create_future()
                memo.first_task = asyncio.current_task()
            PRIORITY.set(0)  # this probe has begun: its next connections go first
            return client_context(
                verify=state.verify,
                legacy=state.legacy,
                cafile=settings.cafile,
                tls1_only=state.tls1_only,
            )

    implicit = entry.tls is TlsMode.IMPLICIT
    connection = Connection(
        address=endpoint.address,
        port=entry.port,
        timeout=state.time_left(settings.timeout),
        implicit_tls=context if implicit else None,
        starttls=context if entry.tls is TlsMode.STARTTLS else None,
        server_hostname=_sni(endpoint, settings),
        raw_hello=_raw_hello(endpoint, settings, state, implicit=implicit),
        transport=entry.transport,
    )
    options = ProbeOptions(
        host=endpoint.host,
        starttls=entry.tls is TlsMode.STARTTLS,
        starttls_required=entry.tls_required,
        implicit_tls=implicit,
        client_name=settings.client_name,
        port=entry.port,
        transport=entry.transport,
        domain=endpoint.domain or UNKNOWN_DOMAIN,
    )
    return await converse(connection, client_for(entry.protocol, options))


def _raw_hello(
    endpoint: Endpoint, settings: Settings, state: _TlsState, *, implicit: bool
) -> RawHello | None:
    if not state.raw_hello:
        return None
    version = TLS1_0 if state.tls1_only else TLS1_2
    return RawHello(client_hello(version, _sni(endpoint, settings)), implicit=implicit)


async def _tls_failure(
    endpoint: Endpoint, entry: PortEntry, timeout: float, failed: HandshakeFailed
) -> ProbeFailure:
    """A TLS handshake that failed for good: if plaintext answers instead, that is the fault."""
    failure = failed.verdict()
    if entry.tls is not TlsMode.IMPLICIT or not isinstance(failed.cause, ssl.SSLError):
        return failure  # a dropped connection: no plaintext service does that to a hello
    detected = await name_plaintext_service(endpoint.address, entry.port, timeout)
    if detected is None or detected == "TLS":
        return failure  # a TLS alert: TLS does answer, it only refused this handshake
    return sighted(Sighting.PLAINTEXT_FOR_TLS, detected)


async def _explain_silence(
    endpoint: Endpoint, entry: PortEntry, timeout: float, failure: ProbeFailure
) -> ProbeFailure:
    """Silence where the server should speak first: TLS waiting for a ClientHello, or a
    client-speaks-first protocol such as HTTP waiting for a request. A second look names it."""
    if failure.verdict is not Verdict.SILENT:
        return failure
    if failure.phase is Phase.TLS:
        return await _explain_tls_silence(endpoint, entry, timeout, failure)
    if entry.protocol not in SERVER_FIRST:
        return failure
    if entry.tls is not TlsMode.IMPLICIT:
        version = await name_tls_service(endpoint.address, entry.port, timeout)
        if version is not None:
            return sighted(Sighting.TLS_FOR_PLAINTEXT, version)
    detected = await name_plaintext_service(endpoint.address, entry.port, timeout)
    if detected is None or detected == "TLS":
        return failure
    if detected == entry.service.removesuffix(" over TLS"):
        # The expected service after all, greeting late (an overloaded server's backlog):
        # silence within the timeout is the verdict, not another service.
        return failure
    return sighted(Sighting.SPEAKS_SECOND, detected, entry.label)


async def _explain_tls_silence(
    endpoint: Endpoint, entry: PortEntry, timeout: float, failure: ProbeFailure
) -> ProbeFailure:
    """A TLS handshake that got no further before the deadline. Behind STARTTLS the service
    agreed to upgrade, so TLS stalled; on an implicit-TLS port a second look tells a server
    that answers TLS (and stalled mid-handshake) from one that says nothing at all."""
    if entry.tls is TlsMode.STARTTLS:
        return sighted(Sighting.TLS_STALLED, "the service agreed to STARTTLS")
    detected = await name_plaintext_service(endpoint.address, entry.port, timeout)
    if detected == "TLS":
        return sighted(Sighting.TLS_STALLED, "TLS answered")
    if detected is not None:
        return sighted(Sighting.PLAINTEXT_FOR_TLS, detected)
    return failure


def _sni(endpoint: Endpoint, settings: Settings) -> str:
    if settings.servername:
        return settings.servername
    return "" if endpoint.is_address else endpoint.host


def _checked_name(endpoint: Endpoint, settings: Settings) -> str:
    return settings.servername or endpoint.host
