"""AWS: security groups as JSON for the EC2 API, ingress by port and source CIDR.

Security groups only allow, so a catch-all source is written as the CIDRs left once the more
specific zones' networks are cut out of it. Groups are stateful: replies return on their own,
and everything no group allows is dropped. One group per destination (a zone or a host):
attach it to the instances the destination names.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from portcall.firewall.base import (
    HEADER,
    STATEFUL,
    Artifact,
    Rule,
    allowed_networks,
    fold,
    port_runs,
)
from portcall.topology.flows import Flow

#: EC2 accepts these characters, at most 255 of them, in a description.
_DISALLOWED = re.compile(r"[^A-Za-z0-9 ._\-:/()#,@\[\]+=&;{}!$*]")
DESCRIPTION_LIMIT = 255


def description(text: str) -> str:
    """`text` as EC2 accepts it: the characters it forbids (quotes among them) dropped."""
    return " ".join(_DISALLOWED.sub("", text.replace("->", "to")).split())[:DESCRIPTION_LIMIT]


def emit(firewall: str, flows: Sequence[Flow]) -> list[Artifact]:
    groups: dict[str, list[Rule]] = {}
    for rule in fold(flows):
        groups.setdefault(rule.destination.name, []).append(rule)
    document = {
        "Comment": f"{HEADER} Firewall {firewall}. {STATEFUL}",
        "SecurityGroups": [_group(firewall, name, rules) for name, rules in groups.items()],
    }
    return [Artifact(f"{firewall}.aws.json", json.dumps(document, indent=2) + "\n")]


def _group(firewall: str, destination: str, rules: list[Rule]) -> dict[str, Any]:
    return {
        "GroupName": f"portcall-{firewall}-{destination}",
        "Description": description(f"Inbound to {destination} across {firewall}"),
        "AttachTo": destination,
        "IpPermissions": [p for rule in rules for p in _permissions(rule)],
    }


def _permissions(rule: Rule) -> list[dict[str, Any]]:
    why = description(rule.reason)
    key, cidr = ("IpRanges", "CidrIp") if rule.family == 4 else ("Ipv6Ranges", "CidrIpv6")
    ranges = [{cidr: str(n), "Description": why} for n in allowed_networks(rule.source)]
    return [
        {"IpProtocol": rule.transport, "FromPort": low, "ToPort": high, key: ranges}
        for low, high in port_runs(rule.ports)
    ]
