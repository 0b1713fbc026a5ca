"""The metrics of one /probe, from results made here: what each series says of a port."""

from __future__ import annotations

from portcall.serve.metrics import probe_page
from portcall.verdicts import Result, Verdict
from tests.serve.lab import Answer


def test_a_port_duration_leaves_out_its_waits_for_a_slot() -> None:
    """A port that waited 1.5 s of its 2 s for a slot (the other ports of the host held
    them) took 0.5 s itself; a port without a recorded wait counts its whole time."""
    waited = Result("mail", 993, "imaps", Verdict.OK, "ok", timings={"total": 2.0, "waited": 1.5})
    alone = Result("mail", 25, "smtp", Verdict.OK, "ok", timings={"total": 0.25})
    never = Result("mail", 143, "imap", Verdict.OK, "ok")
    answer = Answer(200, {}, probe_page([waited, alone, never], 2.1).decode())
    assert answer.value("portcall_probe_duration_seconds", port="993") == 0.5
    assert answer.value("portcall_probe_duration_seconds", port="25") == 0.25
    assert "143" not in {s[0]["port"] for s in answer.metrics()["portcall_probe_duration_seconds"]}
    assert answer.value("probe_duration_seconds") == 2.1
