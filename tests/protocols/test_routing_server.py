from __future__ import annotations

import re

import pytest

from portcall.protocols.base import ServerOptions
from portcall.protocols.routing import DISCARD_LIMIT, RoutingClient, RoutingServer
from portcall.protocols.sniff import identify
from tests.protocols.pair import check_server, converse, play_server
from tests.protocols.transcript import EOF_, C, S, Step

EXCHANGE_2003 = (
    b"{0000004c} NODEINFO (5) {38}Version: 6.5.7638.1 Microsoft Routing Server ready\r\n  "
)
EXCHANGE_2000 = (
    b"{0000004c} NODEINFO (5) {38}Version: 6.0.6249.0 Microsoft Routing Server ready\r\n  "
)
NEUTRAL = b"{0000004c} NODEINFO (5) {38}portcall responder ready\r\n  "

#: The shape nmap's `resvc` match looks for (NULL probe), rewritten here as a Python pattern.
NMAP_RESVC = re.compile(
    rb"^\{0000004c\} NODEINFO \(5\) \{38\}Version: (\d[-.\w ]+) Microsoft Routing Server "
    rb"ready\r\n  ",
    re.S,
)


def server(profile: str = "exchange2003") -> RoutingServer:
    return RoutingServer(ServerOptions(profile=profile))


@pytest.mark.parametrize(
    ("profile", "banner"),
    [("exchange2003", EXCHANGE_2003), ("exchange2000", EXCHANGE_2000), ("neutral", NEUTRAL)],
)
def test_banner_per_profile(profile: str, banner: bytes) -> None:
    steps: list[Step] = [S(banner), C(b""), EOF_]
    hs = check_server(lambda: server(profile), steps)
    assert hs.heard == []
    assert identify(banner) == "Exchange routing (RESvc)"


@pytest.mark.parametrize(
    ("banner", "version"), [(EXCHANGE_2003, b"6.5.7638.1"), (EXCHANGE_2000, b"6.0.6249.0")]
)
def test_exchange_banners_match_nmap(banner: bytes, version: bytes) -> None:
    match = NMAP_RESVC.match(banner)
    assert match is not None
    assert match.group(1) == version


def test_the_neutral_banner_names_no_product() -> None:
    assert NMAP_RESVC.match(NEUTRAL) is None
    assert b"Microsoft" not in NEUTRAL


@pytest.mark.parametrize(
    ("profile", "product", "version"),
    [
        ("exchange2003", "Microsoft Exchange routing engine (RESvc) 6.5.7638.1", "6.5.7638.1"),
        ("exchange2000", "Microsoft Exchange routing engine (RESvc) 6.0.6249.0", "6.0.6249.0"),
        ("neutral", "Microsoft Exchange routing engine (RESvc)", None),
    ],
)
def test_our_client_reads_each_banner(profile: str, product: str, version: str | None) -> None:
    conversation = converse(RoutingClient(), server(profile))
    info = conversation.info
    assert info.product == product
    assert info.details == {"node_info": 5, "version": version}
    assert conversation.client_sent == b""
    # The client names RESvc from the frame alone; the neutral text itself claims nothing.
    assert info.notes == ([] if version else ["the banner names no version"])


def test_what_the_peer_sends_is_read_and_never_answered() -> None:
    traffic = b"{00000010}" + bytes(range(256)) * 4
    steps: list[Step] = [S(EXCHANGE_2003), C(traffic), C(b"X-LSA-2 more\r\n"), C(b""), EOF_]
    hs = check_server(server, steps)
    assert hs.heard == [f"{len(traffic) + 14} bytes of link-state traffic (not interpreted)"]


def test_the_responder_hangs_up_after_the_discard_limit() -> None:
    chunk = b"\x00" * 4096
    chunks = [C(chunk)] * (DISCARD_LIMIT // len(chunk) + 2)
    happened = play_server(server(), chunks)
    assert happened[0] == S(EXCHANGE_2003)
    assert happened[-1] is EOF_
    assert [step for step in happened if isinstance(step, S)] == [S(EXCHANGE_2003)]
    # Bytes arrive at most one line limit at a time, so the count stops near the limit.
    fed = sum(1 for step in happened if isinstance(step, C))
    assert fed == DISCARD_LIMIT // len(chunk)
