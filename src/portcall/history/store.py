"""The history database: every recorded run, kept in one SQLite file.

Each run is stored whole (its `portcall.check/1` document as JSON text) and once more as one
row per result with the fields `history`, `diff` and `serve` look up (verdict, certificate
serial and end, product, banner), so listing runs never parses a document.

The file is `$PORTCALL_DB` when set, else ``history.sqlite3`` in portcall's directory under
the user's data directory (platformdirs). It is written only in transactions and in WAL mode,
so a reader never waits for a writer and an interrupted write loses nothing earlier. A file
that cannot be used (not SQLite, truncated, made by a newer portcall, another program's
database, held by another writer beyond the busy timeout) raises `HistoryError` and is left
exactly as it was: never repaired, replaced or deleted.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import platformdirs

from portcall.history.fields import as_dict, as_list, as_text
from portcall.history.migrations import VERSION, pending, targets_key

ENVIRONMENT_VARIABLE = "PORTCALL_DB"
CHECK_SCHEMA = "portcall.check/1"
#: Seconds to wait for another writer before giving up with "locked".
BUSY_TIMEOUT = 5.0


def default_db_path() -> Path:
    """`$PORTCALL_DB` if set, else history.sqlite3 in portcall's user data directory."""
    configured = os.environ.get(ENVIRONMENT_VARIABLE, "").strip()
    if configured:
        return Path(configured).expanduser()
    return Path(platformdirs.user_data_dir("portcall")) / "history.sqlite3"


