"""`portcall history` and `portcall diff`: the runs `check --save` and `serve` recorded.

A history database that cannot be used (not SQLite, cut short, written by a newer portcall,
locked by another writer) is a usage error, exit 64, as for `check --save`: the file named
by --db (or $PORTCALL_DB) is the user's input, and another one is the way out.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from portcall.cli.common import UsageProblem
from portcall.cli.group import EXIT_HEALTHY, EXIT_WARNINGS, app
from portcall.history.diff import DEFAULT_EXPIRING_DAYS, diff_documents
from portcall.history.render import diff_json, diff_text, history_json, history_text
from portcall.history.store import HistoryError, Store, default_db_path

#: `diff`'s exit code when something changed (the code of warnings: worth a look).
EXIT_CHANGED = EXIT_WARNINGS

db_option = click.option(
    "--db",
    "db_path",
    metavar="FILE",
    help="The history database (default: $PORTCALL_DB if set, else history.sqlite3 in "
    "portcall's directory under the user's data directory).",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print a JSON document.")
run_id = click.IntRange(min=1)


@contextmanager
def opened(db_path: str | None) -> Iterator[Store]:
    """The store, with its errors as usage errors (Error + Hint, exit 64)."""
    try:
        with Store(db_path) as store:
            yield store
    except HistoryError as exc:
        raise UsageProblem(str(exc), exc.hint or "give another database with --db FILE") from exc


def _database(db_path: str | None) -> Path:
    return Path(db_path) if db_path is not None else default_db_path()


@app.command()
@db_option
@json_option
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=20,
    show_default=True,
    help="Show at most this many runs, newest first.",
)
def history(db_path: str | None, as_json: bool, limit: int) -> None:
    """List the recorded runs, newest first: id, start and end, source (check or serve),
    catalog, health, targets and the number of ports per verdict.

    Runs are recorded by `portcall check --save` and by `portcall serve`.
    """
    database = _database(db_path)
    runs = []
    if database.exists():  # reading never creates a database
        with opened(db_path) as store:
            runs = store.runs(limit)
    click.echo(history_json(runs, database) if as_json else history_text(runs, database), nl=False)


@app.command()
@click.argument("run_a", required=False, type=run_id, metavar="[RUN_A]")
@click.argument("run_b", required=False, type=run_id, metavar="[RUN_B]")
@db_option
@json_option
@click.option(
    "--expiring-days",
    type=click.IntRange(0, 3650),
    default=DEFAULT_EXPIRING_DAYS,
    show_default=True,
    help="Report a certificate that came closer than this to its end.",
)
def diff(
    run_a: int | None, run_b: int | None, db_path: str | None, as_json: bool, expiring_days: int
) -> None:
    """Show what changed between two recorded runs, one line per change on a host and port:
    ports appearing or disappearing, addresses, verdicts, findings added or removed,
    certificates (renewed, replaced, expiring), products and banners.

    \b
    No RUN:        the newest run against the run before it of the same targets
                   (the same set of hosts).
    RUN_A:         run RUN_A against the run before it of the same targets.
    RUN_A RUN_B:   run RUN_A (old) against run RUN_B (new), whatever their targets.

    `portcall history` lists the run ids. Exit codes: 0 no change, 1 changes, 64 usage
    error (unknown run, fewer than two runs to compare, a database that cannot be read).
    """
    database = _database(db_path)
    if not database.exists():
        raise UsageProblem(
            f"no history database at {database}", "record runs with portcall check --save"
        )
    with opened(db_path) as store:
        old_id, new_id = _choose(store, run_a, run_b)
        old, new = store.run(old_id), store.run(new_id)
        changes = diff_documents(
            store.document(old_id), store.document(new_id), expiring_days=expiring_days
        )
    text = diff_json(old, new, changes, database) if as_json else diff_text(old, new, changes)
    click.echo(text, nl=False)
    sys.exit(EXIT_CHANGED if changes else EXIT_HEALTHY)


def _choose(store: Store, run_a: int | None, run_b: int | None) -> tuple[int, int]:
    """The (old, new) run ids the arguments mean; see `diff --help`."""
    if run_a is not None and run_b is not None:
        return run_a, run_b
    new = run_a if run_a is not None else store.latest()
    if new is None:
        raise UsageProblem(
            f"no runs recorded in {store.path}", "record runs with portcall check --save"
        )
    targets = ", ".join(store.run(new).targets) or "no hosts"
    old = store.previous(new)
    if old is None:
        raise UsageProblem(
            f"run {new} is the first recorded run of its targets ({targets}): nothing to "
            "compare it with",
            "give two run ids (portcall diff RUN_A RUN_B); portcall history lists them",
        )
    return old, new
