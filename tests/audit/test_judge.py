"""Expected against observed: the four lines, the refused subtlety, what cannot be judged."""

from __future__ import annotations

import dataclasses

import pytest

from portcall.audit import Expected, Observed, Status, Target, matches_plan, select_targets
from portcall.audit.judge import Probed, judge, unprobed
from portcall.topology import Plan
from portcall.verdicts import Verdict


@pytest.fixture
def planned(plan: Plan) -> Target:
    """internet -> fe1 on 25/tcp, through outer."""
    return select_targets(plan, "internet", {})[0]


@pytest.fixture
def unplanned(plan: Plan) -> Target:
    """internet -> fe1 on 143/tcp, which no rule allows."""
    return next(t for t in select_targets(plan, "internet", {}) if t.port == 143)


@pytest.mark.parametrize(
    ("which", "verdict", "observed", "status", "summary"),
    [
        ("planned", Verdict.OK, Observed.REACHABLE, Status.OK, "allowed and reachable"),
        ("planned", Verdict.FILTERED, Observed.BLOCKED, Status.DRIFT, "allowed but blocked"),
        ("planned", Verdict.UNREACHABLE, Observed.BLOCKED, Status.DRIFT, "allowed but blocked"),
        ("unplanned", Verdict.FILTERED, Observed.BLOCKED, Status.OK, "blocked as planned"),
        (
            "unplanned",
            Verdict.OK,
            Observed.REACHABLE,
            Status.DRIFT,
            "reachable but should be blocked",
        ),
        (
            "unplanned",
            Verdict.REFUSED,
            Observed.REACHABLE,
            Status.DRIFT,
            "reachable but should be blocked",
        ),
        (
            "unplanned",
            Verdict.WRONG_PROTOCOL,
            Observed.REACHABLE,
            Status.DRIFT,
            "reachable but should be blocked",
        ),
    ],
)
def test_the_four_lines(
    request: pytest.FixtureRequest,
    which: str,
    verdict: Verdict,
    observed: Observed,
    status: Status,
    summary: str,
) -> None:
    target: Target = request.getfixturevalue(which)
    line = judge(target, Probed(verdict, "why"))
    assert (line.observed, line.status, line.summary) == (observed, status, summary)


def test_a_blocked_planned_flow_names_the_firewall_and_the_rule(planned: Target) -> None:
    line = judge(planned, Probed(Verdict.FILTERED, "no answer"))
    assert "firewall outer" in line.hint and "25/tcp" in line.hint and "rule 1" in line.hint


def test_an_open_unplanned_port_names_the_firewall(unplanned: Target) -> None:
    line = judge(unplanned, Probed(Verdict.OK, "connected"))
    assert "firewall outer lets 143/tcp" in line.hint and "refused" not in line.hint


def test_a_refusal_past_the_firewall_says_where_it_came_from(unplanned: Target) -> None:
    line = judge(unplanned, Probed(Verdict.REFUSED, "refused"))
    assert "came from the host" in line.hint and "TCP reset" in line.hint


def test_a_planned_port_nobody_listens_on_passes_the_firewall(planned: Target) -> None:
    line = judge(planned, Probed(Verdict.REFUSED, "refused", Verdict.REFUSED))
    assert line.status is Status.OK and "host refused it (refused)" in line.hint


def test_a_wrong_service_behind_an_open_firewall_is_named(planned: Target) -> None:
    line = judge(planned, Probed(Verdict.WRONG_PROTOCOL, "HTTP answered", Verdict.WRONG_PROTOCOL))
    assert line.status is Status.OK and line.check is Verdict.WRONG_PROTOCOL
    assert "HTTP answered" in line.hint


def test_no_firewall_between_them_cannot_drift_by_being_open(plan: Plan) -> None:
    same_zone = next(
        t for t in select_targets(plan, "mbx1", {}) if t.destination.name == "dc1" and t.port == 25
    )
    assert same_zone.expected is Expected.BLOCK and same_zone.firewalls == ()
    line = judge(same_zone, Probed(Verdict.REFUSED, "refused"))
    assert line.status is Status.UNVERIFIED and "host's own firewall" in line.hint
    assert matches_plan([line])


def test_udp_without_a_catalog_row_and_unsampled_zones_are_not_probed(
    plan: Plan, planned: Target
) -> None:
    udp = dataclasses.replace(planned, transport="udp", entry=None)
    assert "no 25/udp request" in (unprobed(udp) or "")
    zone = next(t for t in select_targets(plan, "mbx1", {}) if t.destination.name == "internet")
    assert "--sample internet=ADDR" in (unprobed(zone) or "")
    assert unprobed(planned) is None
    line = judge(udp, Probed(None, "no request"))
    assert (line.observed, line.status) == (Observed.UNVERIFIED, Status.UNVERIFIED)


def test_one_drift_fails_the_plan(planned: Target, unplanned: Target) -> None:
    fine = [judge(planned, Probed(Verdict.OK, "")), judge(unplanned, Probed(Verdict.FILTERED, ""))]
    assert matches_plan(fine)
    assert not matches_plan([*fine, judge(unplanned, Probed(Verdict.OK, ""))])


def test_udp_flows_to_a_dc_are_probed_with_the_dc_catalogs_requests(plan: Plan) -> None:
    """DNS, Kerberos and the LDAP ping over UDP: the windows-dc catalog's rows speak to them."""
    targets = select_targets(plan, "mbx1", {})
    udp = [t for t in targets if t.transport == "udp" and t.address is not None]
    assert udp, "the example plan has UDP flows to its domain controller"
    for target in udp:
        assert target.entry is not None, target
        assert (target.entry.port, target.entry.transport) == (target.port, "udp")
        assert target.entry.protocol in {"dns", "kerberos", "cldap", "kpasswd", "ntp"}
        assert unprobed(target) is None
