"""firewalld: a policy for the router's forwarded traffic, zone and service XML files, and the
equivalent `firewall-cmd --permanent` script.

The policy goes from any zone to any zone with target DROP, and each flow is a rich rule with
its source and destination addresses: firewalld tracks connections, so replies pass and
everything else is dropped. A catch-all side (``0.0.0.0/0`` less the more specific zones) is
"not in" an ipset of those zones' networks; another side that excludes networks is written as
the CIDRs left once they are cut out of it.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from portcall.firewall.base import (
    HEADER,
    STATEFUL,
    Artifact,
    Rule,
    Side,
    allowed_networks,
    fold,
    identifier,
    one_line,
    port_runs,
)
from portcall.topology.flows import EndKind, Flow, Network

#: Services firewalld does not ship, which the plan may need.
SERVICES = {
    ("119", "tcp"): ("portcall-nntp", "NNTP"),
    ("563", "tcp"): ("portcall-nntps", "NNTPS"),
}

#: ipset names are at most 31 characters.
IPSET_LIMIT = 31


@dataclass(frozen=True)
class Address:
    """A rich rule's source or destination: an address, or an ipset matched inverted."""

    element: str
    value: str
    invert: bool = False

    def xml(self, parent: ET.Element, tag: str) -> None:
        attributes = {self.element: self.value}
        if self.invert:
            attributes["invert"] = "True"
        ET.SubElement(parent, tag, attributes)

    def text(self, tag: str) -> str:
        return f'{tag}{" not" if self.invert else ""} {self.element}="{self.value}"'


#: One rich rule: family, source, destination (None for any), port or port range, transport.
Match = tuple[str, Address | None, Address | None, str, str]


def emit(firewall: str, flows: Sequence[Flow]) -> list[Artifact]:
    policy = f"portcall-{identifier(firewall)}"
    rules = fold(flows)
    artifacts = [Artifact(f"policies/{policy}.xml", _policy_xml(firewall, rules))]
    artifacts += _zones(flows)
    artifacts += [_ipset_xml(name, nets) for name, nets in _ipsets(rules).items()]
    artifacts += [_service_xml(port, t) for port, t in sorted(_services_used(rules))]
    artifacts.append(Artifact(f"{policy}.sh", _script(firewall, policy, rules)))
    return artifacts


def xml_comment(text: str) -> str:
    """Text an XML comment may hold: no "--" inside and no "-" at its end."""
    clean = one_line(text)
    while "--" in clean:
        clean = clean.replace("--", "- -")
    return f" {clean.rstrip('-')} "


def ipset_name(side: Side) -> str:
    """The ipset of the networks a catch-all side leaves out."""
    return f"portcall-{identifier(side.name)[:14]}-except-v{side.networks[0].version}"


def _addresses(side: Side) -> list[Address | None]:
    """A catch-all side is "not in the ipset of its exclusions", or any address at all; other
    sides are their networks, less any networks they exclude."""
    if side.is_any:
        return [Address("ipset", ipset_name(side), invert=True) if side.excluded else None]
    return [Address("address", str(n)) for n in allowed_networks(side)]


def _ipsets(rules: list[Rule]) -> dict[str, tuple[Network, ...]]:
    sides = (side for r in rules for side in (r.source, r.destination))
    return {ipset_name(s): s.excluded for s in sides if s.is_any and s.excluded}


def _matches(rule: Rule) -> Iterator[Match]:
    family = f"ipv{rule.family}"
    for source in _addresses(rule.source):
        for destination in _addresses(rule.destination):
            for low, high in port_runs(rule.ports):
                port = str(low) if low == high else f"{low}-{high}"
                yield family, source, destination, port, rule.transport


def _policy_xml(firewall: str, rules: list[Rule]) -> str:
    root = ET.Element("policy", target="DROP")
    ET.SubElement(root, "short").text = f"portcall {firewall}"
    ET.SubElement(root, "description").text = f"{HEADER} {STATEFUL}"
    ET.SubElement(root, "ingress-zone", name="ANY")
    ET.SubElement(root, "egress-zone", name="ANY")
    for rule in rules:
        root.append(ET.Comment(xml_comment(rule.reason)))
        for match in _matches(rule):
            root.append(_rich_rule(match))
    return _text(root)


def _rich_rule(match: Match) -> ET.Element:
    family, source, destination, port, transport = match
    rule = ET.Element("rule", family=family)
    if source:
        source.xml(rule, "source")
    if destination:
        destination.xml(rule, "destination")
    if (port, transport) in SERVICES:
        ET.SubElement(rule, "service", name=SERVICES[(port, transport)][0])
    else:
        ET.SubElement(rule, "port", port=str(port), protocol=transport)
    ET.SubElement(rule, "accept")
    return rule


