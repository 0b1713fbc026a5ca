"""The SQLite store: round trip, migrations, and files it must refuse without touching them."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from portcall.history.migrations import MIGRATIONS, VERSION
from portcall.history.store import HistoryError, Store, default_db_path
from portcall.verdicts import FindingCode, Verdict
from tests.history.documents import HOST, START, document, result

NOT_AFTER = datetime(2027, 3, 1, tzinfo=UTC)


def sample(at: datetime = START, *, hosts: tuple[str, ...] = (HOST,)) -> dict[str, Any]:
    results = []
    for host in hosts:
        results += [
            result(25, "smtp", host=host, banner="220 mail ESMTP", product="Exchange 2003"),
            result(465, "smtps", host=host, certificate=("0A1B", NOT_AFTER)),
            result(119, "nntp", Verdict.REFUSED, host=host),
            result(993, "imaps", host=host, findings=(FindingCode.CERT_UNTRUSTED,)),
        ]
    return document(results, at=at)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "deep" / "er" / "history.sqlite3"


def test_round_trip_keeps_the_document_and_lists_the_run(db: Path) -> None:
    saved = sample()
    with Store(db) as store:
        first = store.save(saved)
        second = store.save(sample(START + timedelta(hours=1)), source="serve")
    assert db.is_file()  # parent directories made on the way
    with Store(db) as store:
        assert store.document(first) == json.loads(json.dumps(saved))
        runs = store.runs()
    assert [run.id for run in runs] == [second, first]
    newest, oldest = runs
    assert (newest.source, oldest.source) == ("serve", "check")
    assert oldest.started == START.isoformat() and oldest.catalog == "exchange-2000"
    assert oldest.targets == (HOST,)
    assert oldest.health == "failures"  # the untrusted certificate
    assert oldest.counts == {"ok": 3, "refused": 1}


def test_result_rows_are_indexed_with_certificate_product_and_banner(db: Path) -> None:
    with Store(db) as store:
        run = store.save(sample())
    with sqlite3.connect(db) as plain:
        rows = plain.execute(
            "SELECT key, verdict, cert_serial, not_after, product, banner FROM results "
            "WHERE run_id = ? ORDER BY port",
            (run,),
        ).fetchall()
        plan = plain.execute("EXPLAIN QUERY PLAN SELECT * FROM results WHERE run_id = 1").fetchall()
    assert rows[0] == ("smtp", "ok", None, None, "Exchange 2003", "220 mail ESMTP")
    assert rows[2][:4] == ("smtps", "ok", "0A1B", NOT_AFTER.isoformat())
    assert "results_by_run" in str(plan)


def test_limit_previous_and_latest(db: Path) -> None:
    with Store(db) as store:
        a = store.save(sample())
        other = store.save(sample(hosts=("other.example.test",)))
        b = store.save(sample())
        both = store.save(sample(hosts=(HOST, "other.example.test")))
        assert [run.id for run in store.runs(limit=2)] == [both, b]
        assert store.latest() == both
        assert store.previous(b) == a
        assert store.previous(a) is None
        assert store.previous(other) is None
        assert store.previous(both) is None


def test_untrusted_documents_are_stored_without_the_unusable_entries(db: Path) -> None:
    odd = {
        "schema": "portcall.check/1",
        "results": [
            {"host": HOST, "port": 25, "verdict": "ok"},
            {"host": HOST, "port": "25"},
            {"port": 110},
            {"host": HOST, "port": 70000},
            "not a result",
            {"host": HOST, "port": 443, "tls": {"certificate": "not a dict"}, "banner": 7},
        ],
    }
    with Store(db) as store:
        run = store.save(odd)
        (info,) = store.runs()
    assert info.id == run and info.counts == {"ok": 1, "unknown": 1}
    assert info.health == "unknown" and info.targets == (HOST,)


@pytest.mark.parametrize("bad", [[], {"schema": "portcall.audit/1"}, {"results": []}])
def test_save_refuses_what_is_not_a_check_document(db: Path, bad: Any) -> None:
    with Store(db) as store, pytest.raises(HistoryError, match=r"portcall\.check/1"):
        store.save(bad)


def test_unknown_run_is_a_history_error(db: Path) -> None:
    with Store(db) as store, pytest.raises(HistoryError, match="no run 7"):
        store.document(7)


def test_saves_from_several_threads_all_arrive(db: Path) -> None:
    with Store(db) as store:
        ids: list[int] = []
        workers = [
            threading.Thread(target=lambda: ids.append(store.save(sample()))) for _ in range(8)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=10)
        assert sorted(ids) == sorted(run.id for run in store.runs()) and len(set(ids)) == 8


# -- migrations -----------------------------------------------------------------------------


def user_version(path: Path) -> int:
    with sqlite3.connect(path) as plain:
        return int(plain.execute("PRAGMA user_version").fetchone()[0])


def test_an_empty_file_becomes_a_current_database(db: Path) -> None:
    db.parent.mkdir(parents=True)
    db.touch()
    with Store(db) as store:
        assert store.runs() == []
        store.save(sample())
    assert user_version(db) == VERSION == len(MIGRATIONS)
    with sqlite3.connect(db) as plain:
        assert plain.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def make_v1(path: Path) -> None:
    """A database as the first schema wrote it, with one run of two hosts in it, made by
    hand: SQL of that schema, no code of today's store."""
    v1_document = json.dumps(sample(hosts=(HOST, "b.example.test")))
    with sqlite3.connect(path) as plain:
        plain.executescript(
            """
            CREATE TABLE runs (id INTEGER PRIMARY KEY AUTOINCREMENT, started TEXT NOT NULL,
                finished TEXT NOT NULL, catalog TEXT NOT NULL, health TEXT NOT NULL,
                source TEXT NOT NULL, document TEXT NOT NULL);
            CREATE TABLE results (run_id INTEGER NOT NULL REFERENCES runs(id),
                host TEXT NOT NULL, address TEXT, port INTEGER NOT NULL,
                transport TEXT NOT NULL, key TEXT NOT NULL, verdict TEXT NOT NULL,
                health TEXT NOT NULL, cert_serial TEXT, not_after TEXT, product TEXT,
                banner TEXT);
            CREATE INDEX results_by_run ON results(run_id);
            CREATE INDEX results_by_port ON results(host, port, transport);
            PRAGMA user_version = 1;
            """
        )
        plain.execute(
            "INSERT INTO runs VALUES (1, 'a', 'b', 'exchange-2000', 'healthy', 'check', ?)",
            (v1_document,),
        )
        for host in ("b.example.test", HOST, "b.example.test"):
            plain.execute(
                "INSERT INTO results VALUES (1, ?, NULL, 25, 'tcp', 'smtp', 'ok', 'healthy', "
                "NULL, NULL, NULL, NULL)",
                (host,),
            )


