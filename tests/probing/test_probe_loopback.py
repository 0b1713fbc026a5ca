"""`probe()` and `check_async()` against real sockets on 127.0.0.1: each verdict earned on the
wire, from small scripted servers that misbehave on purpose. The table of `errors.classify`
is tested branch by branch at the end."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import gc
import os
import socket
import ssl
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from portcall.api import check_async
from portcall.catalog import PortEntry, TlsMode, load_catalog
from portcall.probing import gates
from portcall.probing.errors import Phase, ProbeFailure, classify
from portcall.probing.loop import run as on_loop
from portcall.probing.probe import Endpoint, Settings, probe
from portcall.probing.scheduler import Limits
from portcall.probing.stream import Stream, forget_frames
from portcall.protocols.base import (
    PeerClosed,
    RemoteProtocolError,
    ReplyTooLong,
    ServiceRefused,
    StartTLSUnavailable,
    WrongProtocol,
)
from portcall.verdicts import FindingCode, Health, Result, Verdict
from tests.probing.servers import (
    Gauge,
    Handler,
    blocking_tls,
    held,
    http_ish,
    pop3,
    reset_after_hello,
    scripted,
    serve,
    serve_many,
    server_context,
    silent,
    unused_port,
)
from tests.tls.conftest import Issued, issue, make_ca

#: Every test here runs on asyncio's event loop and on uvloop's.
pytestmark = pytest.mark.usefixtures("each_loop")

CATALOG = load_catalog()
LOCAL = Endpoint("127.0.0.1", "127.0.0.1", is_address=True)
#: The name every test certificate is issued for; passed as --servername would be.
HOST = "mail.example.com"
#: Where a timeout is the point: long enough for loopback, short enough for a fast suite.
SHORT = 0.3


def row(name: str, port: int, /, **changes: Any) -> PortEntry:
    """The built-in catalog row keyed `name`, moved to a test server's port."""
    entry = CATALOG.by_key(name)
    assert entry is not None, name
    return dataclasses.replace(entry, port=port, **changes)


@dataclass
class LoopbackPki:
    ca: Issued
    ca_file: Path
    directory: Path

    def context(self, leaf: Issued, *, client_ca: bool = False) -> ssl.SSLContext:
        cert, key = leaf.write(self.directory, f"leaf{id(leaf)}")
        return server_context(
            str(cert), str(key), client_ca=str(self.ca_file) if client_ca else None
        )

    def settings(self, **changes: Any) -> Settings:
        return Settings(
            **{"timeout": 2.0, "cafile": str(self.ca_file), "servername": HOST, **changes}
        )


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> LoopbackPki:
    directory = tmp_path_factory.mktemp("probe-pki")
    ca = make_ca()
    ca_file = directory / "ca.crt"
    ca_file.write_bytes(ca.pem)
    return LoopbackPki(ca, ca_file, directory)


@pytest.fixture(scope="module")
def good_tls(pki: LoopbackPki) -> ssl.SSLContext:
    return pki.context(issue(pki.ca))


def run_probe(
    handler: Handler,
    key: str,
    settings: Settings,
    tls: ssl.SSLContext | None = None,
    **changes: Any,
) -> tuple[Result, int]:
    """Serve `handler` (behind `tls` from the first byte, if given), probe it as row `key`."""

    async def go() -> tuple[Result, int]:
        async with serve(handler, tls) as port:
            return await probe(LOCAL, row(key, port, **changes), settings), port

    return on_loop(go())


# -- ok ------------------------------------------------------------------------------------


def test_pop3_with_stls_upgrades_and_is_ok(pki: LoopbackPki, good_tls: ssl.SSLContext) -> None:
    handler = pop3(b"+OK Dovecot ready.\r\n", stls=good_tls, capabilities=(b"USER", b"SASL PLAIN"))
    result, port = run_probe(handler, "pop3", pki.settings())
    assert result.verdict is Verdict.OK
    assert result.findings == []
    assert result.product == "Dovecot"
    # The list read again inside TLS replaces the plaintext one (RFC 2595 section 4).
    assert result.capabilities == ["USER", "SASL PLAIN"]
    assert result.tls is not None
    assert result.tls.trusted is True
    assert result.tls.name_matches is True
    assert result.reason == f"{port} ok: Dovecot answered; STARTTLS works; {result.tls.version}"
    assert {"connect", "tls", "total"} <= set(result.timings)


