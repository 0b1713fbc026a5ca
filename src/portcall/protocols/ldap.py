"""LDAPv3 (RFC 4511) rootDSE read and StartTLS (RFC 4511 section 4.14, RFC 4513 section 3),
client and server roles.

The client asks first: no bind is needed, since LDAPv3 allows operations before a bind (RFC 4511
section 4.2.1) and Active Directory serves its rootDSE anonymously (MS-ADTS 5.1.3). Messages are
BER, built and parsed with pyasn1 and the LDAPv3 schema of pyasn1-modules; this module only
reads the outer tag and length to know where one message ends.

The server role answers as an Active Directory domain controller answers a client that has not
authenticated: anonymous bind, the rootDSE, StartTLS; every other request is refused.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from pyasn1.codec.ber import decoder, encoder
from pyasn1.error import PyAsn1Error
from pyasn1.type import namedtype, tag, univ
from pyasn1_modules import rfc2251

from portcall.protocols.base import (
    Event,
    Handshake,
    NeedData,
    PeerClosed,
    ProbeOptions,
    ReplyTooLong,
    SansIO,
    Send,
    ServerEvent,
    ServerHandshake,
    ServerOptions,
    ServerSteps,
    ServiceInfo,
    ServiceRefused,
    StartTLS,
    StartTLSUnavailable,
    Steps,
)

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

#: Replies to one base-scope search: one entry and a done, plus whatever references a server
#: adds. A peer that sends more than this is not answering our search.
MAX_SEARCH_MESSAGES: Final = 64
#: Unsolicited notifications other than a disconnection that we skip before giving up.
MAX_UNSOLICITED: Final = 8

#: What pyasn1's decoder raises on bad BER: an inner length too large for Python's indexes
#: escapes as OverflowError rather than as its own error.
DECODE_ERRORS: Final = (PyAsn1Error, OverflowError)

#: The constructed SEQUENCE tag every LDAPMessage starts with (RFC 4511 section 4.1.1).
_SEQUENCE_TAG: Final = 0x30

#: Names RFC 4511 gives that the pyasn1-modules schema (written from RFC 2251) spells otherwise.
_RESULT_NAMES: Final = {8: "strongerAuthRequired"}

#: DC functional levels (MS-ADTS 6.1.4.2, msDS-Behavior-Version); 1 is a domain/forest level
#: only. Level 7 is what 2016, 2019 and 2022 all report.
_WINDOWS_BY_LEVEL: Final = {
    0: "Windows 2000",
    2: "Windows Server 2003",
    3: "Windows Server 2008",
    4: "Windows Server 2008 R2",
    5: "Windows Server 2012",
    6: "Windows Server 2012 R2",
    7: "Windows Server 2016 or later",
    10: "Windows Server 2025",
}

#: Readable names for extended operations a rootDSE commonly lists.
_EXTENSION_NAMES: Final = {
    STARTTLS_OID: "StartTLS",
    "1.3.6.1.4.1.4203.1.11.1": "Password Modify",
    "1.3.6.1.4.1.4203.1.11.3": "Who am I",
    "1.3.6.1.1.8": "Cancel",
    "1.3.6.1.1.21.1": "Start Transaction",
    "1.3.6.1.1.21.3": "End Transaction",
    "1.3.6.1.4.1.1466.101.119.1": "Dynamic Refresh",
    "1.2.840.113556.1.4.1781": "Fast Concurrent Bind",
}

RootDSE = dict[str, list[str]]


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


class LdapClient(Handshake):
    """Reads the rootDSE, upgrades with StartTLS when asked, and names the directory server.

    `info.capabilities` lists the SASL mechanisms as ``SASL=<mechanism>`` (as IMAP writes
    ``AUTH=``), then each supported extended operation as its OID, followed by a readable name
    in parentheses when one is known: ``1.3.6.1.4.1.1466.20037 (StartTLS)``.
    `info.details` holds ``rootdse`` (attribute name, as the server spelled it, to string
    values), ``global_catalog_ready`` when the server says, and ``search_result`` when the
    rootDSE search did not succeed.
    """

    protocol = "ldap"
    display_name = "LDAP"

    def __init__(self, options: ProbeOptions | None = None) -> None:
        super().__init__(options)
        self._last_id = 0

    def run(self) -> Steps:
        info = ServiceInfo(protocol=self.protocol)
        rootdse = yield from self._read_rootdse(info)
        if rootdse is not None:
            info.starttls_offered = STARTTLS_OID in attribute(rootdse, "supportedExtension")
        if self.options.starttls:
            yield from self._upgrade(info)
        yield Send(_unbind_request(self._new_id()))
        return info

    def _new_id(self) -> int:
        self._last_id += 1
        return self._last_id

    # -- the rootDSE ---------------------------------------------------------------------

    def _read_rootdse(self, info: ServiceInfo) -> Generator[Event, None, RootDSE | None]:
        """Search the rootDSE and record it in `info`; None when the server would not show it."""
        message_id = self._new_id()
        yield Send(_search_request(message_id))
        rootdse: RootDSE = {}
        for _ in range(MAX_SEARCH_MESSAGES):
            op = yield from self._read_reply(message_id)
            kind = op.getName()
            if kind == "searchResEntry":
                _merge(rootdse, op.getComponent()["attributes"])
            elif kind == "searchResDone":
                return self._record(info, rootdse, _result(op.getComponent()))
            elif kind != "searchResRef":
                raise self.wrong_protocol(f"a {kind} in answer to a search")
        raise self.wrong_protocol(f"more than {MAX_SEARCH_MESSAGES} replies to a base search")

    def _record(self, info: ServiceInfo, rootdse: RootDSE, result: LdapResult) -> RootDSE | None:
        when = " after StartTLS" if info.tls_upgraded else ""
        info.details.pop("search_result", None)
        if not result.ok:
            # Still LDAP: the server answered the search, it just would not show the rootDSE.
            info.details["search_result"] = {"code": result.name, "message": result.message}
            info.notes.append(f"the rootDSE search{when} was refused ({result})")
        elif not rootdse:
            info.notes.append(f"the rootDSE search{when} returned no entry")
        info.details["rootdse"] = rootdse
        info.capabilities = _capabilities(rootdse)
        info.product = product_from_rootdse(rootdse)
        ready = attribute(rootdse, "isGlobalCatalogReady")
        if ready:
            info.details["global_catalog_ready"] = ready[0].upper() == "TRUE"
        else:
            info.details.pop("global_catalog_ready", None)
        return rootdse if result.ok and rootdse else None

    # -- StartTLS ------------------------------------------------------------------------

    def _upgrade(self, info: ServiceInfo) -> Generator[Event, None, None]:
        required = self.options.starttls_required
        if info.starttls_offered is False:
            if required:
                raise StartTLSUnavailable(
                    f"the LDAP service does not list StartTLS ({STARTTLS_OID}) in its"
                    " rootDSE supportedExtension"
                )
            info.notes.append("StartTLS not offered (optional for this port)")
            return
        # With an unreadable rootDSE the offer is unknown: the server's answer decides.
        result = yield from self._ask_starttls()
        if not result.ok and info.starttls_offered is None and not required:
            info.notes.append(f"StartTLS refused ({result}); optional for this port")
            return
        if not result.ok:
            raise StartTLSUnavailable(f"StartTLS was refused: {result}")
        yield StartTLS()
        info.tls_upgraded = True
        yield from self._read_rootdse(info)

    def _ask_starttls(self) -> Generator[Event, None, LdapResult]:
        message_id = self._new_id()
        yield Send(_starttls_request(message_id))
        op = yield from self._read_reply(message_id)
        if op.getName() != "extendedResp":
            raise self.wrong_protocol(f"a {op.getName()} in answer to StartTLS")
        return _result(op.getComponent())

    # -- messages ------------------------------------------------------------------------

    def _read_reply(self, message_id: int) -> Generator[Event, None, Any]:
        """The protocolOp of the next message answering `message_id`."""
        for _ in range(MAX_UNSOLICITED + 1):
            message = yield from self._read_message()
            received = int(message["messageID"])
            op = message["protocolOp"]
            if received == message_id:
                return op
            if received != 0:
                raise self.wrong_protocol(f"a reply to message {received}, not {message_id}")
            self._unsolicited(op)
        raise self.wrong_protocol(f"more than {MAX_UNSOLICITED} unsolicited notifications")

    def _unsolicited(self, op: Any) -> None:
        """Message ID 0 is an unsolicited notification (RFC 4511 section 4.4)."""
        if op.getName() != "extendedResp":
            raise self.wrong_protocol(f"a {op.getName()} with message ID 0")
        response = op.getComponent()
        name = _text(response["responseName"]) if response["responseName"].isValue else ""
        # RFC 4511 defines no other notification, so one without a name is taken to be it;
        # a named one we do not know is skipped.
        if name in ("", NOTICE_OF_DISCONNECTION_OID):
            raise ServiceRefused(
                f"the LDAP service sent a notice of disconnection ({_result(response)})"
            )

    def _read_message(self) -> Generator[Event, None, Any]:
        """One whole LDAPMessage, framed by its outer tag and length, decoded by pyasn1."""
        try:
            frame = yield from read_frame(self, self.options.reply_limit)
        except FramingError as error:
            if not error.opening:
                raise self.wrong_protocol(str(error)) from None
            seen = yield from self.gather_evidence(error.opening)
            raise self.wrong_protocol(f"it sent {seen[:60]!r}") from None
        try:
            message, _ = decoder.decode(frame, asn1Spec=rfc2251.LDAPMessage())
        except DECODE_ERRORS as error:
            raise self.wrong_protocol(f"a message that is not an LDAPMessage ({error})") from error
        return message


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
    return opening + length_octets + body


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


def _search_request(message_id: int) -> bytes:
    """A base-scope search of the rootDSE for `ROOTDSE_ATTRIBUTES` (RFC 4512 section 5.1)."""
    message = _message(message_id)
    search = message["protocolOp"].getComponentByName("searchRequest")
    search["baseObject"] = b""
    search["scope"] = "baseObject"
    search["derefAliases"] = "neverDerefAliases"
    search["sizeLimit"] = 0
    search["timeLimit"] = 0
    search["typesOnly"] = False
    search["filter"]["present"] = "objectClass"
    search["attributes"].extend(ROOTDSE_ATTRIBUTES)
    return bytes(encoder.encode(message))


def _starttls_request(message_id: int) -> bytes:
    """The StartTLS extended request: its name and no value (RFC 4511 section 4.14.1)."""
    message = _message(message_id)
    message["protocolOp"].getComponentByName("extendedReq")["requestName"] = STARTTLS_OID
    return bytes(encoder.encode(message))


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


def _unbind_request(message_id: int) -> bytes:
    message = _UNBIND_MESSAGE.clone()
    message["messageID"] = message_id
    message["unbindRequest"] = ""
    return bytes(encoder.encode(message))


# -- reading replies -------------------------------------------------------------------------


def _text(value: Any) -> str:
    return bytes(value).decode("utf-8", "replace")


def _result(response: Any) -> LdapResult:
    return LdapResult(int(response["resultCode"]), _text(response["errorMessage"]))


def result_name(code: int) -> str:
    """The RFC 4511 name of a result code, or the number when it has none we know."""
    named = rfc2251.LDAPResult()["resultCode"].namedValues.getName(code)
    return _RESULT_NAMES.get(code) or named or f"resultCode {code}"


def _merge(rootdse: RootDSE, attributes: Any) -> None:
    for item in attributes:
        name = _text(item["type"])
        key = next((k for k in rootdse if k.lower() == name.lower()), name)
        rootdse.setdefault(key, []).extend(_text(value) for value in item["vals"])


def attribute(rootdse: RootDSE, name: str) -> list[str]:
    """The values of attribute `name`, whatever case the server spelled it in."""
    wanted = name.lower()
    return next((values for key, values in rootdse.items() if key.lower() == wanted), [])


def _capabilities(rootdse: RootDSE) -> list[str]:
    mechanisms = [f"SASL={mech}" for mech in attribute(rootdse, "supportedSASLMechanisms")]
    extensions = [
        f"{oid} ({_EXTENSION_NAMES[oid]})" if oid in _EXTENSION_NAMES else oid
        for oid in attribute(rootdse, "supportedExtension")
    ]
    return mechanisms + extensions


# -- naming the product ----------------------------------------------------------------------


def product_from_rootdse(rootdse: RootDSE) -> str | None:
    """Active Directory by its capability OID, OpenLDAP by its rootDSE object class, anything
    else by the vendorName/vendorVersion pair of RFC 3045."""
    capabilities = set(attribute(rootdse, "supportedCapabilities"))
    if ACTIVE_DIRECTORY_OID in capabilities:
        return _active_directory(attribute(rootdse, "domainControllerFunctionality"))
    if AD_LDS_OID in capabilities:
        return "Microsoft AD LDS (ADAM)"
    classes = attribute(rootdse, "objectClass") + attribute(rootdse, "structuralObjectClass")
    if "openldaprootdse" in {name.lower() for name in classes}:
        return "OpenLDAP"
    vendor = attribute(rootdse, "vendorName")[:1] + attribute(rootdse, "vendorVersion")[:1]
    return " ".join(vendor) or None


def _active_directory(levels: list[str]) -> str:
    if not levels or not levels[0].strip().isdigit():
        return "Microsoft Active Directory"
    level = int(levels[0])
    windows = _WINDOWS_BY_LEVEL.get(level, f"functional level {level}")
    return f"Microsoft Active Directory ({windows})"


# -- server role -----------------------------------------------------------------------------

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

#: Refused requests one connection may make before the responder hangs up.
MAX_FAILURES: Final = 20
NEUTRAL_VENDOR: Final = "portcall responder"

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

#: supportedControl: long-standing Active Directory controls (MS-ADTS 3.1.1.3.4.1): paged
#: results, SD flags, sort, notification, show deleted, lazy commit, DirSync, extended DN, tree
#: delete, cross-domain move, stats, verify name, sort response, domain scope.
_AD_CONTROLS: Final = tuple(
    f"1.2.840.113556.1.4.{n}"
    for n in (319, 801, 473, 528, 417, 619, 841, 529, 805, 521, 970, 1338, 474, 1339)
)
#: The Active Directory V51 capability that Windows Server 2003 adds (MS-ADTS 3.1.1.3.4.3).
AD_V51_OID: Final = "1.2.840.113556.1.4.1670"
#: Extended operations of a Windows Server 2003 DC besides StartTLS: dynamic refresh (RFC 2589)
#: and fast concurrent bind. A Windows 2000 DC supports none, StartTLS included (MS-ADTS
#: 3.1.1.3.4.2), so the exchange2000 profile lists none and refuses StartTLS.
_AD_EXTENSIONS: Final = ("1.3.6.1.4.1.1466.101.119.1", "1.2.840.113556.1.4.1781")
#: A fixed update sequence number: a real DC's grows with every change it makes.
_HIGHEST_USN: Final = "20471"

Attributes = list[tuple[str, list[str]]]


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


_MESSAGE_SCHEMA: Final = _request_schema()


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
            message, _ = decoder.decode(frame, asn1Spec=_MESSAGE_SCHEMA.clone())
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
            return _Reply(_result_message(message_id, "bindResponse", SUCCESS), SUCCESS)
        if not password:
            text = "unauthenticated binds are not allowed"
            return _refusal(message_id, "bindRequest", UNWILLING_TO_PERFORM, text)
        text = _AD_BAD_PASSWORD if self._active_directory else "invalid credentials"
        return _refusal(message_id, "bindRequest", INVALID_CREDENTIALS, text)

    # -- search --------------------------------------------------------------------------

    def _search(self, message_id: int, request: Any) -> _Reply:
        base = _text(request["baseObject"])
        scope = str(request["scope"])
        self.heard.append(f"SEARCH base={_shown(request['baseObject'])!r} scope={scope}")
        if base or scope != "baseObject":
            return self._search_refused(message_id)
        # The filter is not evaluated: every server answers (objectClass=*) here, and clients
        # ask nothing else of the rootDSE.
        wanted = {_text(name).lower() for name in request["attributes"]}
        attributes = [(n, v) for n, v in self.rootdse() if _wanted(n, wanted)]
        entry = _entry_message(message_id, attributes, types_only=bool(request["typesOnly"]))
        return _Reply(entry + _result_message(message_id, "searchResDone", SUCCESS), SUCCESS)

    def _search_refused(self, message_id: int) -> _Reply:
        if self.options.profile == "exchange2003":
            return _refusal(message_id, "searchRequest", OPERATIONS_ERROR, _AD_BIND_FIRST)
        text = _AD_NO_OBJECT if self._active_directory else "no such object"
        return _refusal(message_id, "searchRequest", NO_SUCH_OBJECT, text)

    def rootdse(self) -> Attributes:
        """The rootDSE this connection shows, every attribute in the order it is sent."""
        if not self._active_directory:
            return _neutral_rootdse(self.options.hostname, self._extensions())
        return _ad_rootdse(self.options, self._extensions(), datetime.now(UTC))

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
        reply = _extended_response(message_id, SUCCESS, name=STARTTLS_OID)
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
            return starttls + list(_AD_EXTENSIONS)
        return [] if self._active_directory else starttls

    def _controls(self) -> tuple[str, ...]:
        return _AD_CONTROLS if self._active_directory else ()


def _shown(value: Any, limit: int = 200) -> str:
    """A client's string, cut short and with control characters masked: fit for a log line
    and for a diagnostic message."""
    return "".join(c if c.isprintable() else "?" for c in _text(value)[:limit])


def _wanted(name: str, wanted: set[str]) -> bool:
    """RFC 4511 section 4.5.1.8: no list or "*" asks for all; "1.1" alone for none. Every
    rootDSE attribute is operational (RFC 4512 section 5.1), so "+" (RFC 3673) asks for all too.
    """
    return not wanted or bool(wanted & {"*", "+"}) or name.lower() in wanted


# -- the rootDSE -----------------------------------------------------------------------------


def _domain_dn(hostname: str, *, upper: bool = True) -> str:
    """The domain's DN from the host name: mail.example.test is in DC=example,DC=test."""
    labels = hostname.rstrip(".").split(".")
    domain = labels[1:] or labels
    prefix = "DC" if upper else "dc"
    return ",".join(f"{prefix}={label}" for label in domain)


