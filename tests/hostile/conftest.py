"""The zoo in a process of its own, started once for the package's tests, and the lab
certificates the abused responders present."""

from __future__ import annotations

import json
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from portcall.responders.certs import LabCertificates, ensure_lab, server_context
from tests.responders.running import LAB_HOST

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="package")
def zoo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, int]]:
    """Each hostile case's port on 127.0.0.1."""
    directory = tmp_path_factory.mktemp("zoo")
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.hostile.zoo", str(directory)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stdin is not None
    try:
        line = process.stdout.readline()
        assert line, f"the zoo did not start (exit code {process.poll()})"
        yield {name: int(port) for name, port in json.loads(line).items()}
    finally:
        process.stdin.close()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@pytest.fixture(scope="package")
def lab(tmp_path_factory: pytest.TempPathFactory) -> LabCertificates:
    return ensure_lab(tmp_path_factory.mktemp("lab"), LAB_HOST)


@pytest.fixture(scope="package")
def contexts(lab: LabCertificates) -> dict[str, ssl.SSLContext]:
    """The responders' TLS context: the lab's host certificate."""
    return {"host": server_context(lab.host_cert, lab.host_key)}


@pytest.fixture(scope="package")
def client_tls(lab: LabCertificates) -> ssl.SSLContext:
    """A client that trusts the lab CA and checks the host name."""
    return ssl.create_default_context(cafile=str(lab.ca_cert))
