"""Which AD domain the DC protocols ask about: --domain, else the target's name, else the
rootDSE (tested against Samba in tests/interop/test_samba_check.py)."""

from __future__ import annotations

import pytest

from portcall.probing.domain import domain_from_dn, implied_domain
from portcall.protocols.base import LocalProtocolError, ProbeOptions, domain_of


@pytest.mark.parametrize(
    ("host", "domain"),
    [
        ("dc1.example.com", "example.com"),
        ("DC1.corp.example.com.", "corp.example.com"),
        ("dc1.corp", "corp"),
    ],
)
def test_a_dc_name_implies_its_domain(host: str, domain: str) -> None:
    assert domain_of(host).lower() == domain
    assert ProbeOptions(host=host).ad_domain().lower() == domain


@pytest.mark.parametrize("host", ["localhost", "192.0.2.5", "::1", ""])
def test_an_address_or_one_label_implies_none(host: str) -> None:
    assert implied_domain(host) is None
    with pytest.raises(LocalProtocolError):
        ProbeOptions(host=host).ad_domain()


def test_the_given_domain_comes_first() -> None:
    assert ProbeOptions(host="dc1.example.com", domain="corp.test.").ad_domain() == "corp.test"


@pytest.mark.parametrize(
    ("dn", "domain"),
    [
        ("DC=portcall,DC=test", "portcall.test"),
        ("dc=Corp, dc=Example ,DC=com", "corp.example.com"),
        ("CN=Configuration,DC=example,DC=com", "example.com"),
        ("O=Example", None),
        ("", None),
    ],
)
def test_the_rootdse_naming_context_gives_the_domain(dn: str, domain: str | None) -> None:
    assert domain_from_dn(dn) == domain
