"""The metrics: those of one /probe (a collector over its results) and the exporter's own.

Per probe, without labels:

- `probe_success`: 1 when the check's health is not "failures" (healthy, or warnings only,
  such as a certificate expiring within the warning window), else 0. A probe that ran out of
  time is 0. This is the series to alert on, as with blackbox_exporter.
- `probe_duration_seconds`: how long the whole probe took.
- `probe_ssl_earliest_cert_expiry`: the earliest certificate end (Unix time) among the ports,
  named as blackbox_exporter names it; absent when no port presented a certificate.

Per port, with the labels `port`, `transport` (tcp or udp: 53/tcp and 53/udp are two ports),
`key` (the catalog row) and `verdict` (the port's verdict):

- `portcall_port_up`: 1 when the right service answered (verdict ok), else 0.
- `portcall_port_verdict`: a state set: one series for every verdict portcall knows, 1 for
  the port's verdict and 0 for the others. A port's series thus never disappear when its
  verdict changes, and `portcall_port_verdict{verdict="refused"} == 1` finds closed ports.
  Here the `verdict` label is the state each series stands for.
- `portcall_probe_duration_seconds`: how long that port's probe took, less its waits for a
  connection or conversation slot (which the probe's other ports cause).
- `portcall_tls_version_info`: 1, with the negotiated version as `version`, for ports that
  spoke TLS.
- `portcall_cert_not_after_timestamp_seconds`: the end of the port's certificate (Unix time).

Every value goes through prometheus_client, which writes the text format and escapes labels.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from portcall.verdicts import Health, Result, Verdict, overall_health

#: The labels of every per-port series.
PORT_LABELS = ("port", "transport", "key", "verdict")
#: The Content-Type of the text format prometheus_client writes.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: Upper bounds (seconds) of the exporter's probe duration histogram.
DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 30.0, 60.0)

_ValueOf = Callable[[Result], float | None]


def probe_success(results: list[Result], *, timed_out: bool = False) -> bool:
    return not timed_out and overall_health(results) is not Health.FAILURES


class ProbeCollector(Collector):
    """The series of one finished (or timed-out) probe."""

    def __init__(self, results: list[Result], duration: float, *, timed_out: bool) -> None:
        self.results = results
        self.duration = duration
        self.success = probe_success(results, timed_out=timed_out)

    def collect(self) -> Iterator[Metric]:
        yield _plain("probe_success", "1 when the check's health is not failures.", self.success)
        yield _plain("probe_duration_seconds", "Seconds the probe took.", self.duration)
        yield from self._certificates_earliest()
        yield self._per_port("portcall_port_up", "1 when the right service answered.", _up)
        yield self._verdicts()
        yield self._per_port(
            "portcall_probe_duration_seconds", "Seconds the port's probe took.", _duration
        )
        yield self._tls_versions()
        yield self._per_port(
            "portcall_cert_not_after_timestamp_seconds",
            "Unix time the port's certificate ends.",
            _not_after,
        )

    def _per_port(self, name: str, text: str, value_of: _ValueOf) -> GaugeMetricFamily:
        family = GaugeMetricFamily(name, text, labels=PORT_LABELS)
        for result in self.results:
            value = value_of(result)
            if value is not None:
                family.add_metric(_labels(result), value)
        return family

    def _verdicts(self) -> GaugeMetricFamily:
        family = GaugeMetricFamily(
            "portcall_port_verdict",
            "The port's verdict as a state set: 1 for its verdict, 0 for the others.",
            labels=PORT_LABELS,
        )
        for result in self.results:
            for verdict in Verdict:
                labels = [*_labels(result)[:-1], str(verdict)]
                family.add_metric(labels, float(verdict is result.verdict))
        return family

    def _tls_versions(self) -> GaugeMetricFamily:
        family = GaugeMetricFamily(
            "portcall_tls_version_info",
            "The TLS version the port negotiated.",
            labels=(*PORT_LABELS, "version"),
        )
        for result in self.results:
            if result.tls is not None:
                family.add_metric([*_labels(result), result.tls.version], 1.0)
        return family

    def _certificates_earliest(self) -> Iterator[GaugeMetricFamily]:
        ends = [end for r in self.results if (end := _not_after(r)) is not None]
        if ends:
            yield _plain(
                "probe_ssl_earliest_cert_expiry",
                "Unix time the earliest certificate among the ports ends.",
                min(ends),
            )


def _plain(name: str, text: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, text, value=float(value))


def _labels(result: Result) -> list[str]:
    return [str(result.port), result.transport, result.key, str(result.verdict)]


def _up(result: Result) -> float:
    return float(result.verdict is Verdict.OK)


def _duration(result: Result) -> float | None:
    """The probe's own time: its waits for a connection or conversation slot, which the
    run's other ports cause, are left out (as `timings["waited"]`)."""
    total = result.timings.get("total")
    if total is None:
        return None
    return max(0.0, total - result.timings.get("waited", 0.0))


def _not_after(result: Result) -> float | None:
    if result.tls is None or result.tls.certificate is None:
        return None
    return result.tls.certificate.not_after.timestamp()


def probe_page(results: list[Result], duration: float, *, timed_out: bool = False) -> bytes:
    """The text-format answer to one /probe, from a registry of its own."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ProbeCollector(results, duration, timed_out=timed_out))
    return generate_latest(registry)


class ExporterMetrics:
    """The exporter's own series (`/metrics`), in a registry of this exporter's own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self.probes = Counter(
            "portcall_exporter_probes",
            "Probes run, by outcome: healthy, warnings, failures, timeout or error.",
            ["outcome"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "portcall_exporter_probe_duration_seconds",
            "Seconds each probe took.",
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self._more()

    def _more(self) -> None:
        self.refused = Counter(
            "portcall_exporter_refused_requests",
            "Requests refused, by reason: not-allowed (outside --allow), own-port, busy "
            "(over --max-concurrent), bad-request, method or too-large.",
            ["reason"],
            registry=self.registry,
        )
        self.errors = Counter(
            "portcall_exporter_errors",
            "Errors of the exporter itself, by where: probe (this machine could not probe), "
            "history (a run not recorded) or dashboard.",
            ["where"],
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "portcall_exporter_probes_in_flight", "Probes running now.", registry=self.registry
        )
        self.requests = Counter(
            "portcall_exporter_http_requests",
            "HTTP requests answered, by status code.",
            ["code"],
            registry=self.registry,
        )

    def page(self) -> bytes:
        return generate_latest(self.registry)
