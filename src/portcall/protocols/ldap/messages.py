"""What both LDAP roles put on the wire and read from it: the outer BER framing, the fixes
the pyasn1-modules schema needs to match RFC 4511, the message builders, and the constants
both roles share."""

from __future__ import annotations

import functools
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, Final

from pyasn1.codec.ber import encoder
from pyasn1.error import PyAsn1Error
from pyasn1.type import namedtype, tag, univ
from pyasn1_modules import rfc2251

from portcall.protocols.base import NeedData, ReplyTooLong, SansIO

STARTTLS_OID: Final = "1.3.6.1.4.1.1466.20037"
NOTICE_OF_DISCONNECTION_OID: Final = "1.3.6.1.4.1.1466.20036"
#: supportedCapabilities values Microsoft defines (MS-ADTS 3.1.1.3.4.3).
ACTIVE_DIRECTORY_OID: Final = "1.2.840.113556.1.4.800"
AD_LDS_OID: Final = "1.2.840.113556.1.4.1851"

#: What the rootDSE search asks for: the AD attributes of MS-ADTS 3.1.1.3.2, the RFC 4512
#: section 5.1 ones, the vendor pair of RFC 3045, and the object classes OpenLDAP shows itself by.
ROOTDSE_ATTRIBUTES: Final = (
    "namingContexts",
    "defaultNamingContext",
    "dnsHostName",
    "serverName",
    "supportedLDAPVersion",
    "supportedSASLMechanisms",
    "supportedCapabilities",
    "supportedControl",
    "supportedExtension",
    "isGlobalCatalogReady",
    "domainControllerFunctionality",
    "forestFunctionality",
    "vendorName",
    "vendorVersion",
    "objectClass",
    "structuralObjectClass",
    "subschemaSubentry",
)

#: What pyasn1's decoder raises on bad BER: an inner length too large for Python's indexes
#: escapes as OverflowError rather than as its own error.
DECODE_ERRORS: Final = (PyAsn1Error, OverflowError)

#: BER elements one message may hold, at any depth, and how deep they may nest. A real rootDSE
#: holds a few hundred at most (the responder's Active Directory one, under a hundred) and nests
#: six deep. pyasn1 decodes 512 of the smallest elements in about 3 ms, 1024 in 6 ms.
MAX_ELEMENTS: Final = 512
MAX_DEPTH: Final = 32

#: The constructed SEQUENCE tag every LDAPMessage starts with (RFC 4511 section 4.1.1).
_SEQUENCE_TAG: Final = 0x30

#: Names RFC 4511 gives that the pyasn1-modules schema (written from RFC 2251) spells otherwise.
_RESULT_NAMES: Final = {8: "strongerAuthRequired"}

#: Result codes the responder sends (RFC 4511 appendix A.1).
SUCCESS: Final = 0
OPERATIONS_ERROR: Final = 1
PROTOCOL_ERROR: Final = 2
AUTH_METHOD_NOT_SUPPORTED: Final = 7
ADMIN_LIMIT_EXCEEDED: Final = 11
UNAVAILABLE_CRITICAL_EXTENSION: Final = 12
NO_SUCH_OBJECT: Final = 32
INVALID_CREDENTIALS: Final = 49
UNWILLING_TO_PERFORM: Final = 53

Attributes = list[tuple[str, list[str]]]


@dataclass(frozen=True)
class LdapResult:
    """The LDAPResult part of a response (RFC 4511 section 4.1.9)."""

    code: int
    message: str

    @property
    def ok(self) -> bool:
        return self.code == 0

    @property
    def name(self) -> str:
        return result_name(self.code)

    def __str__(self) -> str:
        return f"{self.name}: {self.message}" if self.message else self.name


# -- framing, shared by both roles -----------------------------------------------------------


class FramingError(Exception):
    """The bytes cannot open an LDAPMessage; `opening` holds what was read, as evidence."""

    def __init__(self, reason: str, opening: bytes = b"") -> None:
        super().__init__(reason)
        self.opening = opening