@dataclass(frozen=True)
class _Forest:
    """The names a DC of a one-domain forest shows, all derived from its host name."""

    base: str
    config: str
    schema: str
    server: str

    @classmethod
    def of(cls, hostname: str) -> _Forest:
        base = _domain_dn(hostname)
        config = f"CN=Configuration,{base}"
        computer = hostname.split(".")[0].upper()[:15]  # a NetBIOS name
        server = f"CN={computer},CN=Servers,CN=Default-First-Site-Name,CN=Sites,{config}"
        return cls(base, config, f"CN=Schema,{config}", server)


def _ad_rootdse(options: ServerOptions, extensions: list[str], now: datetime) -> Attributes:
    """A Windows Server 2003 (exchange2003) or Windows 2000 DC's rootDSE (MS-ADTS 3.1.1.3.2)."""
    windows_2003 = options.profile == "exchange2003"
    forest = _Forest.of(options.hostname)
    contexts = [forest.base, forest.config, forest.schema]
    if windows_2003:  # the DNS application partitions arrived with Windows Server 2003
        contexts += [f"DC=DomainDnsZones,{forest.base}", f"DC=ForestDnsZones,{forest.base}"]
    # Windows 2000 offers Kerberos (GSSAPI, GSS-SPNEGO) only (MS-ADTS 3.1.1.3.4.5).
    mechanisms = ["GSSAPI", "GSS-SPNEGO"] + (["EXTERNAL", "DIGEST-MD5"] if windows_2003 else [])
    level = ["2"] if windows_2003 else ["0"]
    attributes = [
        ("currentTime", [now.strftime("%Y%m%d%H%M%S.0Z")]),
        ("subschemaSubentry", [f"CN=Aggregate,{forest.schema}"]),
        ("dsServiceName", [f"CN=NTDS Settings,{forest.server}"]),
        ("namingContexts", contexts),
        ("defaultNamingContext", [forest.base]),
        ("schemaNamingContext", [forest.schema]),
        ("configurationNamingContext", [forest.config]),
        ("rootDomainNamingContext", [forest.base]),
        ("supportedControl", list(_AD_CONTROLS)),
        ("supportedLDAPVersion", ["3", "2"]),
        ("highestCommittedUSN", [_HIGHEST_USN]),
        ("supportedSASLMechanisms", mechanisms),
        ("dnsHostName", [options.hostname]),
        ("serverName", [forest.server]),
        ("supportedCapabilities", [ACTIVE_DIRECTORY_OID] + ([AD_V51_OID] if windows_2003 else [])),
        ("supportedExtension", extensions),
        ("isSynchronized", ["TRUE"]),
        ("isGlobalCatalogReady", ["TRUE" if options.global_catalog else "FALSE"]),
        ("domainFunctionality", level),
        ("forestFunctionality", level),
        ("domainControllerFunctionality", level),
    ]
    return [(name, values) for name, values in attributes if values]


