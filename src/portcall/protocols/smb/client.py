"""The client role: SMB2 NEGOTIATE, then a SESSION_SETUP carrying an NTLMSSP NEGOTIATE_MESSAGE
to read the server's CHALLENGE_MESSAGE, and stop there: no AUTHENTICATE_MESSAGE is ever sent."""

from __future__ import annotations

import os
from collections.abc import Callable, Generator

from portcall.protocols import spnego
from portcall.protocols.base import (
    Event,
    Handshake,
    LocalProtocolError,
    PeerClosed,
    ProbeOptions,
    Send,
    ServiceInfo,
    ServiceRefused,
    Steps,
)
from portcall.protocols.ntlm.messages import (
    SIGNATURE,
    NtlmError,
    negotiate_message,
    parse_challenge,
    windows_name,
)
from portcall.protocols.peertext import quoted
from portcall.protocols.smb import smb1
from portcall.protocols.smb.messages import (
    FLAGS_SERVER_TO_REDIR,
    FRAME_HEADER,
    MAX_KEEPALIVES,
    NEGOTIATE,
    SESSION_SETUP,
    SIGNING_REQUIRED,
    SMB1_MAGIC,
    STATUS_MORE_PROCESSING_REQUIRED,
    STATUS_SUCCESS,
    WILDCARD,
    Header,
    SmbError,
    capability_names,
    describe,
    dialect_name,
    frame,
    frame_length,
    negotiate_request,
    parse_header,
    parse_negotiate_response,
    session_setup_blob,
    session_setup_request,
    status_name,
)


