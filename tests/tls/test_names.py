from __future__ import annotations

import pytest

from portcall.tls.names import CHECK_BY_NAME, NO_IP_SAN, match_name, to_a_label
from tests.tls.conftest import Issued, Pki


@pytest.mark.parametrize(
    "name", ["mail.example.com", "MAIL.Example.COM", "mail.example.com.", " owa.example.com "]
)
def test_dns_name_matches_case_insensitively_without_trailing_dot(valid: Issued, name: str) -> None:
    match = match_name(valid.cert, name)
    assert match.matches is True
    assert "certificate names" in match.detail


def test_mismatch_lists_what_the_certificate_names(valid: Issued) -> None:
    match = match_name(valid.cert, "mail2.example.com")
    assert match.matches is False
    assert match.detail == (
        "certificate names mail.example.com, owa.example.com; not mail2.example.com"
    )


def test_long_name_lists_are_summarised(pki: Pki) -> None:
    cert = pki.issue(dns=[f"h{i}.example.com" for i in range(10)]).cert
    detail = match_name(cert, "other.example.com").detail
    assert "h5.example.com and 4 more; not other.example.com" in detail
    assert "h6.example.com" not in detail


@pytest.mark.parametrize("name", ["owa.example.com", "AUTODISCOVER.example.com."])
def test_wildcard_matches_one_left_most_label(wildcard: Issued, name: str) -> None:
    match = match_name(wildcard.cert, name)
    assert match.matches is True
    assert "*.example.com" in match.detail


@pytest.mark.parametrize("name", ["a.b.example.com", "example.org", ".example.com"])
def test_wildcard_does_not_match_other_depths(wildcard: Issued, name: str) -> None:
    assert match_name(wildcard.cert, name).matches is False


def test_bare_domain_matches_its_own_entry_not_the_wildcard(pki: Pki, wildcard: Issued) -> None:
    assert match_name(wildcard.cert, "example.com").detail == "certificate names example.com"
    only_wildcard = pki.issue(dns=("*.example.com",)).cert
    assert match_name(only_wildcard, "example.com").matches is False


def test_wildcard_over_a_single_label_is_never_honoured(wildcard: Issued) -> None:
    match = match_name(wildcard.cert, "foo.com")
    assert match.matches is False
    assert "*.com ignored: a wildcard must be the whole left-most label" in match.detail


@pytest.mark.parametrize(
    ("pattern", "name"),
    [
        ("f*.example.com", "foo.example.com"),
        ("*oo.example.com", "foo.example.com"),
        ("mail.*.example.com", "mail.corp.example.com"),
        ("*.*.example.com", "a.b.example.com"),
        ("*", "localhost"),
    ],
)
def test_partial_or_inner_wildcards_are_rejected(pki: Pki, pattern: str, name: str) -> None:
    assert match_name(pki.issue(dns=(pattern,)).cert, name).matches is False


def test_idna_names_compare_as_a_labels(pki: Pki) -> None:
    cert = pki.issue(cn=None, dns=("xn--bcher-kva.example", "*.xn--mnchen-3ya.example")).cert
    assert match_name(cert, "bücher.example").matches is True
    assert match_name(cert, "BÜCHER.example.").matches is True
    assert match_name(cert, "xn--bcher-kva.example").matches is True
    assert match_name(cert, "mail.münchen.example").matches is True
    assert match_name(cert, "bucher.example").matches is False


def test_to_a_label() -> None:
    assert to_a_label("Bücher.Example.") == "xn--bcher-kva.example"
    assert to_a_label("a..b") is None
    assert to_a_label("") is None


def test_invalid_host_name_is_reported(valid: Issued) -> None:
    match = match_name(valid.cert, "mail..example.com")
    assert match.matches is False
    assert "not a valid host name" in match.detail


def test_empty_name(valid: Issued) -> None:
    assert match_name(valid.cert, "  ").matches is False


def test_cn_only_certificate_matches_with_a_legacy_note(cn_only: Issued) -> None:
    match = match_name(cn_only.cert, "Exchange.Corp.Example")
    assert match.matches is True
    assert "legacy common name (CN=exchange.corp.example) only" in match.detail


def test_cn_only_certificate_mismatch_says_so(cn_only: Issued) -> None:
    match = match_name(cn_only.cert, "mail.corp.example")
    assert match.matches is False
    assert match.detail == (
        "certificate names only the common name exchange.corp.example (no DNS subject "
        "alternative names); not mail.corp.example"
    )


def test_cn_is_ignored_when_any_dns_san_exists(pki: Pki) -> None:
    cert = pki.issue(cn="legacy.example.com", dns=("mail.example.com",)).cert
    match = match_name(cert, "legacy.example.com")
    assert match.matches is False
    assert match.detail == "certificate names mail.example.com; not legacy.example.com"


def test_cn_counts_when_only_ip_sans_exist(pki: Pki) -> None:
    cert = pki.issue(cn="host.example.com", dns=(), ips=("192.0.2.1",)).cert
    assert match_name(cert, "host.example.com").matches is True


def test_wildcard_in_a_cn_only_certificate(pki: Pki) -> None:
    cert = pki.issue(cn="*.corp.example", dns=()).cert
    assert match_name(cert, "owa.corp.example").matches is True
    assert match_name(cert, "corp.example").matches is False


def test_certificate_naming_nothing(pki: Pki) -> None:
    match = match_name(pki.issue(cn=None, dns=()).cert, "mail.example.com")
    assert match.matches is False
    assert "names no host at all" in match.detail


@pytest.mark.parametrize(
    "name", ["192.0.2.10", "2001:db8::1", "2001:DB8:0:0::0:1", "[2001:db8::1]", "::ffff:192.0.2.10"]
)
def test_ip_matches_ip_sans_in_any_notation(ip_san: Issued, name: str) -> None:
    match = match_name(ip_san.cert, name)
    assert match.matches is True
    assert "among the certificate's IP addresses" in match.detail


def test_ip_mismatch_lists_the_certificate_addresses(ip_san: Issued) -> None:
    match = match_name(ip_san.cert, "192.0.2.11")
    assert match.matches is False
    assert match.detail == "certificate names IP addresses 192.0.2.10, 2001:db8::1; not 192.0.2.11"


def test_ip_against_a_certificate_without_ip_sans(valid: Issued) -> None:
    match = match_name(valid.cert, "192.0.2.10")
    assert match.matches is False
    assert match.detail.startswith(NO_IP_SAN)
    assert "mail.example.com, owa.example.com" in match.detail
    assert match.detail.endswith(CHECK_BY_NAME)


@pytest.mark.parametrize(
    ("cn", "dns"),
    [
        ("mail.example.com", ("192.0.2.10",)),  # an IP written as a DNS name
        ("192.0.2.10", ()),  # an IP in the CN
        ("mail.example.com", ("*.0.2.10",)),  # a wildcard never covers an address
    ],
)
def test_ip_is_never_matched_by_dns_names_or_cn(pki: Pki, cn: str, dns: tuple[str, ...]) -> None:
    match = match_name(pki.issue(cn=cn, dns=dns).cert, "192.0.2.10")
    assert match.matches is False
    assert NO_IP_SAN in match.detail
