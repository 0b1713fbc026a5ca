"""Shared fixtures of the responder tests: one lab PKI for the whole test run, and the whole
catalog answering for one test."""

from __future__ import annotations

import ssl
from collections.abc import Iterator

import pytest

from portcall.responders.certs import LabCertificates, ensure_lab, server_context
from tests.responders.running import LAB_HOST, Served


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> LabCertificates:
    return ensure_lab(tmp_path_factory.mktemp("lab"), LAB_HOST)


@pytest.fixture(scope="session")
def contexts(lab: LabCertificates) -> dict[str, ssl.SSLContext]:
    """The responders' TLS contexts: the host certificate and its expired sibling."""
    return {
        "host": server_context(lab.host_cert, lab.host_key),
        "expired": server_context(lab.expired_cert, lab.expired_key),
    }


@pytest.fixture(scope="session")
def client_tls(lab: LabCertificates) -> ssl.SSLContext:
    """A client context that trusts the lab CA and checks names, as any careful client does."""
    return ssl.create_default_context(cafile=str(lab.ca_cert))


@pytest.fixture
def served(contexts: dict[str, ssl.SSLContext]) -> Iterator[Served]:
    """The exchange2003 catalog on ephemeral loopback ports with the lab certificates."""
    with Served(contexts) as running:
        yield running
