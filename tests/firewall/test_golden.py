"""Golden files: the exact text each emitter writes for the sample flows.

Set PORTCALL_UPDATE_GOLDEN=1 to rewrite them after a deliberate change, then read the diff.
"""

from __future__ import annotations

import os

import pytest

from portcall.firewall import TARGETS
from tests.firewall.emitted import CORE_TARGETS, GOLDEN, emitted, write


@pytest.mark.parametrize("target", CORE_TARGETS)
def test_output_matches_golden_files(target: str) -> None:
    artifacts = emitted(target)
    directory = GOLDEN / target
    if os.environ.get("PORTCALL_UPDATE_GOLDEN"):
        write(directory, artifacts)
    expected = sorted(str(p.relative_to(directory)) for p in directory.rglob("*") if p.is_file())
    assert sorted(a.name for a in artifacts) == expected
    for artifact in artifacts:
        golden = (directory / artifact.name).read_bytes().decode("utf-8")
        assert artifact.text == golden, f"{target}/{artifact.name} differs from its golden file"


def test_every_target_is_registered_once_with_an_emitter() -> None:
    assert set(TARGETS) == {
        "nftables",
        "iptables",
        "firewalld",
        "pf",
        "aws",
        "windows",
        "netsh-2003",
        "aerleon",
    }
    assert all(callable(t.emit) and t.summary for t in TARGETS.values())