def _neutral_rootdse(hostname: str, extensions: list[str]) -> Attributes:
    """A plain LDAPv3 rootDSE (RFC 4512 section 5.1, RFC 3045 vendorName) naming no product."""
    attributes = [
        ("namingContexts", [_domain_dn(hostname, upper=False)]),
        ("supportedLDAPVersion", ["3"]),
        ("supportedExtension", extensions),
        ("vendorName", [NEUTRAL_VENDOR]),
    ]
    return [(name, values) for name, values in attributes if values]


# -- building responses ----------------------------------------------------------------------


def _server_message(message_id: int, op_name: str) -> tuple[Any, Any]:
    message = _MESSAGE_SCHEMA.clone()
    message["messageID"] = message_id
    return message, message["protocolOp"].getComponentByName(op_name)


def _result_message(message_id: int, op_name: str, code: int, diagnostic: str = "") -> bytes:
    message, result = _server_message(message_id, op_name)
    result["resultCode"] = code
    result["matchedDN"] = b""
    result["errorMessage"] = diagnostic.encode()  # LDAPString is UTF-8 (RFC 4511 4.1.2)
    return bytes(encoder.encode(message))


def _refusal(message_id: int, request: str, code: int, diagnostic: str) -> _Reply:
    """`request`'s own response carrying `code`."""
    response = RESPONSE_TO[request]
    if response == "extendedResp":
        return _Reply(_extended_response(message_id, code, diagnostic), code)
    return _Reply(_result_message(message_id, response, code, diagnostic), code)


def _extended_response(message_id: int, code: int, diagnostic: str = "", name: str = "") -> bytes:
    message, response = _server_message(message_id, "extendedResp")
    response["resultCode"] = code
    response["matchedDN"] = b""
    response["errorMessage"] = diagnostic.encode()
    if name:
        response["responseName"] = name.encode()
    return bytes(encoder.encode(message))


def notice_of_disconnection(code: int, diagnostic: str) -> bytes:
    """The unsolicited notice a server sends before it hangs up (RFC 4511 section 4.4.1)."""
    return _extended_response(0, code, diagnostic, NOTICE_OF_DISCONNECTION_OID)


def _entry_message(message_id: int, attributes: Attributes, *, types_only: bool) -> bytes:
    """The rootDSE as a SearchResultEntry; with typesOnly, names without values (4.5.1.6)."""
    message, entry = _server_message(message_id, "searchResEntry")
    entry["objectName"] = b""
    found = entry["attributes"]
    for position, (name, values) in enumerate(attributes):
        found[position]["type"] = name.encode()
        found[position]["vals"].extend([] if types_only else [v.encode() for v in values])
    return bytes(encoder.encode(message))
