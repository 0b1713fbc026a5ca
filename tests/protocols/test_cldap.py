"""CLDAP, the LDAP ping (MS-ADTS 6.3.3): the Netlogon structure, the client against hand-built
answers over UDP and TCP, client and server together, Samba's own locator against the server
role over loopback UDP, and fuzzing of both roles."""

from __future__ import annotations

import asyncio
import random
import subprocess
import textwrap
import time
import uuid
from typing import cast

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pyasn1.codec.ber import decoder, encoder
from pyasn1_modules import rfc2251

from portcall.protocols.base import CLOSE, NEED_DATA, Done, RemoteProtocolError, Send, WrongProtocol
from portcall.protocols.cldap import (
    DEFAULT_SITE,
    SAMBA_DC_FLAGS,
    CldapClient,
    CldapServer,
    MalformedMessage,
    MalformedResponse,
    NetlogonResponse,
    decode_name,
    decode_response,
    encode_response,
    flag_names,
    netlogon_entry,
    ping_request,
)
from portcall.protocols.ldap.messages import result_message, search_request
from tests.protocols.feeding import feed_client, feed_server
from tests.protocols.pair import converse
from tests.protocols.test_fuzz_protocols import EXAMPLE_BOUND, FUZZ, chunked

DOMAIN = "samdom.example.com"
GUID = uuid.UUID("8a5f2f0e-1c3b-4d6e-9f70-123456789abc")

#: NETLOGON_SAM_LOGON_RESPONSE_EX written out by hand from MS-ADTS 6.3.1.9, compressed the way
#: a DC compresses it: the domain points at the forest, the host name ends in a pointer to it,
#: the client site points at the DC site.
BLOB = (
    b"\x17\x00"  # opcode 23, LOGON_SAM_LOGON_RESPONSE_EX
    + b"\x00\x00"  # Sbz
    + b"\xfd\x13\x00\x00"  # flags 0x13fd
    + GUID.bytes_le
    + b"\x06samdom\x07example\x03com\x00"  # forest, at offset 24
    + b"\xc0\x18"  # domain: pointer to 24
    + b"\x03dc1\xc0\x18"  # host name
    + b"\x06SAMDOM\x00"
    + b"\x03DC1\x00"
    + b"\x00"  # user: none
    + b"\x17Default-First-Site-Name\x00"  # DC site, at offset 66
    + b"\xc0\x42"  # client site: pointer to 66
    + b"\x05\x00\x00\x00\xff\xff\xff\xff"  # NtVersion 5, LmNtToken, Lm20Token
)
NAMES = {
    "forest": DOMAIN,
    "domain": DOMAIN,
    "dc_name": f"dc1.{DOMAIN}",
    "netbios_domain": "SAMDOM",
    "netbios_name": "DC1",
    "user": "",
    "site": DEFAULT_SITE,
    "client_site": DEFAULT_SITE,
}


def _answer(message_id: int, blob: bytes = BLOB) -> bytes:
    return netlogon_entry(message_id, blob) + result_message(message_id, "searchResDone", 0)


# -- the Netlogon structure ----------------------------------------------------------------------


def test_hand_built_response_decodes() -> None:
    response = decode_response(BLOB)
    assert response.names == NAMES
    assert response.domain_guid == GUID
    assert response.flags == SAMBA_DC_FLAGS
    assert flag_names(response.flags) == [
        "PDC",
        "GC",
        "LDAP",
        "DS",
        "KDC",
        "TIMESERV",
        "CLOSEST",
        "WRITABLE",
        "GOOD_TIMESERV",
        "FULL_SECRET_DOMAIN_6",
    ]
    assert response.nt_version == 5


def test_encoder_compresses_as_a_dc_does() -> None:
    assert encode_response(NetlogonResponse(SAMBA_DC_FLAGS, GUID, dict(NAMES))) == BLOB


