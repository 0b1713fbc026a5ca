"""A real Prometheus scrapes `portcall serve` with the documented configuration
(docs/prometheus.yml, its targets and addresses swapped for the lab's): the series it stores
say what the responders were made to be, the healthy one healthy, the faulty one's closed
port down and refused."""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.responders.test_listen_cli import free_ports
from tests.responders.test_listen_cli import portcall as portcall_argv
from tests.serve.lab import (
    FAULTY_KEY,
    LAB_KEYS,
    Lab,
    Process,
    lab_env,
    wait_until,
)

DOCUMENTED = Path(__file__).parents[2] / "docs" / "prometheus.yml"
PROMETHEUS = Path("/usr/bin/prometheus")
#: Seconds Prometheus gets to store the planned series.
SERIES_WAIT = 30.0


def _scrape_config(exporter: str, lab: Lab) -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load(DOCUMENTED.read_text(encoding="utf-8"))
    config["global"] = {"scrape_interval": "1s", "scrape_timeout": "1s"}
    probe, own = config["scrape_configs"]
    probe["params"] = {"ports": [",".join(LAB_KEYS)]}
    probe["static_configs"] = [{"targets": [lab.healthy, lab.faulty]}]
    assert probe["relabel_configs"][-1]["target_label"] == "__address__"
    probe["relabel_configs"][-1]["replacement"] = exporter
    own["static_configs"] = [{"targets": [exporter]}]
    return config


@pytest.fixture
def exporter(lab: Lab, tmp_path: Path) -> Iterator[str]:
    """`portcall serve` with the lab's catalog and CA; its address."""
    address = f"127.0.0.1:{free_ports(1)[0]}"
    config = tmp_path / "serve.toml"
    config.write_text(
        f'listen = "{address}"\ncatalog = "{lab.catalog}"\nca = "{lab.ca}"\n', encoding="utf-8"
    )
    argv = portcall_argv("serve", "--config", str(config))
    with Process(argv, "portcall serve:", lab_env(tmp_path)):
        yield address


@pytest.fixture
def prometheus(exporter: str, lab: Lab, tmp_path: Path) -> Iterator[str]:
    """A Prometheus server scraping the exporter; the base URL of its HTTP API."""
    if not PROMETHEUS.exists():
        pytest.fail(f"{PROMETHEUS} is not installed; tests/run.sh installs it", pytrace=False)
    config = tmp_path / "prometheus.yml"
    config.write_text(yaml.safe_dump(_scrape_config(exporter, lab)), encoding="utf-8")
    web = f"127.0.0.1:{free_ports(1)[0]}"
    argv = [str(PROMETHEUS), f"--config.file={config}", f"--web.listen-address={web}"]
    argv += [f"--storage.tsdb.path={tmp_path / 'tsdb'}"]
    process = Process(argv, "", lab_env(tmp_path))  # it logs on stderr: wait on /-/ready
    try:
        wait_until(lambda: _ready(f"http://{web}"), 20, "Prometheus to be ready")
        yield f"http://{web}"
    finally:
        process.stop()


def _ready(base: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base}/-/ready", timeout=2) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


def _query(base: str, query: str) -> list[dict[str, Any]]:
    url = f"{base}/api/v1/query?{urllib.parse.urlencode({'query': query})}"
    with urllib.request.urlopen(url, timeout=5) as answer:
        reply = json.load(answer)
    assert reply["status"] == "success", reply
    result: list[dict[str, Any]] = reply["data"]["result"]
    return result


def _stored(base: str) -> dict[str, Any]:
    """What Prometheus holds now, keyed so the plan can be compared whole."""
    return {
        "probe_success": {
            s["metric"]["instance"]: s["value"][1] for s in _query(base, "probe_success")
        },
        "portcall_port_up": {
            (s["metric"]["instance"], s["metric"]["key"]): s["value"][1]
            for s in _query(base, "portcall_port_up")
        },
        "verdicts": {
            (s["metric"]["instance"], s["metric"]["key"]): s["metric"]["verdict"]
            for s in _query(base, "portcall_port_verdict == 1")
        },
        "exporter_up": [s["value"][1] for s in _query(base, 'up{job="portcall_exporter"}')],
        # The exporter's own count, scraped by the second job, has seen both targets' probes.
        "exporter_counted": [
            float(s["value"][1]) >= 2
            for s in _query(base, 'sum(portcall_exporter_probes_total{job="portcall_exporter"})')
        ],
    }


def _planned(lab: Lab) -> dict[str, Any]:
    closed = (lab.faulty, FAULTY_KEY)
    pairs = [(host, key) for host in (lab.healthy, lab.faulty) for key in LAB_KEYS]
    return {
        "probe_success": {lab.healthy: "1", lab.faulty: "0"},
        "portcall_port_up": {pair: "0" if pair == closed else "1" for pair in pairs},
        "verdicts": {pair: "refused" if pair == closed else "ok" for pair in pairs},
        "exporter_up": ["1"],
        "exporter_counted": [True],
    }


def test_prometheus_stores_the_planned_verdicts(prometheus: str, lab: Lab) -> None:
    planned = _planned(lab)
    end = time.monotonic() + SERIES_WAIT
    stored = _stored(prometheus)
    while stored != planned and time.monotonic() < end:
        time.sleep(0.5)
        stored = _stored(prometheus)
    assert stored == planned
