"""Loading a topology: what a valid file gives, and for each kind of mistake, an error that
names the file, the line and the field and says what is allowed."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from portcall.topology import TopologyError, load_topology, parse_topology
from tests.topology.conftest import BASE, EXAMPLES


def test_the_example_of_the_issue_loads_with_every_field() -> None:
    topology = load_topology(EXAMPLES / "frontend-perimeter.yml")
    assert topology.rpc_port == 6004
    assert topology.catalog.name == "exchange-2000"
    assert list(topology.zones) == ["internet", "dmz", "internal"]
    assert topology.zones["internet"].networks == (
        ipaddress.ip_network("0.0.0.0/0"),
        ipaddress.ip_network("::/0"),
    )
    assert topology.firewalls["inner"].zones == ("dmz", "internal")
    mbx1 = topology.hosts["mbx1"]
    assert (mbx1.zone, mbx1.roles, mbx1.routing_group, mbx1.master) == (
        "internal",
        ("back-end",),
        "rg1",
        True,
    )
    assert topology.clients[0].services == ("http", "https", "imaps", "pop3s", "smtp")
    assert topology.flows[0].ports == ((25, "tcp"),)
    assert topology.flows[0].why == "outbound mail"


def test_a_host_without_zone_gets_the_most_specific_zone_of_its_address() -> None:
    topology = parse_topology(BASE + "  dc1: {address: 10.1.0.5}\n")
    assert topology.hosts["dc1"].zone == "internal"


def test_catalog_path_is_relative_to_the_topology_file(write) -> None:  # type: ignore[no-untyped-def]
    builtin = Path(__file__).resolve().parents[2] / "src/portcall/catalog/exchange-2000.toml"
    text = builtin.read_text().replace('name = "exchange-2000"', 'name = "mine"')
    path = write(text, "mine.toml")
    topology_path = write(BASE.replace("zones:", "catalog: mine.toml\nzones:", 1))
    assert path.parent == topology_path.parent
    assert load_topology(topology_path).catalog.name == "mine"


def test_flows_take_ports_services_and_transport() -> None:
    text = BASE + (
        "flows:\n"
        "  - {from: internal, to: fe1, ports: [53, 123], transport: udp, services: [ldap]}\n"
    )
    stated = parse_topology(text).flows[0]
    assert stated.ports == ((53, "udp"), (123, "udp"))
    assert stated.services == ("ldap",)


def _error(text: str) -> TopologyError:
    with pytest.raises(TopologyError) as caught:
        parse_topology(text, "site.yml")
    return caught.value


HOSTS_LINE = BASE.count("\n")  # the line "  mbx1: ..." is the last of BASE


@pytest.mark.parametrize(
    ("text", "line", "field", "allowed"),
    [
        ("", 1, "file", "is empty"),
        ("schema: [unclosed\n", 2, "file", "not valid YAML"),
        ("- a list\n", 1, "file", "must be a mapping of the keys schema, catalog"),
        (BASE.replace("schema: portcall.topology/1\n", ""), 1, "schema", "missing"),
        (BASE.replace("topology/1", "topology/2"), 1, "schema", "must be portcall.topology/1"),
        (BASE + "colour: blue\n", HOSTS_LINE + 1, "colour", "unknown key; allowed: schema"),
        (BASE.replace("zones:", "zonez:"), 2, "zonez", "unknown key"),
        (BASE + "rpc-port: lots\n", HOSTS_LINE + 1, "rpc-port", "whole number from 1 to 65535"),
        (BASE + "rpc-port: 70000\n", HOSTS_LINE + 1, "rpc-port", "whole number from 1 to 65535"),
        (BASE + "rpc-port: true\n", HOSTS_LINE + 1, "rpc-port", "whole number"),
        (BASE.replace('["10.1.0.0/16"]', '"10.1.0.0/16"'), 5, "zones.internal", "must be a list"),
        (BASE.replace('["10.1.0.0/16"]', "[]"), 5, "zones.internal", "at least one network"),
        (BASE.replace("10.1.0.0/16", "10.1.0.0/33"), 5, "zones.internal[0]", "not an IPv4 or"),
        (BASE.replace("10.1.0.0/16", "10.1.0.1/16"), 5, "zones.internal[0]", "is 10.1.0.0/16"),
        (BASE.replace("10.1.0.0/16", "192.0.2.0/24"), 5, "zones.internal", "already in zone dmz"),
        (BASE.replace("  dmz:", "  'd m z':"), 4, "zones.d m z", "is not a name"),
        (BASE.replace("[dmz, internal]", "[dmz, lab]"), 8, "firewalls.inner", "'lab' is no zone"),
        (BASE.replace("[dmz, internal]", "[dmz]"), 8, "firewalls.inner", "the two zones"),
        (BASE.replace("[dmz, internal]", "[dmz, dmz]"), 8, "firewalls.inner", "the two zones"),
        (BASE.replace("roles: [back-end]", "roles: [mailbox]"), 11, "hosts.mbx1.roles",
         "'mailbox' is no role; roles: front-end, back-end"),
        (BASE.replace("10.1.0.20", "10.1.0.300"), 11, "hosts.mbx1.address", "not an IPv4"),
        (BASE.replace("10.1.0.20", "192.0.2.20"), 11, "hosts.mbx1.address",
         "192.0.2.20 lies in zone dmz, not in zone internal (10.1.0.0/16)"),
        (BASE.replace("address: 10.1.0.20, ", ""), 11, "hosts.mbx1.address", "missing"),
        (BASE.replace("zone: internal", "zone: lab"), 11, "hosts.mbx1.zone", "'lab' is no zone"),
        (BASE.replace("mbx1: {", "mbx1: {site: x, "), 11, "hosts.mbx1.site", "allowed: address"),
        (BASE.replace("roles: [back-end]", "roles: [back-end], master: yes-please"), 11,
         "hosts.mbx1.master", "true or false"),
        (BASE + "  mbx1: {address: 10.1.0.21}\n", HOSTS_LINE + 1, "hosts.mbx1", "appears twice"),
        (BASE + "  dmz: {address: 10.1.0.21}\n", HOSTS_LINE + 1, "hosts.dmz",
         "'dmz' already names a zone"),
        (BASE + "  back-end: {address: 10.1.0.21}\n", HOSTS_LINE + 1, "hosts.back-end",
         "'back-end' already names a role"),
        (BASE.replace("  internal:", "  srs:").replace("internal", "srs"), 5, "zones.srs",
         "'srs' already names a role"),
        (BASE + "clients:\n  - {from: outside, to: front-end, services: [https]}\n",
         HOSTS_LINE + 2, "clients[0].from", "'outside' names no zone, host or role"),
        (BASE + "clients:\n  - {from: internet, to: nobody, services: [https]}\n",
         HOSTS_LINE + 2, "clients[0].to", "names no zone, host or role"),
        (BASE + "clients:\n  - {to: fe1, services: [https]}\n",
         HOSTS_LINE + 2, "clients[0].from", "missing"),
        (BASE + "clients:\n  - {from: internet, to: fe1, services: [owa]}\n",
         HOSTS_LINE + 2, "clients[0].services", "'owa' is not in catalog exchange-2000"),
        (BASE + "clients:\n  - {from: internet, to: fe1}\n",
         HOSTS_LINE + 2, "clients[0].services", "missing"),
        (BASE + "clients:\n  - {from: internet, to: fe1, services: []}\n",
         HOSTS_LINE + 2, "clients[0].services", "must list a service"),
        (BASE + "clients: {from: internet}\n", HOSTS_LINE + 1, "clients", "must be a list"),
        (BASE + "flows:\n  - {from: mbx1, to: internet, ports: [0]}\n",
         HOSTS_LINE + 2, "flows[0].ports[0]", "from 1 to 65535"),
        (BASE + "flows:\n  - {from: mbx1, to: internet, ports: [25], transport: sctp}\n",
         HOSTS_LINE + 2, "flows[0].transport", "tcp or udp"),
        (BASE + "flows:\n  - {from: mbx1, to: internet, why: mail}\n",
         HOSTS_LINE + 2, "flows[0].ports", "give ports, services or both"),
        (BASE + "flows:\n  - {from: mbx1, to: internet, ports: [25], because: x}\n",
         HOSTS_LINE + 2, "flows[0].because", "unknown key"),
        (BASE + "flows:\n  - from: mbx1\n    to: nowhere\n    ports: [25]\n",
         HOSTS_LINE + 3, "flows[0].to", "names no zone, host or role"),
        (BASE.replace("zones:", "catalog: missing.toml\nzones:"), 2, "catalog",
         "must be exchange-2000 or a catalog file; cannot read catalog"),
    ],
)  # fmt: skip
def test_each_mistake_names_line_field_and_what_is_allowed(
    text: str, line: int, field: str, allowed: str
) -> None:
    error = _error(text)
    assert (error.origin, error.line, error.field) == ("site.yml", line, field)
    assert allowed in error.allowed
    assert str(error) == f"site.yml:{line}: {field}: {error.allowed}"


RG = BASE.replace("roles: [front-end]}", "roles: [front-end], routing-group: rg1}")


def test_a_routing_group_without_master_is_an_error() -> None:
    error = _error(RG)
    assert (error.line, error.field) == (10, "hosts.fe1.routing-group")
    assert "routing group rg1 has no master" in error.allowed


def test_a_routing_group_with_two_masters_is_an_error() -> None:
    text = RG.replace("routing-group: rg1}", "routing-group: rg1, master: true}").replace(
        "roles: [back-end]}", "roles: [back-end], routing-group: rg1, master: true}"
    )
    error = _error(text)
    assert (error.line, error.field) == (11, "hosts.mbx1.master")
    assert "already has master fe1" in error.allowed


def test_a_master_needs_a_routing_group_and_a_bridgehead_too() -> None:
    error = _error(BASE.replace("roles: [back-end]}", "roles: [back-end], master: true}"))
    assert (error.line, error.field) == (11, "hosts.mbx1.master")
    error = _error(BASE.replace("roles: [back-end]}", "roles: [bridgehead]}"))
    assert (error.line, error.field) == (11, "hosts.mbx1.routing-group")


def test_zones_that_nest_twice_are_refused() -> None:
    # internal holds 10.0.0.0/8 and 10.1.2.0/24, dmz the 10.1.0.0/16 between them
    text = BASE.replace('["10.1.0.0/16"]', '["10.0.0.0/8", "10.1.2.0/24"]')
    text = text.replace('  dmz: ["192.0.2.0/24"]', '  dmz: ["192.0.2.0/24", "10.1.0.0/16"]')
    error = _error(text)
    assert error.field == "zones.internal"
    assert "10.1.2.0/24 lies inside zone dmz's 10.1.0.0/16" in error.allowed


def test_an_unreadable_file_is_a_topology_error(tmp_path: Path) -> None:
    with pytest.raises(TopologyError) as caught:
        load_topology(tmp_path / "absent.yml")
    assert caught.value.field == "file"
    assert "cannot be read" in str(caught.value)
    binary = tmp_path / "binary.yml"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(TopologyError, match="UTF-8"):
        load_topology(binary)
