"""Which event loop probes run on (`portcall.probing.loop`), and what a bad choice says."""

from __future__ import annotations

import asyncio
import sys

import pytest

from portcall.probing.loop import LOOP_VARIABLE, LoopChoiceError, loop_name, run
from tests.conftest import Cli


async def _running_loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__


def test_asyncio_is_chosen_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(LOOP_VARIABLE, "asyncio")
    assert loop_name() == "asyncio"
    assert run(_running_loop_module()).startswith("asyncio")


@pytest.mark.parametrize("asked", ["", "uvloop", " UVLoop "])
def test_uvloop_is_the_default_where_installed(monkeypatch: pytest.MonkeyPatch, asked: str) -> None:
    pytest.importorskip("uvloop")
    monkeypatch.setenv(LOOP_VARIABLE, asked)
    assert loop_name() == "uvloop"
    assert run(_running_loop_module()).startswith("uvloop")


def test_without_uvloop_the_default_is_asyncio(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # import uvloop now fails
    monkeypatch.delenv(LOOP_VARIABLE, raising=False)
    assert loop_name() == "asyncio"
    assert run(_running_loop_module()).startswith("asyncio")


def test_uvloop_asked_for_but_missing_is_a_local_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)
    monkeypatch.setenv(LOOP_VARIABLE, "uvloop")
    coroutine = _running_loop_module()
    with pytest.raises(LoopChoiceError, match="not installed"):
        run(coroutine)
    assert coroutine.cr_frame is None  # closed, not left unawaited


def test_an_unknown_loop_stops_the_check_with_a_local_error(
    monkeypatch: pytest.MonkeyPatch, portcall: Cli
) -> None:
    monkeypatch.setenv(LOOP_VARIABLE, "trio")
    done = portcall("check", "127.0.0.1", "--ports", "25", "--json")
    assert done.code == 71
    assert "PORTCALL_LOOP='trio': say uvloop or asyncio" in done.err
    assert done.out == ""
