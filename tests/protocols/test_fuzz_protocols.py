"""Property tests: whatever a peer sends, in whatever pieces, every protocol role ends cleanly.

A client ends in `Done` or a `RemoteProtocolError` subclass (the verdict table maps those);
a server role yields only Send, StartTLS, NEED_DATA and CLOSE and raises nothing; the sniffer
names or declines any bytes; the catalog loader turns any text into a Catalog or a
CatalogError. Inputs are built from pieces of the real protocols (greetings, multi-line
replies, BER headers, requests) mixed with random bytes, so that the fuzzer gets past the
first line, then cut at random places. Each example has its own CPU-time bound.
"""

from __future__ import annotations

import dataclasses
import importlib
import itertools
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portcall.catalog import PROTOCOL_TRANSPORTS, Catalog, CatalogError, parse_catalog
from portcall.protocols import CLIENTS, SERVERS, client_for, server_for
from portcall.protocols.base import (
    CLOSE,
    NEED_DATA,
    PROFILES,
    Done,
    ProbeOptions,
    RemoteProtocolError,
    Send,
    ServerOptions,
    StartTLS,
)
from portcall.protocols.ldap.messages import search_request
from portcall.protocols.sniff import identify
from tests.protocols.feeding import feed_client, feed_server

#: Examples per property: modest, so that the whole file runs in well under half a minute.
EXAMPLES = 200
#: CPU seconds one example may take: a parser stuck in a loop or gone quadratic fails here.
EXAMPLE_BOUND = 0.5


def bounded(work: object) -> object:
    """`work()`, which must spend less than `EXAMPLE_BOUND` of CPU: one fuzz example."""
    assert callable(work)
    start = time.process_time()
    outcome = work()
    spent = time.process_time() - start
    assert spent < EXAMPLE_BOUND, f"one example took {spent:.2f} s of CPU"
    return outcome


FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,
    database=None,
)


def _ber(tag: int, body: bytes) -> bytes:
    head = bytes([tag, len(body)]) if len(body) < 0x80 else bytes([tag, 0x81, len(body)])
    return head + body


