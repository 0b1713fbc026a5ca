from __future__ import annotations

import random
import re
import warnings
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pyasn1.codec.ber import decoder, encoder

from portcall.protocols.base import ProbeOptions, ServerOptions
from portcall.protocols.ldap import (
    ADMIN_LIMIT_EXCEEDED,
    AUTH_METHOD_NOT_SUPPORTED,
    INVALID_CREDENTIALS,
    MAX_FAILURES,
    NO_SUCH_OBJECT,
    NOTICE_OF_DISCONNECTION_OID,
    OPERATIONS_ERROR,
    PROTOCOL_ERROR,
    STARTTLS_OID,
    SUCCESS,
    UNAVAILABLE_CRITICAL_EXTENSION,
    UNWILLING_TO_PERFORM,
    LdapClient,
    LdapServer,
)
from tests.protocols.pair import check_server, converse, play_server
from tests.protocols.test_ldap import done, entry, extended, search_request, starttls_request
from tests.protocols.transcript import EOF_, TLS, C, S, Step

with warnings.catch_warnings():
    # ldap3 imports names pyasn1 has deprecated; the warning is theirs, not ours.
    warnings.simplefilter("ignore", DeprecationWarning)
    from ldap3.operation.abandon import abandon_operation
    from ldap3.operation.add import add_operation
    from ldap3.operation.bind import bind_operation
    from ldap3.operation.compare import compare_operation
    from ldap3.operation.delete import delete_operation
    from ldap3.operation.extended import extended_operation
    from ldap3.operation.modify import modify_operation
    from ldap3.operation.modifyDn import modify_dn_operation
    from ldap3.operation.search import search_operation
    from ldap3.operation.unbind import unbind_operation
    from ldap3.protocol import rfc4511
    from ldap3.protocol.convert import build_controls_list

HOST = "dc1.example.test"
BASE = "DC=example,DC=test"
CONFIG = f"CN=Configuration,{BASE}"
SCHEMA = f"CN=Schema,{CONFIG}"
SERVER_DN = f"CN=DC1,CN=Servers,CN=Default-First-Site-Name,CN=Sites,{CONFIG}"

#: What a Windows Server 2003 DC shows our client's rootDSE search, in the order it is sent.
AD_2003_FOR_OUR_CLIENT = {
    "subschemaSubentry": [f"CN=Aggregate,{SCHEMA}"],
    "namingContexts": [
        BASE,
        CONFIG,
        SCHEMA,
        f"DC=DomainDnsZones,{BASE}",
        f"DC=ForestDnsZones,{BASE}",
    ],
    "defaultNamingContext": [BASE],
    "supportedControl": [
        f"1.2.840.113556.1.4.{n}"
        for n in (319, 801, 473, 528, 417, 619, 841, 529, 805, 521, 970, 1338, 474, 1339)
    ],
    "supportedLDAPVersion": ["3", "2"],
    "supportedSASLMechanisms": ["GSSAPI", "GSS-SPNEGO", "EXTERNAL", "DIGEST-MD5"],
    "dnsHostName": [HOST],
    "serverName": [SERVER_DN],
    "supportedCapabilities": ["1.2.840.113556.1.4.800", "1.2.840.113556.1.4.1670"],
    "supportedExtension": [STARTTLS_OID, "1.3.6.1.4.1.1466.101.119.1", "1.2.840.113556.1.4.1781"],
    "isGlobalCatalogReady": ["FALSE"],
    "forestFunctionality": ["2"],
    "domainControllerFunctionality": ["2"],
}


def server(profile: str = "exchange2003", **options: Any) -> LdapServer:
    return LdapServer(ServerOptions(hostname=HOST, profile=profile, **options))


# -- requests, built with ldap3's own RFC 4511 schema: an encoder other than the server's -----


def request(message_id: int, op_name: str, op: Any, controls: Any = None) -> bytes:
    message = rfc4511.LDAPMessage()
    message["messageID"] = rfc4511.MessageID(message_id)
    message["protocolOp"] = rfc4511.ProtocolOp().setComponentByName(op_name, op)
    if controls is not None:
        message["controls"] = controls
    return bytes(encoder.encode(message))


