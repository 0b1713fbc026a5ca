"""The server's side of NTLM: answer a NEGOTIATE_MESSAGE with a CHALLENGE_MESSAGE naming the
server, and go no further (a responder accepts no credentials)."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime

from portcall.protocols.base import LocalProtocolError, ServerOptions
from portcall.protocols.ntlm.client import decode_token, encode_token
from portcall.protocols.ntlm.messages import (
    Identity,
    NtlmError,
    Version,
    challenge_message,
    negotiate_flags,
)

#: The Windows each Exchange profile runs on: Server 2003 SP2 for Exchange 2003, 2000 SP4 for
#: Exchange 2000 (the builds the SMTP banners name).
PROFILE_VERSIONS: dict[str, Version] = {
    "exchange2003": Version(5, 2, 3790),
    "exchange2000": Version(5, 0, 2195),
}


def host_identity(options: ServerOptions, host: str | None = None) -> Identity:
    """The NTLM identity of a responder (its mail and web services, or the DC it plays as
    `host`): the NetBIOS names Windows derives from the host name and its domain (first
    label, upper case, 15 characters at most), the DNS names themselves, and the Windows of
    the profile."""
    host = (host or options.hostname).strip().rstrip(".")
    try:
        domain = options.ad_domain()
    except LocalProtocolError:
        domain = host  # a host name of one label implies no domain: it stands for its own
    return Identity(
        netbios_computer=host.split(".")[0].upper()[:15],
        netbios_domain=domain.split(".")[0].upper()[:15],
        dns_computer=host,
        dns_domain=domain,
        dns_forest=domain,
        version=PROFILE_VERSIONS.get(options.profile, Version(5, 2, 3790)),
    )


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

    def answer_line(self, response: bytes) -> str | None:
        """The base64 CHALLENGE_MESSAGE that answers a client's base64 NEGOTIATE_MESSAGE (a
        SASL response line, an `Authorization` token); None when `response` is not one."""
        try:
            return encode_token(self.answer(decode_token(response.decode("ascii"))))
        except (NtlmError, UnicodeDecodeError):
            return None


#: The SASL response that abandons an exchange (RFC 4954 section 4, RFC 3501 6.2.2,
#: RFC 5034 section 4), as a server reads it: without its line end.
CANCELLED = b"*"