def read_frame(hs: SansIO, limit: int) -> Generator[NeedData, None, bytes]:
    """One whole BER-encoded LDAPMessage, found by its outer tag and length, not decoded.

    Only the outer frame is read here (X.690 section 8.1), so that a message split over many
    reads is gathered whole before pyasn1 sees it.
    """
    opening = yield from hs.read_exactly(1)
    if opening[0] != _SEQUENCE_TAG:
        raise FramingError("not a BER SEQUENCE", opening)
    length, length_octets = yield from _read_length(hs)
    if length > limit:
        raise ReplyTooLong(limit, opening + length_octets + hs.buffered[:64])
    body = yield from hs.read_exactly(length)
    count_elements(body)
    return opening + length_octets + body


def count_elements(body: bytes) -> int:
    """How many BER elements `body` holds, at any depth; FramingError past `MAX_ELEMENTS` or
    `MAX_DEPTH`.

    pyasn1 spends some microseconds on each element whatever its size, so a message packed
    with tiny elements would hold the event loop for long within any byte limit; this walk
    costs a fraction of that and stops at the bound. It reads only tags and lengths; a
    malformed one ends the walk and is left for the decoder to name.
    """
    # Tags and lengths read inline (no call per element): this runs on every reply.
    size = len(body)
    count, pos, ends = 0, 0, [size]
    while pos < size:
        while pos >= ends[-1]:
            ends.pop()
        if pos + 2 > size:
            break
        tag, length = body[pos], body[pos + 1]
        if tag & 0x1F == 0x1F:
            break
        pos += 2
        if length >= 0x80:
            octets = length & 0x7F
            if octets == 0 or octets > 4 or pos + octets > size:
                break
            length = int.from_bytes(body[pos : pos + octets], "big")
            pos += octets
        count += 1
        if count > MAX_ELEMENTS:
            raise FramingError(f"a message of more than {MAX_ELEMENTS} BER elements")
        if tag & 0x20:
            ends.append(pos + length)
            if len(ends) > MAX_DEPTH:
                raise FramingError(f"a message nested more than {MAX_DEPTH} deep")
        else:
            pos += length
    return count


def _read_length(hs: SansIO) -> Generator[NeedData, None, tuple[int, bytes]]:
    """The BER length (X.690 section 8.1.3) and the octets that carried it."""
    first = yield from hs.read_exactly(1)
    if first[0] < 0x80:
        return first[0], first
    count = first[0] & 0x7F
    if count == 0:
        # RFC 4511 section 5.1: only the definite form of length is allowed.
        raise FramingError("a BER indefinite length, which LDAP forbids")
    rest = yield from hs.read_exactly(count)
    return int.from_bytes(rest, "big"), first + rest


# -- building requests -----------------------------------------------------------------------


def _message(message_id: int) -> Any:
    message = rfc2251.LDAPMessage()
    message["messageID"] = message_id
    return message


def base_search(message_id: int) -> tuple[Any, Any]:
    """An LDAPMessage holding a search of the rootDSE (base "", scope base, no limits), and
    its SearchRequest for the caller to give a filter and attributes."""
    message = _message(message_id)
    search = message["protocolOp"].getComponentByName("searchRequest")
    search["baseObject"] = b""
    search["scope"] = "baseObject"
    search["derefAliases"] = "neverDerefAliases"
    search["sizeLimit"] = 0
    search["timeLimit"] = 0
    search["typesOnly"] = False
    return message, search


def encoded_search(message_id: int) -> bytes:
    """A base-scope search of the rootDSE for `ROOTDSE_ATTRIBUTES` (RFC 4512 section 5.1),
    encoded by pyasn1."""
    message, search = base_search(message_id)
    search["filter"]["present"] = "objectClass"
    search["attributes"].extend(ROOTDSE_ATTRIBUTES)
    return bytes(encoder.encode(message))