def search(
    message_id: int, base: str = "", attributes: list[str] | None = None, **kw: Any
) -> bytes:
    scope = kw.pop("scope", rfc4511.Scope("baseObject"))
    op = search_operation(
        base, "(objectClass=*)", scope, 0, attributes or [], 0, 0, kw.pop("types_only", False),
        True, True,
    )  # fmt: skip
    return request(message_id, "searchRequest", op, **kw)


def bind(message_id: int, name: str = "", password: str = "", version: int = 3) -> bytes:
    # Built by hand: ldap3's bind_operation will not build a simple bind without a password.
    op = rfc4511.BindRequest()
    op["version"] = rfc4511.Version(version)
    op["name"] = name
    simple = rfc4511.Simple(password)
    op["authentication"] = rfc4511.AuthenticationChoice().setComponentByName("simple", simple)
    return request(message_id, "bindRequest", op)


def sasl_bind(message_id: int, mechanism: str) -> bytes:
    op = bind_operation(3, "SASL", "", None, mechanism, b"secret-token")
    return request(message_id, "bindRequest", op)


def ext(message_id: int, oid: str) -> bytes:
    return request(message_id, "extendedReq", extended_operation(oid))


def unbind(message_id: int) -> bytes:
    return request(message_id, "unbindRequest", unbind_operation())


# -- reading what the server sent, with ldap3's schema too ----------------------------------------


def messages(data: bytes) -> list[tuple[int, str, Any]]:
    """Every LDAPMessage in `data`: its ID, its protocolOp's name and the op itself."""
    found = []
    while data:
        message, data = decoder.decode(data, asn1Spec=rfc4511.LDAPMessage())
        op = message["protocolOp"]
        found.append((int(message["messageID"]), op.getName(), op.getComponent()))
    return found


def result(op: Any) -> tuple[int, str]:
    return int(op["resultCode"]), str(op["diagnosticMessage"])


def attributes_of(op: Any) -> dict[str, list[str]]:
    return {str(a["type"]): [str(v) for v in a["vals"]] for a in op["attributes"]}


def answers(hs: LdapServer, *requests: bytes) -> list[tuple[int, str, Any]]:
    """Feed each request in turn; every message the server sent back."""
    sent = b"".join(s.data for s in play_server(hs, [C(r) for r in requests]) if isinstance(s, S))
    return messages(sent)


def only_result(hs: LdapServer, data: bytes) -> tuple[int, str, int, str]:
    [(message_id, kind, op)] = answers(hs, data)
    return (message_id, kind, *result(op))


# -- our own client against the server -----------------------------------------------------------


@pytest.mark.parametrize("global_catalog", [False, True])
@pytest.mark.parametrize(
    ("profile", "product", "offered", "mechanisms"),
    [
        (
            "exchange2003",
            "Microsoft Active Directory (Windows Server 2003)",
            True,
            ["GSSAPI", "GSS-SPNEGO", "EXTERNAL", "DIGEST-MD5"],
        ),
        (
            "exchange2000",
            "Microsoft Active Directory (Windows 2000)",
            False,
            ["GSSAPI", "GSS-SPNEGO"],
        ),
        ("neutral", "portcall responder", True, []),
    ],
)
def test_our_client_names_each_profile(
    profile: str, product: str, offered: bool, mechanisms: list[str], global_catalog: bool
) -> None:
    client = LdapClient(ProbeOptions(starttls=True, starttls_required=False))
    hs = server(profile, global_catalog=global_catalog)
    info = converse(client, hs).info
    assert info.product == product
    assert info.starttls_offered is offered
    assert info.tls_upgraded is offered
    assert [c for c in info.capabilities if c.startswith("SASL=")] == [
        f"SASL={m}" for m in mechanisms
    ]
    if profile == "neutral":
        assert "global_catalog_ready" not in info.details
    else:
        assert info.details["global_catalog_ready"] is global_catalog
    upgrades = ["EXTENDED 1.3.6.1.4.1.1466.20037", 'SEARCH base="" scope=baseObject']
    # Windows 2000's rootDSE lists no extension: the client asks, and is refused.
    asked = upgrades if offered else upgrades[:1] if profile == "exchange2000" else []
    expected = ['SEARCH base="" scope=baseObject', *asked, "UNBIND"]
    assert hs.heard == expected


def test_an_implicit_tls_port_does_not_offer_starttls() -> None:
    info = converse(LdapClient(), server(implicit_tls=True)).info
    assert info.starttls_offered is False
    assert f"{STARTTLS_OID} (StartTLS)" not in info.capabilities
    assert "1.2.840.113556.1.4.1781 (Fast Concurrent Bind)" in info.capabilities