#: Pieces a server says, per client protocol: real greetings, real multi-line replies, and the
#: shapes a broken server sends (a bare code, an unfinished continuation, a lone dot).
SERVER_PIECES: dict[str, list[bytes]] = {
    "smtp": [
        b"220 mail.example.test Microsoft ESMTP MAIL Service, Version: 6.0.3790.3959 ready\r\n",
        b"220-mail ESMTP\r\n",
        b"250-mail Hello [192.0.2.1]\r\n250-STARTTLS\r\n250-AUTH GSSAPI NTLM LOGIN\r\n",
        b"250-X-LINK2STATE\r\n250-XEXCH50\r\n250 OK\r\n",
        b"250 OK\r\n",
        b"220 2.0.0 Ready to start TLS\r\n",
        b"421 busy\r\n",
        b"454 TLS not available\r\n",
        b"502 unknown\r\n",
    ],
    "pop3": [
        b"+OK Microsoft Exchange Server 2003 POP3 server version 6.5.7638.1 ready.\r\n",
        b"+OK Capability list follows\r\nTOP\r\nUSER\r\nSTLS\r\n.\r\n",
        b"..dot-stuffed\r\n",
        b".\r\n",
        b"-ERR no\r\n",
        b"+OK Begin TLS\r\n",
    ],
    "imap": [
        b"* OK Microsoft Exchange Server 2003 IMAP4rev1 server version 6.5.7638.1 ready.\r\n",
        b"* OK Waiting for authentication process to respond..\r\n",
        b"* CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED\r\n",
        b"* CAPABILITY {5}\r\nIMAP4\r\n",
        b"a1 OK CAPABILITY completed.\r\n",
        b"a2 OK Begin TLS\r\n",
        b"a2 NO no\r\n",
        b"* BYE bye\r\n",
        b"+ go on\r\n",
        b"{99999999999}\r\n",
    ],
    "nntp": [
        b"200 mail.example.test Microsoft NNTP Service 6.0.3790.3959 Version: 6.0.3790.3959\r\n",
        b"201 no posting\r\n",
        b"101 Capability list:\r\nVERSION 2\r\nREADER\r\nSTARTTLS\r\n.\r\n",
        b"382 Continue with TLS negotiation\r\n",
        b"500 unknown\r\n",
        b"502 go away\r\n",
    ],
    "ldap": [
        _ber(0x30, _ber(0x02, b"\x01") + _ber(0x64, _ber(0x04, b"") + _ber(0x30, b""))),
        _ber(0x30, _ber(0x02, b"\x01") + _ber(0x65, b"\x0a\x01\x00\x04\x00\x04\x00")),
        _ber(0x30, _ber(0x02, b"\x02") + _ber(0x78, b"\x0a\x01\x00\x04\x00\x04\x00")),
        _ber(0x30, _ber(0x02, b"\x00") + _ber(0x78, b"\x0a\x01\x34\x04\x00\x04\x00")),
        b"\x30\x84\x00\x00\x00\x10",
        b"\x30\x84\x80\x00\x00\x00",
        b"\x30\x80",
        b"\x02\x01\x01",
        b"\x64\x82\x01\x00",
        b"\x04\x81\x05abc",
        b"\x24\x24\x24\x24",
    ],
    "http": [
        b"HTTP/1.1 200 OK\r\nServer: Microsoft-IIS/6.0\r\nContent-Length: 2\r\n\r\nok",
        b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Negotiate\r\nWWW-Authenticate: NTLM\r\n",
        b"Content-Length: 0\r\n\r\n",
        b"HTTP/1.1 302 Found\r\nLocation: /exchweb/\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"5\r\nhello\r\n0\r\n\r\n",
        b"HTTP/1.1 100 Continue\r\n\r\n",
        b"HTTP/1.0 200 OK\r\nConnection: close\r\n\r\n",
        b"HTTP/1.1 999 ?\r\nContent-Length: 99999999999999999999\r\n\r\n",
    ],
    "routing": [
        b"{0000004c} NODEINFO (5) {38}Version: 6.5.7638.1 Microsoft Routing Server ready\r\n  ",
        b"{0000004c} NODEINFO (5) {38}",
        b"{0000004C} NODEINFO",
        b"{zzzzzzzz} NODEINFO",
        b"{0000",
    ],
}
#: What a stranger says on any port: the fuzzer sees other protocols' openings too.
STRANGERS = [
    b"\x16\x03\x01\x00\x2a\x02\x00\x00\x26\x03\x01",
    b"\x15\x03\x03\x00\x02\x02\x28",
    b"SSH-2.0-OpenSSH_9.2\r\n",
    b"220 ftp.example.test FTP server ready\r\n",
    b"\r\n",
    b"\n",
    b"\x00",
    b"\xff\xfe\xfd",
]