def test_a_version_1_database_is_brought_forward_keeping_its_run(tmp_path: Path) -> None:
    db = tmp_path / "v1.sqlite3"
    make_v1(db)
    with Store(db) as store:
        (old,) = store.runs()
        new = store.save(sample(hosts=(HOST, "b.example.test")))
        assert old.targets == ("b.example.test", HOST)
        assert old.counts == {"ok": 3}
        assert store.previous(new) == 1  # the same hosts, in another order
        assert store.document(1)["schema"] == "portcall.check/1"
    assert user_version(db) == VERSION


def test_a_failed_migration_leaves_the_file_at_its_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "v1.sqlite3"
    make_v1(db)

    def broken(connection: sqlite3.Connection) -> None:
        connection.execute("ALTER TABLE runs ADD COLUMN half_done TEXT")
        connection.execute("SELECT * FROM no_such_table")

    monkeypatch.setattr("portcall.history.store.pending", lambda version: (broken,))
    with pytest.raises(HistoryError):
        Store(db)
    assert user_version(db) == 1
    with sqlite3.connect(db) as plain:
        columns = [row[1] for row in plain.execute("PRAGMA table_info(runs)")]
    assert "half_done" not in columns


def test_a_newer_database_is_refused_untouched(tmp_path: Path) -> None:
    db = tmp_path / "newer.sqlite3"
    with sqlite3.connect(db) as plain:
        plain.execute("CREATE TABLE runs (id INTEGER PRIMARY KEY, future TEXT)")
        plain.execute(f"PRAGMA user_version = {VERSION + 1}")
    before = db.read_bytes()
    with pytest.raises(HistoryError, match="newer portcall") as refused:
        Store(db)
    assert "upgrade portcall" in refused.value.hint
    assert db.read_bytes() == before


