"""What both kpasswd roles put on the wire and read from it (RFC 3244 section 2): a request is
a 2-byte message length, a 2-byte protocol version, a 2-byte AP-REQ length, the AP-REQ and a
KRB-PRIV; a reply the same header with version 1, then an AP-REP and a KRB-PRIV, or, when the
server refuses, an empty AP-REP and a KRB-ERROR whose e-data holds a 2-byte result code and a
UTF-8 result string. Over TCP each message also carries the 4-byte length prefix of Kerberos
(RFC 4120 7.2.2), so the framing is Kerberos's own."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from pyasn1.codec.der import encoder

from portcall.protocols.kerberos.messages import (
    FIRST_BYTE,
    KRB_ERROR,
    NT_SRV_INST,
    PVNO,
    MalformedMessage,
    fill_principal,
)
from portcall.protocols.kerberos.schema import KRBError
from portcall.protocols.kpasswd.schema import APReq, KRBPriv

#: Protocol versions (RFC 3244 section 2): 0xff80 in requests of the set/change protocol,
#: 1 in every reply (and in requests of the older change-only protocol).
SET_PASSWORD_VERSION: Final = 0xFF80
CHANGE_PASSWORD_VERSION: Final = 0x0001
REPLY_VERSION: Final = 0x0001
REQUEST_VERSIONS: Final = (SET_PASSWORD_VERSION, CHANGE_PASSWORD_VERSION)
#: Message types of RFC 4120 section 7.5.7 that a kpasswd exchange carries.
AP_REQ: Final = 14
AP_REP: Final = 15
KRB_PRIV: Final = 21
#: The service a password change is addressed to (RFC 3244 section 2).
CHANGEPW_SERVICE: Final = ("kadmin", "changepw")
#: Encryption type named in the probe's encrypted parts: AES256 (RFC 3962).
PROBE_ETYPE: Final = 18
#: Bytes of each made-up ciphertext in the probe: as long as a real AES one's head.
CIPHER_BYTES: Final = 48
#: The header: message length, version, AP-REQ/AP-REP length.
HEADER_BYTES: Final = 6
#: Longest result string kept from a reply.
RESULT_TEXT_LIMIT: Final = 256

#: Result codes (RFC 3244 section 2; 0 to 4 from RFC 3244's predecessor, kept there).
RESULTS: Final[dict[int, tuple[str, str]]] = {
    0: ("KRB5_KPASSWD_SUCCESS", "success"),
    1: ("KRB5_KPASSWD_MALFORMED", "the request fails to be parsed"),
    2: ("KRB5_KPASSWD_HARDERROR", "the server failed while processing the request"),
    3: ("KRB5_KPASSWD_AUTHERROR", "the request fails authentication"),
    4: ("KRB5_KPASSWD_SOFTERROR", "the new password is refused by policy"),
    5: ("KRB5_KPASSWD_ACCESSDENIED", "the requester may not change this password"),
    6: ("KRB5_KPASSWD_BAD_VERSION", "the server does not speak this protocol version"),
    7: ("KRB5_KPASSWD_INITIAL_FLAG_NEEDED", "the ticket must come from an AS exchange"),
}
#: The Kerberos error (RFC 4120 7.5.9) of a request whose ticket no key opens.
KRB_AP_ERR_MODIFIED: Final = 41
KPASSWD_MALFORMED: Final = 1
KPASSWD_HARDERROR: Final = 2
KPASSWD_AUTHERROR: Final = 3
KPASSWD_BAD_VERSION: Final = 6


class MalformedReply(MalformedMessage):
    """The peer's kpasswd header does not add up (length, version or AP-REP)."""


def result_name(code: int) -> str:
    return RESULTS.get(code, (f"result {code}", ""))[0]


def result_meaning(code: int) -> str:
    return RESULTS.get(code, ("", "a result code this program does not know"))[1]


def _encrypted(slot: Any, cipher: bytes) -> None:
    slot["etype"] = PROBE_ETYPE
    slot["cipher"] = cipher


def probe_ap_req(realm: str, cipher: bytes) -> bytes:
    """An AP-REQ for kadmin/changepw@`realm` whose ticket and authenticator are `cipher`:
    valid DER, so the server gets as far as looking for a key, and no key opens them."""
    request = APReq()
    request["pvno"] = PVNO
    request["msg-type"] = AP_REQ
    request["ap-options"] = "'" + "0" * 32 + "'B"
    ticket = request["ticket"]
    ticket["tkt-vno"] = PVNO
    ticket["realm"] = realm
    fill_principal(ticket["sname"], NT_SRV_INST, list(CHANGEPW_SERVICE))
    _encrypted(ticket["enc-part"], cipher)
    _encrypted(request["authenticator"], cipher)
    return bytes(encoder.encode(request))


