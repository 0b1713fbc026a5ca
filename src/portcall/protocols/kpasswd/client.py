"""The client role: a password-change request that no key opens, and the refusal a kpasswd
service answers with: proof that the service listens, the realm it serves and its reason. No
password and no real principal is ever sent: the request's KRB-PRIV and the AP-REQ's ticket
and authenticator are random bytes."""

from __future__ import annotations

import secrets
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
from portcall.protocols.kerberos.client import error_details
from portcall.protocols.kerberos.messages import (
    KerberosFraming,
    MalformedMessage,
    decode,
    error_name,
)
from portcall.protocols.kerberos.schema import KRBError
from portcall.protocols.kpasswd.messages import (
    CIPHER_BYTES,
    REPLY_VERSION,
    RESULTS,
    SET_PASSWORD_VERSION,
    MalformedReply,
    is_krb_error,
    probe_request,
    result_meaning,
    result_name,
    result_of,
    split,
)
from portcall.protocols.sniff import identify

#: What the client notes when a KDC answers with a bare KRB-ERROR, without the kpasswd header.
BARE_ERROR_NOTE = (
    "the service answered with a KRB-ERROR without the kpasswd header, as some KDCs do: "
    "kpasswd answers, in Kerberos's own framing"
)
#: What the client notes when the error code is the result code again (Samba's KDC does so).
CODE_IS_RESULT_NOTE = (
    "the KRB-ERROR's error code repeats the kpasswd result code rather than naming a Kerberos "
    "error, as Samba's kpasswd service does"
)
#: Reply versions taken: RFC 3244's 1, and 0xff80, which some servers echo from the request.
REPLY_VERSIONS = (REPLY_VERSION, SET_PASSWORD_VERSION)


class KpasswdClient(KerberosFraming, Handshake):
    """Asks the kpasswd service of `realm` (the upper-cased AD domain by default) to change a
    password with a request it must refuse; `cipher` fixes the random bytes for transcripts."""

    protocol = "kpasswd"
    display_name = "kpasswd"

    def __init__(
        self,
        options: ProbeOptions | None = None,
        *,
        domain: str | None = None,
        realm: str | None = None,
        transport: str | None = None,
        cipher: bytes | None = None,
    ) -> None:
        # Without options (a role used on its own) the protocol's usual transport, UDP.
        transport = transport or (options.transport if options is not None else "udp")
        options = options or ProbeOptions()
        self.realm = realm or (domain or options.ad_domain()).strip().rstrip(".").upper()
        self.cipher = secrets.token_bytes(CIPHER_BYTES) if cipher is None else cipher
        self._set_transport(transport)
        super().__init__(options)

    def run(self) -> Steps:
        yield Send(self.frame(probe_request(self.realm, self.cipher)))
        try:
            reply = yield from self.read_message()
        except (PeerClosed, ReplyTooLong, MalformedMessage):
            if identify(self.first_bytes) is not None:
                raise self.wrong_protocol() from None
            raise
        if is_krb_error(reply):
            return self._info(error_details(decode(reply, KRBError())), [BARE_ERROR_NOTE])
        try:
            parsed = split(reply)
        except MalformedReply:
            raise self._stranger(reply) from None
        if parsed.version not in REPLY_VERSIONS:
            raise MalformedReply(f"a kpasswd reply of version {parsed.version:#06x}")
        if parsed.first:
            raise MalformedReply("an AP-REP answers a request that no key opens")
        if not is_krb_error(parsed.rest):
            raise MalformedReply("the kpasswd reply holds no KRB-ERROR")
        error = decode(parsed.rest, KRBError())
        learnt = {"version": parsed.version, **error_details(error), **_result(error)}
        same = learnt["error_code"] == learnt.get("result_code") and learnt["error_code"] in RESULTS
        return self._info(learnt, [CODE_IS_RESULT_NOTE] if same else [])

    def _stranger(self, message: bytes) -> WrongProtocol | MalformedReply:
        """What answered with `message`, named from the message itself when it can be."""
        detected = identify(message)
        if detected is None:
            return MalformedReply("neither a kpasswd reply nor a KRB-ERROR")
        return WrongProtocol(self.display_name, detected, "neither a kpasswd reply nor a KRB-ERROR")

    def _info(self, learnt: dict[str, Any], notes: list[str] | None = None) -> ServiceInfo:
        info = ServiceInfo(protocol=self.protocol, notes=notes or [])
        info.details = {"transport": self.transport, "realm_asked": self.realm, **learnt}
        info.banner = _banner(learnt)
        return info


def _result(error: Any) -> dict[str, Any]:
    """The result code and string of a refusal's e-data (RFC 3244 section 2), when present."""
    if not error["e-data"].isValue:
        return {}
    found = result_of(bytes(error["e-data"].asOctets()))
    if found is None:
        return {}
    code, note = found
    return {
        "result_code": code,
        "result_name": result_name(code),
        "result_meaning": result_meaning(code),
        "result_string": note,
    }


def _banner(learnt: dict[str, Any]) -> str:
    code = learnt["error_code"]
    name = error_name(code)
    error = f"KRB-ERROR {code}" + ("" if name.startswith("error ") else f" {name}")
    if "result_code" in learnt:
        error += f"; result {learnt['result_code']} {learnt['result_name']}"
    return f"kpasswd realm {learnt['realm']} ({error})"


__all__ = ["BARE_ERROR_NOTE", "CODE_IS_RESULT_NOTE", "REPLY_VERSIONS", "KpasswdClient"]