def test_starttls_not_configured_is_not_listed() -> None:
    info = converse(LdapClient(), server(starttls=False)).info
    assert info.starttls_offered is False


# -- transcripts ---------------------------------------------------------------------------------


def test_rootdse_transcript_for_our_client() -> None:
    steps: list[Step] = [
        C(search_request(1)),
        S(entry(1, AD_2003_FOR_OUR_CLIENT) + done(1)),
        C(unbind(2)),
        EOF_,
    ]
    hs = check_server(server, steps)
    assert hs.heard == ['SEARCH base="" scope=baseObject', "UNBIND"]


def test_starttls_transcript() -> None:
    steps: list[Step] = [
        C(starttls_request(1)),
        S(extended(1, name=STARTTLS_OID)),
        TLS,
        C(search(2, attributes=["dnsHostName"])),
        S(entry(2, {"dnsHostName": [HOST]}) + done(2)),
        C(b""),
        EOF_,
    ]
    hs = check_server(server, steps)
    assert hs.heard == [f"EXTENDED {STARTTLS_OID}", 'SEARCH base="" scope=baseObject']


def test_plaintext_pipelined_behind_starttls_is_dropped() -> None:
    # RFC 4513 section 3.1.1 forbids sending anything before the TLS handshake; what did come
    # in clear with the request must not be answered once TLS runs.
    steps: list[Step] = [
        C(starttls_request(1) + search(2)),
        S(extended(1, name=STARTTLS_OID)),
        TLS,
        C(search(3, attributes=["dnsHostName"])),
        S(entry(3, {"dnsHostName": [HOST]}) + done(3)),
    ]
    assert play_server(server(), steps) == steps


def test_a_second_starttls_is_a_sequencing_error() -> None:
    steps: list[Step] = [
        C(starttls_request(1)),
        S(extended(1, name=STARTTLS_OID)),
        TLS,
        C(starttls_request(2)),
        S(extended(2, OPERATIONS_ERROR, "TLS is already in use on this connection")),
    ]
    check_server(server, steps)


@pytest.mark.parametrize(
    ("factory", "code"),
    [
        (lambda: server(implicit_tls=True), OPERATIONS_ERROR),
        (lambda: server(starttls=False), PROTOCOL_ERROR),
        (lambda: server("exchange2000"), PROTOCOL_ERROR),
        (lambda: server("neutral", starttls=False), PROTOCOL_ERROR),
    ],
    ids=["implicit-tls", "not-configured", "windows-2000", "neutral-not-configured"],
)
def test_starttls_refused(factory: Any, code: int) -> None:
    [(message_id, kind, op)] = answers(factory(), starttls_request(4))
    assert (message_id, kind, int(op["resultCode"])) == (4, "extendedResp", code)


def test_unbind_closes_at_once() -> None:
    # The real UnbindRequest is primitive (0x42 0x00), which pyasn1-modules alone cannot build.
    data = unbind(1)
    assert data[-2:] == b"\x42\x00"
    hs = check_server(server, [C(data), EOF_])
    assert hs.heard == ["UNBIND"]


def test_abandon_gets_no_answer_and_the_session_goes_on() -> None:
    data = request(2, "abandonRequest", abandon_operation(1))
    assert data[5] == 0x50  # [APPLICATION 16], primitive
    steps: list[Step] = [C(data), C(bind(3)), S(_bind_response(3, SUCCESS))]
    hs = check_server(server, steps)
    assert hs.heard == ["ABANDON 1", "BIND anonymous"]


def _bind_response(message_id: int, code: int, text: str = "") -> bytes:
    message = rfc4511.LDAPMessage()
    message["messageID"] = rfc4511.MessageID(message_id)
    response = rfc4511.BindResponse()
    response["resultCode"] = rfc4511.ResultCode(code)
    response["matchedDN"] = rfc4511.LDAPDN("")
    response["diagnosticMessage"] = rfc4511.LDAPString(text)
    message["protocolOp"] = rfc4511.ProtocolOp().setComponentByName("bindResponse", response)
    return bytes(encoder.encode(message))


# -- binds ---------------------------------------------------------------------------------------


def test_anonymous_bind_succeeds() -> None:
    assert only_result(server(), bind(1)) == (1, "bindResponse", SUCCESS, "")