def _zones(flows: Sequence[Flow]) -> list[Artifact]:
    zones = {
        end.name: end
        for flow in flows
        for end in (flow.source, flow.destination)
        if end.kind == EndKind.ZONE and all(n.prefixlen for n in end.networks)
    }
    artifacts = []
    for name, end in sorted(zones.items()):
        root = ET.Element("zone")
        ET.SubElement(root, "short").text = name
        ET.SubElement(root, "description").text = f"Zone {name} of the deployment. {HEADER}"
        for network in end.networks:
            ET.SubElement(root, "source", address=str(network))
        artifacts.append(Artifact(f"zones/{identifier(name)}.xml", _text(root)))
    return artifacts


def _services_used(rules: list[Rule]) -> set[tuple[str, str]]:
    used = {(m[3], m[4]) for r in rules for m in _matches(r)}
    return used & set(SERVICES)


def _service_xml(port: str, transport: str) -> Artifact:
    name, short = SERVICES[(port, transport)]
    root = ET.Element("service")
    ET.SubElement(root, "short").text = short
    ET.SubElement(
        root, "description"
    ).text = f"{short} ({port}/{transport}), which firewalld lacks."
    ET.SubElement(root, "port", protocol=transport, port=str(port))
    return Artifact(f"services/{name}.xml", _text(root))


def _ipset_xml(name: str, networks: tuple[Network, ...]) -> Artifact:
    root = ET.Element("ipset", type="hash:net")
    ET.SubElement(root, "short").text = name
    ET.SubElement(root, "description").text = "Networks of more specific zones: not this side."
    ET.SubElement(root, "option", name="family", value=_inet(networks))
    for network in networks:
        ET.SubElement(root, "entry").text = str(network)
    return Artifact(f"ipsets/{name}.xml", _text(root))


def _inet(networks: tuple[Network, ...]) -> str:
    return "inet" if networks[0].version == 4 else "inet6"


def _ipset_commands(rules: list[Rule]) -> list[str]:
    cmd = "firewall-cmd --permanent"
    lines = []
    for name, networks in _ipsets(rules).items():
        lines += [
            f"{cmd} --delete-ipset={name} >/dev/null 2>&1 || true",
            f"{cmd} --new-ipset={name} --type=hash:net --option=family={_inet(networks)}",
            *(f"{cmd} --ipset={name} --add-entry={n}" for n in networks),
        ]
    return lines


def _text(root: ET.Element) -> str:
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, "unicode") + "\n"


def _script(firewall: str, policy: str, rules: list[Rule]) -> str:
    cmd = "firewall-cmd --permanent"
    lines = [
        "#!/bin/sh",
        f"# {HEADER}",
        f"# Firewall {one_line(firewall)}. {STATEFUL}",
        "set -e",
        *_service_commands(rules),
        *_ipset_commands(rules),
        f"firewall-cmd --permanent --delete-policy={policy} >/dev/null 2>&1 || true",
        f"{cmd} --new-policy={policy}",
        f"{cmd} --policy={policy} --add-ingress-zone=ANY --add-egress-zone=ANY",
        f"{cmd} --policy={policy} --set-target=DROP",
    ]
    for rule in rules:
        lines.append(f"# {rule.reason}")
        lines += [
            f"{cmd} --policy={policy} --add-rich-rule='{_rich_text(m)}'" for m in _matches(rule)
        ]
    lines.append("firewall-cmd --reload")
    return "\n".join(lines) + "\n"


def _service_commands(rules: list[Rule]) -> list[str]:
    lines = []
    for port, transport in sorted(_services_used(rules)):
        name = SERVICES[(port, transport)][0]
        lines += [
            f"firewall-cmd --permanent --delete-service={name} >/dev/null 2>&1 || true",
            f"firewall-cmd --permanent --new-service={name}",
            f"firewall-cmd --permanent --service={name} --add-port={port}/{transport}",
        ]
    return lines


def _rich_text(match: Match) -> str:
    family, source, destination, port, transport = match
    parts = [f'rule family="{family}"']
    parts += [a.text(tag) for a, tag in ((source, "source"), (destination, "destination")) if a]
    if (port, transport) in SERVICES:
        parts.append(f'service name="{SERVICES[(port, transport)][0]}"')
    else:
        parts.append(f'port port="{port}" protocol="{transport}"')
    return " ".join([*parts, "accept"])
