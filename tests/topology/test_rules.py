"""Each of the seven rules on a small topology, with exactly the flows it must give."""

from __future__ import annotations

import pytest

from portcall.topology import Plan, TopologyError, build_plan, parse_topology
from portcall.topology.rules import RPC_WARNING
from tests.topology.conftest import BASE

Row = tuple[str, str, int, str, tuple[str, ...]]


def plan_of(text: str) -> Plan:
    return build_plan(parse_topology(text, "site.yml"))


def rows(plan: Plan) -> set[Row]:
    return {
        (f.source.name, f.destination.name, f.port, f.transport, f.firewalls) for f in plan.flows
    }


def reasons(plan: Plan, source: str, destination: str, port: int) -> tuple[str, ...]:
    (flow,) = [
        f
        for f in plan.flows
        if (f.source.name, f.destination.name, f.port) == (source, destination, port)
    ]
    return flow.reasons


def test_no_rule_applies_to_a_bare_topology() -> None:
    plan = plan_of(BASE)
    assert plan.flows == ()
    assert plan.warnings == ()


def test_rule_1_clients_reach_every_host_of_the_role_on_the_listed_services() -> None:
    text = BASE + (
        "  fe2: {address: 192.0.2.11, roles: [front-end]}\n"
        "clients:\n"
        "  - {from: internet, to: front-end, services: [https, imaps]}\n"
    )
    plan = plan_of(text)
    assert rows(plan) >= {
        ("internet", "fe1", 443, "tcp", ("outer",)),
        ("internet", "fe1", 993, "tcp", ("outer",)),
        ("internet", "fe2", 443, "tcp", ("outer",)),
        ("internet", "fe2", 993, "tcp", ("outer",)),
    }
    assert {r for r in rows(plan) if r[0] == "internet"} == {
        ("internet", "fe1", 443, "tcp", ("outer",)),
        ("internet", "fe1", 993, "tcp", ("outer",)),
        ("internet", "fe2", 443, "tcp", ("outer",)),
        ("internet", "fe2", 993, "tcp", ("outer",)),
    }
    assert reasons(plan, "internet", "fe1", 993) == (
        "rule 1 (clients, line 14): internet may reach front-end on IMAP4 over TLS (993), "
        "catalog row imaps",
    )
    (flow,) = [f for f in plan.flows if (f.destination.name, f.port) == ("fe1", 443)]
    assert flow.service == "https"


def test_rule_2_front_end_relays_each_offered_service_to_every_back_end_without_tls() -> None:
    text = BASE + (
        "  mbx2: {address: 10.1.0.21, roles: [back-end]}\n"
        "clients:\n"
        "  - {from: internet, to: front-end, services: [http, https, imap, imaps, pop3s]}\n"
        "  - {from: internet, to: fe1, services: [nntps, smtp, ldaps]}\n"
    )
    plan = plan_of(text)
    relayed = {r for r in rows(plan) if r[0] == "fe1"}
    expected = {
        ("fe1", back, port, "tcp", ("inner",))
        for back in ("mbx1", "mbx2")
        for port in (80, 143, 110, 119, 25)
    }
    assert relayed == expected
    assert reasons(plan, "fe1", "mbx1", 80) == (
        "rule 2 (front-end to back-end): fe1 relays HTTP (80) to the back-end on HTTP (80), "
        "catalog row http, without TLS",
        "rule 2 (front-end to back-end): fe1 relays HTTP over TLS (443) to the back-end on "
        "HTTP (80), catalog row http, without TLS",
    )


def test_rule_2_offers_nothing_a_client_rule_does_not_offer() -> None:
    plan = plan_of(BASE + "clients:\n  - {from: internet, to: mbx1, services: [imap]}\n")
    assert {r[0] for r in rows(plan)} == {"internet"}


