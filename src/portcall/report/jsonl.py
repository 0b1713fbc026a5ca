"""`check --jsonl`: one JSON object per result, written the moment it is known.

Each line is a result exactly as in the `results` array of the `portcall.check/1` document
(`report.json_report.result_to_dict`), so a consumer of either reads the same fields. Results
come in the order they finish, not in target order. Nothing is kept but a tally of health,
so memory stays flat however many hosts are checked.
"""

from __future__ import annotations

from typing import TextIO

from portcall.report.json_report import result_to_json
from portcall.verdicts import ABSENT, Health, Result, Verdict, worst_health


class JsonlStream:
    """The `on_result` hook that writes each result to `stream` and tallies the run's health
    as `verdicts.overall_health` would have judged the whole list."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.count = 0
        self._worst = Health.HEALTHY
        #: Per host: whether any port answered (or the name did not resolve, a failure).
        self._answered: dict[str, bool] = {}

    def __call__(self, result: Result) -> None:
        self.stream.write(result_to_json(result) + "\n")
        self.stream.flush()
        self.count += 1
        self._worse(result.health())
        seen = result.verdict is Verdict.UNRESOLVED or result.verdict not in ABSENT
        self._answered[result.host] = self._answered.get(result.host, False) or seen

    def _worse(self, health: Health) -> None:
        self._worst = worst_health((self._worst, health))

    def health(self) -> Health:
        if not all(self._answered.values()):
            self._worse(Health.WARNINGS)  # a host where nothing answers
        return self._worst
