"""What the responders say about each connection: who came in, on which port, what they said.

This is the firewall test seen from the server side: a line here proves that the client's
packets made it through to this port.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TextIO

from portcall.catalog import port_text
from portcall.report.inert import inert

#: The most commands one log line shows; a chatty client gets "… and N more".
HEARD_SHOWN = 12
#: The most commands a record keeps; the rest are only counted, so that a client pipelining
#: commands without end cannot grow the responder's memory.
HEARD_KEPT = 100


@dataclass
class ConnectionRecord:
    """One connection to a responder, from accept to close; over UDP, one datagram and the
    reply it got."""

    started: datetime
    #: The client as "address:port" ("[v6]:port" for IPv6).
    peer: str
    #: The catalog row it reached, and that row's port (before any offset).
    key: str
    port: int
    #: The port the responder actually listens on (differs with --port-offset or port 0).
    bound_port: int
    #: The protocol the responder spoke (another than the row's when a fault says so).
    protocol: str
    #: The TLS version negotiated, or None for plaintext.
    tls: str | None = None
    #: The client's commands as the handshake heard them (never credentials).
    heard: list[str] = field(default_factory=list)
    #: Commands heard beyond the first `HEARD_KEPT`: counted, not kept.
    heard_more: int = 0
    #: How it ended, in a few words.
    ended: str = ""
    duration: float = 0.0
    #: "tcp", or "udp" for one datagram and the reply it got (if any).
    transport: str = "tcp"

    def to_dict(self) -> dict[str, object]:
        return {
            "started": self.started.isoformat(),
            "peer": self.peer,
            "key": self.key,
            "port": self.port,
            "transport": self.transport,
            "bound_port": self.bound_port,
            "protocol": self.protocol,
            "tls": self.tls,
            "heard": list(self.heard),
            "heard_more": self.heard_more,
            "ended": self.ended,
            "duration_ms": round(self.duration * 1000, 1),
        }


ConnectionHook = Callable[[ConnectionRecord], None]


def keep_heard(heard: list[str], record: ConnectionRecord) -> None:
    """Count in `record`, rather than keep in `heard`, the commands past the first
    `HEARD_KEPT`."""
    extra = len(heard) - HEARD_KEPT
    if extra > 0:
        del heard[HEARD_KEPT:]
        record.heard_more += extra


def format_peer(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def _heard(record: ConnectionRecord) -> str:
    if not record.heard:
        return "nothing"
    shown = [inert(command, 80) for command in record.heard[:HEARD_SHOWN]]
    extra = len(record.heard) - HEARD_SHOWN + record.heard_more
    text = " | ".join(shown)
    return f"{text} … and {extra} more" if extra > 0 else text


def format_record(record: ConnectionRecord) -> str:
    """The connection as one line; whatever the client sent is escaped so it cannot forge one."""
    stamp = record.started.astimezone().strftime("%Y-%m-%d %H:%M:%S")
    where = f"{record.key} {port_text(record.port, record.transport)}"
    if record.bound_port != record.port:
        where += f" (on {record.bound_port})"
    tls = f" over {record.tls}" if record.tls else ""
    return (
        f"{stamp}  {record.peer} -> {where}: {record.protocol}{tls}; "
        f"heard: {_heard(record)}; ended: {inert(record.ended, 200)} "
        f"({record.duration:.2f}s)"
    )


def line_printer(stream: TextIO) -> ConnectionHook:
    """A hook that writes one line per connection to `stream` and flushes it at once, so that
    someone watching a firewall change sees each connection as it ends."""

    def hook(record: ConnectionRecord) -> None:
        stream.write(format_record(record) + "\n")
        stream.flush()

    return hook
