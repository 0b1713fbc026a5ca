"""The exporter: routes requests to /probe, /metrics and the dashboard at `/`.

A /probe is refused before any packet leaves for the target when the target lies outside the
allowed networks or is the exporter itself (403, see guard.py), when its ports or protocols
are not understood (400), or when `max_concurrent` probes already run (503, with Retry-After:
Prometheus retries at the next scrape, and a queue would only make every answer late).

A probe may take `probe_timeout` seconds, or less when Prometheus says how long it waits
(the X-Prometheus-Scrape-Timeout-Seconds header, less `SCRAPE_MARGIN` for the answer to
travel back). Each connection then gets a third of that, since one port's probe may take
three connections' time (TLS retries). A probe out of time answers with what it has:
`probe_success` 0 and the ports finished so far.

The dashboard at `/` is the latest matrix of every target probed so far: each /probe leaves
its `portcall.check/1` document (the latest per target wins), and the page is those documents
merged into one, drawn by the HTML report's own template (`portcall.report.html.render_html`
with `dashboard=True`), so it looks like, and escapes a peer's words like, `check --html`.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import signal
import sys
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from portcall import __version__
from portcall.api import check_async
from portcall.catalog import PROTOCOLS, Catalog, PortEntry
from portcall.cli.common import UsageProblem, select_entries
from portcall.probing.probe import Settings
from portcall.report.inert import inert
from portcall.report.json_report import SCHEMA, check_document
from portcall.serve import guard
from portcall.serve.config import ServeConfig
from portcall.serve.metrics import CONTENT_TYPE, ExporterMetrics, probe_page
from portcall.serve.server import HttpServer, Reply, Request, text_reply
from portcall.verdicts import LocalFault, Result, overall_health, worst_health

#: Seconds kept back from Prometheus's scrape timeout for the answer to reach it.
SCRAPE_MARGIN = 0.5
#: The shortest time a probe is given, whatever the header says.
MIN_BUDGET = 0.2
#: The shortest connection timeout `Settings` accepts.
MIN_CONNECT_TIMEOUT = 0.1
HTML = "text/html; charset=utf-8"

Log = Callable[[str], None]


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class Exporter:
    """One exporter: its settings, catalog, metrics and the latest result of each target."""

    def __init__(
        self, config: ServeConfig, catalog: Catalog, *, store: Any = None, log: Log = _stderr
    ) -> None:
        self.config = config
        self.catalog = catalog
        self.metrics = ExporterMetrics()
        self.latest = Latest()
        self.listening: list[tuple[str, int]] = []
        #: A `portcall.history.store.Store` that records each probe, or None.
        self._store = store
        self._log = log
        self._running = 0
        self._saving: set[asyncio.Future[None]] = set()
        self._http = HttpServer(self.handle, on_refused=self._refused_early)

    async def start(self) -> list[tuple[str, int]]:
        self.listening = await self._http.start(self.config.host, self.config.port)
        return self.listening

    async def close(self) -> None:
        await self._http.close()
        await asyncio.gather(*self._saving, return_exceptions=True)

    async def handle(self, request: Request) -> Reply:
        try:
            reply = await self._route(request)
        except Exception as exc:  # a bug must cost one answer, never the exporter
            where = {"/probe": "probe", "/metrics": "metrics"}.get(request.path, "dashboard")
            self.metrics.errors.labels(where=where).inc()
            self._log(f"error: {request.path}: {inert(repr(exc))}")
            reply = text_reply(500, "internal error; the exporter's log says more")
        self.metrics.requests.labels(code=str(reply.status)).inc()
        return reply

    async def _route(self, request: Request) -> Reply:
        if request.path == "/probe":
            return await self._probe(request)
        if request.path == "/metrics":
            return Reply(200, self.metrics.page(), CONTENT_TYPE)
        if request.path == "/":
            document = self.latest.document(self.catalog.name)
            return Reply(200, render_dashboard(document).encode("utf-8"), HTML)
        return text_reply(404, "not found: the exporter serves /probe, /metrics and /")

    def _refused_early(self, reason: str, status: int) -> None:
        self.metrics.refused.labels(reason=reason).inc()
        self.metrics.requests.labels(code=str(status)).inc()

    def _refuse(self, status: int, reason: str, why: str) -> Reply:
        self.metrics.refused.labels(reason=reason).inc()
        headers = (("Retry-After", "1"),) if status == 503 else ()
        return text_reply(status, inert(why), headers=headers)

    async def _probe(self, request: Request) -> Reply:
        try:
            entries = self._entries(request)
            admitted = await guard.admit(request.param("target"), self.config.allow)
            guard.check_own_port(admitted, entries, self.listening)
        except guard.Refused as refused:
            return self._refuse(refused.status, refused.kind, refused.reason)
        if self._running >= self.config.max_concurrent:
            why = f"{self._running} probes run already (max_concurrent); try again shortly"
            return self._refuse(503, "busy", why)
        return await self._probe_admitted(admitted, entries, self._budget(request))

    def _entries(self, request: Request) -> list[PortEntry]:
        """The catalog rows `ports=` and `protocol=` select, as `check --ports/--protocol`."""
        protocols = tuple(
            p.strip() for value in request.query.get("protocol", []) for p in value.split(",")
        )
        unknown = [p for p in protocols if p not in PROTOCOLS]
        if unknown:
            raise guard.Refused(
                400, f"protocol: unknown '{unknown[0]}' (known: {', '.join(PROTOCOLS)})"
            )
        try:
            # Prometheus may send a list parameter as ports=a&ports=b: both count.
            ports = ",".join(request.query.get("ports", [])) or None
            return select_entries(self.catalog, ports, protocols)
        except UsageProblem as problem:
            hint = f" ({problem.hint})" if problem.hint else ""
            raise guard.Refused(400, problem.message.replace("--", "") + hint) from None

    def _budget(self, request: Request) -> float:
        """Seconds this probe may take: the configured most, or less if Prometheus waits less."""
        budget = self.config.probe_timeout
        with contextlib.suppress(ValueError):
            scrape = float(request.headers.get("x-prometheus-scrape-timeout-seconds", "nan"))
            if math.isfinite(scrape) and scrape > 0:
                budget = min(budget, scrape - SCRAPE_MARGIN)
        return max(MIN_BUDGET, budget)

    async def _probe_admitted(
        self, admitted: guard.Admitted, entries: list[PortEntry], budget: float
    ) -> Reply:
        self._running += 1
        self.metrics.in_flight.inc()
        began, started = time.monotonic(), datetime.now(UTC)
        try:
            results, timed_out = await self._run(admitted, entries, budget)
        except LocalFault as fault:
            self.metrics.probes.labels(outcome="error").inc()
            self.metrics.errors.labels(where="probe").inc()
            return text_reply(500, f"this machine could not probe: {inert(str(fault))}")
        finally:
            self._running -= 1
            self.metrics.in_flight.dec()
        duration = time.monotonic() - began
        self._record(admitted.name, results, started, duration, timed_out)
        return Reply(200, probe_page(results, duration, timed_out=timed_out), CONTENT_TYPE)

    async def _run(
        self, admitted: guard.Admitted, entries: list[PortEntry], budget: float
    ) -> tuple[list[Result], bool]:
        """The probe's results, and whether it ran out of time (then those finished)."""
        if admitted.target is None:
            return guard.unresolved_results(admitted, entries), False
        timeout = max(MIN_CONNECT_TIMEOUT, min(self.config.timeout, budget / 3))
        settings = Settings(timeout=timeout, cafile=self.config.ca)
        finished: list[Result] = []
        try:
            async with asyncio.timeout(budget):
                results = await check_async(
                    [admitted.target],
                    catalog=self.catalog,
                    entries=entries,
                    settings=settings,
                    on_result=finished.append,
                )
        except TimeoutError:
            order = {(e.port, e.transport): i for i, e in enumerate(entries)}
            return sorted(finished, key=lambda r: order.get((r.port, r.transport), 0)), True
        return results, False

    def _record(
        self,
        target: str,
        results: list[Result],
        started: datetime,
        duration: float,
        timed_out: bool,
    ) -> None:
        outcome = "timeout" if timed_out else str(overall_health(results))
        self.metrics.probes.labels(outcome=outcome).inc()
        self.metrics.duration.observe(duration)
        document = check_document(results, catalog=self.catalog.name, started=started)
        self.latest.keep(target, document)
        if self._store is not None:
            self._save_later(document)

    def _save_later(self, document: dict[str, Any]) -> None:
        """Record the run from a worker thread (SQLite blocks), after the answer has gone."""
        loop = asyncio.get_running_loop()
        saving = loop.run_in_executor(None, self._save, document)
        self._saving.add(saving)
        saving.add_done_callback(self._saving.discard)

    def _save(self, document: dict[str, Any]) -> None:
        try:
            self._store.save(document, source="serve")
        except Exception as exc:  # the history's own error, or SQLite's: the probe stands
            self.metrics.errors.labels(where="history").inc()
            self._log(f"error: the run was not recorded in the history: {inert(str(exc))}")


