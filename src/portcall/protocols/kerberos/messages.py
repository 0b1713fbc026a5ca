"""What both Kerberos roles put on the wire and read from it: the framing of RFC 4120
section 7.2 (one datagram over UDP, a 4-byte length prefix over TCP), the AS-REQ and
KRB-ERROR builders, and the message types and error codes both roles share."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from pyasn1.codec.der import decoder, encoder
from pyasn1.error import PyAsn1Error

from portcall.protocols.base import (
    RemoteProtocolError,
)
from portcall.protocols.framing import (
    DatagramOrStream,
)
from portcall.protocols.kerberos.schema import (
    ASReq,
    KRBError,
)
from portcall.protocols.ldap.messages import FramingError, count_elements

PVNO: Final = 5
#: Message types (RFC 4120 section 7.5.7), and the APPLICATION tag byte each starts with.
AS_REQ: Final = 10
AS_REP: Final = 11
TGS_REQ: Final = 12
KRB_ERROR: Final = 30
FIRST_BYTE: Final = {AS_REQ: 0x6A, AS_REP: 0x6B, TGS_REQ: 0x6C, KRB_ERROR: 0x7E}
#: Name types (section 6.2).
NT_PRINCIPAL: Final = 1
NT_SRV_INST: Final = 2
#: The largest message accepted: a KRB-ERROR is a few hundred bytes, an AS-REP a few KiB;
#: Active Directory's largest tickets (MaxTokenSize) stay under 64 KiB.
#: The reserved high bit of the TCP length prefix (section 7.2.2).
_EXTENSION_BIT: Final = 0x80000000
#: The "till" a client without a lifetime asks for, the one Windows clients send.
FOREVER: Final = "20370913024805Z"
#: Encryption types offered: AES256, AES128 (RFC 3962), RC4 (RFC 4757), as Windows offers.
ETYPES: Final = (18, 17, 23)

#: Error codes (section 7.5.9; 68 from RFC 6806), their names and what they tell a person.
ERRORS: Final[dict[int, tuple[str, str]]] = {
    6: ("KDC_ERR_C_PRINCIPAL_UNKNOWN", "the KDC does not know the client principal"),
    7: ("KDC_ERR_S_PRINCIPAL_UNKNOWN", "the KDC does not know the service principal"),
    12: ("KDC_ERR_POLICY", "the KDC's policy rejects the request"),
    14: ("KDC_ERR_ETYPE_NOSUPP", "the KDC supports none of the encryption types offered"),
    18: ("KDC_ERR_CLIENT_REVOKED", "the client's account is disabled or locked"),
    24: ("KDC_ERR_PREAUTH_FAILED", "pre-authentication failed"),
    25: ("KDC_ERR_PREAUTH_REQUIRED", "the principal exists and needs pre-authentication"),
    37: ("KRB_AP_ERR_SKEW", "the clocks of client and KDC differ too much"),
    40: ("KRB_AP_ERR_MSG_TYPE", "the KDC does not take this message type"),
    41: ("KRB_AP_ERR_MODIFIED", "a message was modified or a key is wrong"),
    52: ("KRB_ERR_RESPONSE_TOO_BIG", "the reply does not fit a datagram: retry over TCP"),
    60: ("KRB_ERR_GENERIC", "a generic error"),
    61: ("KRB_ERR_FIELD_TOOLONG", "a field or the message is too long for this KDC"),
    68: ("KDC_ERR_WRONG_REALM", "the KDC does not serve the realm asked for"),
}
KDC_ERR_C_PRINCIPAL_UNKNOWN: Final = 6
KDC_ERR_PREAUTH_REQUIRED: Final = 25
KRB_AP_ERR_MSG_TYPE: Final = 40
KRB_ERR_GENERIC: Final = 60
KRB_ERR_FIELD_TOOLONG: Final = 61
KDC_ERR_WRONG_REALM: Final = 68

#: What pyasn1's decoder raises on bad DER (a length too large escapes as OverflowError).
DECODE_ERRORS: Final = (PyAsn1Error, OverflowError, ValueError, UnicodeError)


class MalformedMessage(RemoteProtocolError):
    """The peer sent a Kerberos message that does not decode."""


def error_name(code: int) -> str:
    return ERRORS.get(code, (f"error {code}", ""))[0]


def error_meaning(code: int) -> str:
    return ERRORS.get(code, ("", "an error code this program does not know"))[1]


def text(value: Any) -> str:
    """A KerberosString as text, control characters masked, cut short."""
    raw = bytes(value.asOctets())[:256].decode("utf-8", "replace")
    return "".join(c if c.isprintable() else "?" for c in raw)


def fill_principal(slot: Any, name_type: int, parts: list[Any]) -> None:
    """Set the PrincipalName `slot` of a message (its explicit tag is the slot's own)."""
    slot["name-type"] = name_type
    slot["name-string"].extend(parts)


def principal_text(name: Any) -> str:
    return "/".join(text(part) for part in list(name["name-string"])[:8])


def as_req(client: str, realm: str, nonce: int) -> bytes:
    """An AS-REQ for `client@realm` with no pre-authentication data (RFC 4120 3.1.1)."""
    request = ASReq()
    request["pvno"] = PVNO
    request["msg-type"] = AS_REQ
    body = request["req-body"]
    body["kdc-options"] = "'" + "0" * 32 + "'B"
    fill_principal(body["cname"], NT_PRINCIPAL, [client])
    body["realm"] = realm
    fill_principal(body["sname"], NT_SRV_INST, ["krbtgt", realm])
    body["till"] = FOREVER
    body["nonce"] = nonce
    body["etype"].extend(ETYPES)
    return bytes(encoder.encode(request))


def krb_error(
    code: int, realm: str, now: datetime, request: Any | None = None, note: str = ""
) -> bytes:
    """A KRB-ERROR from the KDC of `realm` (section 5.9.1), echoing the request's client."""
    error = KRBError()
    error["pvno"] = PVNO
    error["msg-type"] = KRB_ERROR
    error["stime"] = now.strftime("%Y%m%d%H%M%SZ")
    error["susec"] = now.microsecond
    error["error-code"] = code
    error["realm"] = realm
    fill_principal(error["sname"], NT_SRV_INST, ["krbtgt", realm])
    if request is not None and request["cname"].isValue:
        error["crealm"] = realm
        cname = request["cname"]
        fill_principal(error["cname"], int(cname["name-type"]), list(cname["name-string"]))
    if note:
        error["e-text"] = note
    return bytes(encoder.encode(error))


def decode(wire: bytes, spec: Any) -> Any:
    """`wire` decoded as `spec`, or MalformedMessage; the whole of it must be used."""
    try:
        count_elements(wire)  # bounds pyasn1's work before it starts
        message, rest = decoder.decode(wire, asn1Spec=spec)
    except FramingError as error:
        raise MalformedMessage(f"the message is out of bounds ({error})") from None
    except DECODE_ERRORS as error:
        raise MalformedMessage(f"the message does not decode ({type(error).__name__})") from None
    if rest:
        raise MalformedMessage(f"{len(rest)} bytes follow the message")
    return message


class KerberosFraming(DatagramOrStream):
    """Kerberos framing (section 7.2.2): over TCP a 4-byte length prefix whose high bit is
    reserved."""

    PREFIX_BYTES = 4

    def check_length(self, size: int) -> None:
        if size & _EXTENSION_BIT:
            raise MalformedMessage("the length prefix sets the reserved high bit")
