"""`portcall plan` as a user meets it: formats, the output file, errors with exit 64 and no
traceback, and a run that needs no network and well under a second."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from portcall import cli
from portcall.cli.group import EXIT_USAGE
from tests.topology.conftest import BASE, EXAMPLES

FRONTEND = str(EXAMPLES / "frontend-perimeter.yml")


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        cli.main(["plan", *args])
        code = 0
    except SystemExit as stop:
        code = int(stop.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_the_default_is_the_table_plain_when_piped(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run([FRONTEND], capsys)
    assert (code, err) == (0, "")
    assert out.splitlines()[0] == "fe1 (192.0.2.10) -> dc1 (10.1.0.5)  53/tcp  firewalls: inner"
    assert out.endswith("51 flows to allow; through each firewall: outer 6, inner 25; 0 warnings\n")


def test_json_flag_and_format_json_are_the_same(capsys: pytest.CaptureFixture[str]) -> None:
    _, by_flag, _ = run([FRONTEND, "--json"], capsys)
    _, by_format, _ = run([FRONTEND, "--format", "json"], capsys)
    assert by_flag == by_format
    document = json.loads(by_flag)
    assert document["schema"] == "portcall.plan/1"
    assert len(document["flows"]) == 51


@pytest.mark.parametrize(("fmt", "start"), [("dot", "digraph plan {"), ("mermaid", "flowchart LR")])
def test_graph_formats(fmt: str, start: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run([FRONTEND, "--format", fmt], capsys)
    assert code == 0
    assert out.startswith(start + "\n")


def test_output_file_gets_what_the_screen_would(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, screen, _ = run([FRONTEND, "--format", "mermaid"], capsys)
    target = tmp_path / "plan.mmd"
    code, out, _ = run([FRONTEND, "--format", "mermaid", "-o", str(target)], capsys)
    assert (code, out) == (0, "")
    assert target.read_text() == screen
    table = tmp_path / "plan.txt"
    run([FRONTEND, "-o", str(table)], capsys)
    assert table.read_text().count(" -> ") == 51


def test_a_bad_topology_is_one_error_line_with_exit_64(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "site.yml"
    path.write_text(BASE.replace("roles: [back-end]", "roles: [mailbox]"))
    code, out, err = run([str(path)], capsys)
    assert (code, out) == (EXIT_USAGE, "")
    first, hint = err.splitlines()
    assert first == (
        f"Error: {path}:11: hosts.mbx1.roles: 'mailbox' is no role; roles: front-end, back-end, "
        "bridgehead, domain-controller, global-catalog, srs, exchange-5.5"
    )
    assert hint.startswith("Hint: ")
    assert "Traceback" not in err


def test_a_missing_file_and_two_formats_are_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run([str(tmp_path / "absent.yml")], capsys)
    assert code == EXIT_USAGE
    assert err.startswith(f"Error: {tmp_path / 'absent.yml'}: file: cannot be read")
    code, _, err = run([FRONTEND, "--json", "--format", "dot"], capsys)
    assert code == EXIT_USAGE
    assert "--json and --format dot ask for two formats" in err


def test_planning_opens_no_socket(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("plan must not touch the network")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    started = time.perf_counter()
    code, out, _ = run([FRONTEND, "--json"], capsys)
    elapsed = time.perf_counter() - started
    assert code == 0 and json.loads(out)["flows"]
    assert elapsed < 0.5


def test_the_installed_command_runs_end_to_end() -> None:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "portcall", "plan", "examples/routing-groups.yml"],
        cwd=EXAMPLES.parent,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    elapsed = time.perf_counter() - started
    assert done.returncode == 0, done.stderr
    assert done.stdout.count(" -> ") == 95
    assert "Warning: rpc-port is not set" in done.stdout
    assert elapsed < 5  # about 0.3 s alone; bounded loosely on a busy machine


def test_the_docs_show_the_example_and_lines_of_its_real_plan(
    capsys: pytest.CaptureFixture[str],
) -> None:
    docs = (EXAMPLES.parent / "README.md").read_text(encoding="utf-8")
    docs = docs.split("## From topology to firewall", 1)[1]
    shown_yaml = docs.split("```yaml\n", 1)[1].split("```", 1)[0]
    assert yaml.safe_load(shown_yaml) == yaml.safe_load(Path(FRONTEND).read_text())
    shown_plan = docs.split("```text\n", 1)[1].split("```", 1)[0].splitlines()
    _, out, _ = run([FRONTEND], capsys)
    real = out.splitlines()
    for line in shown_plan:
        assert line in real