DCS = BASE + (
    "  dc1: {address: 10.1.0.5, roles: [domain-controller, global-catalog]}\n"
    "  dc2: {address: 10.1.0.6, roles: [domain-controller]}\n"
    "  gc3: {address: 10.1.0.7, roles: [global-catalog]}\n"
)
DC_PORTS = {(53, "tcp"), (53, "udp"), (88, "tcp"), (88, "udp"), (389, "tcp"), (389, "udp"),
            (135, "tcp"), (445, "tcp")}  # fmt: skip


def _rule_3_expected(rpc: set[tuple[int, str]]) -> set[Row]:
    expected: set[Row] = set()
    for server, path in (("fe1", ("inner",)), ("mbx1", ())):
        for dc in ("dc1", "dc2"):
            expected |= {(server, dc, p, t, path) for p, t in DC_PORTS | rpc}
        for gc in ("dc1", "gc3"):
            expected.add((server, gc, 3268, "tcp", path))
    return expected


def test_rule_3_exchange_servers_reach_dcs_and_gcs_and_warn_without_rpc_port() -> None:
    plan = plan_of(DCS)
    assert rows(plan) == _rule_3_expected(set())
    assert plan.warnings == (RPC_WARNING,)
    assert reasons(plan, "mbx1", "gc3", 3268) == (
        "rule 3 (Exchange server to global catalog): Global Catalog: LDAP (3268), catalog row gc",
    )
    kerberos = [f for f in plan.flows if (f.destination.name, f.port) == ("dc2", 88)]
    assert {f.transport for f in kerberos} == {"tcp", "udp"}


def test_rule_3_with_rpc_port_adds_it_and_does_not_warn() -> None:
    plan = plan_of(DCS.replace("zones:", "rpc-port: 6004\nzones:", 1))
    assert rows(plan) == _rule_3_expected({(6004, "tcp")})
    assert plan.warnings == ()


def test_rule_3_ignores_hosts_that_are_no_exchange_server() -> None:
    text = DCS.replace("roles: [front-end]", "roles: [srs]").replace(
        "roles: [back-end]", "roles: [exchange-5.5]"
    )
    plan = plan_of(text)
    assert {r for r in rows(plan) if r[1] in ("dc1", "dc2", "gc3")} == set()


RG = BASE.replace("roles: [front-end]}", "roles: [front-end], routing-group: rg1}").replace(
    "roles: [back-end]}", "roles: [back-end], routing-group: rg1, master: true}"
) + ("  mbx2: {address: 10.1.0.21, roles: [back-end], routing-group: rg1}\n")


def test_rule_4_every_member_reaches_its_master_on_691() -> None:
    plan = plan_of(RG)
    assert rows(plan) == {
        ("fe1", "mbx1", 691, "tcp", ("inner",)),
        ("mbx2", "mbx1", 691, "tcp", ()),
    }
    assert reasons(plan, "mbx2", "mbx1", 691) == (
        "rule 4 (routing group rg1): member to master, Exchange routing (691), catalog row routing",
    )


TWO_GROUPS = BASE.replace(
    "roles: [front-end]}", "roles: [bridgehead], routing-group: east, master: true}"
).replace("roles: [back-end]}", "roles: [bridgehead], routing-group: west, master: true}") + (
    "  mbx2: {address: 10.1.0.21, roles: [back-end], routing-group: west}\n"
    "  bh3: {address: 10.1.0.22, roles: [bridgehead], routing-group: west}\n"
)


def test_rule_5_bridgeheads_of_different_groups_reach_each_other_both_ways_on_25() -> None:
    smtp = {r for r in rows(plan_of(TWO_GROUPS)) if r[2] == 25}
    assert smtp == {
        ("fe1", "mbx1", 25, "tcp", ("inner",)),
        ("mbx1", "fe1", 25, "tcp", ("inner",)),
        ("fe1", "bh3", 25, "tcp", ("inner",)),
        ("bh3", "fe1", 25, "tcp", ("inner",)),
    }


