"""`portcall audit` end to end on loopback: exit codes, the JSON document, usage errors."""

from __future__ import annotations

import json
import socketserver
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from portcall.cli import main

TOPOLOGY = """\
schema: portcall.topology/1
zones:
  lab: ["127.0.0.0/8"]
hosts:
  srv: {{address: 127.0.0.1, zone: lab, roles: [back-end]}}
flows:
  - {{from: lab, to: srv, ports: [{port}], why: "the test's service"}}
"""


class _Quiet(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        """Accept and close: the audit only asks whether a connection opens."""


@pytest.fixture
def topology(tmp_path: Path) -> Iterator[Path]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Quiet)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    path = tmp_path / "lab.yml"
    path.write_text(TOPOLOGY.format(port=server.server_address[1]))
    try:
        yield path
    finally:
        server.shutdown()
        server.server_close()


def _run(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    return int(exited.value.code or 0)


def test_the_json_document_on_loopback(topology: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = _run(["audit", str(topology), "--from", "lab", "--json", "--timeout", "0.5"])
    document = json.loads(capsys.readouterr().out)
    assert code == 0 and document["schema"] == "portcall.audit/1"
    assert document["matches_plan"] is True and document["from"] == "lab"
    first = document["flows"][0]
    assert first["source"]["name"] == "lab" and first["source"]["addresses"] == ["127.0.0.0/8"]
    assert first["destination"] == {
        "name": "srv",
        "kind": "host",
        "zone": "lab",
        "addresses": ["127.0.0.1/32"],
        "probed": "127.0.0.1",
    }
    assert (first["expected"], first["observed"], first["status"]) == ("allow", "reachable", "ok")
    assert first["connection"] == "ok" and first["check"] is None
    assert first["reasons"] == ["rule 7 (flows, line 7): the test's service"]
    keys = {"source", "destination", "port", "transport", "expected", "observed", "status"}
    assert all(keys | {"check", "hint"} <= set(flow) for flow in document["flows"])
    blocked = [f for f in document["flows"] if f["expected"] == "block"]
    assert len(blocked) == 17 and {f["status"] for f in blocked} <= {"ok", "unverified"}


def test_a_planned_port_nobody_listens_on_passes_and_says_so(
    topology: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = topology.read_text()
    port = text.split("ports: [")[1].split("]")[0]
    down = tmp_path / "down.yml"
    down.write_text(
        text.replace(f"ports: [{port}]", "ports: [9]").replace("127.0.0.1", "127.255.255.254")
    )
    assert _run(["audit", str(down), "--from", "srv", "--timeout", "0.5"]) == 0
    out = capsys.readouterr().out
    assert "allowed and reachable (refused)" in out and "nothing listens" in out


def test_the_text_lines(topology: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(["audit", str(topology), "--from", "srv", "--timeout", "0.5"]) == 0
    out = capsys.readouterr().out
    assert "allowed and reachable (ok)" in out
    assert out.rstrip().endswith("the firewalls match the plan")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--from", "nowhere"], "names no host or zone"),
        (["--from", "lab", "--sample", "moon=10.0.0.1"], "'moon' is no zone"),
        (["--from", "lab", "--sample", "lab=10.0.0"], "is not an IP address"),
        ([], "Missing option '--from'"),
    ],
)
def test_usage_errors_exit_64(
    topology: Path, options: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(["audit", str(topology), *options]) == 64
    err = capsys.readouterr().err
    assert err.startswith("Error: ") and message in err and "Traceback" not in err


def test_a_bad_topology_exits_64(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("schema: portcall.topology/1\nzones: {}\n")
    assert _run(["audit", str(bad), "--from", "lab"]) == 64
    assert "bad.yml" in capsys.readouterr().err
