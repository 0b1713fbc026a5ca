"""`portcall demo`: every deliberate fault gets its verdict, and nothing else goes wrong."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from portcall.catalog import load_catalog
from portcall.cli import EXIT_FAILURES, main
from portcall.responders import demo
from portcall.verdicts import Verdict

PLANNED_FAULTS = {
    "imaps": ("ok", ["cert-expired"]),
    "pop3": ("no-starttls", []),
    "nntps": ("refused", []),
    "smtps": ("refused", []),
    "routing": ("wrong-protocol", []),
}


@pytest.fixture(scope="module")
def demo_json(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, dict[str, object], float]:
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path_factory.mktemp("xdg"))}
    began = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "portcall", "demo", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    elapsed = time.monotonic() - began
    assert done.stdout, done.stderr
    return done.returncode, json.loads(done.stdout), elapsed


def test_demo_sees_each_fault_with_the_planned_verdict(
    demo_json: tuple[int, dict[str, object], float],
) -> None:
    code, document, _ = demo_json
    rows = {row["key"]: row for row in document["ports"]}  # type: ignore[attr-defined]
    assert set(rows) == {entry.key for entry in load_catalog().entries}
    for key, (verdict, findings) in PLANNED_FAULTS.items():
        assert (rows[key]["verdict"], rows[key]["findings"]) == (verdict, findings), rows[key]
        assert rows[key]["fault"], key
    for key, row in rows.items():
        if key not in PLANNED_FAULTS:
            assert (row["verdict"], row["findings"], row["fault"]) == ("ok", [], None), row
    assert all(row["as_planned"] for row in rows.values())
    assert document["as_planned"] is True
    assert code == 0


def test_demo_reports_catalog_ports_and_names_what_answered(
    demo_json: tuple[int, dict[str, object], float],
) -> None:
    _, document, _ = demo_json
    check = document["check"]
    assert check["schema"] == "portcall.check/1"  # type: ignore[index]
    results = {r["key"]: r for r in check["results"]}  # type: ignore[index]
    catalog = load_catalog()
    for key, result in results.items():
        entry = catalog.by_key(key)
        assert entry is not None and result["port"] == entry.port
        assert result["details"]["probed_port"] != entry.port
        assert result["reason"].startswith(f"{entry.port} ")
    assert results["routing"]["protocol"] == "SMTP"
    assert results["smtp"]["product"].startswith("Microsoft Exchange 2003")
    expired = results["imaps"]["tls"]["certificate"]["not_after"]
    assert expired < check["started"]  # type: ignore[index]


def test_demo_logs_what_the_responders_saw(
    demo_json: tuple[int, dict[str, object], float],
) -> None:
    _, document, _ = demo_json
    connections = document["connections"]
    assert isinstance(connections, list)
    imaps = [c for c in connections if c["key"] == "imaps"]
    # Whether the client broke the handshake off or read the certificate on, each connection
    # to the expired row was logged, with a TLS version once the handshake went through.
    assert imaps
    assert all(c["tls"] or c["ended"].startswith("TLS handshake") for c in imaps), imaps
    endings = {c["ended"] for c in connections}
    assert endings <= {"the client closed", "the responder closed"} | {c["ended"] for c in imaps}, (
        endings
    )
    assert not [c for c in connections if c["key"] == "nntps"]
    routing = [c for c in connections if c["key"] == "routing"]
    assert routing and {c["protocol"] for c in routing} == {"smtp"}


def test_demo_is_quick(demo_json: tuple[int, dict[str, object], float]) -> None:
    _, _, elapsed = demo_json
    assert elapsed < 10.0


def test_demo_text_report_explains_each_fault(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["demo"])
    out = capsys.readouterr().out
    assert stopped.value.code == 0
    assert "IMAP4 over TLS (993) serves an expired computer certificate" in out
    assert "no-starttls, seen." in out
    last = out.rstrip("\n").splitlines()[-1]
    assert last.startswith(
        "Demo passed: the 4 planned faults were found, 465 closed as Exchange has it, and every "
        "other port is ok. It exits 0 because each port got the verdict planned for it"
    ), last
    assert "Demo healthy" not in out
    # The check's summary keeps telling the truth about the ports; the demo has the last word.
    summary = next(line for line in out.splitlines() if line.startswith("17 port checks"))
    assert summary.endswith("health: failures")
    assert out.index(summary) < out.index(last)
    assert "  993  ok" in out  # the plain table names the catalog port, not the probed one


def test_a_fault_that_is_not_seen_fails_the_demo(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = dict(demo.FAULTS)
    # Plan a refusal that the healthy SMTP responder will never give.
    wrong["smtp"] = demo.Planned(Verdict.REFUSED, broken="should be closed", shows="")
    monkeypatch.setattr(demo, "FAULTS", wrong)
    with pytest.raises(SystemExit) as stopped:
        main(["demo"])
    out = capsys.readouterr().out
    assert stopped.value.code == EXIT_FAILURES
    assert "SMTP (25) should be closed:" in out
    assert "refused, NOT seen (got ok)" in out
    assert "Demo FAILED" in out and "exits 2" in out


def test_a_planned_row_matches_its_verdict_and_exactly_its_findings(tmp_path: Path) -> None:
    from portcall.verdicts import Finding, FindingCode, Result

    plan = demo.FAULTS["imaps"]
    result = Result("127.0.0.1", 993, "imaps", Verdict.OK, "993 ok")
    assert not plan.matches(result)
    result.findings.append(Finding(FindingCode.CERT_EXPIRED, "expired"))
    assert plan.matches(result)
    result.findings.append(Finding(FindingCode.CERT_UNTRUSTED, "also"))
    assert not plan.matches(result)
