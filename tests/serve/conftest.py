"""Fixtures of the exporter's tests: the responders (two `portcall listen` processes, started
once), and exporters in this process built on their catalog."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from portcall.cli.common import open_catalog
from portcall.serve import Exporter, ServeConfig
from tests.responders.test_listen_cli import free_ports
from tests.serve.lab import (
    FAULTY_KEY,
    LAB_KEYS,
    InProcess,
    Lab,
    lab_env,
    listen,
    write_catalog,
)


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    home = tmp_path_factory.mktemp("serve-lab")
    ports = dict(zip(LAB_KEYS, free_ports(len(LAB_KEYS)), strict=True))
    catalog = write_catalog(home / "lab.toml", ports)
    env = lab_env(home)
    certs = home / "certs"
    kept = [k for k in LAB_KEYS if k != FAULTY_KEY]
    with listen(certs, catalog, "127.0.0.1", env), listen(certs, catalog, "127.0.0.2", env, *kept):
        yield Lab(catalog, certs / "ca.crt", ports)


@pytest.fixture(scope="session")
def stalled() -> Iterator[int]:
    """A port that takes connections (the kernel's backlog) and never says a word."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def stall_catalog(lab: Lab, stalled: int, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The lab's catalog plus a row, `stall`, on the port that never answers."""
    path = tmp_path_factory.mktemp("stall") / "stall.toml"
    return write_catalog(path, lab.ports, extra={"stall": stalled})


Start = Callable[..., InProcess]


@pytest.fixture
def start(lab: Lab) -> Iterator[Start]:
    """Start an exporter on 127.0.0.1 (a free port unless `port=`) with the lab's catalog and
    CA unless told otherwise; each is stopped when the test ends."""
    running: list[InProcess] = []

    def run(catalog: Path | None = None, store: Any = None, **settings: Any) -> InProcess:
        config = ServeConfig(**{"port": 0, "ca": str(lab.ca), **settings})
        exporter = Exporter(config, open_catalog(str(catalog or lab.catalog)), store=store)
        served = InProcess(exporter).__enter__()
        running.append(served)
        return served

    yield run
    for served in reversed(running):
        served.__exit__(None, None, None)
