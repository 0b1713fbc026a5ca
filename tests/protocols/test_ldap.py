from __future__ import annotations

import warnings
from typing import Any

import pytest
from pyasn1.codec.ber import decoder, encoder
from pyasn1_modules import rfc2251

from portcall.protocols.base import (
    NEED_DATA,
    Done,
    Event,
    Pause,
    PeerClosed,
    ProbeOptions,
    ReplyTooLong,
    Send,
    ServiceRefused,
    StartTLSUnavailable,
    WrongProtocol,
)
from portcall.protocols.ldap import (
    ROOTDSE_ATTRIBUTES,
    STARTTLS_OID,
    LdapClient,
    product_from_rootdse,
)
from portcall.protocols.ldap.client import STARTTLS_TRIES
from tests.protocols.transcript import EOF_, TLS, C, S, play, play_both_ways

with warnings.catch_warnings():
    # ldap3 imports names pyasn1 has deprecated; the warning is theirs, not ours.
    warnings.simplefilter("ignore", DeprecationWarning)
    from ldap3.protocol import rfc4511

# -- building LDAP messages the way a server (or our client) would put them on the wire --------


def _message(message_id: int, op_name: str) -> tuple[Any, Any]:
    message = rfc2251.LDAPMessage()
    message["messageID"] = message_id
    return message, message["protocolOp"].getComponentByName(op_name)


def _encoded(message: Any) -> bytes:
    return bytes(encoder.encode(message))


def search_request(message_id: int) -> bytes:
    message, search = _message(message_id, "searchRequest")
    search["baseObject"] = b""
    search["scope"] = "baseObject"
    search["derefAliases"] = "neverDerefAliases"
    search["sizeLimit"] = 0
    search["timeLimit"] = 0
    search["typesOnly"] = False
    search["filter"]["present"] = "objectClass"
    search["attributes"].extend(ROOTDSE_ATTRIBUTES)
    return _encoded(message)


def starttls_request(message_id: int) -> bytes:
    message, request = _message(message_id, "extendedReq")
    request["requestName"] = STARTTLS_OID
    return _encoded(message)


def entry(message_id: int, attributes: dict[str, list[str]]) -> bytes:
    message, found = _message(message_id, "searchResEntry")
    found["objectName"] = b""
    for position, (name, values) in enumerate(attributes.items()):
        found["attributes"][position]["type"] = name
        found["attributes"][position]["vals"].extend(value.encode() for value in values)
    return _encoded(message)


def reference(message_id: int, url: str) -> bytes:
    message, urls = _message(message_id, "searchResRef")
    urls.extend([url])
    return _encoded(message)


def _fill_result(result: Any, code: int, diagnostic: str) -> None:
    result["resultCode"] = code
    result["matchedDN"] = b""
    result["errorMessage"] = diagnostic


def done(message_id: int, code: int = 0, diagnostic: str = "") -> bytes:
    message, result = _message(message_id, "searchResDone")
    _fill_result(result, code, diagnostic)
    return _encoded(message)


def extended(message_id: int, code: int = 0, diagnostic: str = "", name: str = "") -> bytes:
    message, response = _message(message_id, "extendedResp")
    _fill_result(response, code, diagnostic)
    if name:
        response["responseName"] = name
    return _encoded(message)


# -- rootDSE answers ---------------------------------------------------------------------------

AD_2003 = {
    "namingContexts": [
        "DC=example,DC=com",
        "CN=Configuration,DC=example,DC=com",
        "CN=Schema,CN=Configuration,DC=example,DC=com",
    ],
    "defaultNamingContext": ["DC=example,DC=com"],
    "dnsHostName": ["dc1.example.com"],
    "supportedLDAPVersion": ["3", "2"],
    "supportedSASLMechanisms": ["GSSAPI", "GSS-SPNEGO", "EXTERNAL", "DIGEST-MD5"],
    # Spelt unlike our request, to prove lookups ignore case.
    "SupportedCapabilities": ["1.2.840.113556.1.4.800", "1.2.840.113556.1.4.1670"],
    "supportedExtension": [STARTTLS_OID, "1.3.6.1.4.1.1466.101.119.1", "1.2.840.113556.1.4.1781"],
    "isGlobalCatalogReady": ["TRUE"],
    "domainControllerFunctionality": ["2"],
    "forestFunctionality": ["2"],
}