@pytest.mark.parametrize(
    ("blob", "reason"),
    [
        (b"\x17\x00" + b"\x00" * 10, "only 12 bytes"),
        (b"\x13\x00" + BLOB[2:], "opcode 19"),
        (BLOB[:24] + b"\xc0\x18", "does not point back"),  # a pointer to itself: a loop
        (BLOB[:24] + b"\xc0\x30", "does not point back"),  # forward
        (BLOB[:24] + b"\x06samdom", "past the end"),
        (BLOB[:24] + b"\x80abc", "reserved type bits"),
        (BLOB[:24] + b"".join(b"\x3f" + bytes([c]) * 63 for c in b"abcd") + b"\x00", "than 255"),
        (BLOB + b"\x00" * 4096, "over 4096"),
    ],
)
def test_malformed_responses_are_refused(blob: bytes, reason: str) -> None:
    with pytest.raises(MalformedResponse, match=reason):
        decode_response(blob)


def test_pointer_chains_are_bounded() -> None:
    # 40 pointers, each to the one before it: no loop, but more hops than a name may take.
    blob = b"\x01a\x00" + b"".join(
        (0xC000 | (3 + 2 * i - 2 if i else 0)).to_bytes(2, "big") for i in range(40)
    )
    assert decode_name(blob, 3) == ("a", 5)
    with pytest.raises(MalformedResponse, match="more than 32 pointers"):
        decode_name(blob, len(blob) - 2)


# -- the request ---------------------------------------------------------------------------------


def test_ping_request_is_the_locator_search() -> None:
    message, rest = decoder.decode(ping_request(9, DOMAIN), asn1Spec=rfc2251.LDAPMessage())
    assert rest == b""
    search = message["protocolOp"]["searchRequest"]
    assert bytes(search["baseObject"]) == b"" and int(search["scope"]) == 0
    matches = [term["equalityMatch"] for term in search["filter"]["and"]]
    terms = [(bytes(m["attributeDesc"]), bytes(m["assertionValue"])) for m in matches]
    assert terms == [(b"DnsDomain", DOMAIN.encode()), (b"NtVer", b"\x06\x00\x00\x00")]
    assert [bytes(a) for a in search["attributes"]] == [b"Netlogon"]


# -- the client against hand-built answers --------------------------------------------------------


def _check_info(done: object, transport: str) -> None:
    assert isinstance(done, Done), done
    netlogon = done.info.details["netlogon"]
    assert isinstance(netlogon, dict)
    assert {key: netlogon[key] for key in NAMES} == NAMES
    assert netlogon["domain_guid"] == str(GUID) and netlogon["flags"] == 0x13FD
    assert "GC" in netlogon["flag_names"] and "WRITABLE" in netlogon["flag_names"]
    assert done.info.details["transport"] == transport
    assert done.info.banner == f"dc1.{DOMAIN} (domain {DOMAIN}, site {DEFAULT_SITE})"


def test_client_over_udp_reads_one_datagram() -> None:
    client = CldapClient(domain=DOMAIN, message_id=5)
    assert client.next_event() == Send(ping_request(5, DOMAIN))
    _check_info(feed_client(client, [_answer(5)]), "udp")


def test_client_over_udp_takes_entry_and_done_in_two_datagrams() -> None:
    client = CldapClient(domain=DOMAIN, message_id=5)
    entry, done = netlogon_entry(5, BLOB), result_message(5, "searchResDone", 0)
    _check_info(feed_client(client, [entry, done]), "udp")


def test_client_over_udp_refuses_a_cut_datagram() -> None:
    # Over UDP the rest of a message never comes: one datagram cut short is malformed.
    result = feed_client(CldapClient(domain=DOMAIN, message_id=5), [_answer(5)[:40], _answer(5)])
    assert isinstance(result, MalformedMessage)


@pytest.mark.parametrize("byte_at_a_time", [False, True])
def test_client_over_tcp(byte_at_a_time: bool) -> None:
    answer = _answer(5)
    chunks = [answer[i : i + 1] for i in range(len(answer))] if byte_at_a_time else [answer]
    client = CldapClient(domain=DOMAIN, transport="tcp", message_id=5)
    assert client.next_event() == Send(ping_request(5, DOMAIN))
    _check_info(feed_client(client, chunks), "tcp")


