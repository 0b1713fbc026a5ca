from __future__ import annotations

import pytest

from portcall.protocols.base import NEED_DATA, Done, PeerClosed, Send, ServiceInfo, WrongProtocol
from portcall.protocols.routing import RoutingClient
from tests.protocols.transcript import EOF_, S, Step, play, play_both_ways

# The shape nmap's `resvc` match expects: the line, CRLF, then two more bytes of the stream.
EXCHANGE_2003 = (
    b"{0000004c} NODEINFO (5) {38}Version: 6.5.7638.1 Microsoft Routing Server ready\r\n  "
)
EXCHANGE_2000 = (
    b"{0000004c} NODEINFO (3) {38}Version: 6.0.6249.0 Microsoft Routing Server ready\r\n  "
)
SMTP_BANNER = (
    b"220 mail.example.com Microsoft ESMTP MAIL Service, Version: 6.0.3790.3959 ready at"
    b"  Thu, 1 Jan 2009 10:00:00 +0000 \r\n"
)


def silent_run(data: bytes, *, byte_at_a_time: bool) -> ServiceInfo:
    """Feed `data` and run to the end, failing if the client ever tries to send a byte."""
    hs = RoutingClient()
    chunks = [data[i : i + 1] for i in range(len(data))] if byte_at_a_time else [data]
    while True:
        event = hs.next_event()
        assert not isinstance(event, Send), f"the routing client sent {event.data!r}"
        if isinstance(event, Done):
            return event.info
        assert event is NEED_DATA
        hs.receive_data(chunks.pop(0) if chunks else b"")


@pytest.mark.parametrize(
    ("banner", "version", "node_info"),
    [(EXCHANGE_2003, "6.5.7638.1", 5), (EXCHANGE_2000, "6.0.6249.0", 3)],
    ids=["exchange-2003", "exchange-2000"],
)
def test_banner_is_parsed(banner: bytes, version: str, node_info: int) -> None:
    info = play_both_ways(RoutingClient, [S(banner)])
    assert info.protocol == "routing"
    assert info.product == f"Microsoft Exchange routing engine (RESvc) {version}"
    assert info.banner == banner.split(b"\r\n")[0].decode()
    assert info.details == {"node_info": node_info, "version": version}
    assert info.notes == []


@pytest.mark.parametrize("split", [False, True])
def test_the_client_never_sends(split: bool) -> None:
    info = silent_run(EXCHANGE_2003, byte_at_a_time=split)
    assert info.details["version"] == "6.5.7638.1"


def test_banner_without_a_version() -> None:
    info = play(
        RoutingClient(), [S(b"{00000030} NODEINFO (1) {0}Microsoft Routing Server ready\r\n")]
    )
    assert info.product == "Microsoft Exchange routing engine (RESvc)"
    assert info.details == {"node_info": 1, "version": None}
    assert info.notes == ["the banner names no version"]


def test_control_bytes_are_kept_out_of_the_banner() -> None:
    line = b"{0000004c} NODEINFO (5) {38}\x00Version: 6.5.7638.1 Microsoft Routing Server ready\r\n"
    info = play(RoutingClient(), [S(line)])
    assert "\x00" not in (info.banner or "")
    assert info.details["version"] == "6.5.7638.1"


@pytest.mark.parametrize(
    ("reply", "named"),
    [
        (SMTP_BANNER, "SMTP"),
        (b"+OK Microsoft Exchange Server 2003 POP3 server version 6.5.7638.1 ready.\r\n", "POP3"),
        (b"\x15\x03\x01\x00\x02\x02\x46", "TLS"),
        (b"{zzzzzzzz} NODEINFO\r\n", None),
    ],
    ids=["smtp", "pop3", "tls", "bad-hex"],
)
@pytest.mark.parametrize("split", [False, True])
def test_something_else_on_691_is_named(reply: bytes, named: str | None, split: bool) -> None:
    with pytest.raises(WrongProtocol) as caught:
        play(RoutingClient(), [S(reply)], byte_at_a_time=split)
    assert caught.value.detected == named
    assert caught.value.expected == "Exchange routing"


def test_smtp_banner_is_cut_short_by_a_close() -> None:
    with pytest.raises(WrongProtocol) as caught:
        play(RoutingClient(), [S(b"220 mail.example.com ESMTP"), EOF_], byte_at_a_time=True)
    assert caught.value.detected == "SMTP"


@pytest.mark.parametrize(
    ("steps", "received"),
    [
        ([EOF_], b""),
        ([S(b"{0000004c} NODE"), EOF_], b"{0000004c} NODE"),
        ([S(b"{0000004c} NODEINFO (5) {38}Ver"), EOF_], b"{0000004c} NODEINFO (5) {38}Ver"),
    ],
    ids=["silent-close", "mid-head", "mid-line"],
)
def test_peer_close(steps: list[Step], received: bytes) -> None:
    for split in (False, True):
        with pytest.raises(PeerClosed) as caught:
            play(RoutingClient(), steps, byte_at_a_time=split)
        assert caught.value.received == received
