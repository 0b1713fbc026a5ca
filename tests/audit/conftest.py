"""The front-end example's plan, which most audit tests select from."""

from __future__ import annotations

from pathlib import Path

import pytest

from portcall.topology import Plan, build_plan, load_topology

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "frontend-perimeter.yml"


@pytest.fixture(scope="session")
def plan() -> Plan:
    return build_plan(load_topology(EXAMPLE))
