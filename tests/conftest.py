"""What every test package shares: running `portcall` in this process."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from portcall import cli
from portcall.probing.loop import LOOP_VARIABLE, loop_name


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


@pytest.fixture(scope="module", params=("asyncio", "uvloop"))
def each_loop(request: pytest.FixtureRequest) -> Iterator[str]:
    """Runs the tests of a module once on each event loop `portcall.probing.loop.run` may
    choose, so that a verdict that depended on the loop would fail one of the two runs."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(LOOP_VARIABLE, request.param)
        if loop_name() != request.param:
            pytest.skip(f"{request.param} is not installed")
        yield request.param
