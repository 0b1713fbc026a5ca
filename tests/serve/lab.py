"""What the exporter's tests share: responders on loopback, a catalog naming their ports, an
exporter running in this process or as `portcall serve`, and a small HTTP client."""

from __future__ import annotations

import asyncio
import http.client
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from prometheus_client.parser import text_string_to_metric_families

from portcall.catalog import load_catalog
from portcall.serve import Exporter
from tests.responders.test_listen_cli import portcall as portcall_argv
from tests.responders.test_listen_cli import toml_row

#: The catalog rows the lab answers on (moved to free high ports), and the host name its
#: certificate is made for.
LAB_KEYS = ("smtp", "pop3", "imap", "imaps", "http")
LAB_HOST = "mail.example.test"
#: The row the faulty responder leaves closed.
FAULTY_KEY = "pop3"
START_TIMEOUT = 20.0


def write_catalog(path: Path, ports: dict[str, int], extra: dict[str, int] | None = None) -> Path:
    """The built-in rows `ports` names, each moved to its port; `extra` adds SMTP rows
    (key -> port) that no responder serves."""
    rows = []
    for entry in load_catalog().entries:
        if entry.key in ports:
            rows.append(toml_row({**entry.to_dict(), "port": ports[entry.key]}))
    smtp = load_catalog().by_key("smtp")
    assert smtp is not None
    for key, port in (extra or {}).items():
        rows.append(toml_row({**smtp.to_dict(), "key": key, "port": port}))
    head = '[catalog]\nname = "lab"\ntitle = "Exchange ports moved for a test"\n\n'
    path.write_text(head + "\n".join(rows), encoding="utf-8")
    return path


class Process:
    """A subprocess, started at once; `with` waits until a line of its output starts with
    `ready`. Its output is read all along (a full pipe would stall it) and kept in `lines`
    and `errors`; SIGTERM (then SIGKILL) stops it when the `with` block ends."""

    def __init__(self, argv: list[str], ready: str, env: dict[str, str]) -> None:
        self.lines: list[str] = []
        self.errors: list[str] = []
        self._ready = ready
        self._seen = threading.Event()
        self.process = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )
        self._readers = [
            threading.Thread(
                target=self._read, args=(self.process.stdout, self.lines), daemon=True
            ),
            threading.Thread(
                target=self._read, args=(self.process.stderr, self.errors), daemon=True
            ),
        ]
        for reader in self._readers:
            reader.start()

    def _read(self, stream: Any, into: list[str]) -> None:
        for line in stream:
            into.append(line.rstrip("\n"))
            if into is self.lines and line.startswith(self._ready):
                self._seen.set()
        if into is self.lines:
            self._seen.set()  # the end of the output: no reason to wait longer

    def __enter__(self) -> Self:
        if not self._seen.wait(START_TIMEOUT) or self.process.poll() is not None:
            self.stop()
            raise AssertionError(f"not ready: {self.lines} {self.errors}")
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: Any) -> None:
        self.stop()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        for reader in self._readers:
            reader.join(5)


@dataclass(frozen=True)
class Lab:
    """The responders: a healthy one on 127.0.0.1, and on 127.0.0.2 one missing a port."""

    catalog: Path
    ca: Path
    ports: dict[str, int]
    healthy: str = "127.0.0.1"
    faulty: str = "127.0.0.2"


def listen(lab_dir: Path, catalog: Path, bind: str, env: dict[str, str], *ports: str) -> Process:
    argv = portcall_argv("listen", "--bind", bind, "--catalog", str(catalog))
    argv += ["--hostname", LAB_HOST, "--cert-dir", str(lab_dir)]
    argv += ["--ports", ",".join(ports)] if ports else []
    return Process(argv, "Ready:", env)


class InProcess:
    """An Exporter on an event loop of its own thread, so blocking HTTP clients can call it."""

    def __init__(self, exporter: Exporter) -> None:
        self.exporter = exporter
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        self._call(self.exporter.start())
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self._call(self.exporter.close())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop.close()

    def _call(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(20)

    @property
    def port(self) -> int:
        return self.exporter.listening[0][1]


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: str

    def metrics(self) -> dict[str, list[tuple[dict[str, str], float]]]:
        """The samples by name, each as (labels, value), read by prometheus_client's parser."""
        found: dict[str, list[tuple[dict[str, str], float]]] = {}
        for family in text_string_to_metric_families(self.body):
            for sample in family.samples:
                found.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
        return found

    def value(self, name: str, **labels: str) -> float:
        matches = [v for got, v in self.metrics().get(name, []) if labels.items() <= got.items()]
        assert len(matches) == 1, (name, labels, self.body)
        return matches[0]


def get(port: int, path: str, headers: dict[str, str] | None = None, timeout: float = 30) -> Answer:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        body = response.read().decode("utf-8")
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, body)
    finally:
        connection.close()


def lab_env(home: Path) -> dict[str, str]:
    return {**os.environ, "XDG_DATA_HOME": str(home / "xdg"), "PYTHONUNBUFFERED": "1"}


def wait_until(condition: Any, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")