def test_closed_tls_connections_leave_no_cycle_behind(pki: LoopbackPki) -> None:
    """A TLS 1.3 server sends session tickets after the handshake, so closing with a
    close_notify meets "application data after close notify"; and an untrusted chain fails a
    verifying handshake first. Neither exception may keep its connection (OpenSSL's buffers,
    the read buffer) in a reference cycle: freed at once, not at the next full collection."""
    untrusted = pki.context(issue(make_ca()))

    async def go() -> list[Result]:
        async with serve(pop3(), untrusted) as port:
            entries = [row("pop3s", port, key=f"pop3s-{n}") for n in range(6)]
            return await check_async(["127.0.0.1"], entries=entries, settings=pki.settings())

    gc.collect()
    gc.disable()
    try:
        results = on_loop(go())
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        # The test's own server is in this process too: its side is not ours to judge.
        left = [o for o in gc.garbage if isinstance(o, Stream) or _client_side_tls(o)]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert [r.verdict for r in results] == [Verdict.OK] * 6
    assert all(r.tls is not None and r.tls.trusted is False for r in results)
    assert not left, left[:5]


def _client_side_tls(thing: object) -> bool:
    return isinstance(thing, ssl.SSLObject) and not thing.server_side


def test_forgetting_frames_walks_the_chain() -> None:
    try:
        try:
            raise ssl.SSLError("inner")
        except ssl.SSLError as inner:
            raise ConnectionError("outer") from inner
    except ConnectionError as outer:
        caught = outer
    assert caught.__traceback__ is not None and caught.__cause__ is not None
    forget_frames(caught)
    assert caught.__traceback__ is None and caught.__cause__.__traceback__ is None


def test_optional_starttls_missing_is_still_ok(pki: LoopbackPki) -> None:
    result, _ = run_probe(pop3(), "ldap", pki.settings(), protocol="pop3", tls_required=False)
    assert result.verdict is Verdict.OK
    assert result.tls is None
    assert "no STARTTLS (optional here)" in result.reason


# -- nothing there, or nothing said --------------------------------------------------------


def test_unused_port_is_refused() -> None:
    port = unused_port()
    result = on_loop(probe(LOCAL, row("pop3", port), Settings(timeout=1.0)))
    assert result.verdict is Verdict.REFUSED
    assert result.reason.startswith(f"{port} refused: the connection was refused")
    assert row("pop3", port).hint in result.reason
    assert result.health() is Health.HEALTHY


def test_service_that_accepts_and_says_nothing_is_silent() -> None:
    started = time.perf_counter()
    result, port = run_probe(silent, "pop3", Settings(timeout=SHORT))
    assert result.verdict is Verdict.SILENT
    assert result.protocol is None
    assert f"{port} silent: connected, but the service said nothing within {SHORT:g}s" in (
        result.reason
    )
    # The probe and both second looks are each bounded by the timeout (closing a connection
    # whose TLS handshake timed out may add up to a second, see below).
    assert time.perf_counter() - started < 3 * SHORT + 2.5


def test_err_greeting_is_refused_with_the_service_text() -> None:
    result, _ = run_probe(pop3(b"-ERR Too many connections from you\r\n"), "pop3", Settings())
    assert result.verdict is Verdict.REFUSED
    assert 'turned us away: "-ERR Too many connections from you"' in result.reason
    assert result.health() is Health.HEALTHY


# -- something else answers ----------------------------------------------------------------


def test_http_server_on_a_pop3_port_is_named_http() -> None:
    result, port = run_probe(http_ish, "pop3", Settings(timeout=SHORT))
    assert result.verdict is Verdict.WRONG_PROTOCOL
    assert result.protocol == "HTTP"
    assert f"HTTP answered a request, but said nothing first as POP3 ({port})" in result.reason


def test_http_greeting_on_a_pop3_port_is_named_http() -> None:
    greeting = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"
    result, _ = run_probe(scripted(greeting, {}), "pop3", Settings(timeout=1.0))
    assert result.verdict is Verdict.WRONG_PROTOCOL
    assert result.protocol == "HTTP"
    assert "HTTP answered where POP3 was expected" in result.reason


def test_implicit_tls_on_a_plaintext_smtp_port_is_named_tls(good_tls: ssl.SSLContext) -> None:
    result, _ = run_probe(silent, "smtp", Settings(timeout=SHORT), tls=good_tls)
    assert result.verdict is Verdict.WRONG_PROTOCOL
    assert result.protocol == "TLS"
    assert "TLS (TLSv1." in result.reason
    assert "answered from the first byte where plaintext was expected" in result.reason


