"""DNS client and server roles: transcripts built with dnspython, the two roles together, a
fuzz of both, and the server role checked by dig over UDP and TCP on loopback."""

from __future__ import annotations

import asyncio
import re

import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest
from hypothesis import given
from hypothesis import strategies as st

from portcall.protocols.base import (
    CLOSE,
    NEED_DATA,
    Done,
    PeerClosed,
    RemoteProtocolError,
    Send,
    WrongProtocol,
)
from portcall.protocols.dns import (
    DC_SRV_RECORDS,
    TRUNCATED_NOTE,
    DnsClient,
    DnsServer,
    MalformedMessage,
)
from tests.protocols.dc_serving import run_tool, serving
from tests.protocols.feeding import feed_client, feed_server
from tests.protocols.pair import converse
from tests.protocols.test_fuzz_protocols import FUZZ, STRANGERS, bounded, chunked
from tests.protocols.transcript import C, S, Step, play, play_both_ways

DOMAIN = "example.test"
IDS = (0x1234, 0x5678)
LOCATOR = "_ldap._tcp.dc._msdcs.example.test."


def query(name: str, rdtype: str, query_id: int) -> dns.message.Message:
    return dns.message.make_query(name, rdtype, id=query_id)


def reply(
    question: dns.message.Message, *answers: str, rcode: int = dns.rcode.NOERROR, flags: int = 0
) -> bytes:
    """A response to `question` with `answers` in zone-file syntax, as a server would send."""
    response = dns.message.make_response(question)
    response.flags |= dns.flags.AA | flags
    response.set_rcode(rcode)
    for line in answers:
        owner, rdtype, text = line.split(" ", 2)
        rrset = dns.rrset.from_text(owner, 3600, "IN", rdtype, text)
        (response.additional if rdtype in ("A", "AAAA") else response.answer).append(rrset)
    return response.to_wire()


SOA_QUERY = query("example.test.", "SOA", IDS[0])
SRV_QUERY = query(LOCATOR, "SRV", IDS[1])
SOA_REPLY = reply(
    SOA_QUERY, "example.test. SOA dc1.example.test. hostmaster.example.test. 42 900 600 86400 3600"
)
SRV_REPLY = reply(
    SRV_QUERY,
    f"{LOCATOR} SRV 10 50 389 dc2.example.test.",
    f"{LOCATOR} SRV 0 100 389 dc1.example.test.",
    "dc1.example.test. A 192.0.2.1",
    "dc2.example.test. AAAA 2001:db8::2",
)


def tcp(wire: bytes) -> bytes:
    return len(wire).to_bytes(2, "big") + wire


def transcript(soa: bytes, srv: bytes, framing: object = tcp) -> list[Step]:
    assert callable(framing)
    return [
        C(framing(SOA_QUERY.to_wire())),
        S(framing(soa)),
        C(framing(SRV_QUERY.to_wire())),
        S(framing(srv)),
    ]


def client(transport: str = "tcp") -> DnsClient:
    return DnsClient(domain=DOMAIN, transport=transport, query_ids=IDS)


# -- client transcripts ---------------------------------------------------------------------


def test_client_reads_soa_and_locator_over_tcp_whole_and_byte_by_byte() -> None:
    info = play_both_ways(client, transcript(SOA_REPLY, SRV_REPLY))
    assert info.protocol == "dns"
    assert info.banner == "SOA dc1.example.test serial 42; DCs dc1.example.test, dc2.example.test"
    soa = info.details["soa"]
    assert isinstance(soa, dict)
    assert (soa["rcode"], soa["primary"], soa["serial"], soa["zone_apex"]) == (
        "NOERROR",
        "dc1.example.test",
        42,
        True,
    )
    locator = info.details["locator"]
    assert isinstance(locator, dict)
    assert locator["name"] == "_ldap._tcp.dc._msdcs.example.test"
    assert locator["targets"] == [
        {
            "target": "dc1.example.test",
            "port": 389,
            "priority": 0,
            "weight": 100,
            "addresses": ["192.0.2.1"],
        },
        {
            "target": "dc2.example.test",
            "port": 389,
            "priority": 10,
            "weight": 50,
            "addresses": ["2001:db8::2"],
        },
    ]
    assert info.details["transport"] == "tcp" and not info.notes


