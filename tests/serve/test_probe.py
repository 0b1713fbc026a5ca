"""/probe against real responders: the metrics it answers, and every request it refuses."""

from __future__ import annotations

import ipaddress
import threading
import time
from pathlib import Path

import pytest

from portcall.history.store import Store
from portcall.verdicts import Verdict
from tests.responders.test_listen_cli import free_ports
from tests.serve.conftest import Start
from tests.serve.lab import (
    FAULTY_KEY,
    LAB_KEYS,
    Answer,
    Lab,
    get,
    wait_until,
    write_catalog,
)


def _probe(port: int, query: str, **headers: str) -> Answer:
    return get(port, f"/probe?{query}", headers)


def _exporter_metric(port: int, name: str, **labels: str) -> float:
    samples = get(port, "/metrics").metrics().get(name, [])
    return sum(v for got, v in samples if labels.items() <= got.items())


def test_healthy_target_every_series(start: Start, lab: Lab) -> None:
    served = start()
    answer = _probe(served.port, "target=127.0.0.1")
    assert answer.status == 200
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert answer.value("probe_success") == 1
    assert 0 < answer.value("probe_duration_seconds") < 15
    for key in LAB_KEYS:
        labels = {"key": key, "port": str(lab.ports[key]), "transport": "tcp"}
        assert answer.value("portcall_port_up", **labels, verdict="ok") == 1
        assert answer.value("portcall_port_verdict", **labels, verdict="ok") == 1
        assert answer.value("portcall_port_verdict", **labels, verdict="refused") == 0
        assert len(
            [s for s in answer.metrics()["portcall_port_verdict"] if s[0]["key"] == key]
        ) == len(Verdict)
        assert 0 < answer.value("portcall_probe_duration_seconds", **labels) < 15
    tls = answer.metrics()["portcall_tls_version_info"]
    # smtp, pop3 and imap by STARTTLS, imaps from the first byte; plain http has none.
    assert sorted(labels["key"] for labels, _ in tls) == ["imap", "imaps", "pop3", "smtp"]
    assert {labels["version"] for labels, _ in tls} <= {"TLSv1.2", "TLSv1.3"}
    ends = [v for _, v in answer.metrics()["portcall_cert_not_after_timestamp_seconds"]]
    assert len(ends) == 4 and min(ends) > time.time()
    assert answer.value("probe_ssl_earliest_cert_expiry") == min(ends)


def test_faulty_target_port_down(start: Start, lab: Lab) -> None:
    served = start()
    answer = _probe(served.port, "target=127.0.0.2&ports=smtp,pop3")
    assert answer.value("probe_success") == 0
    closed = {"key": FAULTY_KEY, "port": str(lab.ports[FAULTY_KEY])}
    assert answer.value("portcall_port_up", **closed, verdict="refused") == 0
    assert answer.value("portcall_port_verdict", **closed, verdict="refused") == 1
    assert answer.value("portcall_port_verdict", **closed, verdict="ok") == 0
    assert answer.value("portcall_port_up", key="smtp", verdict="ok") == 1
    assert _exporter_metric(served.port, "portcall_exporter_probes_total", outcome="failures") == 1


def test_ports_and_protocol_select_as_check_does(start: Start, lab: Lab) -> None:
    served = start()
    answer = _probe(served.port, "target=127.0.0.1&protocol=imap,pop3")
    assert sorted(s[0]["key"] for s in answer.metrics()["portcall_port_up"]) == [
        "imap",
        "imaps",
        "pop3",
    ]
    answer = _probe(served.port, f"target=127.0.0.1&ports=smtp,{lab.ports['http']}")
    assert sorted(s[0]["key"] for s in answer.metrics()["portcall_port_up"]) == ["http", "smtp"]
    answer = _probe(served.port, "target=127.0.0.1&ports=smtp&ports=imaps")
    assert sorted(s[0]["key"] for s in answer.metrics()["portcall_port_up"]) == ["imaps", "smtp"]


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("target=127.0.0.1&ports=99", "no port of catalog 'lab' in 99"),
        ("target=127.0.0.1&ports=nonsense", "'nonsense' is neither a port"),
        ("target=127.0.0.1&protocol=gopher", "unknown 'gopher'"),
        ("target=127.0.0.1&ports=smtp&protocol=http", "select no port"),
        ("ports=smtp", "missing parameter: target"),
        ("target=127.0.0.0/30", "one host per request"),
        ("target=not..a..name", "is not a host name"),
    ],
)
def test_bad_request_is_400_with_reason(start: Start, query: str, says: str) -> None:
    served = start()
    answer = _probe(served.port, query)
    assert answer.status == 400
    assert answer.headers["content-type"] == "text/plain; charset=utf-8"
    assert says in answer.body
    assert _exporter_metric(served.port, "portcall_exporter_probes_total") == 0


def test_outside_allow_is_403_before_any_probe(start: Start) -> None:
    served = start()
    began = time.monotonic()
    answer = _probe(served.port, "target=10.0.0.1&ports=smtp")
    assert answer.status == 403
    assert "10.0.0.1: outside the networks this exporter may probe" in answer.body
    assert time.monotonic() - began < 1
    answer = _probe(served.port, "target=2001:db8::1")
    assert answer.status == 403
    assert _exporter_metric(served.port, "portcall_exporter_probes_total") == 0
    refused = "portcall_exporter_refused_requests_total"
    assert _exporter_metric(served.port, refused, reason="not-allowed") == 2


