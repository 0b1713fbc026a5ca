"""`check` against the zoo: every hostile server gets its verdict within the probe's budget,
with a reason a person can act on, in bounded memory, and without holding up a healthy port
probed in the same run.

Each case says which verdict is right and why. Cases that fail today because of code outside
this package are marked `xfail(strict=True)` with the cause: the assertion stays the right
behaviour, and the mark must go when the owner's fix makes it pass.
"""

from __future__ import annotations

import asyncio
import io
import time
import tracemalloc
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Final

import pytest

from portcall.api import check_async
from portcall.catalog import PortEntry, TlsMode, load_catalog
from portcall.probing.loop import run as on_loop
from portcall.probing.probe import PROBE_BUDGET, Settings
from portcall.probing.scheduler import Limits
from portcall.report.terminal import render
from portcall.responders.server import Responder, ResponderConfig
from portcall.verdicts import FindingCode, Result, Verdict
from tests.probing.servers import held, pop3, serve

#: Every test here runs on asyncio's event loop and on uvloop's.
pytestmark = pytest.mark.usefixtures("each_loop")

TIMEOUT: Final = 1.0
#: What one probe may take: its budget of timeouts, plus scheduling slack on a busy machine.
BUDGET: Final = PROBE_BUDGET * TIMEOUT + 0.5
#: A healthy port answers in milliseconds on loopback; this leaves room for a loaded machine
#: while staying far below one timeout's worth of being held up.
HEALTHY_WITHIN: Final = 1.0
#: The delayed healthy port greets after this long, so that its conversation overlaps the
#: hostile ones instead of finishing before they start.
HEALTHY_DELAY: Final = 0.3
#: Peak of Python allocations while one hostile case is probed alone. A probe holds at most
#: one reply (64 KiB reply limit), asyncio's stream buffer (64 KiB) and a read (16 KiB), plus
#: TLS state and a parsed certificate: well under 1 MiB. Anything that buffered a hostile
#: payload (a 10 MB line, 100,000 lines or attributes) would go far past 4 MiB.
ALONE_PEAK: Final = 4 * 1024 * 1024
#: The same for the concurrent run of the other cases, plus the two healthy servers.
TOGETHER_PEAK: Final = 12 * 1024 * 1024


@dataclass(frozen=True)
class Case:
    protocol: str
    tls: str
    verdict: Verdict
    #: Words the reason must hold (case-insensitive): what a person acts on.
    words: tuple[str, ...]
    #: Why this verdict is the right one.
    why: str
    #: Why it fails today and whose code is the cause, when it does.
    fails: str = ""
    #: Probed in a run of its own: a heavy payload whose memory must be told apart.
    alone: bool = False


