"""What every test package shares: running `portcall` in this process."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from portcall import cli


@dataclass
class Outcome:
    code: int
    out: str
    err: str


Cli = Callable[..., Outcome]


@pytest.fixture
def portcall(capsys: pytest.CaptureFixture[str]) -> Cli:
    """Run `portcall ARGS…` in this process: its exit code and what it printed."""

    def run(*args: object) -> Outcome:
        try:
            cli.main([str(arg) for arg in args])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        out, err = capsys.readouterr()
        return Outcome(code, out, err)

    return run