def test_name_resolving_outside_allow_is_403(start: Start) -> None:
    served = start(allow=(ipaddress.ip_network("127.0.0.2/32"),))
    answer = _probe(served.port, "target=localhost&ports=smtp")
    assert answer.status == 403
    assert "localhost resolves to 127.0.0.1" in answer.body
    assert _exporter_metric(served.port, "portcall_exporter_probes_total") == 0
    assert _probe(served.port, "target=127.0.0.2&ports=smtp").status == 200
    assert _exporter_metric(served.port, "portcall_exporter_probes_total") == 1


def test_allowed_name_is_probed_at_the_address_checked(start: Start) -> None:
    served = start()
    answer = _probe(served.port, "target=localhost&ports=smtp")
    assert answer.status == 200
    assert answer.value("portcall_port_up", key="smtp") == 1
    page = get(served.port, "/").body
    assert "localhost" in page and "127.0.0.1" in page


def test_own_port_is_refused(start: Start, lab: Lab, tmp_path: Path) -> None:
    own = free_ports(1)[0]
    catalog = write_catalog(tmp_path / "own.toml", lab.ports, extra={"self": own})
    served = start(catalog=catalog, port=own)
    assert served.port == own
    answer = _probe(served.port, "target=127.0.0.1")
    assert answer.status == 403
    assert f"port {own} is this exporter itself" in answer.body
    assert _probe(served.port, "target=127.0.0.1&ports=self").status == 403
    assert _probe(served.port, "target=localhost&ports=self").status == 403
    # Another address, or the exporter's address without its port, is probed.
    assert _probe(served.port, "target=127.0.0.2&ports=self").status == 200
    assert _probe(served.port, "target=127.0.0.1&ports=smtp").status == 200
    refused = "portcall_exporter_refused_requests_total"
    assert _exporter_metric(served.port, refused, reason="own-port") == 3


def test_scrape_timeout_header_is_honoured(start: Start, stall_catalog: Path) -> None:
    # Five seconds a connection and fifteen a probe, unless Prometheus waits less.
    served = start(catalog=stall_catalog, timeout=5.0, probe_timeout=15.0)
    began = time.monotonic()
    answer = _probe(served.port, "target=127.0.0.1&ports=stall,smtp", **_scrape(1.5))
    took = time.monotonic() - began
    assert answer.status == 200
    assert took < 1.5, took
    assert answer.value("probe_success") == 0
    assert answer.value("probe_duration_seconds") < 1.2  # 1.5 s less the margin, 0.5 s
    stall = [
        labels for labels, _ in answer.metrics()["portcall_port_up"] if labels["key"] == "stall"
    ]
    assert all(labels["verdict"] != "ok" for labels in stall)


def _scrape(seconds: float) -> dict[str, str]:
    return {"X-Prometheus-Scrape-Timeout-Seconds": f"{seconds:g}"}


def test_probes_beyond_max_concurrent_get_503(start: Start, stall_catalog: Path) -> None:
    served = start(catalog=stall_catalog, max_concurrent=1)
    first: list[Answer] = []
    slow = threading.Thread(
        target=lambda: first.append(
            _probe(served.port, "target=127.0.0.1&ports=stall", **_scrape(2))
        )
    )
    slow.start()
    try:
        in_flight = "portcall_exporter_probes_in_flight"
        wait_until(lambda: _exporter_metric(served.port, in_flight) == 1, 5, "the first probe")
        answer = _probe(served.port, "target=127.0.0.1&ports=smtp")
        assert answer.status == 503
        assert answer.headers["retry-after"] == "1"
        assert "max_concurrent" in answer.body
    finally:
        slow.join(10)
    assert first[0].status == 200
    assert _probe(served.port, "target=127.0.0.1&ports=smtp").status == 200
    assert (
        _exporter_metric(served.port, "portcall_exporter_refused_requests_total", reason="busy")
        == 1
    )


def test_unresolvable_name_is_a_failed_probe(start: Start) -> None:
    served = start()
    answer = _probe(served.port, "target=no-such-host.invalid&ports=smtp")
    assert answer.status == 200
    assert answer.value("probe_success") == 0
    assert answer.value("portcall_port_verdict", key="smtp", verdict="unresolved") == 1


def test_each_probe_recorded_in_history(start: Start, tmp_path: Path) -> None:
    db = tmp_path / "history.sqlite3"
    store = Store(db)
    try:
        served = start(store=store, save=True, db=str(db))
        _probe(served.port, "target=127.0.0.1&ports=smtp")
        _probe(served.port, "target=127.0.0.2&ports=pop3")
        wait_until(lambda: len(store.runs()) == 2, 5, "two runs in the history")
        runs = store.runs()
    finally:
        store.close()
    assert {run.source for run in runs} == {"serve"}
    assert sorted(run.targets for run in runs) == [("127.0.0.1",), ("127.0.0.2",)]
    assert sorted(run.health for run in runs) == ["healthy", "warnings"]  # pop3 closed