CASES: Final[dict[str, Case]] = {
    "endless-banner": Case(
        "smtp",
        "none",
        Verdict.WRONG_PROTOCOL,
        ("exceeded 65536 bytes",),
        "a greeting that never ends is no SMTP reply (RFC 5321 caps a reply line at 512 "
        "octets); the reason names the overlong reply",
        alone=True,
    ),
    "ten-mb-line": Case(
        "smtp",
        "none",
        Verdict.WRONG_PROTOCOL,
        ("exceeded 65536 bytes",),
        "a 10 MB greeting line is cut off at the reply limit; no SMTP server sends one",
        alone=True,
    ),
    "drip": Case(
        "smtp",
        "none",
        Verdict.SILENT,
        ("partial reply", "within 1s"),
        "one byte a second gives nothing usable before the deadline: silent, and the reason "
        "says a partial reply came",
    ),
    "reset-after-greeting": Case(
        "smtp",
        "none",
        Verdict.SILENT,
        ("reset",),
        "the service accepted, then reset the connection before a usable reply: nothing "
        "usable was said, and the reason must say it was a reset",
    ),
    "never-speaks": Case(
        "smtp",
        "none",
        Verdict.SILENT,
        ("said nothing", "within 1s"),
        "accepts and never speaks: silent, after the second looks found no TLS and no "
        "client-speaks-first protocol",
    ),
    "close-at-once": Case(
        "smtp",
        "none",
        Verdict.SILENT,
        ("closed", "without saying anything"),
        "accepted and closed before a byte: something holds the port but does not serve",
    ),
    "tls-garbage": Case(
        "pop3",
        "implicit",
        Verdict.TLS_FAILED,
        ("tls handshake failed",),
        "random bytes in answer to a ClientHello: the TLS handshake failed, and the second "
        "look found no plaintext protocol either",
    ),
    "tls-stall": Case(
        "imap",
        "implicit",
        Verdict.TLS_FAILED,
        ("tls handshake",),
        "half a ServerHello, then nothing: the server does speak TLS, so the port is not "
        "silent; the handshake failed (stalled) and the reason must not say 'no answer'",
    ),
    "ldap-huge-length": Case(
        "ldap",
        "none",
        Verdict.WRONG_PROTOCOL,
        ("65536 bytes",),
        "an LDAPMessage that claims 2^31 bytes is refused at the frame header, not read",
    ),
    "ldap-deep": Case(
        "ldap",
        "none",
        Verdict.WRONG_PROTOCOL,
        ("ldap",),
        "a value nested a thousand deep as constructed OCTET STRINGs: RFC 4511 section 5.1 "
        "allows only the primitive form, so this is no conforming LDAP server",
    ),
    "ldap-many-attributes": Case(
        "ldap",
        "none",
        Verdict.WRONG_PROTOCOL,
        ("more than 512 ber elements",),
        "a rootDSE of 100,000 attributes (25 entries of 4,000) is an attack, not a directory: "
        "the probe must stop reading it within its budget and say why",
        alone=True,
    ),
    "ehlo-flood": Case(
        "smtp",
        "none",
        Verdict.WRONG_PROTOCOL,
        ("more than 500 lines",),
        "an EHLO reply of 100,000 lines is cut off at 500: no honest server lists that many "
        "extensions",
        alone=True,
    ),
    "smtp-then-pop3": Case(
        "smtp",
        "none",
        Verdict.WRONG_PROTOCOL,
        ("non-conforming smtp", "-err"),
        "greets as SMTP, answers as POP3: the reason shows the reply that gave it away",
    ),
    "smtp-on-imap": Case(
        "imap",
        "none",
        Verdict.WRONG_PROTOCOL,
        ("smtp answered where imap4 was expected",),
        "an SMTP greeting on an IMAP port: another service holds it, and it is named",
    ),
    "many-sans": Case(
        "pop3",
        "implicit",
        Verdict.OK,
        ("ok", "cert-untrusted"),
        "POP3 answers behind TLS, so the port is ok; the self-signed certificate with 5,000 "
        "names, a terminal escape in its CN and invalid UTF-8 in a UPN is read and reported",
        alone=True,
    ),
    "unreadable-names": Case(
        "pop3",
        "implicit",
        Verdict.OK,
        ("ok", "cert-untrusted"),
        "POP3 answers behind TLS; the certificate's PrintableString and DNS name hold bytes "
        "outside their alphabets, which cryptography refuses: a note must say so",
        alone=True,
    ),
}

TOGETHER: Final = [name for name, case in CASES.items() if not case.alone]
ALONE: Final = [name for name, case in CASES.items() if case.alone]


def entry(key: str, port: int, protocol: str, tls: str) -> PortEntry:
    return PortEntry(
        key,
        port,
        protocol,
        TlsMode(tls),
        "the expected server",
        "a test row",
        "a certificate",
        "start the expected server",
    )


@dataclass
class Run:
    results: dict[str, Result]
    elapsed: float
    #: tracemalloc's peak, in bytes, over the whole check run.
    peak: int
    #: What the event loop's exception handler was given (nothing, when nothing escaped).
    loop_errors: list[dict[str, Any]] = field(default_factory=list)


@asynccontextmanager
async def healthy_ports() -> AsyncIterator[list[PortEntry]]:
    """portcall's own SMTP responder, and a POP3 server that greets after a short delay."""
    async with AsyncExitStack() as stack:
        config = ResponderConfig(ephemeral=True)
        responder = Responder([entry("healthy", 25, "smtp", "none")], config)
        await stack.enter_async_context(responder)
        delayed = await stack.enter_async_context(serve(held(pop3(), HEALTHY_DELAY)))
        yield [
            entry("healthy", responder.ports["healthy"], "smtp", "none"),
            entry("healthy-delayed", delayed, "pop3", "none"),
        ]