def test_another_programs_database_is_refused_untouched(tmp_path: Path) -> None:
    db = tmp_path / "other.sqlite3"
    with sqlite3.connect(db) as plain:
        plain.execute("CREATE TABLE runs (name TEXT)")
    before = db.read_bytes()
    with pytest.raises(HistoryError, match="not portcall's history"):
        Store(db)
    assert db.read_bytes() == before


# -- damaged and locked files ---------------------------------------------------------------


def saved_database(path: Path) -> bytes:
    with Store(path) as store:
        store.save(sample())
    with sqlite3.connect(path) as plain:  # one file, no WAL beside it, as a copy would be
        plain.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        plain.execute("PRAGMA journal_mode=DELETE")
    return path.read_bytes()


@pytest.mark.parametrize(
    ("content", "said"),
    [
        (b"portcall history, honest\n" * 50, "not an SQLite database"),
        (b"SQLite format 3", "not an SQLite database"),  # shorter than the header
        (None, "cut short"),
    ],
)
def test_a_damaged_file_is_refused_and_kept_byte_identical(
    tmp_path: Path, content: bytes | None, said: str
) -> None:
    db = tmp_path / "damaged.sqlite3"
    if content is None:
        whole = saved_database(db)
        content = whole[: len(whole) // 2]
    db.write_bytes(content)
    with pytest.raises(HistoryError, match=said) as refused:
        Store(db).save(sample())
    assert "left as it is" in refused.value.hint
    assert db.read_bytes() == content
    assert sorted(p.name for p in tmp_path.iterdir()) == ["damaged.sqlite3"]


def test_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(HistoryError, match="is a directory"):
        Store(tmp_path)


@pytest.fixture
def held(db: Path) -> Iterator[sqlite3.Connection]:
    """Another program's connection holding the write lock (BEGIN EXCLUSIVE)."""
    with Store(db) as store:
        store.save(sample())
    other = sqlite3.connect(db, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    yield other
    other.close()


def test_a_locked_database_fails_after_the_busy_timeout_and_loses_nothing(
    db: Path, held: sqlite3.Connection
) -> None:
    store = Store(db, busy_timeout=0.3)
    started = datetime.now(UTC)
    with pytest.raises(HistoryError, match="locked by another program") as refused:
        store.save(sample(START + timedelta(days=1)))
    waited = (datetime.now(UTC) - started).total_seconds()
    assert 0.25 <= waited < 5
    assert "waited 0.3 s" in str(refused.value) and refused.value.hint
    held.execute("ROLLBACK")
    assert [run.id for run in store.runs()] == [1]  # the earlier run, and only it
    assert store.save(sample()) == 2  # and the database works again
    store.close()


def test_default_path_honours_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PORTCALL_DB", str(tmp_path / "env.sqlite3"))
    assert default_db_path() == tmp_path / "env.sqlite3"
    monkeypatch.delenv("PORTCALL_DB")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_db_path() == tmp_path / "xdg" / "portcall" / "history.sqlite3"