def test_client_notes_a_dc_of_another_domain() -> None:
    done = feed_client(
        CldapClient(domain="other.example", message_id=5), [result_message(5, "searchResDone", 0)]
    )
    assert isinstance(done, Done)
    assert done.info.details["netlogon"] is None
    assert "not an Active Directory domain controller of that domain" in done.info.notes[0]


def test_client_names_a_stranger_on_tcp() -> None:
    done = feed_client(CldapClient(domain=DOMAIN, transport="tcp"), [b"220 mail ESMTP ready\r\n"])
    assert isinstance(done, WrongProtocol) and done.detected == "SMTP"


def test_client_names_a_stranger_on_udp() -> None:
    # A DNS answer to the ping, say: neither LDAP nor anything LDAP-shaped.
    done = feed_client(CldapClient(domain=DOMAIN), [b"\x12\x34\x81\x80\x00\x01\x00\x00"])
    assert isinstance(done, WrongProtocol)


def test_client_refuses_a_reply_to_another_message() -> None:
    done = feed_client(CldapClient(domain=DOMAIN, message_id=5), [_answer(6)])
    assert isinstance(done, WrongProtocol)


def test_client_refuses_a_broken_netlogon_value() -> None:
    done = feed_client(CldapClient(domain=DOMAIN, message_id=5), [_answer(5, BLOB[:30])])
    assert isinstance(done, MalformedResponse)


# -- a real domain controller -------------------------------------------------------------------

#: What a Samba 4.17 AD DC (provisioned as portcall.test, in a network namespace of its own)
#: answered this client's ping, message 4711: one datagram with the entry (its attribute
#: spelled "netlogon") and the done.
SAMBA_DATAGRAM = bytes.fromhex(
    "307c02021267647604003072307004086e65746c6f676f6e3164046217000000fd130000858f6f6965fd56"
    "4da8c4323aae2dcdc208706f727463616c6c047465737400c01803646331c01808504f525443414c4c0003"
    "44433100001744656661756c742d46697273742d536974652d4e616d6500c03f05000000ffffffff300d02"
    "02126765070a010004000400"
)
SAMBA_GUID = uuid.UUID("696f8f85-fd65-4d56-a8c4-323aae2dcdc2")


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_client_reads_a_samba_dc(transport: str) -> None:
    data = SAMBA_DATAGRAM
    chunks = [data] if transport == "udp" else [data[i : i + 1] for i in range(len(data))]
    client = CldapClient(domain="portcall.test", transport=transport, message_id=4711)
    done = feed_client(client, chunks)
    assert isinstance(done, Done)
    netlogon = done.info.details["netlogon"]
    assert isinstance(netlogon, dict)
    assert (netlogon["dc_name"], netlogon["domain"], netlogon["forest"]) == (
        "dc1.portcall.test",
        "portcall.test",
        "portcall.test",
    )
    assert (netlogon["netbios_domain"], netlogon["netbios_name"]) == ("PORTCALL", "DC1")
    assert netlogon["site"] == netlogon["client_site"] == DEFAULT_SITE
    assert netlogon["flags"] == SAMBA_DC_FLAGS and netlogon["domain_guid"] == str(SAMBA_GUID)


def test_server_builds_the_structure_samba_does() -> None:
    server = CldapServer(domain="portcall.test", domain_guid=SAMBA_GUID)
    samba_blob = SAMBA_DATAGRAM[28 : 28 + 0x62]
    assert samba_blob[:2] == b"\x17\x00"
    assert encode_response(server.response()) == samba_blob


# -- client and server together ------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_client_against_server(transport: str) -> None:
    server = CldapServer(
        domain=DOMAIN, dc_name=f"dc1.{DOMAIN}", domain_guid=GUID, transport=transport
    )
    conversation = converse(CldapClient(domain=DOMAIN, transport=transport), server)
    _check_info(Done(conversation.info), transport)
    assert server.heard == [f"LDAP PING {DOMAIN}"] + (["UNBIND"] if transport == "tcp" else [])