def encoded_starttls(message_id: int) -> bytes:
    """The StartTLS extended request: its name and no value (RFC 4511 section 4.14.1),
    encoded by pyasn1."""
    message = _message(message_id)
    message["protocolOp"].getComponentByName("extendedReq")["requestName"] = STARTTLS_OID
    return bytes(encoder.encode(message))


@functools.cache
def _operation_of(build: Callable[[int], bytes]) -> bytes:
    """The protocolOp (and what follows) of the message `build` makes: pyasn1 encodes each
    request once, as message 1 (whose ID takes the three octets 02 01 01)."""
    whole = build(1)
    header = 2 if whole[1] < 0x80 else 2 + (whole[1] & 0x7F)
    assert whole[header : header + 3] == b"\x02\x01\x01", whole[:8]
    return whole[header + 3 :]


def _with_id(message_id: int, build: Callable[[int], bytes]) -> bytes:
    """The request `build` makes, for `message_id`: its encoded operation in a fresh
    LDAPMessage SEQUENCE { messageID INTEGER, ... } (X.690 sections 8.3 and 8.9)."""
    number = message_id.to_bytes((message_id.bit_length() + 8) // 8, "big")
    body = b"\x02" + bytes([len(number)]) + number + _operation_of(build)
    return b"\x30" + _length_octets(len(body)) + body


def _length_octets(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    octets = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(octets)]) + octets


def search_request(message_id: int) -> bytes:
    """`encoded_search`, without encoding it again for each probe."""
    return _with_id(message_id, encoded_search)


def starttls_request(message_id: int) -> bytes:
    """`encoded_starttls`, without encoding it again for each probe."""
    return _with_id(message_id, encoded_starttls)


#: An LDAPMessage holding an UnbindRequest, [APPLICATION 2] NULL (RFC 4511 section 4.3).
#: pyasn1-modules derives its UnbindRequest tag from SEQUENCE's and so marks it constructed
#: (0x62); the tag must be primitive (0x42), so this one message gets a schema of its own.
_UNBIND_MESSAGE: Final = univ.Sequence(
    componentType=namedtype.NamedTypes(
        namedtype.NamedType("messageID", rfc2251.MessageID()),
        namedtype.NamedType(
            "unbindRequest",
            univ.Null().subtype(
                implicitTag=tag.Tag(tag.tagClassApplication, tag.tagFormatSimple, 2)
            ),
        ),
    )
)


def encoded_unbind(message_id: int) -> bytes:
    """The UnbindRequest, encoded by pyasn1."""
    message = _UNBIND_MESSAGE.clone()
    message["messageID"] = message_id
    message["unbindRequest"] = ""
    return bytes(encoder.encode(message))


def unbind_request(message_id: int) -> bytes:
    """`encoded_unbind`, without encoding it again for each probe."""
    return _with_id(message_id, encoded_unbind)


# -- reading replies -------------------------------------------------------------------------


def text_of(value: Any) -> str:
    return bytes(value).decode("utf-8", "replace")


def result_of(response: Any) -> LdapResult:
    return LdapResult(int(response["resultCode"]), text_of(response["errorMessage"]))


def result_name(code: int) -> str:
    """The RFC 4511 name of a result code, or the number when it has none we know."""
    named = rfc2251.LDAPResult()["resultCode"].namedValues.getName(code)
    return _RESULT_NAMES.get(code) or named or f"resultCode {code}"


# -- the request schema a server decodes with ------------------------------------------------


def _application(number: int) -> tag.Tag:
    return tag.Tag(tag.tagClassApplication, tag.tagFormatSimple, number)


