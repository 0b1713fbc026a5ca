"""The server role: answers SMB2 NEGOTIATE (3.1.1 or 2.1, as the client offers) and a
SESSION_SETUP carrying an NTLMSSP NEGOTIATE_MESSAGE with a CHALLENGE_MESSAGE naming the server;
anything else, an AUTHENTICATE_MESSAGE included, is refused and the connection closed."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Generator
from datetime import UTC, datetime
from typing import Final

from portcall.protocols import spnego
from portcall.protocols.base import (
    RemoteProtocolError,
    Send,
    ServerEvent,
    ServerHandshake,
    ServerOptions,
    ServerSteps,
)
from portcall.protocols.dns.server import dc_host_name
from portcall.protocols.ntlm.messages import (
    SIGNATURE,
    Identity,
    challenge_message,
    filetime,
    negotiate_flags,
)
from portcall.protocols.ntlm.server import host_identity
from portcall.protocols.smb import smb1
from portcall.protocols.smb.messages import (
    ENCRYPTION,
    FLAGS_SERVER_TO_REDIR,
    FRAME_HEADER,
    MAX_KEEPALIVES,
    NEGOTIATE,
    PREAUTH_INTEGRITY,
    SESSION_SETUP,
    SHA512,
    SIGNING_ENABLED,
    SIGNING_REQUIRED,
    SMB1_MAGIC,
    SMB2_MAGIC,
    SMB202,
    SMB210,
    SMB311,
    STATUS_INVALID_PARAMETER,
    STATUS_LOGON_FAILURE,
    STATUS_MORE_PROCESSING_REQUIRED,
    STATUS_NOT_SUPPORTED,
    WILDCARD,
    Header,
    NegotiateResponse,
    SmbError,
    encryption_context,
    error_response,
    frame,
    frame_length,
    id_list,
    negotiate_response,
    parse_header,
    parse_negotiate_request,
    preauth_context,
    session_setup_response,
    session_setup_token,
)

#: Requests one connection may make: an SMB1 hello, a negotiate, two session setups, slack.
MAX_REQUESTS: Final = 6
#: The dialects the responder speaks, most preferred first.
SERVER_DIALECTS: Final = (SMB311, SMB210, SMB202)
#: Ciphers the responder would pick from a 3.1.1 client's list, in order.
SERVER_CIPHERS: Final = (2, 1)
_CAPABILITIES: Final = {SMB311: 0x07, SMB210: 0x07, SMB202: 0x01}
_MAX_SIZE: Final = 8 * 1024 * 1024

Answer = tuple[bytes, bool]


def identity_for(options: ServerOptions) -> Identity:
    """The NTLM identity of the DC the responder plays: its DNS name (the host name, in the
    AD domain when it has one label) and that domain, as `ntlm.host_identity` names them."""
    return host_identity(options, dc_host_name(options, options.ad_domain()))


class SmbServer(ServerHandshake):
    """The SMB2 side of a domain controller, as far as an unauthenticated client gets.

    Without an `identity`, the NTLM challenge names the responder's host and AD domain (from
    the options), so that a client's view matches the DNS and CLDAP answers of the same run.
    """

    protocol = "smb"
    display_name = "SMB"

    def __init__(
        self,
        options: ServerOptions | None = None,
        *,
        signing_required: bool = False,
        server_guid: uuid.UUID | None = None,
        identity: Identity | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        random: Callable[[int], bytes] = os.urandom,
    ) -> None:
        super().__init__(options)
        self.transport = "tcp"
        self.signing_required = signing_required
        self.server_guid = server_guid or uuid.UUID(bytes=random(16))
        self.identity = identity or (identity_for(options) if options else Identity())
        self._clock = clock
        self._random = random
        self._dialect: int | None = None

    def serve(self) -> ServerSteps:
        for _ in range(MAX_REQUESTS):
            message = yield from self._read_request()
            if message is None:
                return
            reply, keep = self._answer(message)
            if reply:
                yield Send(frame(reply))
            if not keep:
                return

    def _read_request(self) -> Generator[ServerEvent, None, bytes | None]:
        """One framed SMB1 or SMB2 message, or None when the client left or sent garbage."""
        try:
            message = yield from self._read_frame()
        except RemoteProtocolError:
            return None
        if message is None or message[:4] not in (SMB2_MAGIC, SMB1_MAGIC):
            self.heard.append("a request that is not SMB")
            return None
        return message

    def _read_frame(self) -> Generator[ServerEvent, None, bytes | None]:
        for _ in range(MAX_KEEPALIVES + 1):
            length = frame_length((yield from self.read_exactly(FRAME_HEADER)))
            if length is not None:
                return (yield from self.read_exactly(length))
        return None

    def _answer(self, message: bytes) -> Answer:
        if message[:4] == SMB1_MAGIC:
            return self._smb1_hello(message)
        try:
            header = parse_header(message)
        except SmbError:
            return error_response(Header(NEGOTIATE, STATUS_INVALID_PARAMETER)), False
        reply = Header(
            header.command,
            message_id=header.message_id,
            flags=FLAGS_SERVER_TO_REDIR,
            credits=max(1, min(header.credits, 64)),
        )
        try:
            if header.command == NEGOTIATE and self._dialect is None:
                return self._negotiate(reply, message)
            if header.command == SESSION_SETUP and self._dialect is not None:
                return self._session_setup(reply, message)
        except (SmbError, spnego.SpnegoError):
            reply.status = STATUS_INVALID_PARAMETER
            return error_response(reply), False
        self.heard.append(f"SMB2 command {header.command} (refused)")
        reply.status = STATUS_NOT_SUPPORTED
        return error_response(reply), False

    # -- NEGOTIATE ------------------------------------------------------------------------

    def _negotiate(self, reply: Header, message: bytes) -> Answer:
        request = parse_negotiate_request(message)
        dialect = next((d for d in SERVER_DIALECTS if d in request.dialects), None)
        self.heard.append("NEGOTIATE")
        if dialect is None:
            reply.status = STATUS_NOT_SUPPORTED
            return error_response(reply), False
        answer = self._negotiate_answer(dialect)
        if dialect == SMB311:
            answer.contexts = self._contexts(request.contexts)
        self._dialect = dialect
        return negotiate_response(reply, answer), True

    def _negotiate_answer(self, dialect: int) -> NegotiateResponse:
        return NegotiateResponse(
            security_mode=SIGNING_ENABLED | (SIGNING_REQUIRED if self.signing_required else 0),
            dialect=dialect,
            server_guid=self.server_guid.bytes_le,
            capabilities=_CAPABILITIES.get(dialect, 0x01),
            max_transact=_MAX_SIZE,
            max_read=_MAX_SIZE,
            max_write=_MAX_SIZE,
            system_time=filetime(self._clock()),
            security_blob=spnego.server_hint(),
        )

    def _smb1_hello(self, message: bytes) -> Answer:
        """The SMB1 multi-protocol NEGOTIATE: "SMB 2.???" gets the wildcard dialect and waits
        for an SMB2 NEGOTIATE, "SMB 2.002" alone gets 2.0.2 (MS-SMB2 3.3.5.3.1). A client that
        offers SMB1 only gets the door: this responder speaks no SMB1."""
        try:
            offered = smb1.requested_dialects(message)
        except SmbError:
            offered = []
        self.heard.append("SMB1 NEGOTIATE")
        if self._dialect is not None or not {smb1.SMB2_002, smb1.SMB2_WILDCARD} & set(offered):
            return b"", False
        wildcard = smb1.SMB2_WILDCARD in offered
        dialect = WILDCARD if wildcard else SMB202
        reply = Header(NEGOTIATE, flags=FLAGS_SERVER_TO_REDIR)
        answer = self._negotiate_answer(dialect)
        if not wildcard:
            self._dialect = dialect
        return negotiate_response(reply, answer), True

    def _contexts(self, offered: dict[int, bytes]) -> dict[int, bytes]:
        """The 3.1.1 contexts: SHA-512 preauth integrity (which the client must offer) and one
        cipher from the client's list (0 when none is shared, MS-SMB2 3.3.5.4)."""
        if SHA512 not in id_list(offered.get(PREAUTH_INTEGRITY, b""), 0, 4):
            raise SmbError("a 3.1.1 NEGOTIATE without SHA-512 preauth integrity")
        contexts = dict([preauth_context(self._random(32))])
        if ENCRYPTION in offered:
            ciphers = id_list(offered[ENCRYPTION], 0, 2)
            chosen = next((c for c in SERVER_CIPHERS if c in ciphers), 0)
            contexts.update([encryption_context((chosen,))])
        return contexts

    # -- SESSION_SETUP --------------------------------------------------------------------

    def _session_setup(self, reply: Header, message: bytes) -> Answer:
        blob = session_setup_token(message)
        wrapped = not blob.startswith(SIGNATURE)
        token = spnego.mech_token(blob) if wrapped else blob
        try:
            flags = negotiate_flags(token)
        except RemoteProtocolError:
            # An AUTHENTICATE_MESSAGE, or anything else: no credentials are accepted here.
            self.heard.append("SESSION_SETUP with credentials (refused)")
            reply.status = STATUS_LOGON_FAILURE
            return error_response(reply), False
        self.heard.append("SESSION_SETUP NTLM NEGOTIATE")
        challenge = challenge_message(self.identity, self._random(8), flags, self._clock())
        reply.status = STATUS_MORE_PROCESSING_REQUIRED
        reply.session_id = int.from_bytes(self._random(8), "little") | 1
        body = spnego.wrap_response(challenge) if wrapped else challenge
        return session_setup_response(reply, body), True
