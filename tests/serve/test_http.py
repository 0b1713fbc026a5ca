"""The exporter as an HTTP server: /metrics, the dashboard, GET only, bounded requests,
keep-alive; and the unit rules of guard.py that need no network at all."""

from __future__ import annotations

import asyncio
import http.client
import ipaddress
import socket
import subprocess
from pathlib import Path

import pytest

from portcall.catalog import load_catalog
from portcall.serve import guard
from portcall.serve.config import DEFAULT_ALLOW
from portcall.serve.server import MAX_HEAD
from tests.report.chromium import dump_dom, find
from tests.serve.conftest import Start
from tests.serve.lab import get


def _raw(port: int, data: bytes) -> bytes:
    """What the exporter answers to `data` sent as is, until it closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_metrics_counts_requests_and_has_process_series(start: Start) -> None:
    served = start()
    get(served.port, "/probe?target=10.0.0.1")
    get(served.port, "/probe?target=127.0.0.1&ports=smtp")
    answer = get(served.port, "/metrics")
    assert answer.status == 200
    assert answer.value("portcall_exporter_http_requests_total", code="403") == 1
    assert answer.value("portcall_exporter_http_requests_total", code="200") == 1
    assert answer.value("portcall_exporter_probes_total", outcome="healthy") == 1
    assert answer.value("portcall_exporter_probe_duration_seconds_count") == 1
    assert answer.value("portcall_exporter_probes_in_flight") == 0
    assert answer.value("process_open_fds") > 0
    assert "python_info" in answer.metrics()


def test_dashboard_shows_latest_result_of_each_target(start: Start) -> None:
    served = start()
    empty = get(served.port, "/")
    assert empty.status == 200 and empty.headers["content-type"] == "text/html; charset=utf-8"
    get(served.port, "/probe?target=127.0.0.1&ports=smtp")
    get(served.port, "/probe?target=127.0.0.2&ports=pop3")
    get(served.port, "/probe?target=127.0.0.2&ports=smtp")
    page = get(served.port, "/").body
    assert '<meta http-equiv="refresh" content="30">' in page
    assert "127.0.0.1" in page and "127.0.0.2" in page
    document = served.exporter.latest.document("lab")
    # The latest probe of 127.0.0.2 (smtp) replaced its earlier one (pop3).
    assert [(r["host"], r["key"]) for r in document["results"]] == [
        ("127.0.0.1", "smtp"),
        ("127.0.0.2", "smtp"),
    ]
    assert document["health"] == "failures"  # 127.0.0.2 is not in the lab certificate


def test_the_dashboard_in_a_browser(start: Start, tmp_path: Path) -> None:
    """The page `/` serves, rendered by headless Chromium (which runs without a network, so
    the page is saved first): the matrix of what was probed, filters working."""
    served = start()
    get(served.port, "/probe?target=127.0.0.1&ports=smtp,pop3")
    get(served.port, "/probe?target=127.0.0.2&ports=smtp")
    page = tmp_path / "dashboard.html"
    page.write_text(get(served.port, "/").body, encoding="utf-8")
    dom = dump_dom(page)
    cells = find(dom, "td", class_="cell")
    shown = {(c.attrs["data-column"], c.attrs["data-verdict"]) for c in cells}
    assert len(find(dom, "tr", class_="host-row")) == 2
    assert all(
        f"verdict-{c.attrs['data-verdict']}" in c.classes for c in cells if c.attrs["data-verdict"]
    )
    assert any(column.endswith("smtp") and verdict == "ok" for column, verdict in shown), shown
    assert "dashboard" in find(dom, "title")[0].text.lower()
    hidden = dump_dom(page, "host=127.0.0.2")
    rows = find(hidden, "tr", class_="host-row")
    assert [r.attrs["data-host"] for r in rows if "hidden" not in r.attrs] == ["127.0.0.2"]


def test_only_get(start: Start) -> None:
    served = start()
    connection = http.client.HTTPConnection("127.0.0.1", served.port, timeout=10)
    try:
        for method in ("POST", "HEAD", "DELETE"):
            connection.request(method, "/probe?target=127.0.0.1", body=b"x" * 10)
            response = connection.getresponse()
            response.read()
            assert response.status == 405, method
            assert response.getheader("Allow") == "GET"
    finally:
        connection.close()


def test_keep_alive_serves_several_requests_on_one_connection(start: Start) -> None:
    served = start()
    connection = http.client.HTTPConnection("127.0.0.1", served.port, timeout=10)
    try:
        for path in ("/metrics", "/nowhere", "/probe?target=127.0.0.1&ports=smtp"):
            connection.request("GET", path)
            response = connection.getresponse()
            response.read()
            assert response.status == (404 if path == "/nowhere" else 200)
        assert connection.sock is not None  # never closed between the requests
    finally:
        connection.close()


def test_oversized_head_and_body_and_garbage_are_refused(start: Start) -> None:
    served = start()
    head = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 2 * MAX_HEAD + b"\r\n\r\n"
    assert _raw(served.port, head).startswith(b"HTTP/1.1 431 ")
    body = b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" + b"b" * 100000
    assert _raw(served.port, body).startswith(b"HTTP/1.1 413 ")
    assert _raw(served.port, b"NOT HTTP AT ALL\r\n\r\n").startswith(b"HTTP/1.1 400 ")
    answer = get(served.port, "/metrics")
    assert answer.value("portcall_exporter_refused_requests_total", reason="too-large") == 1
    assert answer.value("portcall_exporter_refused_requests_total", reason="bad-request") == 2


def test_peer_text_in_a_refusal_stays_plain_text(start: Start) -> None:
    served = start()
    answer = get(served.port, "/probe?target=%1b%5b31m<script>")
    assert answer.status == 400
    assert "\x1b" not in answer.body and "\\x1b" in answer.body
    assert answer.headers["content-type"] == "text/plain; charset=utf-8"
    assert answer.headers["x-content-type-options"] == "nosniff"


def test_every_address_of_a_name_must_be_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    async def two_addresses(_name: str) -> tuple[guard.Address, ...]:
        return (ipaddress.ip_address("127.0.0.5"), ipaddress.ip_address("10.9.8.7"))

    monkeypatch.setattr(guard, "_resolve", two_addresses)
    with pytest.raises(guard.Refused) as refused:
        asyncio.run(guard.admit("mail.example.test", DEFAULT_ALLOW))
    assert refused.value.status == 403
    assert "mail.example.test resolves to 10.9.8.7: outside" in refused.value.reason


def test_the_probe_goes_to_the_address_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    async def one_address(_name: str) -> tuple[guard.Address, ...]:
        return (ipaddress.ip_address("127.0.0.5"),)

    monkeypatch.setattr(guard, "_resolve", one_address)
    admitted = asyncio.run(guard.admit("mail.example.test", DEFAULT_ALLOW))
    assert admitted.target is not None
    assert (admitted.target.name, admitted.target.address) == ("mail.example.test", "127.0.0.5")


def test_every_address_of_this_machine_is_the_exporter_on_0_0_0_0() -> None:
    """Bound on 0.0.0.0, the exporter is reached on each of this machine's addresses, not
    only on loopback (the addresses are read from the kernel; nothing is sent)."""
    listing = subprocess.run(["ip", "-o", "-4", "addr"], capture_output=True, text=True)
    mine = {line.split()[3].split("/")[0] for line in listing.stdout.splitlines()}
    smtp = load_catalog().select(ports={25}, protocols=None)
    assert "127.0.0.1" in mine
    for address in mine:
        admitted = guard.Admitted(address, None, (ipaddress.ip_address(address),))
        with pytest.raises(guard.Refused, match="this exporter itself"):
            guard.check_own_port(admitted, smtp, [("0.0.0.0", 25)])


@pytest.mark.parametrize(
    ("bound", "target", "clash"),
    [
        ("127.0.0.1", "127.0.0.1", True),
        ("127.0.0.1", "127.0.0.2", False),
        ("0.0.0.0", "127.0.0.9", True),
        ("::", "127.0.0.1", True),
        ("::", "::1", True),
        ("0.0.0.0", "::1", False),
        ("::1", "::1", True),
        # Not an address of this machine (TEST-NET-2): bound on every address, no clash.
        ("0.0.0.0", "198.51.100.77", False),
    ],
)
def test_own_port_rule(bound: str, target: str, clash: bool) -> None:
    smtp = load_catalog().select(ports={25}, protocols=None)
    admitted = guard.Admitted(target, None, (ipaddress.ip_address(target),))
    if clash:
        with pytest.raises(guard.Refused, match="this exporter itself"):
            guard.check_own_port(admitted, smtp, [(bound, 25)])
    else:
        guard.check_own_port(admitted, smtp, [(bound, 25)])
    guard.check_own_port(admitted, smtp, [(bound, 26)])  # another port: never a clash
