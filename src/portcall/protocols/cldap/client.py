"""The client role: the LDAP ping a DC locator sends (MS-ADTS 6.3.3), and what the
NETLOGON_SAM_LOGON_RESPONSE_EX in its answer says about the domain controller."""

from __future__ import annotations

import secrets
from collections.abc import Generator
from typing import Any, Final

from pyasn1_modules import rfc2251

from portcall.protocols.base import (
    Event,
    Handshake,
    PeerClosed,
    ProbeOptions,
    ReplyTooLong,
    Send,
    ServiceInfo,
    Steps,
)
from portcall.protocols.cldap.messages import (
    NETLOGON_ATTRIBUTE,
    CldapFraming,
    MalformedMessage,
    NetlogonResponse,
    decode_message,
    decode_response,
    flag_names,
    ping_request,
)
from portcall.protocols.ldap.messages import result_of, unbind_request
from portcall.protocols.sniff import identify

#: Replies to one ping: an entry and a done; a peer that sends more is not answering it.
MAX_REPLIES: Final = 8


class CldapClient(CldapFraming, Handshake):
    """Sends the LDAP ping for `domain` and decodes the Netlogon answer.

    `info.details` holds ``netlogon`` (dc_name, domain, forest, site, client_site,
    netbios_domain, netbios_name, user, domain_guid, flags and flag_names, opcode, nt_version)
    when the DC answered for the domain, else ``netlogon`` None and a note; ``result`` is the
    SearchResultDone's code name. `message_id` fixes the message ID for recorded transcripts.
    """

    protocol = "cldap"
    display_name = "CLDAP"

    def __init__(
        self,
        options: ProbeOptions | None = None,
        *,
        domain: str | None = None,
        transport: str | None = None,
        message_id: int | None = None,
    ) -> None:
        # Without options (a role used on its own) the protocol's usual transport, UDP.
        transport = transport or (options.transport if options is not None else "udp")
        options = options or ProbeOptions()
        self.domain = (domain or options.ad_domain()).strip().rstrip(".")
        self.message_id = message_id or secrets.randbelow(2**31 - 2) + 1
        self._set_transport(transport)
        super().__init__(options)

    def run(self) -> Steps:
        # An LDAPMessage frames itself over TCP, and is the whole datagram over UDP.
        yield Send(ping_request(self.message_id, self.domain))
        try:
            response, result = yield from self._replies()
        except (PeerClosed, ReplyTooLong, MalformedMessage) as error:
            if self._stranger():
                raise self.wrong_protocol(str(error)) from None
            raise
        if self.transport == "tcp":
            yield Send(unbind_request(self.message_id + 1))
        return self._info(response, result)

    def _stranger(self) -> bool:
        """Whether another protocol answered rather than a broken LDAP peer: the sniffer names
        it, or its first byte does not even open a BER SEQUENCE."""
        if not self.first_bytes:
            return False
        named = identify(self.first_bytes)
        return (named is not None and named != "LDAP") or self.first_bytes[0] != 0x30

    def _replies(self) -> Generator[Event, None, tuple[NetlogonResponse | None, str]]:
        response: NetlogonResponse | None = None
        for _ in range(MAX_REPLIES):
            op = yield from self._reply()
            kind = op.getName()
            if kind == "searchResEntry":
                response = _netlogon(op.getComponent()) or response
            elif kind == "searchResDone":
                return response, result_of(op.getComponent()).name
            elif kind != "searchResRef":
                raise self.wrong_protocol(f"a {kind} in answer to the LDAP ping")
        raise self.wrong_protocol(f"more than {MAX_REPLIES} replies to one LDAP ping")

    def _reply(self) -> Generator[Event, None, Any]:
        frame = yield from self.read_message()
        message = decode_message(frame, rfc2251.LDAPMessage())
        received = int(message["messageID"])
        if received != self.message_id:
            raise self.wrong_protocol(f"a reply to message {received}, not {self.message_id}")
        return message["protocolOp"]

    def _info(self, response: NetlogonResponse | None, result: str) -> ServiceInfo:
        info = ServiceInfo(protocol=self.protocol, details={"result": result})
        info.details["transport"] = self.transport
        if response is None:
            info.details["netlogon"] = None
            info.notes.append(
                f"the LDAP ping for {self.domain} returned no Netlogon entry ({result}):"
                " this is not an Active Directory domain controller of that domain"
            )
            return info
        info.details["netlogon"] = response.details()
        names = response.names
        info.product = "Active Directory domain controller"
        info.banner = f"{names['dc_name']} (domain {names['domain']}, site {names['site']})"
        info.capabilities = flag_names(response.flags)
        return info


def _netlogon(entry: Any) -> NetlogonResponse | None:
    """The decoded Netlogon value of a SearchResultEntry, None when it has none."""
    for item in entry["attributes"]:
        name = bytes(item["type"]).decode("utf-8", "replace")
        if name.lower() == NETLOGON_ATTRIBUTE.lower() and len(item["vals"]):
            return decode_response(bytes(item["vals"][0]))
    return None
