"""The server role: a KDC that knows nobody. Every AS-REQ for its realm is answered with
KDC_ERR_C_PRINCIPAL_UNKNOWN, one for another realm with KDC_ERR_WRONG_REALM: enough for a
client, kinit or a firewall audit to prove that a KDC answers on the port, and never a ticket."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from portcall.protocols.base import (
    PeerClosed,
    ReplyTooLong,
    Send,
    ServerHandshake,
    ServerOptions,
    ServerSteps,
)
from portcall.protocols.framing import MAX_MESSAGE
from portcall.protocols.kerberos.messages import (
    AS_REQ,
    FIRST_BYTE,
    KDC_ERR_C_PRINCIPAL_UNKNOWN,
    KDC_ERR_WRONG_REALM,
    KRB_AP_ERR_MSG_TYPE,
    KRB_ERR_FIELD_TOOLONG,
    KRB_ERR_GENERIC,
    PVNO,
    KerberosFraming,
    MalformedMessage,
    decode,
    error_name,
    krb_error,
    principal_text,
    text,
)
from portcall.protocols.kerberos.schema import ASReq

#: Requests one TCP connection may make before the KDC hangs up.
MAX_REQUESTS = 20


class KerberosServer(KerberosFraming, ServerHandshake):
    """The KDC of `realm`; `clock` gives the time it reports (UTC).

    Left out, the realm is the options' AD domain in upper case (an Active Directory realm is
    its DNS domain so written) and the transport `options.transport`; without options the
    transport is UDP, Kerberos's usual one (RFC 4120 7.2.1).
    """

    protocol = "kerberos"
    display_name = "Kerberos"

    def __init__(
        self,
        options: ServerOptions | None = None,
        *,
        realm: str | None = None,
        transport: str | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        given = options or ServerOptions()
        self.realm = realm if realm is not None else given.ad_domain().upper()
        self._clock = clock or (lambda: datetime.now(UTC))
        self._set_transport(transport or (given.transport if options is not None else "udp"))
        super().__init__(options)
        self.reply_limit = MAX_MESSAGE

    def serve(self) -> ServerSteps:
        for _ in range(MAX_REQUESTS):
            try:
                wire = yield from self.read_message()
            except PeerClosed:
                return
            except (ReplyTooLong, MalformedMessage):
                # Section 7.2.2: a length the KDC cannot take is answered, then the stream ends.
                self.heard.append("(request too long or with an unknown extension)")
                yield Send(self.frame(self._error(KRB_ERR_FIELD_TOOLONG)))
                return
            yield Send(self.frame(self.answer(wire)))

    def answer(self, wire: bytes) -> bytes:
        """The KRB-ERROR that answers one request."""
        if wire[:1] != bytes([FIRST_BYTE[AS_REQ]]):
            self.heard.append("(not an AS-REQ)")
            return self._error(KRB_AP_ERR_MSG_TYPE, "only AS-REQ is served")
        try:
            request = decode(wire, ASReq())
        except MalformedMessage:
            self.heard.append("(malformed AS-REQ)")
            return self._error(KRB_ERR_GENERIC, "malformed AS-REQ")
        if int(request["pvno"]) != PVNO or int(request["msg-type"]) != AS_REQ:
            self.heard.append("(AS-REQ with a wrong version or message type)")
            return self._error(KRB_AP_ERR_MSG_TYPE, "wrong version or message type")
        body = request["req-body"]
        realm = text(body["realm"])
        client = principal_text(body["cname"]) if body["cname"].isValue else "(no client)"
        code = KDC_ERR_C_PRINCIPAL_UNKNOWN if realm == self.realm else KDC_ERR_WRONG_REALM
        self.heard.append(f"AS-REQ {client[:100]}@{realm[:100]}: {error_name(code)}")
        return krb_error(code, self.realm, self._clock(), body)

    def _error(self, code: int, note: str = "") -> bytes:
        return krb_error(code, self.realm, self._clock(), note=note)


__all__ = ["MAX_REQUESTS", "KerberosServer"]