#: Pieces a client says, per server protocol.
CLIENT_PIECES: dict[str, list[bytes]] = {
    "smtp": [
        b"EHLO client.example.test\r\n",
        b"HELO x\r\n",
        b"STARTTLS\r\n",
        b"MAIL FROM:<a@example.test> SIZE=100\r\n",
        b"RCPT TO:<b@example.test>\r\n",
        b"DATA\r\n",
        b"AUTH LOGIN\r\n",
        b"dXNlcg==\r\n",
        b"*\r\n",
        b"BDAT 10 LAST\r\n",
        b"VRFY postmaster\r\n",
        b"HELP\r\n",
        b"QUIT\r\n",
        b"RSET\r\n",
    ],
    "pop3": [
        b"CAPA\r\n",
        b"STLS\r\n",
        b"USER alice\r\n",
        b"PASS secret\r\n",
        b"APOP alice 0123456789abcdef\r\n",
        b"AUTH NTLM\r\n",
        b"STAT\r\n",
        b"QUIT\r\n",
    ],
    "imap": [
        b"a1 CAPABILITY\r\n",
        b"a2 STARTTLS\r\n",
        b"a3 LOGIN alice {6}\r\n",
        b"secret\r\n",
        b"a4 LOGIN {5+}\r\nalice {6+}\r\nsecret\r\n",
        b"a5 AUTHENTICATE NTLM\r\n",
        b"a6 SELECT INBOX\r\n",
        b"a7 NOOP\r\n",
        b"a8 LOGOUT\r\n",
        b"* bad tag\r\n",
        b"{4294967295}\r\n",
    ],
    "nntp": [
        b"CAPABILITIES\r\n",
        b"STARTTLS\r\n",
        b"MODE READER\r\n",
        b"LIST\r\n",
        b"LIST NEWSGROUPS\r\n",
        b"GROUP alt.test\r\n",
        b"ARTICLE <a@b>\r\n",
        b"AUTHINFO USER alice\r\n",
        b"AUTHINFO PASS secret\r\n",
        b"DATE\r\n",
        b"HELP\r\n",
        b"NEWGROUPS 20240101 000000\r\n",
        b"POST\r\n",
        b"QUIT\r\n",
    ],
    "ldap": [
        bytes.fromhex("300c020101600702010304008000"),  # anonymous simple bind
        bytes.fromhex("301d02010277188016312e332e362e312e342e312e313436362e3230303337"),
        search_request(5),
        bytes.fromhex("30050201034200"),  # unbind
        bytes.fromhex("3016020104601102010304046e616d658006736563726574"),
        b"\x30\x84\x7f\xff\xff\xff",
        b"\x30\x80\x02\x01\x01",
        b"\x30\x03\x02\x01\x00",
        b"\xa0\x1b\x30\x19\x04\x171.2.840.113556.1.4.319\x01\x01\xff",
    ],
    "http": [
        b"GET / HTTP/1.1\r\nHost: mail\r\n\r\n",
        b"GET /exchange/ HTTP/1.1\r\nHost: mail\r\nAuthorization: NTLM TlRMTVNTUAABAAAA\r\n\r\n",
        b"POST /exchweb/bin/auth/owaauth.dll HTTP/1.1\r\nHost: m\r\nContent-Length: 5\r\n\r\nhello",
        b"POST / HTTP/1.1\r\nHost: m\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        b"OPTIONS * HTTP/1.1\r\nHost: m\r\n\r\n",
        b"GET / HTTP/1.0\r\n\r\n",
        b"BREW /pot HTCPCP/1.0\r\n\r\n",
        b"GET / HTTP/1.1\r\nConnection: close\r\nHost: m\r\n\r\n",
    ],
    "routing": [
        b"{0000004c} NODEINFO (5) {38}Version: 6.5.7638.1 Microsoft Routing Server ready\r\n",
        b"\x00" * 64,
    ],
}


def _message(pieces: list[bytes]) -> st.SearchStrategy[bytes]:
    """Bytes made of real pieces, pieces cut short or with a byte changed, and random bytes."""
    piece = st.sampled_from(pieces)
    cut = st.tuples(piece, st.integers(0, 200)).map(lambda pair: pair[0][: pair[1]])
    flipped = st.tuples(piece, st.integers(0, 10_000), st.integers(0, 255)).map(_flip)
    noise = st.binary(max_size=40)
    parts = st.lists(st.one_of(piece, piece, cut, flipped, noise), max_size=12)
    return parts.map(b"".join)


def _flip(triple: tuple[bytes, int, int]) -> bytes:
    data, where, value = triple
    if not data:
        return data
    where %= len(data)
    return data[:where] + bytes([value]) + data[where + 1 :]


@st.composite
def chunked(draw: st.DrawFn, pieces: list[bytes]) -> list[bytes]:
    """A message from `pieces`, cut into arbitrary chunks (one byte to the whole)."""
    data = draw(_message(pieces))
    cuts = sorted(set(draw(st.lists(st.integers(1, max(1, len(data))), max_size=20))))
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds) if data[a:b]]


class _Clock:
    """Fails the example when the block took more CPU time than `EXAMPLE_BOUND`."""

    def __enter__(self) -> _Clock:
        self.start = time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        spent = time.process_time() - self.start
        assert spent < EXAMPLE_BOUND, f"one example took {spent:.2f} s of CPU"


# -- clients ---------------------------------------------------------------------------------


probe_options = st.builds(
    ProbeOptions,
    starttls=st.booleans(),
    starttls_required=st.booleans(),
    implicit_tls=st.booleans(),
    reply_limit=st.sampled_from([64, 512, 64 * 1024]),
    domain=st.just("example.test"),
)


def _client_case(protocol: str) -> st.SearchStrategy[list[bytes]]:
    return chunked(SERVER_PIECES[protocol] + STRANGERS)


