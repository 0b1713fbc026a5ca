"""The optional aerleon target: every flow handed to Aerleon comes back in each vendor's ACL,
and without Aerleon the command says how to install it (exit 64)."""

from __future__ import annotations

import sys
from typing import Any

import pytest

from portcall.cli.group import EXIT_USAGE
from portcall.firewall import Rule, aerleon, fold
from tests.firewall.conftest import EXAMPLES, Run
from tests.firewall.emitted import crossing


def test_cisco_and_juniper_acls_carry_every_flow() -> None:
    import aerleon as installed  # its absence fails this test: pip install aerleon

    assert installed.__name__ == "aerleon"

    flows = crossing("inner")
    artifacts = aerleon.emit("inner", flows)
    by_suffix = {a.name.rsplit(".", 1)[1]: a.text for a in artifacts}
    assert set(by_suffix) == {"acl", "jcl"}
    rules = fold(flows)
    for text in by_suffix.values():
        for index, rule in enumerate(rules, 1):
            assert aerleon.term_name(index, rule) in text
    cisco, juniper = by_suffix["acl"], by_suffix["jcl"]
    assert "permit udp host 192.0.2.10 host 10.1.0.5 eq 88" in cisco
    assert "range 6000 6019" in cisco
    assert "10.1.0.0/16 except;" in juniper  # the catch-all's exclusions reach the vendor
    assert "permit tcp any any established" in cisco


def test_a_flow_missing_from_the_output_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    policy = aerleon._policy

    def without_second_flow(name: str, rules: list[Rule]) -> dict[str, Any]:
        document = policy(name, rules)
        del document["filters"][0]["terms"][2]  # terms: replies, flow 1, flow 2, ...
        return document

    monkeypatch.setattr(aerleon, "_policy", without_second_flow)
    with pytest.raises(aerleon.AerleonDropped, match="lacks the flows pc2-"):
        aerleon.emit("inner", crossing("inner"))


def test_without_aerleon_the_target_says_how_to_install(
    monkeypatch: pytest.MonkeyPatch, portcall: Run
) -> None:
    monkeypatch.setitem(sys.modules, "aerleon", None)
    result = portcall("firewall", EXAMPLES / "frontend-perimeter.yml", "--target", "aerleon")
    assert result.code == EXIT_USAGE
    assert "pip install 'portcall[aerleon]'" in result.err
    assert "Traceback" not in result.err
