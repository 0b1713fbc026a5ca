"""What `check` keeps of a run besides its screen or JSON output: the HTML and JUnit reports
(`--html`, `--junit`) and the record in the history database (`--save`, `--db`).

Each is made from the same `portcall.check/1` document that `--json` writes, so a report
written now and one made later with `portcall report` from the JSON are the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import click

from portcall.cli.common import UsageProblem, write_atomically


@dataclass(frozen=True)
class Keeping:
    html: str | None = None
    junit: str | None = None
    save: bool = False
    db: str | None = None

    def wanted(self) -> bool:
        return bool(self.html or self.junit or self.save)

    def keep(self, document: dict[str, Any]) -> None:
        """Write the reports asked for, then record the run (a report is written even when
        the database refuses the run, and the error then names the database)."""
        if not self.wanted():
            return
        # Imported here: a plain check needs neither templates nor SQLite.
        from portcall.report.formats import FORMATS

        for path, name in ((self.html, "html"), (self.junit, "junit")):
            if path is not None:
                write_atomically(path, FORMATS[name](document))
        if self.save:
            self._record(document)

    def _record(self, document: dict[str, Any]) -> None:
        from portcall.history.store import HistoryError, Store

        try:
            with Store(self.db) as store:
                run = store.save(document, source="check")
                where = store.path
        except HistoryError as exc:
            raise UsageProblem(
                f"--save: {exc}", exc.hint or "give another database with --db FILE"
            ) from exc
        click.echo(f"saved as run {run} in {where}", err=True)
