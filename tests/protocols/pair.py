"""Run handshakes without sockets: a client against a server role, or a server role against a
recorded client.

`converse` pumps bytes between a client `Handshake` and a `ServerHandshake` in memory; a
StartTLS on either side counts as done at once (the side's `tls_started` is called), which is
enough to test what each side says before and after the upgrade.

`play_server` feeds a transcript (the steps of tests/protocols/transcript.py, seen from the
server's side: ``C`` is what the client sends, ``S`` what the server must answer, ``TLS`` the
server's upgrade, ``EOF_`` the server closing) and returns what really happened in the same
form, so a test compares two lists. ``C(b"")`` is the client hanging up.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from portcall.protocols.base import (
    CLOSE,
    NEED_DATA,
    Done,
    Handshake,
    Pause,
    SansIO,
    Send,
    ServerHandshake,
    ServiceInfo,
    StartTLS,
)
from tests.protocols.transcript import EOF_, TLS, C, S, Step

#: More events than any handshake here needs; a loop that runs past it is stuck.
MAX_EVENTS = 10_000


@dataclass
class Conversation:
    """What a client learnt, and every byte each side sent."""

    info: ServiceInfo
    client_sent: bytes
    server_sent: bytes


def _advance(side: Handshake | ServerHandshake, peer: SansIO, sent: bytearray) -> object:
    """Run one side until it waits for data or ends; its bytes go straight to the peer."""
    for _ in range(MAX_EVENTS):
        event = side.next_event()
        if isinstance(event, Send):
            sent += event.data
            peer.receive_data(event.data)
        elif isinstance(event, StartTLS):
            side.tls_started()
        elif not isinstance(event, Pause):  # no time passes here
            return event
    raise AssertionError(f"{type(side).__name__} never waited nor ended")


def converse(client: Handshake, server: ServerHandshake) -> Conversation:
    """Let `client` and `server` talk until both are done; a side that ends hangs up."""
    client_sent, server_sent = bytearray(), bytearray()
    info: ServiceInfo | None = None
    closed = False
    for _ in range(MAX_EVENTS):
        moved = len(client_sent) + len(server_sent)
        if info is None:
            event = _advance(client, server, client_sent)
            if isinstance(event, Done):
                info = event.info
                server.receive_data(b"")
        if not closed and _advance(server, client, server_sent) is CLOSE:
            closed = True
            if info is None:
                client.receive_data(b"")
        if info is not None and closed:
            return Conversation(info, bytes(client_sent), bytes(server_sent))
        if moved == len(client_sent) + len(server_sent):
            raise AssertionError("both sides wait for each other")
    raise AssertionError("the conversation never ended")


def play_server(
    server: ServerHandshake, steps: list[Step], *, byte_at_a_time: bool = False
) -> list[Step]:
    """Feed the transcript's client steps to `server`, a piece each time it waits for data,
    and return what happened as steps (runs of ``S`` merged)."""
    happened: list[Step] = []
    pieces = _pieces(steps, byte_at_a_time)
    for _ in range(MAX_EVENTS):
        event = server.next_event()
        if isinstance(event, Send):
            happened.append(S(event.data))
        elif isinstance(event, StartTLS):
            happened.append(TLS)
            server.tls_started()
        elif event is CLOSE:
            return merged([*happened, EOF_])
        elif not pieces:
            assert event is NEED_DATA
            return merged(happened)
        else:
            record, chunk = pieces.pop(0)
            happened += [record] if record is not None else []
            server.receive_data(chunk)
    raise AssertionError("the server never waited nor ended")


def _pieces(steps: list[Step], byte_at_a_time: bool) -> list[tuple[Step | None, bytes]]:
    """The client's bytes in the order fed, each step recorded once, at its first piece."""
    pieces: list[tuple[Step | None, bytes]] = []
    for step in steps:
        if not isinstance(step, C):
            continue
        if not byte_at_a_time or not step.data:
            pieces.append((step, step.data))
            continue
        pieces.append((step, step.data[:1]))
        pieces += [(None, step.data[i : i + 1]) for i in range(1, len(step.data))]
    return pieces


def merged(steps: list[Step]) -> list[Step]:
    """The same steps with runs of ``S`` joined: a reply may come in several sends."""
    out: list[Step] = []
    for step in steps:
        last = out[-1] if out else None
        if isinstance(step, S) and isinstance(last, S):
            out[-1] = S(last.data + step.data)
        else:
            out.append(step)
    return out


def check_server(factory: Callable[[], ServerHandshake], steps: list[Step]) -> ServerHandshake:
    """Play `steps` whole and one byte at a time; both runs must match the transcript.
    Returns the server of the whole run (for its `heard` list)."""
    want = merged(steps)
    server = factory()
    whole = play_server(server, steps)
    assert whole == want, f"whole:\n{whole}\n!=\n{want}"
    split = play_server(factory(), steps, byte_at_a_time=True)
    assert split == want, f"one byte at a time:\n{split}\n!=\n{want}"
    return server
