"""`portcall history` and `portcall diff` through the real command line (in this process):
their output, JSON documents and exit codes."""

from __future__ import annotations

import json
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from portcall.cli import EXIT_USAGE, main
from portcall.history.store import Store
from portcall.verdicts import Verdict
from tests.history.documents import HOST, START, document, result

OTHER = "other.example.test"


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """The exit code (0 when main returns), stdout and stderr."""
    try:
        main(args)
        code: object = 0
    except SystemExit as stopped:
        code = stopped.code
    out, err = capsys.readouterr()
    return (code if isinstance(code, int) else -1), out, err


def saved(db: Path, *runs: tuple[str, Verdict]) -> None:
    """One run per (host, verdict of its SMTP port), an hour apart."""
    with Store(db) as store:
        for hour, (host, verdict) in enumerate(runs):
            results = [result(25, "smtp", verdict, host=host), result(110, "pop3", host=host)]
            store.save(document(results, at=START + timedelta(hours=hour)))


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "history.sqlite3"
    saved(
        path,
        (HOST, Verdict.OK),  # 1
        (OTHER, Verdict.OK),  # 2
        (HOST, Verdict.REFUSED),  # 3
        (OTHER, Verdict.OK),  # 4
    )
    return path


def test_history_lists_runs_newest_first(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["history", "--db", str(db), "--limit", "3"], capsys)
    lines = out.splitlines()
    assert code == 0
    assert lines[0].split() == [
        "ID",
        "STARTED",
        "FINISHED",
        "SOURCE",
        "CATALOG",
        "HEALTH",
        "TARGETS",
        "VERDICTS",
    ]
    assert [line.split()[0] for line in lines[1:]] == ["4", "3", "2"]
    assert "2026-01-05T11:00:00" in lines[2] and HOST in lines[2]
    assert lines[2].endswith("ok 1, refused 1")


def test_history_json(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["history", "--db", str(db), "--json"], capsys)
    listing = json.loads(out)
    assert code == 0 and listing["schema"] == "portcall.history/1"
    assert [run["id"] for run in listing["runs"]] == [4, 3, 2, 1]
    assert listing["runs"][1]["targets"] == [HOST]
    assert listing["runs"][1]["counts"] == {"ok": 1, "refused": 1}
    assert listing["runs"][1]["source"] == "check"


def test_history_of_a_missing_database_creates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "none.sqlite3"
    code, out, _ = run_cli(["history", "--db", str(missing)], capsys)
    assert code == 0 and out.startswith("No runs recorded in")
    assert not missing.exists()


def test_diff_defaults_to_the_newest_run_and_its_own_previous(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli(["diff", "--db", str(db)], capsys)
    assert code == 0  # run 4 against run 2 (same host), not against run 3
    assert out.startswith("run 2 (2026-01-05T10:00:00) -> run 4") and "no changes" in out


def test_diff_of_one_run_compares_it_with_the_run_before_it(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli(["diff", "3", "--db", str(db)], capsys)
    assert code == 1
    assert out.splitlines() == [
        "run 1 (2026-01-05T09:00:00) -> run 3 (2026-01-05T11:00:00): 1 change",
        f"{HOST} 25 (smtp) verdict: ok -> refused",
    ]


def test_diff_of_two_runs_json(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["diff", "2", "3", "--db", str(db), "--json"], capsys)
    report = json.loads(out)
    assert code == 1
    assert report["schema"] == "portcall.diff/1" and report["changed"] is True
    assert (report["old"]["id"], report["new"]["id"]) == (2, 3)
    assert [(c["host"], c["port"], c["kind"]) for c in report["changes"]] == [
        (HOST, 25, "appeared"),
        (HOST, 110, "appeared"),
        (OTHER, 25, "disappeared"),
        (OTHER, 110, "disappeared"),
    ]


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["9"], "no run 9 in"),
        (["1", "9"], "no run 9 in"),
        (["1"], "run 1 is the first recorded run of its targets"),
        (["0"], "0 is not in the range"),
        (["x"], "'x' is not a valid integer"),
    ],
)
def test_diff_bad_input_is_a_usage_error(
    db: Path, capsys: pytest.CaptureFixture[str], args: list[str], said: str
) -> None:
    code, out, err = run_cli(["diff", *args, "--db", str(db)], capsys)
    assert code == EXIT_USAGE and out == ""
    assert err.startswith("Error: ") and said in err and "\nHint: " in err


def test_diff_with_fewer_than_two_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "h.sqlite3"
    code, _, err = run_cli(["diff", "--db", str(db)], capsys)
    assert code == EXIT_USAGE and "no history database at" in err and not db.exists()
    Store(db).close()
    code, _, err = run_cli(["diff", "--db", str(db)], capsys)
    assert code == EXIT_USAGE and "no runs recorded" in err
    saved(db, (HOST, Verdict.OK))
    code, _, err = run_cli(["diff", "--db", str(db)], capsys)
    assert code == EXIT_USAGE and "nothing to compare it with" in err


def test_an_unusable_database_is_an_error_for_people_not_a_traceback(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with sqlite3.connect(db) as plain:
        plain.execute("PRAGMA user_version = 99")
    for command in (["history"], ["diff"]):
        code, _, err = run_cli([*command, "--db", str(db)], capsys)
        assert code == EXIT_USAGE
        assert "Error: " in err and "newer portcall" in err and "Traceback" not in err


def test_the_environment_names_the_default_database(
    db: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PORTCALL_DB", str(db))
    code, out, _ = run_cli(["history", "--json"], capsys)
    assert code == 0 and len(json.loads(out)["runs"]) == 4