def test_server_answers_its_own_flags_and_site() -> None:
    server = CldapServer(domain=DOMAIN, site="Branch", flags=0x1FC)
    info = converse(CldapClient(domain=DOMAIN.upper() + "."), server).info
    netlogon = info.details["netlogon"]
    assert isinstance(netlogon, dict)
    assert netlogon["site"] == "Branch" and netlogon["flags"] == 0x1FC
    assert "PDC" not in netlogon["flag_names"]


def test_server_gives_an_empty_done_for_another_domain_or_search() -> None:
    server = CldapServer(domain=DOMAIN)
    server.receive_data(ping_request(3, "other.example"))
    assert server.next_event() == Send(result_message(3, "searchResDone", 0))
    server.receive_data(search_request(4))  # a rootDSE search, not a ping
    assert server.next_event() == Send(result_message(4, "searchResDone", 0))
    assert server.heard == ["LDAP PING other.example", "SEARCH (not an LDAP ping)"]


def _ping_with_user(message_id: int, user: bytes) -> bytes:
    """The ping with a third term, (User=<user>), as a locator looking for an account sends."""
    message, _ = decoder.decode(ping_request(message_id, DOMAIN), asn1Spec=rfc2251.LDAPMessage())
    term = message["protocolOp"]["searchRequest"]["filter"]["and"][2]["equalityMatch"]
    term["attributeDesc"] = b"User"
    term["assertionValue"] = user
    return bytes(encoder.encode(message))


@pytest.mark.parametrize(("user", "echoed"), [(b"alice", "alice"), (b"u" * 64, "")])
def test_server_echoes_a_user_name_it_can_encode(user: bytes, echoed: str) -> None:
    server = CldapServer(domain=DOMAIN)
    server.receive_data(_ping_with_user(2, user))
    event = server.next_event()
    assert isinstance(event, Send)
    done = feed_client(CldapClient(domain=DOMAIN, message_id=2), [event.data])
    assert isinstance(done, Done)
    netlogon = done.info.details["netlogon"]
    assert isinstance(netlogon, dict) and netlogon["user"] == echoed


def test_server_drops_garbage_over_udp_and_hangs_up_over_tcp() -> None:
    udp = CldapServer(domain=DOMAIN)
    assert feed_server(udp, [b"GET / HTTP/1.0\r\n\r\n", ping_request(2, DOMAIN)])[:2] == [
        NEED_DATA,
        NEED_DATA,
    ]
    assert udp.heard == ["(malformed datagram, dropped)", f"LDAP PING {DOMAIN}"]
    tcp = feed_server(CldapServer(domain=DOMAIN, transport="tcp"), [b"GET / HTTP/1.0\r\n\r\n"])
    assert isinstance(tcp[-2], Send) and tcp[-1] is CLOSE


# -- Samba's DC locator against the server role ---------------------------------------------------

#: Samba's CLDAP client (the one `net ads lookup` and samba-tool use), from Debian's
#: python3-samba, asked to find a DC at one address.
FINDDC = textwrap.dedent(
    """
    import sys
    from samba import param
    from samba.credentials import Credentials
    from samba.dcerpc import nbt
    from samba.net import Net
    lp = param.LoadParm()
    creds = Credentials()
    creds.guess(lp)
    r = Net(creds, lp).finddc(address=sys.argv[1], flags=nbt.NBT_SERVER_LDAP | nbt.NBT_SERVER_DS)
    print(r.pdc_dns_name, r.dns_domain, r.forest, r.domain_name, r.pdc_name, r.server_site,
          r.client_site, hex(r.server_type), r.domain_uuid)
    """
)


class _Udp(asyncio.DatagramProtocol):
    """A tiny UDP responder: one server role per datagram."""

    def __init__(self, heard: list[str]) -> None:
        self.heard = heard

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        server = CldapServer(domain=DOMAIN, domain_guid=GUID, site="Lab-Site")
        server.receive_data(data)
        while isinstance(event := server.next_event(), Send):
            self.transport.sendto(event.data, addr)
        self.heard += server.heard


