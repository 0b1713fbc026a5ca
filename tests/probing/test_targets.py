from __future__ import annotations

import pytest

from portcall.probing.targets import TargetError, parse_target, parse_targets


def test_host_name_is_kept_lower_case_without_trailing_dot() -> None:
    assert [t.name for t in parse_target("Mail.Example.COM.")] == ["mail.example.com"]
    assert parse_target("mail.example.com")[0].is_address is False


@pytest.mark.parametrize("spec", ["192.0.2.10", "2001:db8::25", "[2001:db8::25]", "::1"])
def test_addresses_are_recognised(spec: str) -> None:
    (target,) = parse_target(spec)
    assert target.is_address


def test_cidr_expands_to_hosts_without_network_and_broadcast() -> None:
    names = [t.name for t in parse_target("192.0.2.0/30")]
    assert names == ["192.0.2.1", "192.0.2.2"]
    assert [t.name for t in parse_target("192.0.2.7/32")] == ["192.0.2.7"]
    assert len(parse_target("2001:db8::/126")) == 3


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("192.0.2.300", "not a host name"),
        ("10.0.0.0/33", "not a valid CIDR"),
        ("10.0.0.0/8", "at most"),
        ("bad host!", "not a host name"),
        ("", "empty"),
    ],
)
def test_bad_targets_say_what_is_wrong(spec: str, words: str) -> None:
    with pytest.raises(TargetError, match=words):
        parse_target(spec)


def test_duplicates_are_checked_once() -> None:
    targets = parse_targets(["127.0.0.1", "127.0.0.0/31", "localhost", "LOCALHOST"])
    assert [t.name for t in targets] == ["127.0.0.1", "127.0.0.0", "localhost"]