class HistoryError(Exception):
    """The history database cannot be used, or holds no such run; the message is for a
    person and `hint` says what to do."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint


@dataclass(frozen=True)
class RunInfo:
    id: int
    started: str
    finished: str
    catalog: str
    targets: tuple[str, ...]
    health: str
    source: str
    counts: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        fields = asdict(self)
        fields["targets"] = list(self.targets)
        return fields


_RUN_COLUMNS = "id, started, finished, catalog, targets, health, source"
_RESULT_COLUMNS = (
    "run_id, host, address, port, transport, key, verdict, health, cert_serial, not_after, "
    "product, banner"
)


class Store:
    """One open history database; a context manager. Safe to share between threads: every
    use of the connection holds the store's lock (serve saves from an executor)."""

    def __init__(
        self, path: str | Path | None = None, *, busy_timeout: float = BUSY_TIMEOUT
    ) -> None:
        self.path = Path(path) if path is not None else default_db_path()
        self._busy_timeout = busy_timeout
        self._lock = threading.Lock()
        self._db = self._open()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- opening ---------------------------------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        _prepare_place(self.path)
        _check_header(self.path)
        with self._errors("open"):
            db = sqlite3.connect(
                self.path,
                timeout=self._busy_timeout,
                isolation_level=None,  # transactions are begun and ended here, explicitly
                check_same_thread=False,
            )
        try:
            with self._errors("open"):
                self._upgrade(db)
        except BaseException:
            db.close()
            raise
        return db

    def _upgrade(self, db: sqlite3.Connection) -> None:
        """Refuse a file this portcall must not touch, then bring it to the current schema.
        Nothing is written before the refusals: WAL mode itself changes the file's header."""
        version = int(db.execute("PRAGMA user_version").fetchone()[0])
        if version > VERSION:
            raise HistoryError(
                f"{self.path} was written by a newer portcall (history schema {version}; "
                f"this one knows up to {VERSION})",
                "upgrade portcall, or give another database with --db FILE",
            )
        if version == 0 and db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
            raise HistoryError(
                f"{self.path} is an SQLite database, but not portcall's history",
                "give portcall a file of its own with --db FILE",
            )
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        steps = pending(version)
        if steps:
            with _transaction(db):
                for step in steps:
                    step(db)
                db.execute(f"PRAGMA user_version = {VERSION}")

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        """SQLite's exceptions as a HistoryError that names the file and what to do."""
        try:
            yield
        except sqlite3.Error as exc:
            raise _explain(exc, self.path, doing, self._busy_timeout) from exc

    @contextmanager
    def _using(self, doing: str) -> Iterator[sqlite3.Connection]:
        with self._lock, self._errors(doing):
            yield self._db

    # -- writing ---------------------------------------------------------------------------

    def save(self, document: dict[str, Any], *, source: str = "check") -> int:
        """Record one run (a `portcall.check/1` document); its id. Entries of the document
        that are missing or of the wrong type are skipped or stored empty."""
        if not isinstance(document, dict) or document.get("schema") != CHECK_SCHEMA:
            raise HistoryError(
                f"not a {CHECK_SCHEMA} document", "record what `portcall check --json` writes"
            )
        rows = [row for row in map(_result_row, as_list(document.get("results"))) if row]
        hosts = list(dict.fromkeys(row[0] for row in rows))
        run = (
            as_text(document.get("started")) or "",
            as_text(document.get("finished")) or "",
            as_text(document.get("catalog")) or "",
            as_text(document.get("health")) or "unknown",
            source,
            json.dumps(document, ensure_ascii=False, default=str),
            json.dumps(hosts, ensure_ascii=False),
            targets_key(hosts),
        )
        with self._using("record the run in"), _transaction(self._db) as db:
            cursor = db.execute(
                "INSERT INTO runs (started, finished, catalog, health, source, document, "
                "targets, targets_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                run,
            )
            run_id = int(cursor.lastrowid or 0)
            db.executemany(
                f"INSERT INTO results ({_RESULT_COLUMNS}) VALUES ({', '.join('?' * 12)})",
                [(run_id, *row) for row in rows],
            )
        return run_id

    # -- reading ---------------------------------------------------------------------------

    def runs(self, limit: int | None = None) -> list[RunInfo]:
        """The recorded runs, newest first; at most `limit` of them."""
        with self._using("read") as db:
            rows = db.execute(
                f"SELECT {_RUN_COLUMNS} FROM runs ORDER BY id DESC LIMIT ?",
                (-1 if limit is None else limit,),
            ).fetchall()
            counts = _counts(db, [row[0] for row in rows])
        return [_run_info(row, counts.get(row[0], {})) for row in rows]

    def run(self, run_id: int) -> RunInfo:
        with self._using("read") as db:
            row = db.execute(f"SELECT {_RUN_COLUMNS} FROM runs WHERE id = ?", (run_id,)).fetchone()
            counts = _counts(db, [run_id])
        if row is None:
            raise self._unknown(run_id)
        return _run_info(row, counts.get(run_id, {}))

    def document(self, run_id: int) -> dict[str, Any]:
        """The `portcall.check/1` document recorded as run `run_id`."""
        with self._using("read") as db:
            row = db.execute("SELECT document FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise self._unknown(run_id)
        try:
            document = json.loads(row[0])
        except ValueError as exc:
            raise HistoryError(f"run {run_id} in {self.path} is damaged: {exc}") from exc
        return document if isinstance(document, dict) else {}

    def latest(self) -> int | None:
        """The newest run's id, or None in an empty database."""
        with self._using("read") as db:
            row = db.execute("SELECT max(id) FROM runs").fetchone()
        return None if row[0] is None else int(row[0])

    def previous(self, run_id: int) -> int | None:
        """The newest run before `run_id` that checked the same set of hosts, or None."""
        with self._using("read") as db:
            row = db.execute(
                "SELECT id FROM runs WHERE targets_key = "
                "(SELECT targets_key FROM runs WHERE id = ?) AND id < ? ORDER BY id DESC LIMIT 1",
                (run_id, run_id),
            ).fetchone()
        return None if row is None else int(row[0])

    def _unknown(self, run_id: int) -> HistoryError:
        return HistoryError(
            f"no run {run_id} in {self.path}", "`portcall history` lists the recorded runs"
        )


@contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE takes the write lock at once, so a busy database fails before any
    work instead of at COMMIT; any failure rolls the whole transaction back."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        if db.in_transaction:
            db.rollback()
        raise
    db.execute("COMMIT")


def _counts(db: sqlite3.Connection, run_ids: list[int]) -> dict[int, dict[str, int]]:
    counts: dict[int, dict[str, int]] = {}
    if not run_ids:
        return counts
    marks = ", ".join("?" * len(run_ids))
    rows = db.execute(
        f"SELECT run_id, verdict, count(*) FROM results WHERE run_id IN ({marks}) "
        "GROUP BY run_id, verdict ORDER BY run_id, verdict",
        run_ids,
    )
    for run_id, verdict, number in rows.fetchall():
        counts.setdefault(run_id, {})[verdict] = number
    return counts


def _run_info(row: tuple[Any, ...], counts: dict[str, int]) -> RunInfo:
    run_id, started, finished, catalog, targets, health, source = row
    try:
        hosts = json.loads(targets)
    except ValueError:
        hosts = []
    names = tuple(str(h) for h in hosts) if isinstance(hosts, list) else ()
    return RunInfo(run_id, started, finished, catalog, names, health, source, counts)


# -- reading untrusted documents -------------------------------------------------------------


def _result_row(result: object) -> tuple[Any, ...] | None:
    """The indexed fields of one result, or None for an entry without host and port."""
    fields = as_dict(result)
    host, port = as_text(fields.get("host")), fields.get("port")
    if host is None or type(port) is not int or not 1 <= port <= 65535:
        return None
    certificate = as_dict(as_dict(fields.get("tls")).get("certificate"))
    return (
        host,
        as_text(fields.get("address")),
        port,
        as_text(fields.get("transport")) or "tcp",
        as_text(fields.get("key")) or "",
        as_text(fields.get("verdict")) or "unknown",
        as_text(fields.get("health")) or "unknown",
        as_text(certificate.get("serial")),
        as_text(certificate.get("not_after")),
        as_text(fields.get("product")),
        as_text(fields.get("banner")),
    )


# -- the file itself --------------------------------------------------------------------------

_MAGIC = b"SQLite format 3\x00"


def _prepare_place(path: Path) -> None:
    if path.is_dir():
        raise HistoryError(f"{path} is a directory", "name a file, such as history.sqlite3")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise HistoryError(
            f"cannot create the directory {path.parent}: {exc.strerror or exc}",
            "give a database in a writable directory with --db FILE",
        ) from exc


def _check_header(path: Path) -> None:
    """Refuse, before SQLite sees it, a file that is not an SQLite database or is shorter
    than its own header says (cut off by a full disk or a broken copy): SQLite would read
    such a file as a smaller database and could write into it."""
    try:
        with path.open("rb") as handle:
            head = handle.read(100)
            size = handle.seek(0, os.SEEK_END)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise HistoryError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if size == 0:
        return  # an empty file is a new database
    if len(head) < 100 or not head.startswith(_MAGIC):
        raise _damaged(path, "it is not an SQLite database")
    page_size = int.from_bytes(head[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(head[28:32], "big")
    header_current = head[24:28] == head[92:96]  # else SQLite itself ignores the page count
    if header_current and pages * page_size > size:
        raise _damaged(path, f"it is cut short ({size} of {pages * page_size} bytes)")


def _damaged(path: Path, why: str) -> HistoryError:
    return HistoryError(
        f"{path} cannot be used as portcall's history: {why}",
        "the file was left as it is; restore it from a backup, or give another database "
        "with --db FILE",
    )


def _explain(exc: sqlite3.Error, path: Path, doing: str, timeout: float) -> HistoryError:
    name = getattr(exc, "sqlite_errorname", "") or ""
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return HistoryError(
            f"the history database {path} is locked by another program "
            f"(waited {timeout:g} s to {doing} it)",
            "wait for the other portcall (or sqlite3 session) to finish, then run again",
        )
    if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")):
        return _damaged(path, str(exc))
    return HistoryError(
        f"cannot {doing} the history database {path}: {exc}",
        "check the file's permissions and free disk space, or give another with --db FILE",
    )
