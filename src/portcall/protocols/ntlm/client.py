"""Starting NTLM over the text protocols, as nmap's smtp-, imap-, pop3- and http-ntlm-info
scripts do: send a NEGOTIATE_MESSAGE in base64, read the CHALLENGE_MESSAGE back, then cancel.

SMTP (`AUTH NTLM`, RFC 4954 continuations "334"), POP3 (`AUTH NTLM`, RFC 5034 "+ "), and IMAP
(`AUTHENTICATE NTLM`, RFC 3501 "+ ") all frame the exchange the same way: a command, an empty
continuation, the token on a line of its own, a continuation carrying the challenge, and "*"
to cancel. HTTP carries the tokens in `Authorization` and `WWW-Authenticate` headers.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass
from typing import Final

from portcall.protocols.base import Event, RemoteProtocolError, Send, ServiceInfo
from portcall.protocols.ntlm.messages import (
    Challenge,
    NtlmError,
    negotiate_message,
    parse_challenge,
)

#: A base64 token longer than this is not an NTLM challenge (a few hundred bytes in practice).
MAX_TOKEN_CHARS: Final = 8192
#: The line that abandons a SASL exchange in all three protocols.
CANCEL: Final = b"*\r\n"


@dataclass(frozen=True)
class TextFraming:
    """How one text protocol starts NTLM and marks its continuations."""

    name: str
    start: bytes
    continuation: bytes


SMTP: Final = TextFraming("SMTP", b"AUTH NTLM\r\n", b"334")
POP3: Final = TextFraming("POP3", b"AUTH NTLM\r\n", b"+")
IMAP: Final = TextFraming("IMAP", b"N1 AUTHENTICATE NTLM\r\n", b"+")


def encode_token(token: bytes) -> str:
    return base64.b64encode(token).decode("ascii")


def decode_token(text: str) -> bytes:
    """Strict base64 (RFC 4648 alphabet, padding required), bounded in length."""
    text = text.strip()
    if len(text) > MAX_TOKEN_CHARS:
        raise NtlmError(f"an NTLM token of more than {MAX_TOKEN_CHARS} characters")
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as error:
        raise NtlmError(f"an NTLM token that is not base64 ({error})") from None


def negotiate_line() -> bytes:
    """The client's NEGOTIATE_MESSAGE as a SASL response line."""
    return encode_token(negotiate_message()).encode("ascii") + b"\r\n"


def is_continuation(framing: TextFraming, line: bytes) -> bool:
    head = line.rstrip(b"\r\n")
    return head == framing.continuation or head.startswith(framing.continuation + b" ")


def challenge_from_line(framing: TextFraming, line: bytes) -> Challenge:
    """The CHALLENGE_MESSAGE a continuation line carries ("334 <b64>" or "+ <b64>")."""
    if not is_continuation(framing, line):
        raise NtlmError(f"{framing.name} answered the NTLM negotiation with {line[:60]!r}")
    token = line.rstrip(b"\r\n")[len(framing.continuation) :].decode("latin-1")
    return parse_challenge(decode_token(token))


def authorization_header(scheme: str = "NTLM") -> str:
    """The value of the `Authorization` header that starts NTLM ("NTLM" or "Negotiate")."""
    return f"{scheme} {encode_token(negotiate_message())}"


def challenge_from_headers(values: Iterable[str]) -> Challenge:
    """The challenge in the `WWW-Authenticate` values of a 401: the first NTLM or Negotiate
    value that carries a token (a raw NTLMSSP token either way)."""
    for value in values:
        scheme, _, token = value.strip().partition(" ")
        if scheme.lower() in ("ntlm", "negotiate") and token.strip():
            return parse_challenge(decode_token(token))
    raise NtlmError("no WWW-Authenticate: NTLM header with a challenge token")


def record_challenge(info: ServiceInfo, token: str) -> bool:
    """Put the identity a base64 CHALLENGE_MESSAGE names into `info.details["ntlm"]`, in the
    shape the SMB client gives it. A token that does not decode is only noted (and False is
    returned): the service has already proved itself, a broken challenge does not undo that."""
    try:
        challenge = parse_challenge(decode_token(token))
    except NtlmError as error:
        note_ntlm(info, f"the NTLM challenge could not be read: {error}")
        return False
    info.details["ntlm"] = challenge.identity()
    return True


def note_ntlm(info: ServiceInfo, text: str) -> None:
    """Why no NTLM identity was learnt, in the details and the notes."""
    info.details["ntlm_error"] = text
    info.notes.append(f"NTLM: {text}")


@dataclass(frozen=True)
class Answer:
    """A server's reply within the NTLM exchange, as the text protocol's client read it."""

    #: A continuation (SMTP 334, POP3 and IMAP "+"): the server waits for the next line.
    more: bool
    #: A continuation's text (the base64 token), else the reply, quoted, for a note.
    text: str


#: Reads the next reply of the exchange: the protocol's own reading, the same steps for all.
ReadAnswer = Callable[[], Generator[Event, None, Answer]]


def exchange(
    info: ServiceInfo, command: str, start: bytes, read: ReadAnswer
) -> Generator[Event, None, None]:
    """The NTLM exchange of SMTP, POP3 and IMAP4: `start` (AUTH NTLM or AUTHENTICATE NTLM),
    the NEGOTIATE_MESSAGE on the empty continuation, the CHALLENGE_MESSAGE read from the next
    one into `info`, then "*", which the server must refuse (RFC 4954 4, RFC 5034 4, RFC 3501
    6.2.2). A refusal on the way is noted; going on after the cancel is the peer's fault."""
    yield Send(start)
    answer = yield from read()
    if not answer.more:
        note_ntlm(info, f"{command} was answered with {answer.text}")
        return
    yield Send(negotiate_line())
    answer = yield from read()
    if not answer.more:
        note_ntlm(info, f"the NTLM negotiation was answered with {answer.text}")
        return
    record_challenge(info, answer.text)
    yield Send(CANCEL)
    if (yield from read()).more:
        raise RemoteProtocolError("the server went on with NTLM after the cancel")
