"""The server role: a kpasswd service that changes no password. Every request is refused the
way a KDC refuses an unauthenticated change: a reply with an empty AP-REP and a KRB-ERROR from
kadmin/changepw of its realm, the result code in its e-data. Enough for a client, a firewall
audit or a password tool to prove that kpasswd answers on the port; no request is ever obeyed."""

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
    KRB_ERR_FIELD_TOOLONG,
    KRB_ERR_GENERIC,
    KerberosFraming,
    MalformedMessage,
    decode,
    principal_text,
    text,
)
from portcall.protocols.kpasswd.messages import (
    KPASSWD_AUTHERROR,
    KPASSWD_BAD_VERSION,
    KPASSWD_MALFORMED,
    KRB_AP_ERR_MODIFIED,
    REQUEST_VERSIONS,
    error_reply,
    refusal,
    split,
)
from portcall.protocols.kpasswd.schema import APReq

#: Requests one TCP connection may make before the service hangs up.
MAX_REQUESTS = 20
#: What the refusal of an authenticated-looking request says (RFC 3244's AUTHERROR).
AUTH_NOTE = "the request fails authentication"


class KpasswdServer(KerberosFraming, ServerHandshake):
    """The kpasswd service of `realm` (the upper-cased AD domain of the options by default);
    `clock` gives the time it reports (UTC)."""

    protocol = "kpasswd"
    display_name = "kpasswd"

    def __init__(
        self,
        options: ServerOptions | None = None,
        *,
        realm: str | None = None,
        transport: str | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        transport = transport or (options.transport if options is not None else "udp")
        options = options or ServerOptions()
        self.realm = realm or options.ad_domain().upper()
        self._clock = clock or (lambda: datetime.now(UTC))
        self._set_transport(transport)
        super().__init__(options)
        self.reply_limit = MAX_MESSAGE

    def serve(self) -> ServerSteps:
        for _ in range(MAX_REQUESTS):
            try:
                wire = yield from self.read_message()
            except PeerClosed:
                return
            except (ReplyTooLong, MalformedMessage):
                # As a KDC does (RFC 4120 7.2.2): a length it cannot take is answered, then the
                # stream ends.
                self.heard.append("(request too long or with an unknown extension)")
                yield Send(self.frame(self._refuse(KRB_ERR_FIELD_TOOLONG, KPASSWD_MALFORMED)))
                return
            yield Send(self.frame(self.answer(wire)))

    def answer(self, wire: bytes) -> bytes:
        """The reply that refuses one request."""
        try:
            parsed = split(wire)
        except MalformedMessage:
            self.heard.append("(not a kpasswd request)")
            return self._refuse(KRB_ERR_GENERIC, KPASSWD_MALFORMED, "malformed request")
        if parsed.version not in REQUEST_VERSIONS:
            self.heard.append(f"(kpasswd version {parsed.version:#06x})")
            return self._refuse(KRB_ERR_GENERIC, KPASSWD_BAD_VERSION, "unknown version")
        try:
            ticket = decode(parsed.first, APReq())["ticket"]
        except MalformedMessage:
            self.heard.append("(malformed AP-REQ)")
            return self._refuse(KRB_ERR_GENERIC, KPASSWD_MALFORMED, "malformed AP-REQ")
        service = f"{principal_text(ticket['sname'])[:100]}@{text(ticket['realm'])[:100]}"
        self.heard.append(f"kpasswd v{parsed.version:#06x} for {service}: refused")
        return self._refuse(KRB_AP_ERR_MODIFIED, KPASSWD_AUTHERROR, AUTH_NOTE)

    def _refuse(self, code: int, result: int, note: str = "") -> bytes:
        return error_reply(refusal(code, result, self.realm, self._clock(), note))


__all__ = ["AUTH_NOTE", "MAX_REQUESTS", "KpasswdServer"]