def _check_client(protocol: str, options: ProbeOptions, chunks: list[bytes]) -> None:
    with _Clock():
        outcome = feed_client(client_for(protocol, options), chunks)
    assert isinstance(outcome, Done | RemoteProtocolError)
    if isinstance(outcome, Done):
        assert outcome.info.protocol == protocol


@FUZZ
@given(probe_options, _client_case("smtp"))
def test_fuzz_smtp_client(options: ProbeOptions, chunks: list[bytes]) -> None:
    _check_client("smtp", options, chunks)


@FUZZ
@given(probe_options, _client_case("pop3"))
def test_fuzz_pop3_client(options: ProbeOptions, chunks: list[bytes]) -> None:
    _check_client("pop3", options, chunks)


@FUZZ
@given(probe_options, _client_case("imap"))
def test_fuzz_imap_client(options: ProbeOptions, chunks: list[bytes]) -> None:
    _check_client("imap", options, chunks)


@FUZZ
@given(probe_options, _client_case("nntp"))
def test_fuzz_nntp_client(options: ProbeOptions, chunks: list[bytes]) -> None:
    _check_client("nntp", options, chunks)


@FUZZ
@given(probe_options, _client_case("ldap"))
def test_fuzz_ldap_client(options: ProbeOptions, chunks: list[bytes]) -> None:
    _check_client("ldap", options, chunks)


@FUZZ
@given(probe_options, _client_case("http"))
def test_fuzz_http_client(options: ProbeOptions, chunks: list[bytes]) -> None:
    _check_client("http", options, chunks)


@FUZZ
@given(probe_options, _client_case("routing"))
def test_fuzz_routing_client(options: ProbeOptions, chunks: list[bytes]) -> None:
    _check_client("routing", options, chunks)


@FUZZ
@given(st.sampled_from(sorted(CLIENTS)), probe_options, st.data())
def test_fuzz_any_client_with_another_protocols_reply(
    protocol: str, options: ProbeOptions, data: st.DataObject
) -> None:
    every_piece = [piece for pieces in SERVER_PIECES.values() for piece in pieces]
    if options.transport not in PROTOCOL_TRANSPORTS[protocol]:  # NTP has no TCP
        options = dataclasses.replace(options, transport=PROTOCOL_TRANSPORTS[protocol][0])
    _check_client(protocol, options, data.draw(chunked(every_piece + STRANGERS)))


# -- the sniffer -------------------------------------------------------------------------------


@FUZZ
@given(_message([piece for pieces in SERVER_PIECES.values() for piece in pieces] + STRANGERS))
def test_fuzz_sniffer(data: bytes) -> None:
    with _Clock():
        name = identify(data)
    assert name is None or (isinstance(name, str) and name)
    assert identify(b"") is None


# -- servers ---------------------------------------------------------------------------------


server_options = st.builds(
    ServerOptions,
    hostname=st.sampled_from(["mail.example.test", "dc1.example.test"]),
    profile=st.sampled_from(PROFILES),
    starttls=st.booleans(),
    implicit_tls=st.booleans(),
    global_catalog=st.booleans(),
    peer_address=st.sampled_from(["", "192.0.2.1", "2001:db8::1"]),
    line_limit=st.sampled_from([64, 512, 4096]),
)


def _check_server(protocol: str, options: ServerOptions, chunks: list[bytes]) -> None:
    hs = server_for(protocol, options)
    with _Clock():
        events = feed_server(hs, chunks)
    assert events[-1] is CLOSE
    for event in events:
        assert event in (NEED_DATA, CLOSE) or isinstance(event, Send | StartTLS), event
    assert all(isinstance(entry, str) for entry in hs.heard)


def _server_case(protocol: str) -> st.SearchStrategy[list[bytes]]:
    return chunked(CLIENT_PIECES[protocol] + STRANGERS)


@FUZZ
@given(server_options, _server_case("smtp"))
def test_fuzz_smtp_server(options: ServerOptions, chunks: list[bytes]) -> None:
    _check_server("smtp", options, chunks)


@FUZZ
@given(server_options, _server_case("pop3"))
def test_fuzz_pop3_server(options: ServerOptions, chunks: list[bytes]) -> None:
    _check_server("pop3", options, chunks)