OPENLDAP = {
    "namingContexts": ["dc=example,dc=org"],
    "supportedExtension": [STARTTLS_OID, "1.3.6.1.4.1.4203.1.11.1", "1.3.6.1.4.1.4203.1.11.3"],
    "supportedLDAPVersion": ["3"],
    "subschemaSubentry": ["cn=Subschema"],
    "objectClass": ["top", "OpenLDAProotDSE"],
    "structuralObjectClass": ["OpenLDAProotDSE"],
}

PLAIN = {
    "namingContexts": ["dc=example,dc=org"],
    "supportedLDAPVersion": ["3"],
    "supportedExtension": ["1.3.6.1.4.1.4203.1.11.3"],
}
#: A rootDSE that lists no extension at all, as a Samba DC's: it says nothing of StartTLS.
SILENT_ON_EXTENSIONS = {"namingContexts": ["DC=example,DC=com"], "supportedLDAPVersion": ["3"]}

SEARCH = C(search_request(1))
ASK_STARTTLS = C(starttls_request(2))
SMTP_BANNER = (
    b"220 mail.example.com Microsoft ESMTP MAIL Service, Version: 6.0.3790.3959"
    b" ready at  Tue, 4 Mar 2008 10:00:00 +0100 \r\n"
)


def starttls_client() -> LdapClient:
    return LdapClient(ProbeOptions(starttls=True))


def optional_starttls_client() -> LdapClient:
    return LdapClient(ProbeOptions(starttls=True, starttls_required=False))


def client_sends(hs: LdapClient, replies: list[bytes]) -> list[bytes]:
    """Drive `hs` by hand, feeding `replies` in turn; everything the client sent."""
    sent: list[bytes] = []
    pending = list(replies)
    while not isinstance(event := hs.next_event(), Done):
        if isinstance(event, Send):
            sent.append(event.data)
        else:
            assert event is NEED_DATA
            hs.receive_data(pending.pop(0) if pending else b"")
    return sent


# -- tests -------------------------------------------------------------------------------------


def test_first_request_is_the_rootdse_search() -> None:
    first = LdapClient().next_event()
    assert isinstance(first, Send)
    message, rest = decoder.decode(first.data, asn1Spec=rfc2251.LDAPMessage())
    assert rest == b""
    assert int(message["messageID"]) == 1
    search = message["protocolOp"]["searchRequest"]
    assert bytes(search["baseObject"]) == b""
    assert str(search["scope"]) == "baseObject"
    assert str(search["derefAliases"]) == "neverDerefAliases"
    assert search["filter"].getName() == "present"
    assert bytes(search["filter"]["present"]) == b"objectClass"
    requested = [bytes(name).decode() for name in search["attributes"]]
    assert "namingContexts" in requested
    assert "isGlobalCatalogReady" in requested
    assert "supportedExtension" in requested
    assert "structuralObjectClass" in requested
    assert len(requested) == 17


def test_the_client_unbinds_last() -> None:
    sent = client_sends(LdapClient(), [entry(1, PLAIN) + done(1)])
    assert len(sent) == 2
    # ldap3's schema, since pyasn1-modules tags UnbindRequest as constructed (0x62).
    message, rest = decoder.decode(sent[-1], asn1Spec=rfc4511.LDAPMessage())
    assert rest == b""
    assert int(message["messageID"]) == 2
    assert message["protocolOp"].getName() == "unbindRequest"
    assert sent[-1][5] == 0x42  # [APPLICATION 2], primitive


