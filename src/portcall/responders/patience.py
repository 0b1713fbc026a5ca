"""How long a responder waits for a client's next command.

The idle timeout counts from the responder's last reply, not from the client's last byte: a
client that trickles a byte now and then without ever finishing a command (slowloris) is as
idle as one that says nothing, and cannot hold a connection until the lifetime cap.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Final

#: Replies one connection sends before it lets the others run: a client that pipelines
#: thousands of commands in one read must not hold the event loop.
YIELD_EVERY: Final = 64


@dataclass
class Patience:
    """Since when the responder has waited for the client's next command, and how many bytes
    trickled in meanwhile without making one."""

    since: float = field(default_factory=time.monotonic)
    trickled: int = 0
    #: Replies sent on this connection.
    replies: int = 0

    def progress(self) -> None:
        """We answered (or turned to TLS): the client's time for its next command starts."""
        self.since = time.monotonic()
        self.trickled = 0

    def left(self, idle_timeout: float) -> float:
        """Seconds left for the client's next command."""
        return self.since + idle_timeout - time.monotonic()