#: Targets the dashboard remembers; beyond this the one probed least recently is dropped, so
#: that a scan of a wide allowed network cannot make the exporter's memory grow without end.
MAX_TARGETS = 512
#: Seconds between two reloads of the page in the browser.
REFRESH_SECONDS = 30


class Latest:
    """The latest document of each target, most recently probed last."""

    def __init__(self, limit: int = MAX_TARGETS) -> None:
        self._limit = limit
        self._documents: OrderedDict[str, dict[str, Any]] = OrderedDict()

    def keep(self, target: str, document: dict[str, Any]) -> None:
        self._documents.pop(target, None)
        self._documents[target] = document
        while len(self._documents) > self._limit:
            self._documents.popitem(last=False)

    def targets(self) -> list[str]:
        return sorted(self._documents)

    def document(self, catalog: str) -> dict[str, Any]:
        """One document of them all, targets in name order: a page reloaded every half
        minute keeps each row where the eye left it."""
        return merge([self._documents[t] for t in self.targets()], catalog)


def merge(documents: list[dict[str, Any]], catalog: str) -> dict[str, Any]:
    """Documents of separate probes as one: results and hosts in order, the worst health,
    the earliest start and the latest end."""
    now = datetime.now(UTC).isoformat()
    healths = [str(d["health"]) for d in documents]
    return {
        "schema": SCHEMA,
        "portcall": __version__,
        "catalog": catalog,
        "started": min((str(d["started"]) for d in documents), default=now),
        "finished": max((str(d["finished"]) for d in documents), default=now),
        "health": str(worst_health(healths)),
        "results": [r for d in documents for r in d["results"]],
        "hosts": [h for d in documents for h in d.get("hosts", [])],
    }


def render_dashboard(document: dict[str, Any]) -> str:
    """The dashboard page of `document`, from the HTML report's template."""
    # Imported here: the exporter serves /probe and /metrics without Jinja2 loaded.
    from portcall.report.html import render_html

    return render_html(
        document, title="portcall dashboard", dashboard=True, refresh_seconds=REFRESH_SECONDS
    )


async def serve_until_stopped(exporter: Exporter, on_ready: Callable[[], None]) -> None:
    """Run `exporter` until SIGTERM or SIGINT (Ctrl-C), then stop it cleanly: no new
    connection is taken, probes under way are cancelled, pending history records written."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await exporter.start()
        on_ready()
        await stop.wait()
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        await exporter.close()
