"""LDAPv3 (RFC 4511) rootDSE read and StartTLS (RFC 4511 section 4.14, RFC 4513 section 3),
client role.

The client asks first: no bind is needed, since LDAPv3 allows operations before a bind (RFC 4511
section 4.2.1) and Active Directory serves its rootDSE anonymously (MS-ADTS 5.1.3). Messages are
BER, built and parsed with pyasn1 and the LDAPv3 schema of pyasn1-modules; this module only
reads the outer tag and length to know where one message ends.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Any, Final

from pyasn1.codec.ber import decoder, encoder
from pyasn1.error import PyAsn1Error
from pyasn1.type import namedtype, tag, univ
from pyasn1_modules import rfc2251

from portcall.protocols.base import (
    Event,
    Handshake,
    ProbeOptions,
    ReplyTooLong,
    Send,
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
        tag = yield from self.read_exactly(1)
        if tag[0] != _SEQUENCE_TAG:
            seen = yield from self.gather_evidence(tag)
            raise self.wrong_protocol(f"it sent {seen[:60]!r}")
        length, length_octets = yield from self._read_length()
        if length > self.options.reply_limit:
            raise ReplyTooLong(self.options.reply_limit, tag + length_octets + self.buffered[:64])
        body = yield from self.read_exactly(length)
        try:
            message, _ = decoder.decode(tag + length_octets + body, asn1Spec=rfc2251.LDAPMessage())
        except PyAsn1Error as error:
            raise self.wrong_protocol(f"a message that is not an LDAPMessage ({error})") from error
        return message

    def _read_length(self) -> Generator[Event, None, tuple[int, bytes]]:
        """The BER length (X.690 section 8.1.3) and the octets that carried it."""
        first = yield from self.read_exactly(1)
        if first[0] < 0x80:
            return first[0], first
        count = first[0] & 0x7F
        if count == 0:
            # RFC 4511 section 5.1: only the definite form of length is allowed.
            raise self.wrong_protocol("a BER indefinite length, which LDAP forbids")
        rest = yield from self.read_exactly(count)
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
