"""The client role: an AS-REQ for a principal that cannot exist, without pre-authentication,
and the KRB-ERROR a KDC answers with: its code, the realm, the KDC's clock. No password and no
real principal is ever sent."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from portcall.protocols.base import (
    Handshake,
    PeerClosed,
    ProbeOptions,
    ReplyTooLong,
    Send,
    ServiceInfo,
    Steps,
    WrongProtocol,
)
from portcall.protocols.kerberos.messages import (
    AS_REP,
    DECODE_ERRORS,
    FIRST_BYTE,
    KRB_ERROR,
    PVNO,
    KerberosFraming,
    MalformedMessage,
    as_req,
    decode,
    error_meaning,
    error_name,
    principal_text,
    text,
)
from portcall.protocols.kerberos.schema import KRBError
from portcall.protocols.sniff import identify

#: Every probe principal starts so, then random hex: no directory holds such an account.
PROBE_PREFIX = "portcall-probe-"
#: What the client notes when a KDC issued a ticket to the probe principal.
AS_REP_NOTE = "the KDC answered with an AS-REP: it issued a ticket for the probe principal"


class KerberosClient(KerberosFraming, Handshake):
    """Asks the KDC of `realm` (the upper-cased `domain` by default) for a ticket for
    `portcall-probe-<random hex>`; `probe_name` and `nonce` fix them for transcripts."""

    protocol = "kerberos"
    display_name = "Kerberos"

    def __init__(
        self,
        options: ProbeOptions | None = None,
        *,
        domain: str | None = None,
        realm: str | None = None,
        transport: str | None = None,
        probe_name: str | None = None,
        nonce: int | None = None,
    ) -> None:
        # Without options (a role used on its own) the protocol's usual transport, UDP.
        transport = transport or (options.transport if options is not None else "udp")
        options = options or ProbeOptions()
        self.realm = realm or (domain or options.ad_domain()).strip().rstrip(".").upper()
        self.probe_name = probe_name or PROBE_PREFIX + secrets.token_hex(8)
        if not self.probe_name.startswith(PROBE_PREFIX):
            self.probe_name = PROBE_PREFIX + self.probe_name
        self.nonce = secrets.randbelow(2**31) if nonce is None else nonce
        self._set_transport(transport)
        super().__init__(options)

    def run(self) -> Steps:
        yield Send(self.frame(as_req(self.probe_name, self.realm, self.nonce)))
        try:
            reply = yield from self.read_message()
        except (PeerClosed, ReplyTooLong, MalformedMessage):
            if identify(self.first_bytes) is not None:
                raise self.wrong_protocol() from None
            raise
        if reply[:1] == bytes([FIRST_BYTE[AS_REP]]):
            return self._info({"msg_type": AS_REP}, notes=[AS_REP_NOTE])
        if reply[:1] != bytes([FIRST_BYTE[KRB_ERROR]]):
            raise self._stranger(reply)
        return self._info(error_details(decode(reply, KRBError())))

    def _stranger(self, message: bytes) -> WrongProtocol:
        """What answered with `message`, named from the message itself: over TCP the first
        bytes are a length prefix that names nothing."""
        detected = identify(message)
        if detected is None:
            return self.wrong_protocol("neither a KRB-ERROR nor an AS-REP")
        return WrongProtocol(self.display_name, detected, "neither a KRB-ERROR nor an AS-REP")

    def _info(self, learnt: dict[str, Any], notes: list[str] | None = None) -> ServiceInfo:
        info = ServiceInfo(protocol=self.protocol, notes=notes or [])
        info.details = {
            "transport": self.transport,
            "realm_asked": self.realm,
            "principal": f"{self.probe_name}@{self.realm}",
            **learnt,
        }
        if "error_name" in learnt:
            info.banner = f"KRB-ERROR {learnt['error_name']} from realm {learnt['realm']}"
        return info


def error_details(error: Any) -> dict[str, Any]:
    if int(error["pvno"]) != PVNO or int(error["msg-type"]) != KRB_ERROR:
        raise MalformedMessage("a KRB-ERROR with a wrong protocol version or message type")
    code = int(error["error-code"])
    details: dict[str, Any] = {
        "msg_type": KRB_ERROR,
        "error_code": code,
        "error_name": error_name(code),
        "error_meaning": error_meaning(code),
        "realm": text(error["realm"]),
        "server": principal_text(error["sname"]),
        "server_time": _time(error["stime"], int(error["susec"])),
    }
    if error["e-text"].isValue:
        details["e_text"] = text(error["e-text"])
    return details


def _time(value: Any, microseconds: int) -> str:
    """KerberosTime (always UTC, section 5.2.3) as ISO 8601, or the text as sent when it is
    not a valid time."""
    try:
        moment: datetime = value.asDateTime
    except (*DECODE_ERRORS, TypeError, LookupError):
        return text(value)
    return moment.replace(microsecond=microseconds).isoformat()


__all__ = ["AS_REP_NOTE", "PROBE_PREFIX", "KerberosClient"]