def test_plaintext_smtp_on_the_smtps_port() -> None:
    banner = b"220 mail.example.com ESMTP Postfix\r\n"
    result, _ = run_probe(scripted(banner, {}), "smtps", Settings(timeout=1.0))
    assert result.verdict is Verdict.WRONG_PROTOCOL
    assert result.protocol == "SMTP"
    assert "plaintext SMTP answered where TLS was expected from the first byte" in result.reason


# -- STARTTLS and TLS failures -------------------------------------------------------------


def test_pop3_without_stls_on_a_starttls_row_is_no_starttls(pki: LoopbackPki) -> None:
    result, port = run_probe(pop3(), "pop3", pki.settings())
    assert result.verdict is Verdict.NO_STARTTLS
    assert result.reason.startswith(f"{port} no-starttls: the POP3 service does not offer STLS")
    assert "STARTTLS needs a certificate" in result.reason
    assert result.health() is Health.FAILURES


def test_tls_server_demanding_a_client_certificate_is_tls_failed(pki: LoopbackPki) -> None:
    context = pki.context(issue(pki.ca), client_ca=True)

    async def go(port: int) -> Result:
        return await probe(LOCAL, row("pop3s", port), pki.settings())

    with blocking_tls(context, b"+OK ready\r\n") as port:
        result = on_loop(go(port))
    assert result.verdict is Verdict.TLS_FAILED
    assert "certificate required" in result.reason


def test_reset_in_the_middle_of_the_tls_handshake_is_tls_failed() -> None:
    result, _ = run_probe(reset_after_hello, "pop3s", Settings(timeout=1.0))
    assert result.verdict is Verdict.TLS_FAILED
    assert "reset during the TLS handshake" in result.reason


def test_a_failed_tls_handshake_costs_no_extra_second() -> None:
    started = time.perf_counter()
    result, _ = run_probe(reset_after_hello, "pop3s", Settings(timeout=2.0))
    assert result.verdict is Verdict.TLS_FAILED
    assert time.perf_counter() - started < 0.9  # the regression cost a whole second