def test_rule_6_exchange_55_reaches_srs_on_379() -> None:
    text = (
        BASE.replace("roles: [front-end]", "roles: [exchange-5.5]").replace(
            "roles: [back-end]", "roles: [srs]"
        )
        + "  old2: {address: 10.1.0.30, roles: [exchange-5.5]}\n"
    )
    assert rows(plan_of(text)) == {
        ("fe1", "mbx1", 379, "tcp", ("inner",)),
        ("old2", "mbx1", 379, "tcp", ()),
    }


def test_rule_7_flows_are_taken_as_given_with_their_reason() -> None:
    text = BASE + (
        "flows:\n"
        "  - {from: back-end, to: internet, ports: [25, 587], why: outbound mail}\n"
        "  - {from: internal, to: fe1, ports: [123], transport: udp}\n"
        "  - {from: fe1, to: dmz, services: [ldap]}\n"
    )
    plan = plan_of(text)
    assert rows(plan) == {
        ("mbx1", "internet", 25, "tcp", ("inner", "outer")),
        ("mbx1", "internet", 587, "tcp", ("inner", "outer")),
        ("internal", "fe1", 123, "udp", ("inner",)),
        ("fe1", "dmz", 389, "tcp", ()),
    }
    assert reasons(plan, "mbx1", "internet", 25) == ("rule 7 (flows, line 13): outbound mail",)
    assert reasons(plan, "internal", "fe1", 123) == ("rule 7 (flows, line 14): stated by hand",)


def test_identical_flows_from_several_rules_merge_and_keep_every_reason() -> None:
    text = RG + (
        "clients:\n  - {from: dmz, to: mbx1, services: [routing]}\n"
        "flows:\n  - {from: front-end, to: back-end, ports: [691], why: link state}\n"
    )
    plan = plan_of(text)
    assert [f.key for f in plan.flows].count(("fe1", "mbx1", 691, "tcp")) == 1
    assert reasons(plan, "fe1", "mbx1", 691) == (
        "rule 4 (routing group rg1): member to master, Exchange routing (691), catalog row routing",
        "rule 7 (flows, line 16): link state",
    )
    zone_flow = reasons(plan, "dmz", "mbx1", 691)
    assert zone_flow == (
        "rule 1 (clients, line 14): dmz may reach mbx1 on Exchange routing (691), "
        "catalog row routing",
    )


def test_a_host_never_gets_a_flow_to_itself() -> None:
    text = BASE.replace("roles: [back-end]", "roles: [back-end, front-end]") + (
        "clients:\n  - {from: internal, to: front-end, services: [imap]}\n"
    )
    assert ("mbx1", "mbx1", 143, "tcp", ()) not in rows(plan_of(text))
    assert ("fe1", "mbx1", 143, "tcp", ("inner",)) in rows(plan_of(text))


def test_a_zone_may_reach_itself_without_crossing_a_firewall() -> None:
    plan = plan_of(BASE + "flows:\n  - {from: internal, to: internal, ports: [445]}\n")
    assert rows(plan) == {("internal", "internal", 445, "tcp", ())}


def test_a_role_no_host_has_is_a_warning_and_adds_nothing() -> None:
    plan = plan_of(BASE + "clients:\n  - {from: internet, to: srs, services: [srs]}\n")
    assert plan.flows == ()
    assert plan.warnings == ("clients[0] (line 13): no host has role srs",)


def test_a_flow_between_zones_no_firewall_joins_is_an_error_at_its_line() -> None:
    text = BASE.replace("  inner: [dmz, internal]\n", "") + (
        "flows:\n  - {from: fe1, to: mbx1, ports: [25]}\n"
    )
    with pytest.raises(TopologyError) as caught:
        plan_of(text)
    assert (caught.value.line, caught.value.field) == (12, "flows[0]")
    assert "no firewall path joins zone dmz to zone internal" in caught.value.allowed
