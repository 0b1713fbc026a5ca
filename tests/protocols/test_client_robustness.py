"""Whatever a peer sends, a client handshake ends in a result or a RemoteProtocolError.

Anything else (an IndexError in a parser, a decoding error) would escape the verdict table
and stop a whole check run. Damaged versions of real greetings and random bytes are fed in
small pieces to every client, with and without STARTTLS.
"""

from __future__ import annotations

import random

import pytest

from portcall.catalog import PROTOCOL_TRANSPORTS
from portcall.protocols import CLIENTS, client_for
from portcall.protocols.base import (
    Done,
    Handshake,
    Pause,
    ProbeOptions,
    RemoteProtocolError,
    Send,
    StartTLS,
)

SEEDS = (
    b"220 mail.example.com Microsoft ESMTP MAIL Service, Version: 6.0.3790.3959 ready\r\n",
    b"250-mail Hello\r\n250-STARTTLS\r\n250 OK\r\n",
    b"+OK ready\r\n",
    b"+OK\r\nSTLS\r\n.\r\n",
    b"* OK ready\r\n* CAPABILITY IMAP4rev1 STARTTLS\r\na1 OK done\r\n",
    b"200 news ready\r\n101 list\r\nSTARTTLS\r\n.\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    b"\x30\x0c\x02\x01\x01\x65\x07\x0a\x01\x00\x04\x00\x04\x00",
    b"{0000004c} NODEINFO (5) {38}Version: 6.5.7638.1 Microsoft Routing Server ready\r\n",
    b"\x16\x03\x01\x00\x2a",
    # The domain controller's protocols: a DNS reply header, a KRB-ERROR's tag, an SMB2
    # header behind its length, a DCE/RPC bind_ack, an NTP server reply's head.
    b"\x12\x34\x85\x80\x00\x01\x00\x01\x00\x00\x00\x00\x07example\x04test\x00\x00\x06\x00\x01",
    b"\x7e\x81\x80\x30\x81\x7d\xa0\x03\x02\x01\x05\xa1\x03\x02\x01\x1e",
    b"\x00\x00\x00\x48\xfeSMB\x40\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00",
    b"\x05\x00\x0c\x03\x10\x00\x00\x00\x44\x00\x00\x00\x01\x00\x00\x00",
    b"\x24\x02\x06\xe9" + bytes(44),
)
CASES_PER_PROTOCOL = 400


def damaged(rng: random.Random) -> bytes:
    data = bytearray(rng.choice(SEEDS))
    for _ in range(rng.randint(0, 12)):
        roll = rng.random()
        if roll < 0.35 and data:
            data[rng.randrange(len(data))] = rng.randrange(256)
        elif roll < 0.7:
            data += rng.choice(SEEDS)
        else:
            data += rng.randbytes(rng.randint(1, 12))
    return bytes(data)


def run(hs: Handshake, data: bytes, rng: random.Random) -> None:
    chunks = []
    while data:
        size = rng.randint(1, 40)
        chunks.append(data[:size])
        data = data[size:]
    for _ in range(1000):
        event = hs.next_event()
        if isinstance(event, Done):
            return
        if isinstance(event, StartTLS):
            hs.tls_started()
        elif not isinstance(event, Send | Pause):
            hs.receive_data(chunks.pop(0) if chunks else b"")
    raise AssertionError("the handshake neither finished nor failed")


@pytest.mark.parametrize("protocol", sorted(CLIENTS))
def test_any_reply_ends_in_a_result_or_a_remote_protocol_error(protocol: str) -> None:
    rng = random.Random(f"portcall-{protocol}")
    for _ in range(CASES_PER_PROTOCOL):
        options = ProbeOptions(
            starttls=rng.random() < 0.5,
            starttls_required=rng.random() < 0.5,
            domain="example.test",
            transport=rng.choice(PROTOCOL_TRANSPORTS[protocol]),
        )
        data = damaged(rng)
        try:
            run(client_for(protocol, options), data, rng)
        except RemoteProtocolError:
            pass
        except Exception as exc:  # pragma: no cover - the failure message is the point
            pytest.fail(f"{protocol}: {type(exc).__name__}: {exc} on {data[:120]!r}")
