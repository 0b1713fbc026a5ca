"""The server role: answers the LDAP ping as a domain controller does (MS-ADTS 6.3.3.2), with a
NETLOGON_SAM_LOGON_RESPONSE_EX built from its domain, DC name, site and flags."""

from __future__ import annotations

import struct
import uuid
from collections.abc import Generator
from typing import Any, Final

from portcall.protocols.base import (
    LocalProtocolError,
    PeerClosed,
    ReplyTooLong,
    Send,
    ServerEvent,
    ServerHandshake,
    ServerOptions,
    ServerSteps,
)
from portcall.protocols.cldap.messages import (
    LOGON_SAM_LOGON_RESPONSE_EX,
    RESPONSE_NT_VERSION,
    SAMBA_DC_FLAGS,
    CldapFraming,
    MalformedMessage,
    NetlogonResponse,
    decode_message,
    encode_response,
    netlogon_entry,
    ping_terms,
    request_schema,
)
from portcall.protocols.dns.server import dc_host_name
from portcall.protocols.ldap import RESPONSE_TO
from portcall.protocols.ldap.messages import (
    PROTOCOL_ERROR,
    SUCCESS,
    UNWILLING_TO_PERFORM,
    notice_of_disconnection,
    result_message,
)

#: The site a new forest's first DC sits in.
DEFAULT_SITE: Final = "Default-First-Site-Name"
#: The domain GUID the responder claims unless given one (a fixed one, so runs compare).
DEFAULT_DOMAIN_GUID: Final = uuid.UUID("5e0c7a1e-2003-4e0c-8a2d-000000000135")
#: Requests one connection or peer may make before the responder stops answering.
MAX_REQUESTS: Final = 64
#: NETLOGON_NT_VERSION_5EX: the client can read the _EX structure.
_NT_VERSION_5EX_BIT: Final = 0x4


class CldapServer(CldapFraming, ServerHandshake):
    """Answers LDAP pings for `domain`: an entry holding the Netlogon structure and a done;
    a search for another domain, or not a ping, gets an empty done. Over UDP each datagram is
    answered on its own, so a driver may keep one server per peer or make one per datagram; a
    datagram that is not LDAP is dropped unanswered. Over TCP it ends the connection with a
    notice of disconnection."""

    protocol = "cldap"
    display_name = "CLDAP"

    def __init__(
        self,
        options: ServerOptions | None = None,
        *,
        domain: str | None = None,
        dc_name: str | None = None,
        site: str = DEFAULT_SITE,
        flags: int = SAMBA_DC_FLAGS,
        domain_guid: uuid.UUID = DEFAULT_DOMAIN_GUID,
        transport: str | None = None,
    ) -> None:
        # Left out, the domain, DC name and transport come from the options (the responder's);
        # without options the transport is UDP, the LDAP ping's own (MS-ADTS 6.3.3).
        given = options or ServerOptions()
        self._set_transport(transport or (given.transport if options is not None else "udp"))
        super().__init__(options)
        self.domain = (domain if domain is not None else given.ad_domain()).strip().rstrip(".")
        self.dc_name = (dc_name or dc_host_name(options, self.domain)).rstrip(".")
        self.site = site
        self.flags = flags
        self.domain_guid = domain_guid

    def serve(self) -> ServerSteps:
        try:
            for _ in range(MAX_REQUESTS):
                if not (yield from self._one_request()):
                    return
        except PeerClosed:
            return
        except (MalformedMessage, ReplyTooLong) as error:
            self.heard.append("(malformed request)")
            yield Send(notice_of_disconnection(PROTOCOL_ERROR, str(error)))

    def _one_request(self) -> Generator[ServerEvent, None, bool]:
        try:
            frame = yield from self.read_message()
            message = decode_message(frame, request_schema())
        except MalformedMessage:
            if self.transport == "tcp":
                raise
            self.heard.append("(malformed datagram, dropped)")
            return True
        message_id, op = int(message["messageID"]), message["protocolOp"]
        kind = str(op.getName())
        if kind in ("unbindRequest", "abandonRequest"):
            # RFC 4511 4.3 and 4.11: neither has a response.
            self.heard.append("UNBIND" if kind == "unbindRequest" else "ABANDON")
            return kind != "unbindRequest"
        if kind == "searchRequest":
            yield Send(self._search(message_id, op.getComponent()))
        elif kind in RESPONSE_TO:
            self.heard.append(kind)
            yield Send(result_message(message_id, RESPONSE_TO[kind], UNWILLING_TO_PERFORM))
        elif self.transport == "tcp":
            raise MalformedMessage(f"a {kind}, which only a server sends")
        else:
            self.heard.append(f"({kind}, dropped)")
        return True

    def _search(self, message_id: int, search: Any) -> bytes:
        done = result_message(message_id, "searchResDone", SUCCESS)
        terms = ping_terms(search) if _is_root_base(search) else None
        if terms is None:
            self.heard.append("SEARCH (not an LDAP ping)")
            return done
        asked = terms.get("dnsdomain", self.domain.encode()).decode("utf-8", "replace")
        self.heard.append(f"LDAP PING {asked}")
        if asked.rstrip(".").lower() != self.domain.lower() or not _wants_ex(terms):
            return done
        user = terms.get("user", b"").decode("utf-8", "replace")
        return self._entry(message_id, user) + done

    def _entry(self, message_id: int, user: str) -> bytes:
        try:
            blob = encode_response(self.response(user))
        except LocalProtocolError:
            # A user name no DNS-style name can carry is not echoed back.
            blob = encode_response(self.response())
        return netlogon_entry(message_id, blob)

    def response(self, user: str = "") -> NetlogonResponse:
        """The structure this DC answers with."""
        host = self.dc_name.split(".")[0]
        names = {
            "forest": self.domain,
            "domain": self.domain,
            "dc_name": self.dc_name,
            "netbios_domain": self.domain.split(".")[0].upper()[:15],
            "netbios_name": host.upper()[:15],
            "user": user,
            "site": self.site,
            "client_site": self.site,
        }
        return NetlogonResponse(
            self.flags, self.domain_guid, names, LOGON_SAM_LOGON_RESPONSE_EX, RESPONSE_NT_VERSION
        )


def _is_root_base(search: Any) -> bool:
    return bytes(search["baseObject"]) == b"" and int(search["scope"]) == 0


def _wants_ex(terms: dict[str, bytes]) -> bool:
    """Whether NtVer asks for the _EX structure (MS-ADTS 6.3.1.1); a ping without NtVer, or
    with a value that is not 4 bytes, is answered with nothing here."""
    value = terms.get("ntver", b"")
    if len(value) != 4:
        return False
    version: int = struct.unpack("<I", value)[0]
    return bool(version & _NT_VERSION_5EX_BIT)