def test_client_over_udp_sends_one_datagram_per_query() -> None:
    info = play(client("udp"), transcript(SOA_REPLY, SRV_REPLY, framing=lambda w: w))
    assert info.details["transport"] == "udp"
    assert info.banner == "SOA dc1.example.test serial 42; DCs dc1.example.test, dc2.example.test"


@pytest.mark.parametrize(
    ("rcode", "name", "meaning"),
    [
        (dns.rcode.NXDOMAIN, "NXDOMAIN", "does not exist"),
        (dns.rcode.SERVFAIL, "SERVFAIL", "the server failed"),
        (dns.rcode.REFUSED, "REFUSED", "refuses to answer"),
    ],
)
def test_client_reports_the_response_code(rcode: int, name: str, meaning: str) -> None:
    info = play_both_ways(client, transcript(SOA_REPLY, reply(SRV_QUERY, rcode=rcode)))
    locator = info.details["locator"]
    assert isinstance(locator, dict)
    assert locator["rcode"] == name and meaning in locator["meaning"]
    assert locator["targets"] == []


def test_client_reports_the_enclosing_zone_when_the_domain_is_no_apex() -> None:
    response = dns.message.make_response(SOA_QUERY)
    response.authority.append(
        dns.rrset.from_text("test.", 60, "IN", "SOA", "ns.test. root.test. 7 1 1 1 1")
    )
    info = play(client(), transcript(response.to_wire(), SRV_REPLY))
    soa = info.details["soa"]
    assert isinstance(soa, dict)
    assert (soa["zone"], soa["zone_apex"], soa["primary"]) == ("test", False, "ns.test")


def test_client_notes_a_truncated_reply() -> None:
    steps = transcript(SOA_REPLY, reply(SRV_QUERY, flags=dns.flags.TC), framing=lambda w: w)
    info = play(client("udp"), steps)
    assert info.notes == [TRUNCATED_NOTE]
    locator = info.details["locator"]
    assert isinstance(locator, dict) and locator["truncated"] is True


def _outcome(dns_client: DnsClient, chunks: list[bytes]) -> Done | RemoteProtocolError:
    return feed_client(dns_client, chunks)


def test_client_rejects_a_reply_with_another_id() -> None:
    other = reply(query("example.test.", "SOA", 999))
    outcome = _outcome(client(), [tcp(other)])
    assert isinstance(outcome, MalformedMessage) and "ID 999" in str(outcome)


def test_client_rejects_a_reply_to_another_question() -> None:
    other = reply(query("example.org.", "SOA", IDS[0]))
    outcome = _outcome(client(), [tcp(other)])
    assert isinstance(outcome, MalformedMessage) and "another question" in str(outcome)


def test_client_rejects_a_query_sent_back() -> None:
    outcome = _outcome(client("udp"), [SOA_QUERY.to_wire()])
    assert isinstance(outcome, MalformedMessage) and "query" in str(outcome)


