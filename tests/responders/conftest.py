"""Shared fixtures of the responder tests: one lab PKI for the whole test run."""

from __future__ import annotations

import ssl

import pytest

from portcall.responders.certs import LabCertificates, ensure_lab, server_context

LAB_HOST = "mail.example.test"


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
