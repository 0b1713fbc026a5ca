"""The server's side of NTLM: answer a NEGOTIATE_MESSAGE with a CHALLENGE_MESSAGE naming the
server, and go no further (a responder accepts no credentials)."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime

from portcall.protocols.ntlm.messages import Identity, challenge_message, negotiate_flags


class NtlmChallenger:
    """Builds the challenge a server sends back; `clock` and `random` are injectable for tests."""

    def __init__(
        self,
        identity: Identity | None = None,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        random: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self.identity = identity or Identity()
        self._clock = clock
        self._random = random

    def answer(self, negotiate: bytes) -> bytes:
        """The CHALLENGE_MESSAGE for `negotiate`; an `NtlmError` when it is not a NEGOTIATE."""
        flags = negotiate_flags(negotiate)
        return challenge_message(self.identity, self._random(8), flags, self._clock())