def probe_priv(cipher: bytes) -> bytes:
    """A KRB-PRIV whose encrypted part is `cipher`: it holds no password at all."""
    priv = KRBPriv()
    priv["pvno"] = PVNO
    priv["msg-type"] = KRB_PRIV
    _encrypted(priv["enc-part"], cipher)
    return bytes(encoder.encode(priv))


def message(version: int, first: bytes, rest: bytes) -> bytes:
    """The header, then `first` (the AP-REQ or AP-REP) and `rest` (KRB-PRIV or KRB-ERROR)."""
    total = HEADER_BYTES + len(first) + len(rest)
    head = total.to_bytes(2, "big") + version.to_bytes(2, "big") + len(first).to_bytes(2, "big")
    return head + first + rest


def probe_request(realm: str, cipher: bytes) -> bytes:
    """The client's whole request: version 0xff80, the AP-REQ no key opens, a KRB-PRIV."""
    return message(SET_PASSWORD_VERSION, probe_ap_req(realm, cipher), probe_priv(cipher))


def error_reply(krb_error: bytes) -> bytes:
    """A reply refusing the request: version 1, no AP-REP, the KRB-ERROR."""
    return message(REPLY_VERSION, b"", krb_error)


def result_data(code: int, note: str = "") -> bytes:
    """The e-data of a refusing KRB-ERROR: the result code and string."""
    return code.to_bytes(2, "big") + note.encode("utf-8")


def refusal(code: int, result: int, realm: str, now: datetime, note: str = "") -> bytes:
    """The KRB-ERROR of a kpasswd refusal: from kadmin/changepw of `realm`, the result code
    and `note` in its e-data (RFC 3244 section 2)."""
    error = KRBError()
    error["pvno"] = PVNO
    error["msg-type"] = KRB_ERROR
    error["stime"] = now.strftime("%Y%m%d%H%M%SZ")
    error["susec"] = now.microsecond
    error["error-code"] = code
    error["realm"] = realm
    fill_principal(error["sname"], NT_SRV_INST, list(CHANGEPW_SERVICE))
    error["e-data"] = result_data(result, note)
    return bytes(encoder.encode(error))


@dataclass(frozen=True)
class Parsed:
    """One kpasswd message split at its header: `first` the AP-REQ or AP-REP, `rest` the
    KRB-PRIV or KRB-ERROR after it."""

    version: int
    first: bytes
    rest: bytes


def split(wire: bytes) -> Parsed:
    """`wire` split at its header, or MalformedReply when the lengths do not add up."""
    if len(wire) < HEADER_BYTES:
        raise MalformedReply(f"a kpasswd message of {len(wire)} bytes is shorter than its header")
    total = int.from_bytes(wire[:2], "big")
    if total != len(wire):
        raise MalformedReply(f"the header says {total} bytes, the message has {len(wire)}")
    first_length = int.from_bytes(wire[4:6], "big")
    if HEADER_BYTES + first_length > total:
        raise MalformedReply("the AP message length runs past the end of the message")
    first_end = HEADER_BYTES + first_length
    return Parsed(int.from_bytes(wire[2:4], "big"), wire[HEADER_BYTES:first_end], wire[first_end:])


def is_krb_error(wire: bytes) -> bool:
    return wire[:1] == bytes([FIRST_BYTE[KRB_ERROR]])


def result_of(e_data: bytes) -> tuple[int, str] | None:
    """The result code and string a KRB-ERROR's e-data holds, or None when it holds none
    (fewer than two bytes)."""
    if len(e_data) < 2:
        return None
    raw = e_data[2 : 2 + RESULT_TEXT_LIMIT]
    try:
        note = raw.decode("utf-8")
    except UnicodeError:
        note = raw.decode("latin-1")
    note = "".join(c if c.isprintable() else "?" for c in note.rstrip())
    return int.from_bytes(e_data[:2], "big"), note


__all__ = [
    "AP_REP",
    "AP_REQ",
    "CHANGEPW_SERVICE",
    "CHANGE_PASSWORD_VERSION",
    "CIPHER_BYTES",
    "HEADER_BYTES",
    "KPASSWD_AUTHERROR",
    "KPASSWD_BAD_VERSION",
    "KPASSWD_HARDERROR",
    "KPASSWD_MALFORMED",
    "KRB_AP_ERR_MODIFIED",
    "KRB_PRIV",
    "REPLY_VERSION",
    "REQUEST_VERSIONS",
    "RESULTS",
    "SET_PASSWORD_VERSION",
    "MalformedReply",
    "Parsed",
    "error_reply",
    "is_krb_error",
    "message",
    "probe_request",
    "refusal",
    "result_data",
    "result_meaning",
    "result_name",
    "result_of",
    "split",
]