def test_active_directory_2003_rootdse() -> None:
    info = play_both_ways(LdapClient, [SEARCH, S(entry(1, AD_2003) + done(1))])
    assert info.protocol == "ldap"
    assert info.product == "Microsoft Active Directory (Windows Server 2003)"
    assert info.details["global_catalog_ready"] is True
    rootdse = info.details["rootdse"]
    assert isinstance(rootdse, dict)
    assert rootdse["namingContexts"] == AD_2003["namingContexts"]
    assert "SupportedCapabilities" in rootdse  # kept as the server spelt it
    assert info.starttls_offered is True
    assert info.tls_upgraded is False
    assert "SASL=GSS-SPNEGO" in info.capabilities
    assert f"{STARTTLS_OID} (StartTLS)" in info.capabilities
    assert "1.2.840.113556.1.4.1781 (Fast Concurrent Bind)" in info.capabilities
    assert info.notes == []


@pytest.mark.parametrize(
    ("level", "product"),
    [
        (["0"], "Microsoft Active Directory (Windows 2000)"),
        (["3"], "Microsoft Active Directory (Windows Server 2008)"),
        (["4"], "Microsoft Active Directory (Windows Server 2008 R2)"),
        (["6"], "Microsoft Active Directory (Windows Server 2012 R2)"),
        (["7"], "Microsoft Active Directory (Windows Server 2016 or later)"),
        (["42"], "Microsoft Active Directory (functional level 42)"),
        ([], "Microsoft Active Directory"),
    ],
)
def test_active_directory_functional_levels(level: list[str], product: str) -> None:
    rootdse = {"supportedCapabilities": ["1.2.840.113556.1.4.800"]}
    if level:
        rootdse["domainControllerFunctionality"] = level
    assert product_from_rootdse(rootdse) == product


def test_vendor_name_names_other_servers() -> None:
    vendor = {"vendorName": ["389 Project"], "vendorVersion": ["389-Directory/2.4.5"]}
    assert product_from_rootdse(vendor) == "389 Project 389-Directory/2.4.5"
    assert product_from_rootdse(PLAIN) is None


def test_openldap_rootdse_with_a_reference_skipped() -> None:
    steps = [
        SEARCH,
        S(reference(1, "ldap://other.example.org/") + entry(1, OPENLDAP) + done(1)),
    ]
    info = play_both_ways(LdapClient, steps)
    assert info.product == "OpenLDAP"
    assert "global_catalog_ready" not in info.details
    assert info.capabilities == [
        f"{STARTTLS_OID} (StartTLS)",
        "1.3.6.1.4.1.4203.1.11.1 (Password Modify)",
        "1.3.6.1.4.1.4203.1.11.3 (Who am I)",
    ]


def test_starttls_upgrade_reads_the_rootdse_again_over_tls() -> None:
    over_tls = {**OPENLDAP, "supportedSASLMechanisms": ["EXTERNAL", "PLAIN"]}
    # A forged answer sent in clear with the StartTLS reply must not survive the upgrade.
    forged = done(3, 50, "injected")
    steps = [
        SEARCH,
        S(entry(1, OPENLDAP) + done(1)),
        ASK_STARTTLS,
        S(extended(2, name=STARTTLS_OID) + forged),
        TLS,
        C(search_request(3)),
        S(entry(3, over_tls) + done(3)),
    ]
    info = play_both_ways(starttls_client, steps)
    assert info.tls_upgraded is True
    assert info.starttls_offered is True
    assert "SASL=PLAIN" in info.capabilities
    assert info.details["rootdse"] == over_tls
    assert "search_result" not in info.details


def test_missing_starttls_is_a_fault_when_required() -> None:
    with pytest.raises(StartTLSUnavailable, match="does not list StartTLS"):
        play(starttls_client(), [SEARCH, S(entry(1, PLAIN) + done(1))])


def test_missing_starttls_is_a_note_when_optional() -> None:
    info = play_both_ways(optional_starttls_client, [SEARCH, S(entry(1, PLAIN) + done(1))])
    assert info.starttls_offered is False
    assert info.tls_upgraded is False
    assert "StartTLS not offered (optional for this port)" in info.notes


