"""One TLS handshake per probe where a run meets the same certificate chain again.

A chain's verification does not depend on the server that sent it: the trust store, the
security level (modern or legacy context) and the chain decide, and dates are judged apart
(`context._skip_time_check`). So a run remembers, per chain it has seen verified or refused
by OpenSSL, what OpenSSL said. Once a run has seen one chain fail verification, later probes
start with an unverifying handshake and look the chain up: a chain known gets the remembered
outcome (one handshake instead of a refused one and a second); an unknown chain gets a
verifying handshake as well, whose outcome is remembered; probes that meet the same unknown
chain meanwhile wait for that one outcome. Handshakes about to begin while the run's first
verifying handshake has no outcome yet wait for it too (`first`, `FIRST_PATIENCE`). A lab
or an organisation whose servers share an internal CA thus costs two handshakes once, then
one per port.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, field
from typing import Final

#: Seconds a handshake waits at most for the run's first verifying handshake to have an
#: outcome (`TrustMemo.first`); a slow first server costs the others no more than this.
FIRST_PATIENCE: Final = 0.5


@dataclass(frozen=True)
class Outcome:
    """What OpenSSL's verification said of a chain: trusted, or why not."""

    trusted: bool
    #: Why not (the message `context.classify_verify_error` gives); None when trusted.
    error: str | None = None
    #: True when only the dates failed: the chain up to a trusted root is sound.
    chain_trusted: bool = False


def chain_key(chain: tuple[bytes, ...], *, legacy: bool) -> str:
    """The memo's key: the chain as sent, and whether the legacy context judged it."""
    digest = hashlib.sha256()
    for der in chain:
        digest.update(len(der).to_bytes(4, "big"))
        digest.update(der)
    return f"{'legacy' if legacy else 'modern'}:{digest.hexdigest()}"


@dataclass
class TrustMemo:
    """Verification outcomes of the chains a run has met, by `chain_key`."""

    outcomes: dict[str, Outcome] = field(default_factory=dict)
    #: Bounds the memo: a run meeting more distinct chains than this stops remembering.
    limit: int = 4096
    #: Whether a probe should start with an unverifying handshake: once a chain has failed
    #: verification in this run, the next one likely will too.
    start_unverified: bool = False
    #: Chains a verifying handshake is under way for, with its outcome to come (None when
    #: that handshake failed otherwise than by the chain's trust): a probe meeting one waits
    #: for it rather than verifying the same chain again.
    verifying: dict[str, asyncio.Future[Outcome | None]] = field(default_factory=dict)
    #: The run's first verifying handshake, done once an outcome is remembered or its probe
    #: has ended: handshakes about to begin meanwhile wait for it, so that the run's first
    #: wave does not verify, and see refused, the same chain many times over.
    first: asyncio.Future[None] | None = None
    #: The task of the probe making it, which never waits for itself.
    first_task: asyncio.Task[object] | None = None

    def get(self, key: str) -> Outcome | None:
        return self.outcomes.get(key)

    def remember(self, key: str, outcome: Outcome) -> None:
        if key in self.outcomes or len(self.outcomes) < self.limit:
            self.outcomes[key] = outcome
        if not outcome.trusted:
            self.start_unverified = True
        if self.first is not None and not self.first.done():
            self.first.set_result(None)

    def undecided(self) -> bool:
        """Whether the run knows nothing yet of how its chains verify."""
        return not self.outcomes and not self.start_unverified