@pytest.mark.parametrize("profile", ["exchange2003", "exchange2000", "neutral"])
def test_a_password_is_refused_and_never_heard(profile: str) -> None:
    hs = server(profile)
    _, kind, code, text = only_result(hs, bind(1, "CN=Administrator,CN=Users," + BASE, "S3cret!"))
    assert (kind, code) == ("bindResponse", INVALID_CREDENTIALS)
    assert ("data 52e" in text) is (profile != "neutral")
    assert hs.heard == [f"BIND CN=Administrator,CN=Users,{BASE} ***"]
    assert "S3cret" not in repr(hs.heard)


def test_ntlm_bind_is_refused_as_a_method() -> None:
    # Active Directory's own NTLM bind ([9], MS-ADTS 5.1.1.1.3): a method, not garbage.
    hs = server()
    op = bind_operation(3, "SICILY_PACKAGE_DISCOVERY")
    _, kind, code, _ = only_result(hs, request(1, "bindRequest", op))
    assert (kind, code) == ("bindResponse", AUTH_METHOD_NOT_SUPPORTED)
    assert hs.heard == ["BIND sicilyDiscovery ***"]


def test_sasl_is_not_available() -> None:
    hs = server()
    _, kind, code, text = only_result(hs, sasl_bind(1, "GSSAPI"))
    assert (kind, code) == ("bindResponse", AUTH_METHOD_NOT_SUPPORTED)
    assert "GSSAPI" in text
    assert hs.heard == ["BIND SASL GSSAPI ***"]
    assert "secret-token" not in repr(hs.heard)


@pytest.mark.parametrize(
    ("profile", "code"), [("exchange2003", SUCCESS), ("neutral", UNWILLING_TO_PERFORM)]
)
def test_a_name_without_a_password(profile: str, code: int) -> None:
    # RFC 4513 section 5.1.2: an unauthenticated bind. Active Directory lets it in as anonymous.
    assert only_result(server(profile), bind(1, "CN=Guest"))[2] == code


def test_an_unknown_ldap_version_is_a_protocol_error() -> None:
    _, _, code, text = only_result(server(), bind(1, version=4))
    assert code == PROTOCOL_ERROR
    assert "version 4" in text


# -- searches ------------------------------------------------------------------------------------


def _rootdse(hs: LdapServer, **kw: Any) -> dict[str, list[str]]:
    found = answers(hs, search(1, **kw))
    assert [(m, kind) for m, kind, _ in found] == [(1, "searchResEntry"), (1, "searchResDone")]
    assert result(found[1][2]) == (SUCCESS, "")
    assert str(found[0][2]["object"]) == ""
    return attributes_of(found[0][2])


@pytest.mark.parametrize("asked", [[], ["*"], ["+"], ["*", "+"]])
def test_all_attributes(asked: list[str]) -> None:
    rootdse = _rootdse(server(global_catalog=True), attributes=asked)
    assert list(rootdse) == [
        "currentTime",
        "subschemaSubentry",
        "dsServiceName",
        "namingContexts",
        "defaultNamingContext",
        "schemaNamingContext",
        "configurationNamingContext",
        "rootDomainNamingContext",
        "supportedControl",
        "supportedLDAPVersion",
        "highestCommittedUSN",
        "supportedSASLMechanisms",
        "dnsHostName",
        "serverName",
        "supportedCapabilities",
        "supportedExtension",
        "isSynchronized",
        "isGlobalCatalogReady",
        "domainFunctionality",
        "forestFunctionality",
        "domainControllerFunctionality",
    ]
    assert rootdse["isGlobalCatalogReady"] == ["TRUE"]
    assert rootdse["isSynchronized"] == ["TRUE"]
    assert rootdse["dsServiceName"] == [f"CN=NTDS Settings,{SERVER_DN}"]
    assert rootdse["rootDomainNamingContext"] == [BASE]
    assert rootdse["schemaNamingContext"] == [SCHEMA]
    assert rootdse["configurationNamingContext"] == [CONFIG]
    assert rootdse["domainFunctionality"] == ["2"]
    assert rootdse["highestCommittedUSN"][0].isdigit()