class SmbClient(Handshake):
    """Negotiates SMB2 and reads the NTLM identity.

    `info.details` holds the negotiate facts (``dialect``, ``signing_required``,
    ``server_guid``, ``system_time``, max sizes, ``capabilities``), and ``ntlm`` with the
    names and Windows version of the CHALLENGE_MESSAGE when the server sent one. A server that
    answers in SMB1 gives ``dialect`` "NT LM 0.12 (SMB1)" and ``smb1_only`` true.
    SMB2 runs over TCP only (MS-SMB2 2.1), so `transport` must be "tcp".
    """

    protocol = "smb"
    display_name = "SMB"

    def __init__(
        self,
        options: ProbeOptions | None = None,
        *,
        transport: str | None = None,
        multi_protocol: bool = True,
        random: Callable[[int], bytes] = os.urandom,
    ) -> None:
        super().__init__(options)
        transport = transport or self.options.transport
        if transport != "tcp":
            raise LocalProtocolError(f"SMB2 runs over TCP only, not {transport!r}")
        self.transport = transport
        #: Open with the SMB1 multi-protocol NEGOTIATE, as Windows clients do: a server that
        #: speaks SMB1 only (Windows 2000, Server 2003) closes on a bare SMB2 hello.
        self.multi_protocol = multi_protocol
        self._random = random
        self._message_id = 0

    def run(self) -> Steps:
        info = ServiceInfo(protocol=self.protocol)
        message = yield from self._hello()
        if message[:4] == SMB1_MAGIC:
            return self._smb1(info, message)
        self._negotiated(info, message)
        yield from self._start_ntlm(info)
        return info

    def _request(self, build: Callable[[int], bytes]) -> Send:
        """An SMB2 request framed, with the next message ID (MS-SMB2 3.2.4.1.3)."""
        message_id, self._message_id = self._message_id, self._message_id + 1
        return Send(frame(build(message_id)))

    def _hello(self) -> Generator[Event, None, bytes]:
        """The server's answer to NEGOTIATE: SMB1, or SMB2 with the dialect it chose."""
        if self.multi_protocol:
            yield Send(frame(smb1.negotiate_request()))
            self._message_id = 1
            message = yield from self._read_message()
            if message[:4] == SMB1_MAGIC or not self._wildcard(message):
                return message
        guid, salt = self._random(16), self._random(32)
        yield self._request(lambda mid: negotiate_request(guid, salt, mid))
        return (yield from self._read_message())

    def _wildcard(self, message: bytes) -> bool:
        """Whether an SMB2 server answered the SMB1 hello with "SMB 2.???", asking for an
        SMB2 NEGOTIATE (MS-SMB2 3.3.5.3.1)."""
        header = self._reply_header(message, NEGOTIATE)
        return header.status == STATUS_SUCCESS and (
            parse_negotiate_response(message).dialect == WILDCARD
        )

    def _smb1(self, info: ServiceInfo, message: bytes) -> ServiceInfo:
        if self.multi_protocol:
            info.details.update(smb1.describe_response(message))
        else:
            info.details.update({"dialect": "SMB1", "smb1_only": True})
        info.banner = "SMB1"
        info.notes.append("the server answered NEGOTIATE in SMB1: it speaks SMB1 only")
        return info

    def _start_ntlm(self, info: ServiceInfo) -> Generator[Event, None, None]:
        """Raw NTLMSSP first, as Windows and Samba accept it; SPNEGO-wrapped once more when
        the server turns the raw token down."""
        raw = negotiate_message()
        yield self._request(lambda mid: session_setup_request(raw, mid))
        reply = yield from self._read_message()
        status = self._challenged(info, reply)
        if status is None:
            return
        yield self._request(lambda mid: session_setup_request(spnego.wrap_init(raw), mid))
        try:
            reply = yield from self._read_message()
        except PeerClosed:
            reply = b""
        status = self._challenged(info, reply) if reply else status
        if status is not None:
            info.notes.append(
                f"the SMB server answered the NTLM start with {status_name(status)},"
                " so it told no NTLM identity"
            )

    def _negotiated(self, info: ServiceInfo, message: bytes) -> None:
        header = self._reply_header(message, NEGOTIATE)
        if header.status != STATUS_SUCCESS:
            raise ServiceRefused(f"the SMB server refused NEGOTIATE: {status_name(header.status)}")
        answer = parse_negotiate_response(message)
        info.details.update(describe(answer))
        info.capabilities = capability_names(answer.capabilities)
        required = answer.security_mode & SIGNING_REQUIRED
        signing = "signing required" if required else "signing not required"
        info.banner = f"SMB {dialect_name(answer.dialect)}, {signing}"

    def _challenged(self, info: ServiceInfo, message: bytes) -> int | None:
        """Record the NTLM identity a SESSION_SETUP response carries; the status otherwise."""
        header = self._reply_header(message, SESSION_SETUP)
        if header.status != STATUS_MORE_PROCESSING_REQUIRED:
            return header.status
        challenge = parse_challenge(_ntlm_token(session_setup_blob(message)))
        info.details["ntlm"] = challenge.identity()
        if challenge.version is not None and challenge.version.build:
            info.product = windows_name(challenge.version)
        return None

    def _reply_header(self, message: bytes, command: int) -> Header:
        header = parse_header(message)
        if not header.flags & FLAGS_SERVER_TO_REDIR or header.command != command:
            raise self.wrong_protocol(
                f"an SMB2 command {header.command} where the answer to {command} was due"
            )
        return header

    def _read_message(self) -> Generator[Event, None, bytes]:
        """One framed message; anything that is not SMB is a wrong protocol."""
        for _ in range(MAX_KEEPALIVES + 1):
            head = yield from self.read_exactly(FRAME_HEADER)
            try:
                length = frame_length(head)
            except SmbError:
                seen = yield from self.gather_evidence(head)
                raise self.wrong_protocol(f"it sent {quoted(seen)}") from None
            if length is None:
                continue
            message = yield from self.read_exactly(length)
            if message[:4] not in (b"\xfeSMB", SMB1_MAGIC):
                raise self.wrong_protocol(f"a frame that holds no SMB header ({message[:8]!r})")
            return message
        raise self.wrong_protocol(f"more than {MAX_KEEPALIVES} keep-alives and no reply")


def _ntlm_token(blob: bytes) -> bytes:
    """The NTLMSSP message of a security blob, raw or inside a SPNEGO negTokenResp."""
    if blob.startswith(SIGNATURE):
        return blob
    try:
        return spnego.response_token(blob)
    except spnego.SpnegoError as error:
        raise NtlmError(str(error)) from None
