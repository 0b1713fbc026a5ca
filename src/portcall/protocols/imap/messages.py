"""IMAP4 reply shapes both roles use."""

from __future__ import annotations

import re
from dataclasses import dataclass

#: A line that announces a literal: `{n}` (or the LITERAL+ form `{n+}`) right before CRLF.
LITERAL_END = re.compile(r"\{(\d{1,10})\+?\}$")

#: Literals a client accepts in all the responses of one handshake. The responses it asks for
#: (greeting, CAPABILITY, STARTTLS) carry none in practice; each one costs a read and a search,
#: so a bound keeps a reply of thousands of tiny literals from holding the event loop.
MAX_LITERALS = 64

#: Dovecot's login process says this, as an untagged OK, while its auth process is not ready;
#: the real greeting follows once it is.
AUTH_WAITING = "Waiting for authentication"


@dataclass(frozen=True)
class Completion:
    """A tagged reply and the untagged lines (without `* `) that came before it."""

    status: str
    text: str
    untagged: tuple[str, ...]