def test_client_names_http_answering_over_tcp() -> None:
    outcome = _outcome(client(), [b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"])
    assert isinstance(outcome, WrongProtocol) and outcome.detected == "HTTP"


def test_client_names_ldap_inside_a_tcp_frame() -> None:
    outcome = _outcome(client(), [tcp(bytes.fromhex("300c020101600702010304008000"))])
    assert isinstance(outcome, WrongProtocol) and outcome.detected == "LDAP"


def test_client_calls_garbage_malformed() -> None:
    outcome = _outcome(client("udp"), [b"\x12\x34\x80"])
    assert isinstance(outcome, MalformedMessage)


def test_client_peer_closing_before_the_reply() -> None:
    assert isinstance(_outcome(client(), [b"\x00"]), PeerClosed)


# -- server role ----------------------------------------------------------------------------


def server(transport: str = "udp") -> DnsServer:
    return DnsServer(
        domain=DOMAIN, dc_name="dc1.example.test", dc_address="192.0.2.10", transport=transport
    )


def ask(name: str, rdtype: str, transport: str = "udp") -> dns.message.Message:
    """One query to a fresh server role, its response parsed by dnspython."""
    dns_server = server(transport)
    wire = query(name, rdtype, 7).to_wire()
    events = feed_server(dns_server, [tcp(wire) if transport == "tcp" else wire])
    sends = [e.data for e in events if isinstance(e, Send)]
    assert len(sends) == 1 and events[-1] is CLOSE
    data = sends[0][2:] if transport == "tcp" else sends[0]
    return dns.message.from_wire(data)


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_client_against_server(transport: str) -> None:
    dns_server = server(transport)
    info = converse(DnsClient(domain=DOMAIN, transport=transport), dns_server).info
    locator = info.details["locator"]
    assert isinstance(locator, dict)
    assert locator["targets"] == [
        {
            "target": "dc1.example.test",
            "port": 389,
            "priority": 0,
            "weight": 100,
            "addresses": ["192.0.2.10"],
        }
    ]
    assert info.banner == "SOA dc1.example.test serial 1; DCs dc1.example.test"
    assert dns_server.heard == [
        "QUERY example.test SOA",
        "QUERY _ldap._tcp.dc._msdcs.example.test SRV",
    ]


@pytest.mark.parametrize(("label", "port"), DC_SRV_RECORDS)
def test_server_answers_every_locator_record(label: str, port: int) -> None:
    response = ask(f"{label}.{DOMAIN}.", "SRV")
    assert response.rcode() == dns.rcode.NOERROR and response.flags & dns.flags.AA
    assert [r.to_text() for r in response.answer[0]] == [f"0 100 {port} dc1.example.test."]
    assert response.additional[0].to_text().endswith("A 192.0.2.10")


def test_server_answers_nxdomain_in_its_domain_and_refused_outside() -> None:
    missing = ask(f"nobody.{DOMAIN}.", "A", "tcp")
    assert missing.rcode() == dns.rcode.NXDOMAIN
    assert missing.authority[0].rdtype == dns.rdatatype.SOA
    outside = ask("www.example.org.", "A")
    assert outside.rcode() == dns.rcode.REFUSED and not outside.flags & dns.flags.AA
    assert not outside.answer


def test_server_answers_no_data_for_a_type_it_lacks() -> None:
    response = ask(f"dc1.{DOMAIN}.", "MX")
    assert response.rcode() == dns.rcode.NOERROR and not response.answer
    assert response.authority[0].rdtype == dns.rdatatype.SOA


def test_server_answers_the_address_of_the_dc_over_ipv6() -> None:
    dns_server = DnsServer(domain=DOMAIN, dc_address="2001:db8::10", transport="udp")
    wire = query(f"dc1.{DOMAIN}.", "AAAA", 3).to_wire()
    sends = [e for e in feed_server(dns_server, [wire]) if isinstance(e, Send)]
    assert dns.message.from_wire(sends[0].data).answer[0][0].address == "2001:db8::10"


def test_server_answers_formerr_notimp_and_ignores_responses() -> None:
    garbage = b"\xab\xcd\x01\x00" + b"\xff" * 20
    events = feed_server(server(), [garbage])
    formerr = next(e for e in events if isinstance(e, Send)).data
    assert formerr[:2] == b"\xab\xcd" and formerr[3] & 0x0F == dns.rcode.FORMERR
    update = dns.message.make_query(DOMAIN, "SOA", id=5)
    update.set_opcode(dns.opcode.UPDATE)
    events = feed_server(server(), [update.to_wire()])
    sent = next(e for e in events if isinstance(e, Send)).data
    assert dns.message.from_wire(sent).rcode() == dns.rcode.NOTIMP
    events = feed_server(server(), [SOA_REPLY, b"\x00\x01"])
    assert events == [NEED_DATA, NEED_DATA, NEED_DATA, CLOSE]


def test_server_hangs_up_a_tcp_stream_that_is_not_dns() -> None:
    events = feed_server(server("tcp"), [b"\x00\x04GET "])
    assert events[-1] is CLOSE and not any(isinstance(e, Send) for e in events)


# -- fuzz -----------------------------------------------------------------------------------

SERVER_REPLIES = [
    SOA_REPLY,
    SRV_REPLY,
    reply(SRV_QUERY, rcode=dns.rcode.NXDOMAIN),
    reply(SRV_QUERY, flags=dns.flags.TC),
    SOA_QUERY.to_wire(),
    b"\xc0\x0c",
    b"\x12\x34\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00",
]
CLIENT_QUERIES = [
    SOA_QUERY.to_wire(),
    SRV_QUERY.to_wire(),
    query(f"nobody.{DOMAIN}.", "A", 1).to_wire(),
    query("www.example.org.", "ANY", 2).to_wire(),
    b"\xc0\x0c",
    b"\x00\x01\x00\x00\x00\x01",
]


@FUZZ
@given(
    st.sampled_from(["udp", "tcp"]),
    chunked(SERVER_REPLIES + [tcp(r) for r in SERVER_REPLIES] + STRANGERS),
)
def test_fuzz_dns_client(transport: str, chunks: list[bytes]) -> None:
    outcome = bounded(lambda: feed_client(client(transport), chunks))
    assert isinstance(outcome, Done | RemoteProtocolError)
    if isinstance(outcome, Done):
        assert outcome.info.protocol == "dns"


@FUZZ
@given(
    st.sampled_from(["udp", "tcp"]),
    chunked(CLIENT_QUERIES + [tcp(q) for q in CLIENT_QUERIES] + STRANGERS),
)
def test_fuzz_dns_server(transport: str, chunks: list[bytes]) -> None:
    events = bounded(lambda: feed_server(server(transport), chunks))
    assert isinstance(events, list) and events[-1] is CLOSE
    assert all(isinstance(e, Send) or e in (NEED_DATA, CLOSE) for e in events)


# -- dig against the server role ------------------------------------------------------------


def _dig(transport: str, *question: str) -> tuple[str, str]:
    """dig's status line and answer section for one question to the served role."""

    async def main() -> tuple[int, str]:
        async with serving(lambda t: server(t)) as ports:
            chosen = ports.udp if transport == "udp" else ports.tcp
            flag = "+notcp" if transport == "udp" else "+tcp"
            return await run_tool(
                "dig",
                "@127.0.0.1",
                "-p",
                str(chosen),
                flag,
                "+time=3",
                "+tries=1",
                "+norecurse",
                "+noall",
                "+comments",
                "+answer",
                *question,
            )

    status, output = asyncio.run(main())
    assert status == 0, output
    found = re.search(r"status: (\w+)", output)
    assert found, output
    answer = [line for line in output.splitlines() if line and not line.startswith(";")]
    return found.group(1), "\n".join(answer)


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_dig_reads_the_locator_record(transport: str) -> None:
    status, answer = _dig(transport, "SRV", LOCATOR)
    assert status == "NOERROR"
    assert re.fullmatch(
        r"_ldap\._tcp\.dc\._msdcs\.example\.test\.\s+600\s+IN\s+SRV\s+"
        r"0 100 389 dc1\.example\.test\.",
        answer,
    ), answer


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_dig_reads_the_soa_nxdomain_and_refused(transport: str) -> None:
    status, answer = _dig(transport, "SOA", "example.test.")
    assert status == "NOERROR" and "SOA\tdc1.example.test. hostmaster.example.test. 1 " in answer
    assert _dig(transport, "A", "nobody.example.test.")[0] == "NXDOMAIN"
    assert _dig(transport, "A", "www.example.org.")[0] == "REFUSED"