def test_current_time_is_generalized_time_now() -> None:
    [stamp] = _rootdse(server(), attributes=["currentTime"])["currentTime"]
    assert re.fullmatch(r"\d{14}\.0Z", stamp)
    sent = datetime.strptime(stamp, "%Y%m%d%H%M%S.0Z").replace(tzinfo=UTC)
    assert abs(datetime.now(UTC) - sent) < timedelta(minutes=1)


def test_names_are_matched_without_case_and_sent_as_spelt_by_the_server() -> None:
    rootdse = _rootdse(server(), attributes=["DNSHOSTNAME", "supportedldapversion", "nosuch"])
    assert rootdse == {"supportedLDAPVersion": ["3", "2"], "dnsHostName": [HOST]}


def test_1_1_asks_for_no_attributes() -> None:
    assert _rootdse(server(), attributes=["1.1"]) == {}


def test_types_only() -> None:
    rootdse = _rootdse(server(), attributes=["namingContexts", "dnsHostName"], types_only=True)
    assert rootdse == {"namingContexts": [], "dnsHostName": []}


def test_windows_2000_rootdse() -> None:
    rootdse = _rootdse(server("exchange2000"))
    assert rootdse["namingContexts"] == [BASE, CONFIG, SCHEMA]
    assert rootdse["supportedCapabilities"] == ["1.2.840.113556.1.4.800"]
    assert rootdse["domainControllerFunctionality"] == ["0"]
    assert "supportedExtension" not in rootdse  # Windows 2000 has no extended operations


def test_neutral_rootdse_claims_no_directory_product() -> None:
    rootdse = _rootdse(server("neutral"))
    assert rootdse == {
        "namingContexts": ["dc=example,dc=test"],
        "supportedLDAPVersion": ["3"],
        "supportedExtension": [STARTTLS_OID],
        "vendorName": ["portcall responder"],
    }


@pytest.mark.parametrize(
    ("profile", "code", "text"),
    [
        ("exchange2003", OPERATIONS_ERROR, "000004DC: LdapErr"),
        ("exchange2000", NO_SUCH_OBJECT, "0000208D: NameErr"),
        ("neutral", NO_SUCH_OBJECT, "no such object"),
    ],
)
def test_other_searches_are_refused(profile: str, code: int, text: str) -> None:
    hs = server(profile)
    found = answers(hs, search(5, base=BASE, scope=rfc4511.Scope("wholeSubtree")), bind(6))
    assert [(m, kind) for m, kind, _ in found] == [(5, "searchResDone"), (6, "bindResponse")]
    code_sent, text_sent = result(found[0][2])
    assert code_sent == code
    assert text_sent.startswith(text)
    assert hs.heard[0] == f'SEARCH base="{BASE}" scope=wholeSubtree'


def test_a_subtree_search_of_the_root_is_refused_too() -> None:
    scope = rfc4511.Scope("singleLevel")
    assert only_result(server(), search(1, scope=scope))[1:3] == ("searchResDone", OPERATIONS_ERROR)


# -- everything else -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("op_name", "op", "response", "heard"),
    [
        ("delRequest", delete_operation(f"CN=x,{BASE}"), "delResponse", "DELETE"),
        (
            "modifyRequest",
            modify_operation(f"CN=x,{BASE}", {"description": [(2, ["y"])]}, True),
            "modifyResponse",
            "MODIFY",
        ),
        ("addRequest", add_operation(f"CN=x,{BASE}", {"cn": "x"}, True), "addResponse", "ADD"),
        ("modDNRequest", modify_dn_operation(f"CN=x,{BASE}", "CN=y"), "modDNResponse", "MODDN"),
        (
            "compareRequest",
            compare_operation(BASE, "dc", "example", True),
            "compareResponse",
            "COMPARE",
        ),
    ],
    ids=["delete", "modify", "add", "moddn", "compare"],
)
def test_changes_are_refused_with_their_own_response(
    op_name: str, op: Any, response: str, heard: str
) -> None:
    hs = server()
    found = answers(hs, request(7, op_name, op), bind(8))
    assert [(m, kind) for m, kind, _ in found] == [(7, response), (8, "bindResponse")]
    assert result(found[0][2])[0] == UNWILLING_TO_PERFORM
    assert hs.heard == [heard, "BIND anonymous"]


def test_an_unknown_extended_operation_and_the_session_goes_on() -> None:
    who_am_i = "1.3.6.1.4.1.4203.1.11.3"
    found = answers(server(), ext(3, who_am_i), bind(4))
    assert [(m, kind) for m, kind, _ in found] == [(3, "extendedResp"), (4, "bindResponse")]
    code, text = result(found[0][2])
    assert code == PROTOCOL_ERROR
    assert who_am_i in text


