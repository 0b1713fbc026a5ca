"""What an audit probes from a source: planned flows first, then the unplanned ports."""

from __future__ import annotations

import pytest

from portcall.audit import Expected, select_targets
from portcall.topology import Plan, TopologyError


def _keys(plan: Plan, source: str, expected: Expected) -> set[tuple[str, int, str]]:
    return {
        (t.destination.name, t.port, t.transport)
        for t in select_targets(plan, source, {})
        if t.expected is expected
    }


def test_internet_probes_its_five_services_and_every_other_port_of_fe1(plan: Plan) -> None:
    allowed = _keys(plan, "internet", Expected.ALLOW)
    assert allowed == {("fe1", p, "tcp") for p in (25, 80, 443, 993, 995)}
    blocked = _keys(plan, "internet", Expected.BLOCK)
    assert ("fe1", 143, "tcp") in blocked and ("fe1", 6004, "tcp") in blocked
    assert ("fe1", 53, "udp") in blocked
    assert not allowed & blocked
    assert {name for name, _, _ in blocked} == {"fe1"}


def test_planned_targets_come_first_with_their_firewalls_and_reasons(plan: Plan) -> None:
    targets = select_targets(plan, "internet", {})
    first_block = next(i for i, t in enumerate(targets) if t.expected is Expected.BLOCK)
    assert all(t.expected is Expected.ALLOW for t in targets[:first_block])
    smtp = targets[0]
    assert (smtp.port, smtp.address, smtp.firewalls) == (25, "192.0.2.10", ("outer",))
    assert smtp.entry is not None and smtp.entry.key == "smtp"
    assert "rule 1" in smtp.reasons[0]
    unplanned = next(t for t in targets if t.port == 6004)
    assert unplanned.firewalls == ("outer",) and unplanned.entry is None
    assert unplanned.source.name == "internet" and unplanned.source.excluded


def test_a_host_is_the_source_of_its_zone_flows_too(plan: Plan) -> None:
    sources = {
        t.source.name for t in select_targets(plan, "mbx1", {}) if t.expected is Expected.ALLOW
    }
    assert sources == {"mbx1", "internal"}


def test_a_zone_destination_is_probed_at_its_sample_address(plan: Plan) -> None:
    bare = [t for t in select_targets(plan, "mbx1", {}) if t.destination.name == "internet"]
    assert bare and all(t.address is None for t in bare)
    sampled = select_targets(plan, "mbx1", {"internet": "198.51.100.10"})
    mail = next(t for t in sampled if t.destination.name == "internet" and t.port == 25)
    assert (mail.address, mail.expected, mail.firewalls) == (
        "198.51.100.10",
        Expected.ALLOW,
        ("inner", "outer"),
    )


def test_an_unknown_source_is_a_topology_error(plan: Plan) -> None:
    with pytest.raises(TopologyError, match="names no host or zone"):
        select_targets(plan, "nowhere", {})