async def _samba_finddc(address: str, heard: list[str]) -> subprocess.CompletedProcess[str]:
    loop = asyncio.get_running_loop()
    # Samba's locator always asks port 389, so the responder takes it on a loopback address
    # of its own.
    transport, _ = await loop.create_datagram_endpoint(
        lambda: _Udp(heard), local_addr=(address, 389)
    )
    try:
        return await asyncio.to_thread(
            subprocess.run,
            ["/usr/bin/python3", "-c", FINDDC, address],
            capture_output=True,
            text=True,
            timeout=20,
        )
    finally:
        transport.close()


def test_samba_locator_reads_the_server_role() -> None:
    address = f"127.0.89.{random.randint(2, 250)}"
    heard: list[str] = []
    started = time.monotonic()
    done = asyncio.run(_samba_finddc(address, heard))
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [
        f"dc1.{DOMAIN}",
        DOMAIN,
        DOMAIN,
        "SAMDOM",
        "DC1",
        "Lab-Site",
        "Lab-Site",
        "0x13fd",
        str(GUID),
    ]
    assert heard == [f"LDAP PING {DOMAIN}"]
    assert time.monotonic() - started < 20


# -- fuzzing ---------------------------------------------------------------------------------------

PIECES = [
    _answer(5),
    netlogon_entry(5, BLOB),
    result_message(5, "searchResDone", 0),
    BLOB,
    b"\x30\x84\x00\x00\x00\x10",
    b"\x30\x80",
    b"\xc0\x18\xc0\x18",
    b"220 mail ESMTP\r\n",
]


def _bytes(pieces: list[bytes]) -> st.SearchStrategy[bytes]:
    """Real pieces, cut short or with a byte changed, and random bytes, joined."""
    piece = st.sampled_from(pieces)
    flipped = st.tuples(piece, st.integers(0, 10_000), st.integers(0, 255)).map(_flip)
    cut = st.tuples(piece, st.integers(0, 200)).map(lambda pair: pair[0][: pair[1]])
    parts = st.one_of(piece, piece, cut, flipped, st.binary(max_size=40))
    return st.lists(parts, max_size=6).map(b"".join)


def _flip(triple: tuple[bytes, int, int]) -> bytes:
    data, where, value = triple
    where %= max(1, len(data))
    return data[:where] + bytes([value]) + data[where + 1 :] if data else data


@FUZZ
@given(st.sampled_from(["udp", "tcp"]), st.lists(_bytes(PIECES), min_size=1, max_size=4), st.data())
def test_fuzz_client(transport: str, datagrams: list[bytes], data: st.DataObject) -> None:
    chunks = data.draw(chunked(PIECES)) if transport == "tcp" else datagrams
    start = time.process_time()
    result = feed_client(CldapClient(domain=DOMAIN, transport=transport, message_id=5), chunks)
    assert isinstance(result, Done | RemoteProtocolError)
    assert time.process_time() - start < EXAMPLE_BOUND


@FUZZ
@given(
    st.sampled_from(["udp", "tcp"]),
    st.lists(
        _bytes(
            [
                ping_request(2, DOMAIN),
                _ping_with_user(4, b"u" * 70),
                search_request(3),
                b"\x30\x05\x02\x01\x01\x42\x00",  # an unbind
            ]
        ),
        max_size=4,
    ),
)
def test_fuzz_server(transport: str, chunks: list[bytes]) -> None:
    start = time.process_time()
    events = feed_server(CldapServer(domain=DOMAIN, transport=transport), chunks)
    assert all(isinstance(e, Send) or e in (NEED_DATA, CLOSE) for e in events)
    assert time.process_time() - start < EXAMPLE_BOUND


def test_decode_name_is_linear() -> None:
    # The worst a capped blob can hold: every name at its bound. It must stay cheap.
    blob = BLOB[:24] + (b"\x3f" + b"x" * 63) * 3 + b"\x3e" + b"y" * 62 + b"\x00"
    start = time.process_time()
    for _ in range(200):
        assert len(decode_name(blob, 24)[0]) == 254
    assert time.process_time() - start < 0.5