def test_starttls_is_asked_for_when_the_rootdse_lists_no_extension() -> None:
    steps = [
        SEARCH,
        S(entry(1, SILENT_ON_EXTENSIONS) + done(1)),
        ASK_STARTTLS,
        S(extended(2, name=STARTTLS_OID)),
        TLS,
        C(search_request(3)),
        S(entry(3, SILENT_ON_EXTENSIONS) + done(3)),
    ]
    info = play_both_ways(starttls_client, steps)
    assert info.starttls_offered is True and info.tls_upgraded is True
    assert "StartTLS works, though the rootDSE does not list it" in info.notes


def test_a_refusal_is_the_answer_when_the_rootdse_lists_no_extension() -> None:
    steps = [
        SEARCH,
        S(entry(1, SILENT_ON_EXTENSIONS) + done(1)),
        ASK_STARTTLS,
        S(extended(2, 2, "unsupported extended operation")),
    ]
    info = play_both_ways(optional_starttls_client, steps)
    assert info.starttls_offered is False and info.tls_upgraded is False
    assert any(note.startswith("StartTLS refused (protocolError") for note in info.notes)


@pytest.mark.parametrize("factory", [starttls_client, optional_starttls_client])
def test_starttls_listed_but_refused(factory: type[LdapClient]) -> None:
    steps = [
        SEARCH,
        S(entry(1, OPENLDAP) + done(1)),
        ASK_STARTTLS,
        S(extended(2, 52, "TLS not configured")),
    ]
    with pytest.raises(StartTLSUnavailable, match="unavailable: TLS not configured"):
        play(factory(), steps)


#: What slapd answers a StartTLS that arrives while it is still putting the search away.
OUTSTANDING = "cannot start TLS when operations are outstanding"


def test_starttls_is_asked_again_when_the_search_was_not_yet_put_away() -> None:
    """The search's done has come, so no operation is outstanding: a busy slapd says so
    only because the StartTLS overtook its own bookkeeping, and the next request succeeds."""
    steps = [
        SEARCH,
        S(entry(1, OPENLDAP) + done(1)),
        ASK_STARTTLS,
        S(extended(2, 1, OUTSTANDING)),
        C(starttls_request(3)),
        S(extended(3, name=STARTTLS_OID)),
        TLS,
        C(search_request(4)),
        S(entry(4, OPENLDAP) + done(4)),
    ]
    info = play_both_ways(starttls_client, steps)
    assert info.tls_upgraded is True and info.starttls_offered is True


def test_outstanding_operations_said_every_time_is_the_answer() -> None:
    """Each new request comes after a longer pause (a loaded server may need milliseconds to
    put the search away); after the last one the refusal is the answer."""
    steps = [SEARCH, S(entry(1, OPENLDAP) + done(1))]
    for message_id in range(2, 2 + STARTTLS_TRIES):
        steps += [C(starttls_request(message_id)), S(extended(message_id, 1, OUTSTANDING))]
    client = starttls_client()
    pauses: list[float] = []
    next_event = client.next_event

    def recorded() -> Event:
        event = next_event()
        if isinstance(event, Pause):
            pauses.append(event.seconds)
        return event

    client.next_event = recorded  # type: ignore[method-assign]
    with pytest.raises(StartTLSUnavailable, match="operations are outstanding"):
        play(client, steps)
    assert pauses == [0.02, 0.04, 0.08, 0.16]


def test_refused_search_is_still_ldap() -> None:
    diagnostic = "00002020: Operation unavailable without authentication"
    info = play_both_ways(LdapClient, [SEARCH, S(done(1, 50, diagnostic))])
    assert info.protocol == "ldap"
    assert info.product is None
    assert info.details["search_result"] == {
        "code": "insufficientAccessRights",
        "message": diagnostic,
    }
    assert any("insufficientAccessRights" in note for note in info.notes)
    assert info.starttls_offered is None


