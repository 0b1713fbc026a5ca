"""The history database's schema, as a list of steps: step N takes a database from version N
to version N + 1, and `PRAGMA user_version` says how many steps a file has had.

A step is only ever appended, never edited: a file made by an older portcall is brought
forward by running the steps it has not had yet, all in one transaction, so an interrupted
upgrade leaves the file as it was.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable

Step = Callable[[sqlite3.Connection], None]

#: Version 1: one row per run holding the whole `portcall.check/1` document, and one row per
#: result with the fields that history, diff and serve look up without parsing documents.
_V1 = (
    """CREATE TABLE runs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        started TEXT NOT NULL,
        finished TEXT NOT NULL,
        catalog TEXT NOT NULL,
        health TEXT NOT NULL,
        source TEXT NOT NULL,
        document TEXT NOT NULL
    )""",
    """CREATE TABLE results (
        run_id INTEGER NOT NULL REFERENCES runs(id),
        host TEXT NOT NULL,
        address TEXT,
        port INTEGER NOT NULL,
        transport TEXT NOT NULL,
        key TEXT NOT NULL,
        verdict TEXT NOT NULL,
        health TEXT NOT NULL,
        cert_serial TEXT,
        not_after TEXT,
        product TEXT,
        banner TEXT
    )""",
    "CREATE INDEX results_by_run ON results(run_id)",
    "CREATE INDEX results_by_port ON results(host, port, transport)",
)


def _create_v1(connection: sqlite3.Connection) -> None:
    for statement in _V1:
        connection.execute(statement)


def _add_targets(connection: sqlite3.Connection) -> None:
    """Version 2: each run names its targets (the hosts, in the order of the results) and a
    canonical key of that set, so "the previous run of the same targets" is one indexed
    lookup. Runs already stored get theirs from their result rows."""
    connection.execute("ALTER TABLE runs ADD COLUMN targets TEXT NOT NULL DEFAULT '[]'")
    connection.execute("ALTER TABLE runs ADD COLUMN targets_key TEXT NOT NULL DEFAULT '[]'")
    connection.execute("CREATE INDEX runs_by_targets ON runs(targets_key, id)")
    rows = connection.execute("SELECT run_id, host FROM results ORDER BY run_id, rowid")
    hosts: dict[int, list[str]] = {}
    for run_id, host in rows.fetchall():
        seen = hosts.setdefault(run_id, [])
        if host not in seen:
            seen.append(host)
    for run_id, names in hosts.items():
        connection.execute(
            "UPDATE runs SET targets = ?, targets_key = ? WHERE id = ?",
            (json.dumps(names), targets_key(names), run_id),
        )


def targets_key(hosts: list[str] | tuple[str, ...]) -> str:
    """One text for a set of hosts, whatever their order or repetition."""
    return json.dumps(sorted(set(hosts)))


#: Every step, oldest first; the schema version of this portcall is their number.
MIGRATIONS: tuple[Step, ...] = (_create_v1, _add_targets)

VERSION = len(MIGRATIONS)


def pending(current: int) -> tuple[Step, ...]:
    """The steps a file at version `current` still needs (none for a newer file: the caller
    refuses that one before asking)."""
    return MIGRATIONS[current:]