def _request_schema() -> univ.Sequence:
    """rfc2251.LDAPMessage with three requests given the tags RFC 4511 section 4 gives them,
    and binds that may use Active Directory's NTLM ("Sicily") choices.

    pyasn1-modules writes UnbindRequest, DelRequest and AbandonRequest as constructed types, so a
    real client's DelRequest (0x4a) or AbandonRequest (0x50) would not decode.
    """
    fixed = {
        "bindRequest": _bind_request_schema(),
        "unbindRequest": univ.Null().subtype(implicitTag=_application(2)),
        "delRequest": rfc2251.LDAPDN().subtype(implicitTag=_application(10)),
        "abandonRequest": rfc2251.MessageID().subtype(implicitTag=_application(16)),
    }
    fields = rfc2251.LDAPMessage.componentType
    ops = fields.getTypeByPosition(fields.getPositionByName("protocolOp")).componentType
    choice = univ.Choice(
        componentType=namedtype.NamedTypes(
            *(namedtype.NamedType(t.name, fixed.get(t.name, t.asn1Object)) for t in ops.namedTypes)
        )
    )
    message = fields.namedTypes
    return univ.Sequence(
        componentType=namedtype.NamedTypes(
            message[0], namedtype.NamedType("protocolOp", choice), message[2]
        )
    )


def _bind_request_schema() -> univ.Sequence:
    """BindRequest whose AuthenticationChoice also holds the three NTLM choices of MS-ADTS
    5.1.1.1.3, so that such a bind is refused as a method rather than as garbage."""
    sicily = [
        namedtype.NamedType(
            name,
            univ.OctetString().subtype(
                implicitTag=tag.Tag(tag.tagClassContext, tag.tagFormatSimple, n)
            ),
        )
        for name, n in (("sicilyDiscovery", 9), ("sicilyNegotiate", 10), ("sicilyResponse", 11))
    ]
    choices = rfc2251.AuthenticationChoice.componentType.namedTypes
    authentication = univ.Choice(componentType=namedtype.NamedTypes(*choices, *sicily))
    version, name, _ = rfc2251.BindRequest.componentType.namedTypes
    return univ.Sequence(
        tagSet=rfc2251.BindRequest.tagSet,
        componentType=namedtype.NamedTypes(
            version, name, namedtype.NamedType("authentication", authentication)
        ),
    )


MESSAGE_SCHEMA: Final = _request_schema()


# -- building responses ----------------------------------------------------------------------


def _server_message(message_id: int, op_name: str) -> tuple[Any, Any]:
    message = MESSAGE_SCHEMA.clone()
    message["messageID"] = message_id
    return message, message["protocolOp"].getComponentByName(op_name)


def result_message(message_id: int, op_name: str, code: int, diagnostic: str = "") -> bytes:
    message, result = _server_message(message_id, op_name)
    result["resultCode"] = code
    result["matchedDN"] = b""
    result["errorMessage"] = diagnostic.encode()  # LDAPString is UTF-8 (RFC 4511 4.1.2)
    return bytes(encoder.encode(message))


def extended_response(message_id: int, code: int, diagnostic: str = "", name: str = "") -> bytes:
    message, response = _server_message(message_id, "extendedResp")
    response["resultCode"] = code
    response["matchedDN"] = b""
    response["errorMessage"] = diagnostic.encode()
    if name:
        response["responseName"] = name.encode()
    return bytes(encoder.encode(message))


def notice_of_disconnection(code: int, diagnostic: str) -> bytes:
    """The unsolicited notice a server sends before it hangs up (RFC 4511 section 4.4.1)."""
    return extended_response(0, code, diagnostic, NOTICE_OF_DISCONNECTION_OID)


def entry_message(message_id: int, attributes: Attributes, *, types_only: bool) -> bytes:
    """The rootDSE as a SearchResultEntry; with typesOnly, names without values (4.5.1.6)."""
    message, entry = _server_message(message_id, "searchResEntry")
    entry["objectName"] = b""
    found = entry["attributes"]
    for position, (name, values) in enumerate(attributes):
        found[position]["type"] = name.encode()
        found[position]["vals"].extend([] if types_only else [v.encode() for v in values])
    return bytes(encoder.encode(message))