def test_an_unknown_critical_control_stops_the_operation() -> None:
    controls = build_controls_list([("1.2.3.4.5", True, None)])
    found = answers(server(), search(1, controls=controls))
    assert [(kind, result(op)[0]) for _, kind, op in found] == [
        ("searchResDone", UNAVAILABLE_CRITICAL_EXTENSION)
    ]


def test_known_or_optional_controls_are_ignored() -> None:
    paged = ("1.2.840.113556.1.4.319", True, None)
    controls = build_controls_list([paged, ("1.2.3.4.5", False, None)])
    found = answers(server(), search(1, controls=controls))
    assert [kind for _, kind, _ in found] == ["searchResEntry", "searchResDone"]


# -- what ends a session -------------------------------------------------------------------------


def _notice(data: bytes) -> tuple[int, str]:
    [(message_id, kind, op)] = messages(data)
    assert (message_id, kind) == (0, "extendedResp")
    assert str(op["responseName"]) == NOTICE_OF_DISCONNECTION_OID
    return result(op)


@pytest.mark.parametrize(
    "garbage",
    [
        b"GET / HTTP/1.0\r\n\r\n",
        b"\x30\x03\x01\x01\xff",  # a SEQUENCE holding a BOOLEAN, not a message ID
        b"\x30\x80\x02\x01\x01",  # indefinite length
        b"\x30\x05\x02\x01\x00\x42\x00",  # message ID 0
        done(1),  # a response, which only servers send
    ],
    ids=["http", "not-a-message", "indefinite", "id-zero", "a-response"],
)
def test_malformed_requests_get_a_notice_of_disconnection(garbage: bytes) -> None:
    hs = server()
    happened = play_server(hs, [C(garbage)])
    assert happened[-1] is EOF_
    [reply] = [step.data for step in happened if isinstance(step, S)]
    assert _notice(reply)[0] == PROTOCOL_ERROR
    assert hs.heard == ["(malformed request)"]


def test_a_request_over_the_limit_gets_a_notice() -> None:
    hs = server(line_limit=512)
    happened = play_server(hs, [C(b"\x30\x82\x04\x00\x02\x01\x01")])  # announces 1024 bytes
    assert happened[-1] is EOF_
    code, text = _notice(next(step.data for step in happened if isinstance(step, S)))
    assert (code, text) == (PROTOCOL_ERROR, "request over 512 bytes")


def test_too_many_refusals_end_the_session() -> None:
    requests = [bind(n, "CN=x", "guess") for n in range(1, MAX_FAILURES + 2)]
    happened = play_server(server(), [C(r) for r in requests])
    assert happened[-1] is EOF_
    replies = [step.data for step in happened if isinstance(step, S)]
    assert len(replies) == MAX_FAILURES
    last, notice = messages(replies[-1])
    assert (last[0], last[1], result(last[2])[0]) == (MAX_FAILURES, "bindResponse", 49)
    assert (notice[0], notice[1], result(notice[2])[0]) == (0, "extendedResp", ADMIN_LIMIT_EXCEEDED)


def test_the_client_closing_mid_message_ends_quietly() -> None:
    steps: list[Step] = [C(search(1)[:9]), C(b""), EOF_]
    hs = check_server(server, steps)
    assert hs.heard == []


def test_mangled_requests_never_break_the_server() -> None:
    # Random damage to real requests: each must end in an answer, a notice or a quiet close,
    # never in an exception, whatever pyasn1 makes of the bytes.
    seeds = [search(1), bind(1, "CN=a", "b"), starttls_request(1), sasl_bind(1, "GSSAPI")]
    rng = random.Random(2003)
    for _ in range(3000):
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        happened = play_server(server(), [C(bytes(data)), C(b"")])
        assert happened[-1] is EOF_


def test_a_huge_inner_length_is_malformed_not_a_crash() -> None:
    # A BindRequest whose version claims an 8-octet length: pyasn1 overflows on it.
    data = bytes.fromhex("3011020101600c028889040000a30606044e544c4d")
    happened = play_server(server(), [C(data)])
    assert _notice(next(s.data for s in happened if isinstance(s, S)))[0] == PROTOCOL_ERROR