@FUZZ
@given(server_options, _server_case("imap"))
def test_fuzz_imap_server(options: ServerOptions, chunks: list[bytes]) -> None:
    _check_server("imap", options, chunks)


@FUZZ
@given(server_options, _server_case("nntp"))
def test_fuzz_nntp_server(options: ServerOptions, chunks: list[bytes]) -> None:
    _check_server("nntp", options, chunks)


@FUZZ
@given(server_options, _server_case("ldap"))
def test_fuzz_ldap_server(options: ServerOptions, chunks: list[bytes]) -> None:
    _check_server("ldap", options, chunks)


@FUZZ
@given(server_options, _server_case("http"))
def test_fuzz_http_server(options: ServerOptions, chunks: list[bytes]) -> None:
    _check_server("http", options, chunks)


@FUZZ
@given(server_options, _server_case("routing"))
def test_fuzz_routing_server(options: ServerOptions, chunks: list[bytes]) -> None:
    _check_server("routing", options, chunks)


#: The domain controller's protocols: each module fuzzes both roles over each transport
#: (tests/protocols/test_<module>.py); here they meet every other protocol's replies.
DC_FUZZ_MODULES = {
    "dns": "test_dns",
    "kerberos": "test_kerberos",
    "kpasswd": "test_kpasswd",
    "cldap": "test_cldap",
    "dcerpc": "test_dcerpc",
    "smb": "test_smb",
    "ntp": "test_ntp",
}


def test_every_role_has_pieces_to_fuzz_with() -> None:
    assert set(SERVER_PIECES) | set(DC_FUZZ_MODULES) == set(CLIENTS)
    assert set(CLIENT_PIECES) | set(DC_FUZZ_MODULES) == set(SERVERS)


@pytest.mark.parametrize("protocol", sorted(DC_FUZZ_MODULES))
def test_every_dc_role_is_fuzzed_in_its_own_module(protocol: str) -> None:
    module = importlib.import_module(f"tests.protocols.{DC_FUZZ_MODULES[protocol]}")
    fuzzed = [
        name
        for name, test in vars(module).items()
        if name.startswith("test_fuzz") and hasattr(test, "hypothesis")
    ]
    assert any("client" in name for name in fuzzed), f"{protocol}: no client fuzz test"
    assert any("server" in name for name in fuzzed), f"{protocol}: no server fuzz test"


# -- the catalog loader ------------------------------------------------------------------------

SEED_CATALOG = (
    Path(__file__).resolve().parents[2] / "src" / "portcall" / "catalog" / "exchange-2000.toml"
).read_text(encoding="utf-8")
_SEED_LINES = SEED_CATALOG.splitlines()
_CATALOG_LINES = [
    *_SEED_LINES,
    "[[port]]",
    "[catalog]",
    "[other]",
    'port = "25"',
    "port = 0",
    "port = 65536",
    "port = -1",
    'tls = "sometimes"',
    'protocol = "gopher"',
    'key = "has space"',
    'key = ""',
    "tls_required = 1",
    "optional = []",
    'description = "\\u001b[2J"',
    "key = 1e400",
    "= broken",
    '"""',
]


@st.composite
def catalog_texts(draw: st.DrawFn) -> str:
    """The real catalog with lines dropped, repeated, swapped for broken ones, or plain text."""
    if draw(st.integers(0, 4)) == 0:
        return draw(st.text(max_size=200))
    lines = list(_SEED_LINES)
    for _ in range(draw(st.integers(0, 8))):
        where = draw(st.integers(0, len(lines)))
        action = draw(st.integers(0, 2))
        if action == 0 and where < len(lines):
            del lines[where]
        else:
            lines.insert(where, draw(st.sampled_from(_CATALOG_LINES)))
    return "\n".join(lines)


@FUZZ
@given(catalog_texts())
def test_fuzz_catalog_loader(text: str) -> None:
    with _Clock():
        try:
            catalog = parse_catalog(text, origin="fuzz")
        except CatalogError as error:
            assert str(error).startswith("fuzz"), str(error)
            return
    assert isinstance(catalog, Catalog)


def test_the_seed_catalog_parses() -> None:
    assert isinstance(parse_catalog(SEED_CATALOG), Catalog)
