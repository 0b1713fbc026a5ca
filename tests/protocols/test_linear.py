"""Every client parser costs time linear in what the peer sends, and no reply holds the event
loop for long: a handshake runs on the event loop, where no timeout can stop a busy parser.

Each protocol has a worst case: a reply dripping in one byte at a time (a parser that rescans
its buffer on each byte goes quadratic), and a reply at the limit arriving in one read (a
decoder that costs much per element). Times are CPU times on the sans-IO objects, no network.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from portcall.protocols import client_for
from portcall.protocols.base import (
    DEFAULT_REPLY_LIMIT,
    Done,
    ProbeOptions,
    RemoteProtocolError,
    ReplyTooLong,
    WrongProtocol,
)
from portcall.protocols.http import HEAD_LIMIT
from portcall.protocols.imap import MAX_LITERALS
from portcall.protocols.ldap import MAX_ELEMENTS, LdapClient
from portcall.protocols.lines import MAX_LINES
from tests.protocols.feeding import cpu_seconds, feed_client, no_collection

#: The sizes of a dripping reply compared, and the size of each drop. A parser that rescans its
#: buffer on each drop only shows its quadratic cost past a megabyte: bytearray.find scans
#: tens of gigabytes a second.
SMALL = 1_000_000
DROP = 256
#: Linear work grows 4x from SMALL to 4 * SMALL (3.3x measured); the rescanning parser of
#: old grew 8x here, and 16x on larger replies. 6 leaves room for a noisy, shared machine.
MAX_RATIO = 6
#: The longest a worst reply at the limit may take to parse in one read: the slowest measured
#: (LDAP at its element bound, 3.2 ms; routing 2.7 ms; SMTP and HTTP 1.8 ms; the others under
#: 0.5 ms) times three.
ONE_READ_BOUND = 0.010
#: The longest one step of a reply dripping in up to the limit may take: the slowest measured
#: (the step that completes a 64 KiB routing, SMTP or POP3 line, 2 to 2.7 ms) times three.
STEP_BOUND = 0.008

ROUTING_HEAD = b"{0000004c} NODEINFO (5) {38}Version: 6.5.7638.1 "


def _tlv(tag: int, body: bytes) -> bytes:
    size = len(body)
    if size < 0x80:
        return bytes([tag, size]) + body
    octets = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(octets)]) + octets + body


def ldap_entry(attributes: list[bytes], message_id: int = 1) -> bytes:
    """A searchResEntry for the rootDSE holding the given encoded PartialAttributes."""
    op = _tlv(0x64, _tlv(0x04, b"") + _tlv(0x30, b"".join(attributes)))
    return _tlv(0x30, _tlv(0x02, bytes([message_id])) + op)


def ldap_attribute(name: bytes, values: list[bytes]) -> bytes:
    return _tlv(0x30, _tlv(0x04, name) + _tlv(0x31, b"".join(_tlv(0x04, v) for v in values)))


#: A searchResDone for message 1: success, no DN, no message.
LDAP_DONE = _tlv(0x30, _tlv(0x02, b"\x01") + _tlv(0x65, b"\x0a\x01\x00\x04\x00\x04\x00"))


# -- drips ------------------------------------------------------------------------


def _line_drip(opening: bytes) -> Callable[[int], list[bytes]]:
    def chunks(n: int) -> list[bytes]:
        return [opening, *([b"a" * DROP] * (n // DROP)), b"\r\n"]

    return chunks


def _http_drip(n: int) -> list[bytes]:
    # The head is capped well below these sizes (HEAD_LIMIT); the body is what can be long.
    head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % n
    return [head, *([b"a" * DROP] * (n // DROP))]


def _ldap_drip(n: int) -> list[bytes]:
    message = ldap_entry([ldap_attribute(b"namingContexts", [b"a" * n])]) + LDAP_DONE
    # Smaller drops than the line protocols': more steps, so the time is long enough to compare.
    drop = DROP // 16
    return [message[i : i + drop] for i in range(0, len(message), drop)]


#: The domain controller's protocols frame each message with its length: a frame of n bytes
#: (n scaled down, as their frames are at most 64 KiB) dripping in; the frame's content is
#: nonsense, so the client ends with a clean error once it has the whole of it.
FRAME_SCALE = 64


def _framed_drip(prefix: Callable[[int], bytes]) -> Callable[[int], list[bytes]]:
    def drip(n: int) -> list[bytes]:
        size = min(n // FRAME_SCALE, 65_000)
        drop = DROP // 16
        return [prefix(size), *([b"a" * drop] * (size // drop))]

    return drip


def _ber_sequence(size: int) -> bytes:
    return b"\x30\x84" + size.to_bytes(4, "big")


def _rpc_header(size: int) -> bytes:
    # A RESPONSE PDU's header (C706 12.6.3.1) announcing its whole length.
    return b"\x05\x00\x02\x03\x10\x00\x00\x00" + (size + 16).to_bytes(2, "little") + bytes(6)


DC_DRIPS: dict[str, Callable[[int], list[bytes]]] = {
    "dns": _framed_drip(lambda size: size.to_bytes(2, "big")),
    "kerberos": _framed_drip(lambda size: size.to_bytes(4, "big")),
    "kpasswd": _framed_drip(lambda size: size.to_bytes(4, "big")),
    "cldap": _framed_drip(_ber_sequence),
    "dcerpc": _framed_drip(_rpc_header),
    "smb": _framed_drip(lambda size: size.to_bytes(4, "big")),
}

DRIPS: dict[str, Callable[[int], list[bytes]]] = {
    "smtp": _line_drip(b"220 "),
    "pop3": _line_drip(b"+OK "),
    "imap": _line_drip(b"* OK "),
    "nntp": _line_drip(b"200 "),
    "routing": _line_drip(ROUTING_HEAD),
    "http": _http_drip,
    "ldap": _ldap_drip,
    **DC_DRIPS,
}
#: Options each protocol is driven with: the DC protocols over TCP, asking about a domain.
DC_OPTIONS = {"domain": "example.test", "transport": "tcp"}


def options_for(protocol: str, **extra: int) -> ProbeOptions:
    if protocol in DC_DRIPS:
        return ProbeOptions(**DC_OPTIONS, **extra)  # type: ignore[arg-type]
    return ProbeOptions(**extra)  # type: ignore[arg-type]


def _drip_cost(protocol: str, n: int) -> float:
    options = options_for(protocol, reply_limit=8 * SMALL)

    def work() -> None:
        outcome = feed_client(client_for(protocol, options), DRIPS[protocol](n))
        assert not isinstance(outcome, ReplyTooLong), outcome

    return cpu_seconds(work)


@pytest.mark.parametrize("protocol", sorted(DRIPS))
def test_a_dripping_reply_costs_linear_time(protocol: str) -> None:
    small, large = _drip_cost(protocol, SMALL), _drip_cost(protocol, 4 * SMALL)
    assert large / small < MAX_RATIO, f"{protocol}: {small:.4f}s at n, {large:.4f}s at 4n"


@pytest.mark.parametrize("protocol", sorted(DRIPS))
def test_no_step_of_a_dripping_reply_at_the_limit_is_long(protocol: str) -> None:
    steps: list[float] = []
    at_limit = (DEFAULT_REPLY_LIMIT - 100) * (FRAME_SCALE if protocol in DC_DRIPS else 1)
    feed_client(client_for(protocol, options_for(protocol)), DRIPS[protocol](at_limit))
    # Warm caches first: the first call imports and compiles.
    with no_collection():
        feed_client(client_for(protocol, options_for(protocol)), DRIPS[protocol](at_limit), steps)
    assert max(steps) < STEP_BOUND, f"{protocol}: longest step {max(steps) * 1000:.1f} ms"


# -- whole replies at the limit, in one read -------------------------------------------------


def _lines(prefix: str, last: str, budget: int) -> bytes:
    """As many `prefix`-led lines as the line cap and the byte `budget` allow, then `last`."""
    width = budget // (MAX_LINES - 1) - len(prefix) - 2
    body = "".join(f"{prefix}{'A' * width}\r\n" for _ in range(MAX_LINES - 2))
    return (body + last).encode()


def _smtp_full() -> bytes:
    ehlo = _lines("250-AUTH ", "250 OK\r\n", DEFAULT_REPLY_LIMIT - 200)
    return b"220 mail ESMTP\r\n" + ehlo


def _pop3_full() -> bytes:
    return b"+OK ready\r\n+OK\r\n" + _lines("X", ".\r\n", DEFAULT_REPLY_LIMIT - 200)


def _nntp_full() -> bytes:
    capabilities = _lines("X", ".\r\n", DEFAULT_REPLY_LIMIT - 200)
    return b"200 news ready\r\n101 Capability list:\r\n" + capabilities


def _imap_full() -> bytes:
    # Every literal allowed, each one a search and a read, then untagged lines to the limit.
    literals = b"{1}\r\nX" * MAX_LITERALS
    budget = DEFAULT_REPLY_LIMIT - 200 - len(literals)
    untagged = _lines("* X ", "a1 OK done\r\n", budget)
    return b"* OK ready\r\n* CAPABILITY " + literals + b"\r\n" + untagged


def _http_full() -> bytes:
    # As many of the shortest headers as fit: each one is a step of h11's header parser.
    headers = b"".join(b"X-%04x: \r\n" % i for i in range((HEAD_LIMIT - 200) // 10))
    return b"HTTP/1.1 200 OK\r\n" + headers + b"Content-Length: 0\r\n\r\n"


def _routing_full() -> bytes:
    return ROUTING_HEAD + b"a" * (DEFAULT_REPLY_LIMIT - 100) + b"\r\n"


def _ldap_full() -> bytes:
    # The element bound, every element as small as BER allows: pyasn1's costliest reply.
    values = [b""] * (MAX_ELEMENTS - 7)
    return ldap_entry([ldap_attribute(b"a", values)]) + LDAP_DONE


FULL: dict[str, Callable[[], bytes]] = {
    "smtp": _smtp_full,
    "pop3": _pop3_full,
    "imap": _imap_full,
    "nntp": _nntp_full,
    "http": _http_full,
    "routing": _routing_full,
    "ldap": _ldap_full,
}


@pytest.mark.parametrize("protocol", sorted(FULL))
def test_a_worst_reply_at_the_limit_parses_fast_in_one_read(protocol: str) -> None:
    reply = FULL[protocol]()
    steps: list[float] = []
    outcome = feed_client(client_for(protocol, ProbeOptions()), [reply])
    assert not isinstance(outcome, ReplyTooLong), f"{protocol}: the worst case is over the limit"
    cost = cpu_seconds(lambda: feed_client(client_for(protocol, ProbeOptions()), [reply], steps))
    assert cost < ONE_READ_BOUND, f"{protocol}: {cost * 1000:.1f} ms"


# -- LDAP's own worst cases --------------------------------------------------------------------


def _ldap_outcome(reply: bytes, reply_limit: int = DEFAULT_REPLY_LIMIT) -> tuple[object, float]:
    outcome: list[object] = []

    def work() -> None:
        outcome.append(feed_client(LdapClient(ProbeOptions(reply_limit=reply_limit)), [reply]))

    cost = cpu_seconds(work, repeat=1)
    return outcome[0], cost


@pytest.mark.parametrize("names", [16_000, 100_000])
@pytest.mark.parametrize("reply_limit", [DEFAULT_REPLY_LIMIT, 16 * 1024 * 1024])
def test_ldap_many_attribute_names_end_cleanly_and_fast(names: int, reply_limit: int) -> None:
    attributes = [ldap_attribute(b"a%d" % i, []) for i in range(names)]
    outcome, cost = _ldap_outcome(ldap_entry(attributes) + LDAP_DONE, reply_limit)
    assert isinstance(outcome, ReplyTooLong | WrongProtocol), outcome
    assert cost < 0.1, f"{cost * 1000:.1f} ms"


def test_ldap_many_attribute_names_over_several_entries_merge_in_linear_time() -> None:
    def reply(entries: int) -> bytes:
        per_entry = (MAX_ELEMENTS - 8) // 3
        messages = [
            ldap_entry([ldap_attribute(b"a%d-%d" % (e, i), []) for i in range(per_entry)])
            for e in range(entries)
        ]
        return b"".join(messages) + LDAP_DONE

    outcome, small = _ldap_outcome(reply(1))
    assert isinstance(outcome, Done)
    _, large = _ldap_outcome(reply(4))
    assert large / small < MAX_RATIO, f"{small * 1000:.1f} ms, then {large * 1000:.1f} ms"


def test_ldap_attribute_names_differing_in_case_are_one_attribute() -> None:
    attributes = [ldap_attribute(b"namingContexts", [b"DC=a"])]
    later = [ldap_attribute(b"NAMINGCONTEXTS", [b"DC=b"]), ldap_attribute(b"vendorName", [b"x"])]
    reply = ldap_entry(attributes) + ldap_entry(later) + LDAP_DONE
    outcome = feed_client(LdapClient(), [reply])
    assert isinstance(outcome, Done)
    rootdse = outcome.info.details["rootdse"]
    assert rootdse == {"namingContexts": ["DC=a", "DC=b"], "vendorName": ["x"]}


def _nested(depth: int) -> bytes:
    value = _tlv(0x04, b"x")
    for _ in range(depth):
        value = _tlv(0x24, value)  # a constructed OCTET STRING, which BER allows to nest
    return ldap_entry([_tlv(0x30, _tlv(0x04, b"a") + _tlv(0x31, value))]) + LDAP_DONE


@pytest.mark.parametrize("depth", [1_000, 20_000])
def test_ldap_deep_nesting_ends_cleanly_and_fast(depth: int) -> None:
    outcome, cost = _ldap_outcome(_nested(depth), reply_limit=1024 * 1024)
    assert isinstance(outcome, WrongProtocol), outcome
    assert "nested more than" in str(outcome)
    assert cost < 0.05, f"{cost * 1000:.1f} ms"


@pytest.mark.parametrize("length", [2**31, 2**31 - 1, 2**64])
def test_ldap_huge_ber_length_is_refused_before_reading(length: int) -> None:
    octets = length.to_bytes((length.bit_length() + 7) // 8, "big")
    header = bytes([0x30, 0x80 | len(octets)]) + octets + b"\x02\x01\x01"
    outcome, cost = _ldap_outcome(header)
    assert isinstance(outcome, ReplyTooLong), outcome
    assert cost < 0.01


def test_ldap_inner_length_of_2_31_is_a_clean_error() -> None:
    inner = b"\x04\x84\x80\x00\x00\x00" + b"x" * 10
    reply = _tlv(0x30, _tlv(0x02, b"\x01") + _tlv(0x64, inner))
    outcome, cost = _ldap_outcome(reply)
    assert isinstance(outcome, RemoteProtocolError), outcome
    assert cost < 0.01


def test_every_drip_and_full_reply_covers_every_client() -> None:
    from portcall.catalog import PROTOCOL_TRANSPORTS
    from portcall.protocols import CLIENTS

    over_tcp = {name for name in CLIENTS if "tcp" in PROTOCOL_TRANSPORTS[name]}
    assert set(DRIPS) == over_tcp
    # A whole worst reply in one read: the Exchange protocols' text and LDAP here; the DC
    # protocols' bounded decoders in their own modules (record and element limits).
    assert set(FULL) == over_tcp - set(DC_DRIPS)


def test_imap_many_literals_end_cleanly() -> None:
    reply = b"* OK ready\r\n* CAPABILITY " + b"{1}\r\nX" * (MAX_LITERALS + 1) + b"\r\n"
    outcome = feed_client(client_for("imap", ProbeOptions()), [reply])
    assert isinstance(outcome, WrongProtocol)
    assert f"more than {MAX_LITERALS} literals" in str(outcome)


@pytest.mark.parametrize("protocol", ["smtp", "pop3", "nntp"])
def test_a_multi_line_reply_is_bounded_as_a_whole(protocol: str) -> None:
    # Each line is short, but together they pass the reply limit before the line cap.
    opening = {"smtp": b"220 mail ESMTP\r\n", "pop3": b"+OK\r\n+OK\r\n"}
    opening["nntp"] = b"200 news\r\n101 list\r\n"
    prefix = b"250-" if protocol == "smtp" else b""
    lines = (prefix + b"A" * 200 + b"\r\n") * (MAX_LINES - 10)
    outcome = feed_client(
        client_for(protocol, ProbeOptions(reply_limit=4096)), [opening[protocol] + lines]
    )
    assert isinstance(outcome, ReplyTooLong), outcome
