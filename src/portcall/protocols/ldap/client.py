"""The client role: reads the rootDSE, upgrades with StartTLS when asked, and names the
directory server from what the rootDSE says."""

from __future__ import annotations

from collections.abc import Generator
from typing import Final

from portcall.protocols.base import (
    Event,
    Handshake,
    Pause,
    ProbeOptions,
    Send,
    ServiceInfo,
    ServiceRefused,
    StartTLS,
    StartTLSUnavailable,
    Steps,
)
from portcall.protocols.ldap.messages import (
    ACTIVE_DIRECTORY_OID,
    AD_LDS_OID,
    NOTICE_OF_DISCONNECTION_OID,
    OPERATIONS_ERROR,
    STARTTLS_OID,
    FramingError,
    LdapResult,
    read_frame,
    search_request,
    starttls_request,
    unbind_request,
)
from portcall.protocols.ldap.replies import NotLdap, Reply, decode_reply
from portcall.protocols.peertext import quoted

#: Replies to one base-scope search: one entry and a done (RFC 4511 section 4.5.1.2), plus
#: the few references a server may add. A peer that sends more is not answering our search;
#: the bound also caps the decoding work of one search at a few `MAX_ELEMENTS` messages.
MAX_SEARCH_MESSAGES: Final = 8
#: Unsolicited notifications other than a disconnection that we skip before giving up.
MAX_UNSOLICITED: Final = 8
#: StartTLS requests sent at most while the server says operations are outstanding, and the
#: pause before the second one, doubled before each after it (0.3 s in all at most).
STARTTLS_TRIES: Final = 5
STARTTLS_PAUSE: Final = 0.02

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
            extensions = attribute(rootdse, "supportedExtension")
            # A rootDSE that lists no extension at all (a Samba DC's) says nothing about
            # StartTLS: the server's answer to the request decides, as for an unreadable one.
            info.starttls_offered = STARTTLS_OID in extensions if extensions else None
        if self.options.starttls:
            yield from self._upgrade(info)
        yield Send(unbind_request(self._new_id()))
        return info

    def _new_id(self) -> int:
        self._last_id += 1
        return self._last_id

    # -- the rootDSE ---------------------------------------------------------------------

    def _read_rootdse(self, info: ServiceInfo) -> Generator[Event, None, RootDSE | None]:
        """Search the rootDSE and record it in `info`; None when the server would not show it."""
        message_id = self._new_id()
        yield Send(search_request(message_id))
        rootdse: RootDSE = {}
        for _ in range(MAX_SEARCH_MESSAGES):
            reply = yield from self._read_reply(message_id)
            kind = reply.kind
            if kind == "searchResEntry":
                _merge(rootdse, reply.attributes)
            elif kind == "searchResDone" and reply.result is not None:
                return self._record(info, rootdse, reply.result)
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
        # With an unreadable rootDSE, or one listing no extension, the offer is unknown: the
        # server's answer decides, and is recorded as the offer.
        unknown = info.starttls_offered is None
        result = yield from self._ask_starttls()
        if unknown:
            info.starttls_offered = result.ok
            if result.ok:
                info.notes.append("StartTLS works, though the rootDSE does not list it")
        if not result.ok and unknown and not required:
            info.notes.append(f"StartTLS refused ({result}); optional for this port")
            return
        if not result.ok:
            raise StartTLSUnavailable(f"StartTLS was refused: {result}")
        yield StartTLS()
        info.tls_upgraded = True
        yield from self._read_rootdse(info)

    def _ask_starttls(self) -> Generator[Event, None, LdapResult]:
        """The answer to StartTLS. "Operations outstanding" (RFC 4511 section 4.14.1) cannot be
        true once the search's done has come: a busy slapd says it when StartTLS arrives
        before it has put the search away. The request is then made again, a few times,
        after a pause that grows: a loaded server may take milliseconds to get there."""
        for attempt in range(STARTTLS_TRIES):
            if attempt:
                yield Pause(STARTTLS_PAUSE * 2 ** (attempt - 1))
            message_id = self._new_id()
            yield Send(starttls_request(message_id))
            reply = yield from self._read_reply(message_id)
            if reply.kind != "extendedResp" or reply.result is None:
                raise self.wrong_protocol(f"a {reply.kind} in answer to StartTLS")
            result = reply.result
            if result.code != OPERATIONS_ERROR or "outstanding" not in result.message:
                break
        return result

    # -- messages ------------------------------------------------------------------------

    def _read_reply(self, message_id: int) -> Generator[Event, None, Reply]:
        """The next message answering `message_id`."""
        for _ in range(MAX_UNSOLICITED + 1):
            reply = yield from self._read_message()
            if reply.message_id == message_id:
                return reply
            if reply.message_id != 0:
                raise self.wrong_protocol(
                    f"a reply to message {reply.message_id}, not {message_id}"
                )
            self._unsolicited(reply)
        raise self.wrong_protocol(f"more than {MAX_UNSOLICITED} unsolicited notifications")

    def _unsolicited(self, reply: Reply) -> None:
        """Message ID 0 is an unsolicited notification (RFC 4511 section 4.4)."""
        if reply.kind != "extendedResp" or reply.result is None:
            raise self.wrong_protocol(f"a {reply.kind} with message ID 0")
        name = (reply.response_name or b"").decode("utf-8", "replace")
        # RFC 4511 defines no other notification, so one without a name is taken to be it;
        # a named one we do not know is skipped.
        if name in ("", NOTICE_OF_DISCONNECTION_OID):
            raise ServiceRefused(
                f"the LDAP service sent a notice of disconnection ({reply.result})"
            )

    def _read_message(self) -> Generator[Event, None, Reply]:
        """One whole LDAPMessage, framed by its outer tag and length (`replies`)."""
        try:
            frame = yield from read_frame(self, self.options.reply_limit)
        except FramingError as error:
            if not error.opening:
                raise self.wrong_protocol(str(error)) from None
            seen = yield from self.gather_evidence(error.opening)
            raise self.wrong_protocol(f"it sent {quoted(seen)}") from None
        try:
            return decode_reply(frame)
        except NotLdap as error:
            raise self.wrong_protocol(f"a message that is not an LDAPMessage ({error})") from error


# -- reading the rootDSE ---------------------------------------------------------------------


def _merge(rootdse: RootDSE, attributes: list[tuple[bytes, list[bytes]]]) -> None:
    """Add an entry's attributes to `rootdse`; names differing only in case are one attribute,
    kept in the spelling first seen. One pass with an index, so the cost is linear."""
    keys = {key.lower(): key for key in rootdse}
    for raw_name, values in attributes:
        name = raw_name.decode("utf-8", "replace")
        key = keys.setdefault(name.lower(), name)
        rootdse.setdefault(key, []).extend([v.decode("utf-8", "replace") for v in values])


def attribute(rootdse: RootDSE, name: str) -> list[str]:
    """The values of attribute `name`, whatever case the server spelled it in."""
    values = rootdse.get(name)  # as asked for, the spelling servers use
    if values is not None:
        return values
    wanted = name.lower()
    for key, values in rootdse.items():
        if key.lower() == wanted:
            return values
    return []


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