def test_unreadable_rootdse_lets_the_starttls_answer_decide() -> None:
    steps = [
        SEARCH,
        S(done(1, 8, "need TLS")),
        ASK_STARTTLS,
        S(extended(2, name=STARTTLS_OID)),
        TLS,
        C(search_request(3)),
        S(entry(3, OPENLDAP) + done(3)),
    ]
    info = play_both_ways(starttls_client, steps)
    assert info.tls_upgraded is True
    assert info.product == "OpenLDAP"
    assert "search_result" not in info.details
    assert any("strongerAuthRequired: need TLS" in note for note in info.notes)


def test_notice_of_disconnection_is_a_refusal() -> None:
    notice = extended(0, 2, "00000000: LdapErr: DSID-0C0C0968", "1.3.6.1.4.1.1466.20036")
    with pytest.raises(ServiceRefused, match=r"notice of disconnection.*protocolError"):
        play(LdapClient(), [SEARCH, S(notice)])


@pytest.mark.parametrize("split", [False, True])
def test_smtp_banner_on_the_ldap_port_is_named(split: bool) -> None:
    with pytest.raises(WrongProtocol) as caught:
        play(LdapClient(), [SEARCH, S(SMTP_BANNER)], byte_at_a_time=split)
    assert caught.value.detected == "SMTP"
    assert "220 mail.example.com" in caught.value.evidence


def test_a_text_reply_is_read_to_its_line_end_before_naming() -> None:
    # Bytes arriving one read at a time: "2" alone names nothing, the whole line does.
    hs = LdapClient()
    assert isinstance(hs.next_event(), Send)
    for byte in SMTP_BANNER[:-1]:
        hs.receive_data(bytes([byte]))
        assert hs.next_event() is NEED_DATA
    hs.receive_data(SMTP_BANNER[-1:])
    with pytest.raises(WrongProtocol) as caught:
        hs.next_event()
    assert caught.value.detected == "SMTP"


def test_http_on_the_ldap_port_is_named() -> None:
    reply = b"HTTP/1.1 400 Bad Request\r\nServer: nginx\r\nContent-Length: 0\r\n\r\n"
    with pytest.raises(WrongProtocol) as caught:
        play(LdapClient(), [SEARCH, S(reply)])
    assert caught.value.detected == "HTTP"


def test_a_tls_alert_is_named_without_waiting_for_a_line() -> None:
    hs = LdapClient()
    hs.next_event()
    hs.receive_data(b"\x15\x03\x01\x00\x02\x02\x0a")
    with pytest.raises(WrongProtocol) as caught:
        hs.next_event()
    assert caught.value.detected == "TLS"


def test_a_sequence_that_is_not_an_ldap_message() -> None:
    with pytest.raises(WrongProtocol, match="not an LDAPMessage"):
        play(LdapClient(), [SEARCH, S(b"\x30\x03\x01\x01\xff")])


def test_a_reply_to_another_message_id() -> None:
    with pytest.raises(WrongProtocol, match="reply to message 7"):
        play(LdapClient(), [SEARCH, S(done(7))])


@pytest.mark.parametrize("split", [False, True])
def test_announced_length_over_the_limit(split: bool) -> None:
    options = ProbeOptions(reply_limit=1024)
    huge = b"\x30\x82\x04\x01\x02\x01\x01"  # announces 1025 bytes
    with pytest.raises(ReplyTooLong):
        play(LdapClient(options), [SEARCH, S(huge)], byte_at_a_time=split)


def test_indefinite_length_is_refused() -> None:
    with pytest.raises(WrongProtocol, match="indefinite"):
        play(LdapClient(), [SEARCH, S(b"\x30\x80\x02\x01\x01")])


def test_close_before_any_answer() -> None:
    with pytest.raises(PeerClosed):
        play(LdapClient(), [SEARCH, EOF_])


def test_close_in_the_middle_of_a_message() -> None:
    with pytest.raises(PeerClosed):
        play(LdapClient(), [SEARCH, S(entry(1, AD_2003)[:20]), EOF_])