async def _alert_to_anything(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A TLS server that shares no cipher with us: a fatal handshake_failure alert (RFC 5246
    section 7.2) to whatever arrives, as Schannel answers a hello it cannot serve."""
    await reader.read(4096)
    writer.write(b"\x15\x03\x03\x00\x02\x02\x28")
    await writer.drain()


def test_tls_server_that_refuses_every_handshake_is_tls_failed() -> None:
    result, _ = run_probe(_alert_to_anything, "pop3s", Settings(timeout=SHORT))
    assert result.verdict is Verdict.TLS_FAILED


# -- certificates --------------------------------------------------------------------------


def codes(result: Result) -> list[FindingCode]:
    return [finding.code for finding in result.findings]


def test_self_signed_certificate_is_untrusted_and_self_signed(pki: LoopbackPki) -> None:
    tls = pki.context(issue(None, dns=(HOST,)))
    result, _ = run_probe(pop3(), "pop3s", pki.settings(), tls=tls)
    assert result.verdict is Verdict.OK
    assert codes(result) == [FindingCode.CERT_UNTRUSTED, FindingCode.CERT_SELF_SIGNED]
    assert result.tls is not None and result.tls.trusted is False
    assert "self-signed" in (result.tls.trust_error or "")
    assert result.health() is Health.FAILURES


def test_certificate_for_another_name_is_a_name_mismatch(pki: LoopbackPki) -> None:
    tls = pki.context(issue(pki.ca, cn=None, dns=("owa.example.org",)))
    result, _ = run_probe(pop3(), "pop3s", pki.settings(), tls=tls)
    assert result.verdict is Verdict.OK
    assert codes(result) == [FindingCode.CERT_NAME_MISMATCH]
    assert "owa.example.org" in result.findings[0].message
    assert f"install a certificate that names {HOST}" in result.findings[0].message


def test_expired_certificate_with_a_trusted_chain_is_only_expired(pki: LoopbackPki) -> None:
    now = datetime.now(UTC)
    expired = issue(pki.ca, not_before=now - timedelta(days=400), not_after=now - timedelta(days=3))
    result, _ = run_probe(pop3(), "pop3s", pki.settings(), tls=pki.context(expired))
    assert result.verdict is Verdict.OK
    assert codes(result) == [FindingCode.CERT_EXPIRED]
    assert result.tls is not None and result.tls.trusted is True
    assert result.reason.endswith("but cert-expired")


# -- names ---------------------------------------------------------------------------------


@pytest.fixture
def resolver(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """A stand-in for DNS (the system resolver may sit on another machine): `.invalid` never
    resolves (RFC 6761 section 6.4), mail.example.com is 127.0.0.1, slow.example.com hangs.
    IP literals go to the real getaddrinfo with AI_NUMERICHOST, which never queries."""
    asked: list[str] = []
    loops: list[type[Any]] = [asyncio.base_events.BaseEventLoop]
    with contextlib.suppress(ImportError):
        import uvloop

        loops.append(uvloop.Loop)
    for kind in loops:
        monkeypatch.setattr(kind, "getaddrinfo", _fake_lookup(kind.getaddrinfo, asked))
    return asked


def _fake_lookup(real: Callable[..., Any], asked: list[str]) -> Callable[..., Any]:
    async def fake(
        self: asyncio.AbstractEventLoop, host: Any, port: Any, **kwargs: Any
    ) -> list[Any]:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name.replace(".", "").isdigit() or ":" in name:
            kwargs["flags"] = kwargs.get("flags", 0) | socket.AI_NUMERICHOST
            result: list[Any] = await real(self, host, port, **kwargs)
            return result
        asked.append(name)
        if name == HOST:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", 0))]
        if name == "slow.example.com":
            await asyncio.sleep(30)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    return fake


def test_invalid_name_is_unresolved(resolver: list[str]) -> None:
    entry = row("pop3", unused_port())
    (result,) = on_loop(check_async(["mail.portcall.invalid"], entries=[entry]))
    assert resolver == ["mail.portcall.invalid"]
    assert result.verdict is Verdict.UNRESOLVED
    assert result.host == "mail.portcall.invalid"
    assert result.address is None
    assert "does not resolve" in result.reason
    assert "Check the name's spelling" in result.reason


def test_lookup_that_hangs_is_unresolved_within_the_timeout(resolver: list[str]) -> None:
    entry = row("pop3", unused_port())
    settings = Settings(timeout=SHORT)
    (result,) = on_loop(check_async(["slow.example.com"], entries=[entry], settings=settings))
    assert result.verdict is Verdict.UNRESOLVED
    assert "timed out" in result.reason


def test_a_name_is_probed_at_its_address_and_checked_against_itself(
    resolver: list[str], pki: LoopbackPki, good_tls: ssl.SSLContext
) -> None:
    async def go() -> list[Result]:
        async with serve(pop3(), good_tls) as port:
            settings = Settings(timeout=2.0, cafile=str(pki.ca_file))
            return await check_async([HOST], entries=[row("pop3s", port)], settings=settings)

    (result,) = on_loop(go())
    assert (result.host, result.address) == (HOST, "127.0.0.1")
    assert result.verdict is Verdict.OK
    assert result.tls is not None and result.tls.checked_name == HOST
    assert result.findings == []


# -- the scheduler -------------------------------------------------------------------------

TWO_HOSTS = ("127.0.0.1", "127.0.0.2")


def plain_rows(port: int, count: int) -> list[PortEntry]:
    """`count` distinct plaintext POP3 rows that all point at `port`."""
    return [row("pop3", port, key=f"pop3-{n}", tls=TlsMode.NONE) for n in range(count)]


def run_counted(limits: Limits, rows_per_host: int) -> tuple[Gauge, list[Result]]:
    """The limits bound conversations; connections may be open beyond them (gates.py)."""
    gauge = Gauge()

    async def go() -> list[Result]:
        async with serve_many(gauge.talking(0.15), TWO_HOSTS) as port:
            entries = plain_rows(port, rows_per_host)
            return await check_async(list(TWO_HOSTS), entries=entries, limits=limits)

    return gauge, on_loop(go())


def test_per_host_limit_holds_for_each_host() -> None:
    gauge, results = run_counted(Limits(concurrency=64, per_host=2), rows_per_host=5)
    assert [r.verdict for r in results] == [Verdict.OK] * 10
    assert gauge.peak_by_address == {"127.0.0.1": 2, "127.0.0.2": 2}
    # The limit is per host: both hosts are probed at the same time.
    assert gauge.peak_total == 4


def test_global_limit_holds_across_hosts() -> None:
    gauge, results = run_counted(Limits(concurrency=3, per_host=8), rows_per_host=4)
    assert [r.verdict for r in results] == [Verdict.OK] * 8
    assert gauge.peak_total == 3


def test_a_result_says_how_long_its_probe_waited_for_a_slot() -> None:
    """One conversation at a time, each held 0.15 s by the server: every probe but the first
    waits its turn, and the wait is part of its total."""
    _, results = run_counted(Limits(concurrency=1, per_host=1), rows_per_host=2)
    assert [r.verdict for r in results] == [Verdict.OK] * 4
    waits = sorted(r.timings["waited"] for r in results)
    assert waits[0] < 0.1 and waits[-1] >= 0.3, waits  # the last waited for three turns
    assert all(r.timings["waited"] <= r.timings["total"] for r in results)


def test_a_new_host_is_connected_to_once_per_port() -> None:
    """The first probe of a host connects alone; once that connection is made, the host's
    other probes connect inside their conversation slots. Each port costs one connection:
    none is made, closed for want of a slot, and made a second time."""
    accepted: Counter[str] = Counter()
    answer = pop3()

    async def counting(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted[str(writer.get_extra_info("sockname")[0])] += 1
        await answer(reader, writer)

    async def go() -> list[Result]:
        async with serve_many(counting, TWO_HOSTS) as port:
            entries = plain_rows(port, 6)
            limits = Limits(concurrency=1, per_host=1)
            return await check_async(list(TWO_HOSTS), entries=entries, limits=limits)

    results = on_loop(go())
    assert [r.verdict for r in results] == [Verdict.OK] * 12
    assert accepted == {"127.0.0.1": 6, "127.0.0.2": 6}


@pytest.mark.parametrize("idle_limit, all_ok", [(0.1, True), (60.0, False)])
def test_a_connection_left_idle_too_long_is_made_again(
    monkeypatch: pytest.MonkeyPatch, idle_limit: float, all_ok: bool
) -> None:
    """Connections opened at once for a new host wait for their conversation slots; one that
    waited past `IDLE_LIMIT` is made again, so a server that drops silent clients sees none.
    With the limit out of the way, the same run finds dropped connections: the test can fail.
    (They are opened at once when the host's first connection, here to a closed port, did
    not show it answering.)"""
    monkeypatch.setattr(gates, "IDLE_LIMIT", idle_limit)

    async def go() -> list[Result]:
        async with serve_many(pop3(patience=0.4, pause=0.3), TWO_HOSTS[:1]) as port:
            closed = row("pop3", unused_port(), key="closed", tls=TlsMode.NONE)
            entries = [closed, *plain_rows(port, 4)]
            limits = Limits(concurrency=1, per_host=1)
            return await check_async(list(TWO_HOSTS[:1]), entries=entries, limits=limits)

    verdicts = [r.verdict for r in on_loop(go())]
    assert verdicts[0] is Verdict.REFUSED
    assert (verdicts[1:] == [Verdict.OK] * 4) is all_ok, verdicts


def test_results_follow_targets_then_catalog_not_completion_order() -> None:
    finished: list[tuple[str, str]] = []

    async def go() -> list[Result]:
        async with (
            serve_many(held(pop3(), 0.3), TWO_HOSTS) as slow,
            serve_many(pop3(), TWO_HOSTS) as fast,
        ):
            entries = [
                row("pop3", slow, key="slow", tls=TlsMode.NONE),
                row("pop3", fast, key="fast", tls=TlsMode.NONE),
            ]
            return await check_async(
                ["127.0.0.2", "127.0.0.1"],
                entries=entries,
                on_result=lambda r: finished.append((r.host, r.key)),
            )

    results = on_loop(go())
    order = [(r.host, r.key) for r in results]
    assert order == [
        ("127.0.0.2", "slow"),
        ("127.0.0.2", "fast"),
        ("127.0.0.1", "slow"),
        ("127.0.0.1", "fast"),
    ]
    assert {key for _, key in finished[:2]} == {"fast"}


def test_required_turns_a_refused_port_into_a_failure() -> None:
    port = unused_port()

    def check(required: tuple[int, ...]) -> Result:
        entries = [row("pop3", port)]
        (result,) = on_loop(check_async(["127.0.0.1"], entries=entries, required=required))
        return result

    plain, required = check(()), check((port,))
    assert plain.verdict is required.verdict is Verdict.REFUSED
    assert (plain.required, plain.health()) == (False, Health.HEALTHY)
    assert (required.required, required.health()) == (True, Health.FAILURES)


def test_refused_optional_row_says_closed_is_normal() -> None:
    port = unused_port()
    result = on_loop(probe(LOCAL, row("smtps", port), Settings(timeout=1.0)))
    assert result.verdict is Verdict.REFUSED
    assert "Closed is correct for Exchange" in result.reason


# -- errors.classify, branch by branch -----------------------------------------------------

HTTP_REPLY = b"HTTP/1.1 400 Bad Request\r\n"
ClassifyCase = tuple[BaseException, Phase, bytes, Verdict, str, str | None]


def _os_error(code: int) -> OSError:
    # OSError picks the subclass from the errno: ETIMEDOUT gives a TimeoutError.
    return OSError(code, os.strerror(code))


def _ssl_error(reason: str) -> ssl.SSLError:
    # OpenSSL's errors carry `reason`; one made in Python has to be given it.
    error = ssl.SSLError(1, f"[SSL: {reason}] {reason.lower().replace('_', ' ')}")
    error.reason = reason
    return error


CASES: dict[str, ClassifyCase] = {
    "refused": (ConnectionRefusedError(), Phase.CONNECT, b"", Verdict.REFUSED, "refused", None),
    "timeout-connect": (TimeoutError(), Phase.CONNECT, b"", Verdict.FILTERED, "within 0.5s", None),
    "timeout-tls": (TimeoutError(), Phase.TLS, b"", Verdict.SILENT, "TLS handshake", None),
    "timeout-quiet": (
        TimeoutError(),
        Phase.CONVERSATION,
        b"",
        Verdict.SILENT,
        "said nothing within 0.5s",
        None,
    ),
    "timeout-partial": (
        TimeoutError(),
        Phase.CONVERSATION,
        b"\x00\x01",
        Verdict.SILENT,
        "said a partial reply",
        None,
    ),
    "timeout-after-http": (
        TimeoutError(),
        Phase.CONVERSATION,
        HTTP_REPLY,
        Verdict.WRONG_PROTOCOL,
        "HTTP answered, then nothing usable",
        "HTTP",
    ),
    "gaierror": (
        socket.gaierror(socket.EAI_NONAME, "Name or service not known"),
        Phase.RESOLVE,
        b"",
        Verdict.UNRESOLVED,
        "does not resolve (Name or service not known)",
        None,
    ),
    "ssl": (
        _ssl_error("NO_SHARED_CIPHER"),
        Phase.TLS,
        b"",
        Verdict.TLS_FAILED,
        "TLS handshake failed: no shared cipher",
        None,
    ),
    "hostunreach": (
        _os_error(errno.EHOSTUNREACH),
        Phase.CONNECT,
        b"",
        Verdict.UNREACHABLE,
        "no route to the host",
        None,
    ),
    "netunreach": (
        _os_error(errno.ENETUNREACH),
        Phase.CONNECT,
        b"",
        Verdict.UNREACHABLE,
        "no route to the host",
        None,
    ),
    "connect-timed-out": (
        _os_error(errno.ETIMEDOUT),
        Phase.CONNECT,
        b"",
        Verdict.FILTERED,
        "no answer to the connection attempt within 0.5s",
        None,
    ),
    "reset-in-tls": (
        ConnectionResetError(errno.ECONNRESET, "reset"),
        Phase.TLS,
        b"",
        Verdict.TLS_FAILED,
        "reset during the TLS handshake",
        None,
    ),
    "reset-in-conversation": (
        ConnectionResetError(errno.ECONNRESET, "reset"),
        Phase.CONVERSATION,
        b"",
        Verdict.SILENT,
        "reset before a usable reply",
        None,
    ),
    "reset-after-http": (
        ConnectionResetError(errno.ECONNRESET, "reset"),
        Phase.CONVERSATION,
        HTTP_REPLY,
        Verdict.WRONG_PROTOCOL,
        "HTTP answered, then reset",
        "HTTP",
    ),
    "broken-pipe": (
        BrokenPipeError(errno.EPIPE, "pipe"),
        Phase.CONVERSATION,
        b"",
        Verdict.SILENT,
        "reset before a usable reply",
        None,
    ),
    "closed-quiet": (
        PeerClosed(),
        Phase.CONVERSATION,
        b"",
        Verdict.SILENT,
        "without saying anything",
        None,
    ),
    "closed-partial": (
        PeerClosed(b"+O"),
        Phase.CONVERSATION,
        b"+O",
        Verdict.SILENT,
        "after a partial reply",
        None,
    ),
    "too-long-identified": (
        ReplyTooLong(64, HTTP_REPLY),
        Phase.CONVERSATION,
        HTTP_REPLY,
        Verdict.WRONG_PROTOCOL,
        "HTTP answered (reply exceeded 64 bytes",
        "HTTP",
    ),
    "too-long-unknown": (
        ReplyTooLong(64, b"\x00" * 64),
        Phase.CONVERSATION,
        b"\x00" * 64,
        Verdict.WRONG_PROTOCOL,
        "reply exceeded 64 bytes",
        None,
    ),
    "wrong-protocol": (
        WrongProtocol("POP3", "SMTP", "greeting '220 x'"),
        Phase.CONVERSATION,
        b"220 x ESMTP\r\n",
        Verdict.WRONG_PROTOCOL,
        "SMTP answered where POP3 was expected",
        "SMTP",
    ),
    "no-starttls": (
        StartTLSUnavailable("no STLS"),
        Phase.CONVERSATION,
        b"+OK\r\n",
        Verdict.NO_STARTTLS,
        "no STLS",
        None,
    ),
    "service-refused": (
        ServiceRefused("-ERR busy"),
        Phase.CONVERSATION,
        b"-ERR busy\r\n",
        Verdict.REFUSED,
        "-ERR busy",
        None,
    ),
    "other-remote": (
        RemoteProtocolError("odd reply"),
        Phase.CONVERSATION,
        HTTP_REPLY,
        Verdict.WRONG_PROTOCOL,
        "odd reply",
        "HTTP",
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_classify(case: ClassifyCase) -> None:
    exc, phase, first_bytes, verdict, words, detected = case
    failure = classify(exc, phase, first_bytes, 0.5)
    assert failure.verdict is verdict
    assert words in failure.detail
    assert failure.detected == detected


def test_classify_passes_a_probe_failure_through() -> None:
    failure = ProbeFailure(Verdict.SILENT, "already judged")
    assert classify(failure, Phase.CONVERSATION, b"", 1.0) is failure


def test_classify_raises_what_it_does_not_know() -> None:
    with pytest.raises(ValueError, match="a bug"):
        classify(ValueError("a bug"), Phase.CONVERSATION, b"", 1.0)


def test_a_parser_defect_costs_one_port_not_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    from portcall.probing import probe as probe_module
    from portcall.protocols.pop3 import Pop3Client

    class Broken(Pop3Client):
        def run(self):  # type: ignore[no-untyped-def]
            yield from self.read_line()
            raise IndexError("list index out of range")

    monkeypatch.setattr(probe_module, "client_for", lambda protocol, options: Broken(options))

    async def go(port: int) -> Result:
        return await probe(LOCAL, row("pop3", port), Settings(timeout=1.0))

    async def main() -> Result:
        async with serve(scripted(b"+OK ready\r\n", {})) as port:
            return await go(port)

    result = on_loop(main())
    assert result.verdict is Verdict.WRONG_PROTOCOL
    assert "defect in portcall" in result.reason
    assert result.details["internal_error"] == "IndexError: list index out of range"


# -- one handshake per probe once a chain is known (tls/memo.py) ----------------------------

SIXTEEN = tuple(f"127.0.0.{n}" for n in range(1, 17))


def counted_attempts(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Counts the connections the probes make (each TLS rung or verification is one)."""
    import portcall.probing.probe as probe_module

    counts = {"attempts": 0}
    original = probe_module._attempt

    async def attempt(*args: Any, **kwargs: Any) -> Any:
        counts["attempts"] += 1
        return await original(*args, **kwargs)

    monkeypatch.setattr(probe_module, "_attempt", attempt)
    return counts


def run_pop3s(tls: ssl.SSLContext, settings: Settings, limits: Limits) -> list[Result]:
    async def go() -> list[Result]:
        async with serve_many(pop3(), SIXTEEN, tls) as port:
            return await check_async(
                list(SIXTEEN), entries=[row("pop3s", port)], settings=settings, limits=limits
            )

    return on_loop(go())


def test_a_chain_refused_once_costs_one_handshake_per_port_after(
    pki: LoopbackPki, good_tls: ssl.SSLContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    counts = counted_attempts(monkeypatch)
    # No --ca: the lab CA is unknown, so the chain fails verification. One probe at a time.
    results = run_pop3s(good_tls, Settings(timeout=2.0), Limits(concurrency=1, per_host=1))
    assert [r.verdict for r in results] == [Verdict.OK] * 16
    # The first probe: a refused verifying handshake, then an unverified one; the next may
    # start before that chain is remembered and verify it too (one more); every other probe
    # takes the unverified handshake only, with the remembered verdict on the chain.
    assert 17 <= counts["attempts"] <= 18
    first, *rest = results
    assert first.tls is not None and first.tls.trusted is False
    assert all(r.tls is not None and r.tls.trust_error == first.tls.trust_error for r in rest)
    assert all([f.code for f in r.findings] == [f.code for f in first.findings] for r in rest)


def test_a_first_wave_waits_for_the_first_verification(
    pki: LoopbackPki, good_tls: ssl.SSLContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sixteen probes at once, one chain the trust store refuses: the first to begin its
    handshake verifies; the others' handshakes wait for that outcome, then take one
    unverifying handshake each with the remembered verdict."""
    counts = counted_attempts(monkeypatch)
    results = run_pop3s(good_tls, Settings(timeout=2.0), Limits(concurrency=16, per_host=1))
    assert [r.verdict for r in results] == [Verdict.OK] * 16
    assert counts["attempts"] == 17
    assert len({r.tls.trust_error for r in results if r.tls is not None}) == 1
    assert all(r.tls is not None and r.tls.trusted is False for r in results)


def test_a_trusted_chain_stays_one_handshake_per_port(
    pki: LoopbackPki, good_tls: ssl.SSLContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    counts = counted_attempts(monkeypatch)
    settings = Settings(timeout=2.0, cafile=str(pki.ca_file))
    results = run_pop3s(good_tls, settings, Limits(concurrency=4, per_host=1))
    assert [r.verdict for r in results] == [Verdict.OK] * 16
    assert all(r.tls is not None and r.tls.trusted for r in results)
    assert counts["attempts"] == 16


def test_a_new_chain_after_a_refused_one_is_verified_in_full(
    pki: LoopbackPki, good_tls: ssl.SSLContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The shortcut never guesses: a chain the run has not seen is verified by OpenSSL."""
    other_ca = make_ca()
    untrusted = pki.context(issue(other_ca))

    async def go() -> list[Result]:
        async with (
            serve_many(pop3(), SIXTEEN[:1], untrusted) as bad,
            serve_many(pop3(), SIXTEEN[1:2], good_tls) as good,
        ):
            entries = [row("pop3s", bad, key="bad"), row("pop3s", good, key="good")]
            settings = Settings(timeout=2.0, cafile=str(pki.ca_file))
            one = Limits(concurrency=1, per_host=1)
            return await check_async(
                list(SIXTEEN[:2]), entries=entries, settings=settings, limits=one
            )

    results = {(r.host, r.key): r for r in on_loop(go())}
    refused = results[(SIXTEEN[0], "bad")]
    trusted = results[(SIXTEEN[1], "good")]
    assert refused.tls is not None and refused.tls.trusted is False
    assert trusted.tls is not None and trusted.tls.trusted is True
    assert FindingCode.CERT_UNTRUSTED not in [f.code for f in trusted.findings]


def test_a_new_chain_met_by_many_probes_at_once_is_verified_once(
    pki: LoopbackPki, good_tls: ssl.SSLContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sixteen hosts, each with a port whose chain the run learns first (refused: no --ca)
    and a port with a chain of another unknown CA. Once the first is known refused, the
    probes of the second start unverified and look their chain up; the one verifying
    handshake it needs is made once, the other probes wait for its outcome."""
    import portcall.probing.probe as probe_module

    verified: Counter[int] = Counter()
    original = probe_module._verify_chain

    async def verify(endpoint: Any, entry: PortEntry, *args: Any) -> Any:
        verified[entry.port] += 1
        return await original(endpoint, entry, *args)

    monkeypatch.setattr(probe_module, "_verify_chain", verify)
    other = pki.context(issue(make_ca()))

    async def go() -> list[Result]:
        async with (
            serve_many(pop3(), SIXTEEN, good_tls) as first,
            serve_many(pop3(), SIXTEEN, other) as second,
        ):
            entries = [row("pop3s", first, key="first"), row("pop3s", second, key="second")]
            limits = Limits(concurrency=16, per_host=1)
            results = await check_async(
                list(SIXTEEN), entries=entries, settings=Settings(timeout=2.0), limits=limits
            )
            return [r for r in results if r.port == second]

    results = on_loop(go())
    assert [r.verdict for r in results] == [Verdict.OK] * 16
    assert all(r.tls is not None and r.tls.trusted is False for r in results)
    assert len({r.tls.trust_error for r in results if r.tls is not None}) == 1
    assert verified[results[0].port] == 1


def test_the_expected_service_greeting_late_is_silent_not_another_service() -> None:
    """An overloaded server greets the first connection too late, the second look at once:
    the service that answers is the one expected, so the verdict is its silence."""
    greeted = {"count": 0}
    greeting = b"220 mail.example.com ESMTP Postfix\r\n"

    async def late_then_prompt(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        greeted["count"] += 1
        if greeted["count"] == 1:
            await asyncio.sleep(2.0)
        await scripted(greeting, {b"GET": b"502 5.5.2 Error: command not recognized\r\n"})(
            reader, writer
        )

    result, _ = run_probe(late_then_prompt, "smtp", Settings(timeout=0.5), tls=None)
    assert result.verdict is Verdict.SILENT, result.reason
    assert greeted["count"] >= 2  # the second look did connect, and met SMTP