async def _check(zoo: dict[str, int], names: list[str]) -> Run:
    loop = asyncio.get_running_loop()
    errors: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _, context: errors.append(context))
    hostile = [entry(name, zoo[name], CASES[name].protocol, CASES[name].tls) for name in names]
    async with healthy_ports() as healthy:
        tracemalloc.start()
        began = time.perf_counter()
        try:
            results = await check_async(
                ["127.0.0.1"],
                entries=healthy + hostile,
                settings=Settings(timeout=TIMEOUT),
                # Every probe at once: none may wait for a slot behind a hostile one.
                limits=Limits(concurrency=64, per_host=64),
            )
            elapsed = time.perf_counter() - began
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    return Run({r.key: r for r in results}, elapsed, peak, errors)


def check_zoo(zoo: dict[str, int], names: list[str]) -> Run:
    async def bounded() -> Run:
        async with asyncio.timeout(3 * BUDGET):
            return await _check(zoo, names)

    return on_loop(bounded())


@pytest.fixture(scope="module")
def together(zoo: dict[str, int], each_loop: str) -> Run:
    """One check run of every case not probed alone, side by side with the healthy ports."""
    return check_zoo(zoo, TOGETHER)


def _marked(names: list[str]) -> list[Any]:
    return [
        pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=CASES[name].fails))
        if CASES[name].fails
        else name
        for name in names
    ]


def assert_case(run: Run, name: str) -> None:
    case = CASES[name]
    result = run.results[name]
    summary = f"{name}: {result.verdict} in {result.timings['total']:.2f}s: {result.reason}"
    assert "internal_error" not in result.details, summary
    assert result.timings["total"] <= BUDGET, summary
    assert result.verdict is case.verdict, f"{summary} (right: {case.verdict}, {case.why})"
    for word in case.words:
        assert word in result.reason.lower(), f"{summary} (missing {word!r})"


def assert_healthy(run: Run) -> None:
    for key, product in (("healthy", "Microsoft Exchange"), ("healthy-delayed", None)):
        result = run.results[key]
        assert result.verdict is Verdict.OK, result.reason
        if product is not None:
            assert result.product is not None and product in result.product, result.product
        took = result.timings["total"]
        assert took < HEALTHY_WITHIN, f"{key} took {took:.2f}s beside the hostile probes"


# -- every case but the heavy payloads, in one run ------------------------------------------


@pytest.mark.parametrize("name", _marked(TOGETHER))
def test_hostile_server_in_a_shared_run(together: Run, name: str) -> None:
    assert_case(together, name)


def test_the_shared_run_keeps_healthy_ports_fast_and_memory_bounded(together: Run) -> None:
    assert_healthy(together)
    assert together.elapsed <= BUDGET + 0.5, f"the run took {together.elapsed:.2f}s"
    assert together.peak < TOGETHER_PEAK, f"peak {together.peak / 2**20:.1f} MiB"
    assert together.loop_errors == []


# -- heavy payloads, one run each, memory measured per case ------------------------------------


@pytest.mark.parametrize("name", _marked(ALONE))
def test_heavy_payload_alone(zoo: dict[str, int], name: str) -> None:
    run = check_zoo(zoo, [name])
    assert_case(run, name)
    assert_healthy(run)
    assert run.peak < ALONE_PEAK, f"{name}: peak {run.peak / 2**20:.1f} MiB"
    assert run.loop_errors == []


def test_many_sans_certificate_is_read_and_printed_inert(zoo: dict[str, int]) -> None:
    result = check_zoo(zoo, ["many-sans"]).results["many-sans"]
    assert result.tls is not None and result.tls.certificate is not None, result.reason
    certificate = result.tls.certificate
    # 5,000 names plus the placeholder one; the UPN is an otherName, not a DNS name.
    assert len(certificate.dns_names) == 5_001
    assert certificate.common_name == "mail\x1b[2J\u202e.e"
    codes = {finding.code for finding in result.findings}
    assert FindingCode.CERT_UNTRUSTED in codes
    for rich_output in (False, True):
        out = io.StringIO()
        render([result], load_catalog(), out, rich_output=rich_output)
        assert "\x1b[2J" not in out.getvalue() and "\u202e" not in out.getvalue()


def test_unreadable_certificate_is_said_in_a_note(zoo: dict[str, int]) -> None:
    result = check_zoo(zoo, ["unreadable-names"]).results["unreadable-names"]
    assert result.tls is not None, result.reason
    assert any("certificate cannot be read" in note for note in result.tls.notes), result.tls
