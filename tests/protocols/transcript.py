"""Play a recorded conversation against a sans-IO client handshake.

A transcript is a list of steps: ``S(b"...")`` the server sends, ``C(b"...")`` the client must
send exactly this, ``TLS`` the client must ask for a TLS upgrade here, ``EOF`` the server closes.
"""

from __future__ import annotations

from dataclasses import dataclass

from portcall.protocols.base import NEED_DATA, Done, Handshake, Pause, Send, ServiceInfo, StartTLS


@dataclass(frozen=True)
class S:
    data: bytes


@dataclass(frozen=True)
class C:
    data: bytes


class _Marker:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


TLS = _Marker("TLS")
EOF_ = _Marker("EOF")
Step = S | C | _Marker


def play(hs: Handshake, steps: list[Step], *, byte_at_a_time: bool = False) -> ServiceInfo:
    """Run `hs` against `steps`; the transcript must be used up exactly when the client is done.

    Client bytes that follow the last scripted step (a QUIT, say) are allowed and ignored.
    """
    pending = list(steps)
    step: Step | None
    while True:
        event = hs.next_event()
        if isinstance(event, Done):
            leftover = [s for s in pending if not isinstance(s, C)]
            assert not leftover, f"client finished with server steps left: {leftover}"
            return event.info
        if isinstance(event, Send):
            if not pending:
                continue  # trailing politeness (QUIT, LOGOUT) after the scripted part
            step = pending.pop(0)
            assert isinstance(step, C), f"client sent {event.data!r} where {step!r} was due"
            assert event.data == step.data, f"client sent {event.data!r}, expected {step.data!r}"
        elif isinstance(event, Pause):
            continue  # no time passes in a transcript
        elif isinstance(event, StartTLS):
            step = pending.pop(0) if pending else None
            assert step is TLS, f"client asked for TLS where {step!r} was due"
            hs.tls_started()
        else:
            assert event is NEED_DATA
            step = pending.pop(0) if pending else EOF_
            if step is EOF_:
                hs.receive_data(b"")
                continue
            assert isinstance(step, S), f"client waits for data where {step!r} was due"
            if byte_at_a_time:
                for i in range(len(step.data)):
                    hs.receive_data(step.data[i : i + 1])
            else:
                hs.receive_data(step.data)


def play_both_ways(hs_factory: type[Handshake] | object, steps: list[Step]) -> ServiceInfo:
    """Play the transcript whole and one byte at a time; both must agree."""
    assert callable(hs_factory)
    whole = play(hs_factory(), steps)
    split = play(hs_factory(), steps, byte_at_a_time=True)
    assert whole == split
    return whole
