"""The server role: answers as an Active Directory domain controller answers a client that
has not authenticated: anonymous bind, the rootDSE, StartTLS; every other request is refused.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from pyasn1.codec.ber import decoder

from portcall.protocols.base import (
    PeerClosed,
    ReplyTooLong,
    Send,
    ServerEvent,
    ServerHandshake,
    ServerOptions,
    ServerSteps,
    StartTLS,
)
from portcall.protocols.ldap.messages import (
    ADMIN_LIMIT_EXCEEDED,
    AUTH_METHOD_NOT_SUPPORTED,
    DECODE_ERRORS,
    INVALID_CREDENTIALS,
    MESSAGE_SCHEMA,
    NO_SUCH_OBJECT,
    OPERATIONS_ERROR,
    PROTOCOL_ERROR,
    STARTTLS_OID,
    SUCCESS,
    UNAVAILABLE_CRITICAL_EXTENSION,
    UNWILLING_TO_PERFORM,
    Attributes,
    FramingError,
    entry_message,
    extended_response,
    notice_of_disconnection,
    read_frame,
    result_message,
    text_of,
)
from portcall.protocols.ldap.rootdse import (
    AD_CONTROLS,
    AD_EXTENSIONS,
    ad_rootdse,
    neutral_rootdse,
)
from portcall.protocols.peertext import quoted

#: Refused requests one connection may make before the responder hangs up.
MAX_FAILURES: Final = 20

#: Each request that has a response, and that response (RFC 4511 section 4.2 to 4.12).
RESPONSE_TO: Final = {
    "bindRequest": "bindResponse",
    "searchRequest": "searchResDone",
    "modifyRequest": "modifyResponse",
    "addRequest": "addResponse",
    "delRequest": "delResponse",
    "modDNRequest": "modDNResponse",
    "compareRequest": "compareResponse",
    "extendedReq": "extendedResp",
}
#: Requests the responder never carries out: it holds no directory to change or compare.
_REFUSED: Final = {
    "modifyRequest": "MODIFY",
    "addRequest": "ADD",
    "delRequest": "DELETE",
    "modDNRequest": "MODDN",
    "compareRequest": "COMPARE",
}

# Active Directory's diagnostics (the text after the code is what clients show). An anonymous
# client of a Windows Server 2003 forest may bind and read the rootDSE, nothing else (dSHeuristics
# fLDAPBlockAnonOps, MS-ADTS 6.1.1.2.4.1.2; Microsoft KB 326690); Windows 2000 let it search, so
# there a base the responder does not hold is simply not found.
_AD_BIND_FIRST: Final = (
    "000004DC: LdapErr: DSID-0C0905FF, comment: In order to perform this operation a successful"
    " bind must be completed on the connection., data 0, vece"
)
_AD_NO_OBJECT: Final = "0000208D: NameErr: DSID-031001CD, problem 2001 (NO_OBJECT), data 0"
_AD_BAD_PASSWORD: Final = (
    "80090308: LdapErr: DSID-0C090334, comment: AcceptSecurityContext error, data 52e, vece"
)


class _Malformed(Exception):
    """A request the responder cannot take as an LDAPMessage (RFC 4511 section 4.1.1)."""


@dataclass(frozen=True)
class _Reply:
    data: bytes
    code: int
    upgrade: bool = False


class LdapServer(ServerHandshake):
    """Answers as an Active Directory domain controller answers a client that has not proved
    who it is (the neutral profile: as a plain LDAP server): anonymous binds succeed, the rootDSE
    is readable, StartTLS upgrades, and everything else is refused with the proper result code.
    """

    protocol = "ldap"
    display_name = "LDAP"

    def __init__(self, options: ServerOptions | None = None) -> None:
        super().__init__(options)
        self._in_tls = self.options.implicit_tls
        self._failures = 0

    def serve(self) -> ServerSteps:
        try:
            while (yield from self._one_request()):
                pass
        except PeerClosed:
            return
        except ReplyTooLong:
            limit = self.options.line_limit
            yield Send(notice_of_disconnection(PROTOCOL_ERROR, f"request over {limit} bytes"))
        except _Malformed as error:
            # RFC 4511 section 4.1.1: say so with a notice of disconnection, then hang up.
            self.heard.append("(malformed request)")
            yield Send(notice_of_disconnection(PROTOCOL_ERROR, str(error)))

    def _one_request(self) -> Generator[ServerEvent, None, bool]:
        """Read one request and answer it; False once the conversation is over."""
        message_id, op, controls = yield from self._receive()
        kind = op.getName()
        if kind == "unbindRequest":
            self.heard.append("UNBIND")
            return False
        if kind == "abandonRequest":
            # RFC 4511 section 4.11: no response; every operation here is already answered.
            self.heard.append(f"ABANDON {int(op.getComponent())}")
            return True
        reply = self._reply(message_id, kind, op.getComponent(), controls)
        yield Send(reply.data)
        if reply.upgrade:
            yield StartTLS()
            self._in_tls = True
        if reply.code != SUCCESS:
            self._failures += 1
        if self._failures < MAX_FAILURES:
            return True
        yield Send(notice_of_disconnection(ADMIN_LIMIT_EXCEEDED, "too many refused requests"))
        return False

    def _receive(self) -> Generator[ServerEvent, None, tuple[int, Any, list[str]]]:
        """The next request: its message ID, protocolOp and the OIDs of its critical controls."""
        try:
            frame = yield from read_frame(self, self.options.line_limit)
            message, _ = decoder.decode(frame, asn1Spec=MESSAGE_SCHEMA.clone())
        except FramingError as error:
            raise _Malformed(f"the request is not an LDAPMessage ({error})") from None
        except DECODE_ERRORS:
            raise _Malformed("the request is not a well-formed LDAPMessage") from None
        message_id = int(message["messageID"])
        if message_id == 0:
            raise _Malformed("message ID 0 is reserved for the server's notices")
        critical = [_shown(c["controlType"], 100) for c in message["controls"] if c["criticality"]]
        return message_id, message["protocolOp"], critical

    def _reply(self, message_id: int, kind: str, request: Any, controls: list[str]) -> _Reply:
        if kind not in RESPONSE_TO:
            raise _Malformed(f"a {kind}, which only a server sends")
        unknown = [oid for oid in controls if oid not in self._controls()]
        if unknown:
            # RFC 4511 section 4.1.11: a critical control we do not know stops the operation.
            self.heard.append(f"{kind} with critical control {unknown[0]}")
            text = f"critical control {unknown[0]} is not supported"
            return _refusal(message_id, kind, UNAVAILABLE_CRITICAL_EXTENSION, text)
        if kind == "bindRequest":
            return self._bind(message_id, request)
        if kind == "searchRequest":
            return self._search(message_id, request)
        if kind == "extendedReq":
            return self._extended(message_id, request)
        self.heard.append(_REFUSED[kind])
        return _refusal(message_id, kind, UNWILLING_TO_PERFORM, "the directory is read-only")

    # -- bind ----------------------------------------------------------------------------

    def _bind(self, message_id: int, request: Any) -> _Reply:
        version = int(request["version"])
        name = _shown(request["name"])
        auth = request["authentication"]
        method = auth.getName()
        if method == "simple":
            password = bytes(auth.getComponent())
            self.heard.append(f"BIND {name or 'anonymous'}{' ***' if password else ''}")
        else:
            # SASL, or AD's NTLM choices: the responder can prove nobody's identity.
            if method == "sasl":
                method = f"SASL {_shown(auth.getComponent()['mechanism'], 40)}"
            self.heard.append(f"BIND {method} ***")
            text = f"{method} is not available"
            return _refusal(message_id, "bindRequest", AUTH_METHOD_NOT_SUPPORTED, text)
        if version not in (2, 3):
            # RFC 4511 section 4.2.2: an unsupported version is a protocolError.
            text = f"LDAP version {version} is not supported"
            return _refusal(message_id, "bindRequest", PROTOCOL_ERROR, text)
        return self._simple_bind(message_id, name, password)

    def _simple_bind(self, message_id: int, name: str, password: bytes) -> _Reply:
        if not password and (not name or self._active_directory):
            # Anonymous (RFC 4513 section 5.1.1). A name without a password is an
            # unauthenticated bind (section 5.1.2): Active Directory lets it through as
            # anonymous, the neutral profile refuses it as RFC 4513 advises.
            return _Reply(result_message(message_id, "bindResponse", SUCCESS), SUCCESS)
        if not password:
            text = "unauthenticated binds are not allowed"
            return _refusal(message_id, "bindRequest", UNWILLING_TO_PERFORM, text)
        text = _AD_BAD_PASSWORD if self._active_directory else "invalid credentials"
        return _refusal(message_id, "bindRequest", INVALID_CREDENTIALS, text)

    # -- search --------------------------------------------------------------------------

    def _search(self, message_id: int, request: Any) -> _Reply:
        base = text_of(request["baseObject"])
        scope = str(request["scope"])
        shown = quoted(_shown(request["baseObject"]), limit=200)
        self.heard.append(f"SEARCH base={shown} scope={scope}")
        if base or scope != "baseObject":
            return self._search_refused(message_id)
        # The filter is not evaluated: every server answers (objectClass=*) here, and clients
        # ask nothing else of the rootDSE.
        wanted = {text_of(name).lower() for name in request["attributes"]}
        attributes = [(n, v) for n, v in self.rootdse() if _wanted(n, wanted)]
        entry = entry_message(message_id, attributes, types_only=bool(request["typesOnly"]))
        return _Reply(entry + result_message(message_id, "searchResDone", SUCCESS), SUCCESS)

    def _search_refused(self, message_id: int) -> _Reply:
        if self.options.profile == "exchange2003":
            return _refusal(message_id, "searchRequest", OPERATIONS_ERROR, _AD_BIND_FIRST)
        text = _AD_NO_OBJECT if self._active_directory else "no such object"
        return _refusal(message_id, "searchRequest", NO_SUCH_OBJECT, text)

    def rootdse(self) -> Attributes:
        """The rootDSE this connection shows, every attribute in the order it is sent."""
        if not self._active_directory:
            return neutral_rootdse(self.options.hostname, self._extensions())
        return ad_rootdse(self.options, self._extensions(), datetime.now(UTC))

    # -- extended operations -------------------------------------------------------------

    def _extended(self, message_id: int, request: Any) -> _Reply:
        oid = _shown(request["requestName"], 100)
        self.heard.append(f"EXTENDED {oid}")
        if oid != STARTTLS_OID or not self._knows_starttls:
            # RFC 4511 section 4.12: an operation the server does not know is a protocolError.
            text = f"extended operation {oid} is not supported"
            return _refusal(message_id, "extendedReq", PROTOCOL_ERROR, text)
        if self._in_tls:
            # RFC 4513 section 3.1.1: StartTLS over TLS is a sequencing error.
            text = "TLS is already in use on this connection"
            return _refusal(message_id, "extendedReq", OPERATIONS_ERROR, text)
        reply = extended_response(message_id, SUCCESS, name=STARTTLS_OID)
        return _Reply(reply, SUCCESS, upgrade=True)

    # -- what the profile claims ---------------------------------------------------------

    @property
    def _active_directory(self) -> bool:
        return self.options.profile in ("exchange2003", "exchange2000")

    @property
    def _knows_starttls(self) -> bool:
        return self.options.starttls and self.options.profile != "exchange2000"

    def _extensions(self) -> list[str]:
        # An implicit-TLS port (636, 3269) does not offer StartTLS: it runs TLS already.
        offered = self._knows_starttls and not self.options.implicit_tls
        starttls = [STARTTLS_OID] if offered else []
        if self.options.profile == "exchange2003":
            return starttls + list(AD_EXTENSIONS)
        return [] if self._active_directory else starttls

    def _controls(self) -> tuple[str, ...]:
        return AD_CONTROLS if self._active_directory else ()


def _shown(value: Any, limit: int = 200) -> str:
    """A client's string, cut short and with control characters masked: fit for a log line
    and for a diagnostic message."""
    return "".join(c if c.isprintable() else "?" for c in text_of(value)[:limit])


def _wanted(name: str, wanted: set[str]) -> bool:
    """RFC 4511 section 4.5.1.8: no list or "*" asks for all; "1.1" alone for none. Every
    rootDSE attribute is operational (RFC 4512 section 5.1), so "+" (RFC 3673) asks for all too.
    """
    return not wanted or bool(wanted & {"*", "+"}) or name.lower() in wanted


def _refusal(message_id: int, request: str, code: int, diagnostic: str) -> _Reply:
    """`request`'s own response carrying `code`."""
    response = RESPONSE_TO[request]
    if response == "extendedResp":
        return _Reply(extended_response(message_id, code, diagnostic), code)
    return _Reply(result_message(message_id, response, code, diagnostic), code)
