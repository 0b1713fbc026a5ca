"""A small topology in text, which each test bends one way."""

from __future__ import annotations

from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

BASE = """\
schema: portcall.topology/1
zones:
  internet: ["0.0.0.0/0"]
  dmz: ["192.0.2.0/24"]
  internal: ["10.1.0.0/16"]
firewalls:
  outer: [internet, dmz]
  inner: [dmz, internal]
hosts:
  fe1: {address: 192.0.2.10, zone: dmz, roles: [front-end]}
  mbx1: {address: 10.1.0.20, zone: internal, roles: [back-end]}
"""


@pytest.fixture
def write(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Write a topology file and give its path."""

    def _write(text: str, name: str = "site.yml") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return _write
