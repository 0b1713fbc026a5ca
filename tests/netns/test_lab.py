"""The lab itself: routes through the firewall graph, and nothing left behind."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from portcall.topology import build_plan, load_topology
from tests.netns.lab import Lab, leftovers

TOPOLOGY = Path(__file__).resolve().parents[2] / "examples" / "frontend-perimeter.yml"


def test_hosts_route_through_the_routers_and_close_removes_everything(tmp_path: Path) -> None:
    plan = build_plan(load_topology(TOPOLOGY))
    lab = Lab(plan, {"client1": ("internet", "198.51.100.10/24")}, tmp_path).build()
    try:
        assert set(lab.routers) == {"outer", "inner"}
        route = lab.exec("client1", "ip", "route", "get", "10.1.0.20").stdout
        assert f"via {lab.routers['outer'].legs['internet'].ip}" in route
        route = lab.exec("outer", "ip", "route", "get", "10.1.0.20").stdout
        assert f"via {lab.routers['inner'].legs['dmz'].ip}" in route
        # Nothing listens yet: a refusal is the host itself answering, two routers away.
        connect = "import socket; socket.create_connection(('10.1.0.20', 9), timeout=2)"
        done = lab.exec("client1", sys.executable, "-c", connect)
        assert "ConnectionRefusedError" in done.stderr
        assert len(leftovers(lab.prefix)) == len(lab.namespaces()) == 8
    finally:
        lab.close()
    assert leftovers(lab.prefix) == []


def test_a_build_that_fails_half_way_leaves_nothing(tmp_path: Path) -> None:
    plan = build_plan(load_topology(TOPOLOGY))
    # A client named like a host: its namespace exists already when the lab reaches it.
    lab = Lab(plan, {"fe1": ("internet", "198.51.100.10/24")}, tmp_path)
    try:
        with pytest.raises(RuntimeError, match="fe1"):
            lab.build()
    finally:
        built = leftovers(lab.prefix)
        lab.close()
    assert built == []
