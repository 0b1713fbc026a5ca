"""A zoo of hostile servers on 127.0.0.1, each misbehaving in one way on purpose.

Run as a program (`python -m tests.hostile.zoo CERT_DIR`) it serves every case on an
ephemeral port, prints one JSON line `{case: port}` and serves until its standard input
closes. A process of its own keeps the servers' CPU time and memory out of the measurements
taken in the probing process, and dies with the test run.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import socket
import ssl
import struct
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Final

from tests.hostile.certs import write_hostile_certificate

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]

#: The endless banner stops here if the client never hangs up: bounded, yet far past any limit.
ENDLESS_CAP: Final = 512 * 1024 * 1024
CHUNK: Final = 64 * 1024
TEN_MB: Final = 10 * 1024 * 1024
EHLO_LINES: Final = 100_000
LDAP_ATTRIBUTES: Final = 100_000
#: Attributes per searchResEntry: each message stays under a 64 KiB frame.
ATTRIBUTES_PER_ENTRY: Final = 4_000
NESTING: Final = 1_000


async def _hold(reader: asyncio.StreamReader) -> None:
    """Keep the connection open, reading and dropping what comes, until the client leaves."""
    while await reader.read(CHUNK):
        pass


# -- banners -------------------------------------------------------------------------------


async def endless_banner(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"220 endless.example ESMTP ")
    sent = 0
    while sent < ENDLESS_CAP:
        writer.write(b"x" * CHUNK)
        await writer.drain()
        sent += CHUNK


async def ten_mb_line(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"220 " + b"x" * TEN_MB + b"\r\n")
    await writer.drain()
    await _hold(reader)


async def drip(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    for byte in b"220 drip.example ESMTP ready\r\n":
        writer.write(bytes([byte]))
        await writer.drain()
        await asyncio.sleep(1.0)
    await _hold(reader)


async def reset_after_greeting(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"220 reset.example ESMTP\r\n")
    await writer.drain()
    sock = writer.get_extra_info("socket")
    # SO_LINGER on with a zero timeout: the close sends RST instead of FIN.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def never_speaks(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await _hold(reader)


async def close_at_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.close()


async def smtp_then_pop3(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Greets as SMTP, then answers every command as POP3 would."""
    writer.write(b"220 mixed.example ESMTP ready\r\n")
    while await reader.readline():
        writer.write(b"-ERR unknown command\r\n")
        await writer.drain()


async def smtp_on_imap(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"220 mail.example ESMTP Postfix\r\n")
    while await reader.readline():
        writer.write(b"502 5.5.2 Error: command not recognized\r\n")
        await writer.drain()


async def ehlo_flood(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"220 flood.example ESMTP\r\n")
    while line := await reader.readline():
        if line.upper().startswith((b"EHLO", b"HELO")):
            lines = b"".join(b"250-X-EXTENSION-%d\r\n" % n for n in range(EHLO_LINES - 1))
            writer.write(lines + b"250 SIZE 10240000\r\n")
        elif line.upper().startswith(b"QUIT"):
            writer.write(b"221 bye\r\n")
        else:
            writer.write(b"250 ok\r\n")
        await writer.drain()


# -- TLS -----------------------------------------------------------------------------------


async def tls_garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answers a ClientHello with random bytes that start like no TLS record."""
    garbage = random.Random(2003).randbytes(4096)
    while await reader.read(CHUNK):
        writer.write(b"\x99" + garbage)
        await writer.drain()


async def tls_stall(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Reads the ClientHello, sends the first half of a ServerHello, then nothing."""
    await reader.read(CHUNK)
    # A handshake record of 90 bytes holding a ServerHello of 86: only 27 bytes follow.
    writer.write(b"\x16\x03\x03\x00\x5a" + b"\x02\x00\x00\x56\x03\x03" + bytes(range(16)))
    await writer.drain()
    await _hold(reader)


async def pop3_service(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"+OK hostile POP3 ready\r\n")
    while line := await reader.readline():
        verb = line.strip().upper()
        if verb == b"CAPA":
            writer.write(b"+OK\r\nUSER\r\nUIDL\r\n.\r\n")
        elif verb == b"QUIT":
            writer.write(b"+OK bye\r\n")
            await writer.drain()
            return
        else:
            writer.write(b"-ERR unknown command\r\n")
        await writer.drain()


# -- LDAP ----------------------------------------------------------------------------------


def ber(tag: int, body: bytes) -> bytes:
    """One BER element with a definite length (X.690 section 8.1)."""
    if len(body) < 0x80:
        return bytes([tag, len(body)]) + body
    octets = len(body).to_bytes((len(body).bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(octets)]) + octets + body


def _message(message_id: int, op: bytes) -> bytes:
    return ber(0x30, ber(0x02, message_id.to_bytes(1, "big")) + op)


def _entry(attributes: bytes) -> bytes:
    """A searchResEntry ([APPLICATION 4]) for the rootDSE (an empty DN)."""
    return ber(0x64, ber(0x04, b"") + ber(0x30, attributes))


def _attribute(name: bytes, *values: bytes) -> bytes:
    return ber(0x30, ber(0x04, name) + ber(0x31, b"".join(values)))


def _search_done() -> bytes:
    """searchResDone ([APPLICATION 5]): success, no matched DN, no message."""
    return ber(0x65, ber(0x0A, b"\x00") + ber(0x04, b"") + ber(0x04, b""))


def _nested(depth: int) -> bytes:
    """A constructed OCTET STRING (tag 0x24) holding another, `depth` levels deep."""
    inner = ber(0x04, b"deep")
    for _ in range(depth):
        inner = ber(0x24, inner)
    return inner


async def _first_request_id(reader: asyncio.StreamReader) -> int | None:
    """The message ID of the client's first LDAPMessage (a rootDSE search from portcall)."""
    head = await reader.read(CHUNK)
    # 30 LL 02 01 ID: a probe's small request has a short length and a one-octet ID.
    if len(head) < 5 or head[0] != 0x30 or head[2] != 0x02:
        return None
    return head[4]


async def ldap_huge_length(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await _first_request_id(reader)
    # An LDAPMessage that claims 2^31 bytes, followed by its first few.
    writer.write(b"\x30\x84\x80\x00\x00\x00\x02\x01\x01\x64\x84\x7f\xff\xff\xf0")
    await writer.drain()
    await _hold(reader)


async def ldap_deep(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    message_id = await _first_request_id(reader) or 1
    attribute = _attribute(b"namingContexts", _nested(NESTING))
    writer.write(_message(message_id, _entry(attribute)) + _message(message_id, _search_done()))
    await writer.drain()
    await _hold(reader)


async def ldap_many_attributes(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    message_id = await _first_request_id(reader) or 1
    for start in range(0, LDAP_ATTRIBUTES, ATTRIBUTES_PER_ENTRY):
        names = range(start, min(start + ATTRIBUTES_PER_ENTRY, LDAP_ATTRIBUTES))
        attributes = b"".join(_attribute(b"a%d" % n, ber(0x04, b"v")) for n in names)
        writer.write(_message(message_id, _entry(attributes)))
        await writer.drain()
    writer.write(_message(message_id, _search_done()))
    await writer.drain()
    await _hold(reader)


# -- the zoo ---------------------------------------------------------------------------------

#: Every case served on a plain TCP listener, and its handler (the TLS misbehaviour of
#: tls-garbage and tls-stall is written by hand).
PLAIN: Final[dict[str, Handler]] = {
    "endless-banner": endless_banner,
    "ten-mb-line": ten_mb_line,
    "drip": drip,
    "reset-after-greeting": reset_after_greeting,
    "never-speaks": never_speaks,
    "close-at-once": close_at_once,
    "tls-garbage": tls_garbage,
    "tls-stall": tls_stall,
    "ldap-huge-length": ldap_huge_length,
    "ldap-deep": ldap_deep,
    "ldap-many-attributes": ldap_many_attributes,
    "ehlo-flood": ehlo_flood,
    "smtp-then-pop3": smtp_then_pop3,
    "smtp-on-imap": smtp_on_imap,
}


def _guarded(handler: Handler) -> Handler:
    async def guarded(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Cancelled too: the zoo's end cancels the cases still running, and asyncio 3.11 logs
        # a cancelled client task as an error.
        with contextlib.suppress(
            OSError, ssl.SSLError, asyncio.IncompleteReadError, asyncio.CancelledError
        ):
            await handler(reader, writer)
        writer.close()

    return guarded


def _hostile_tls(directory: Path, *, readable: bool) -> ssl.SSLContext:
    cert, key = write_hostile_certificate(directory, readable=readable)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


async def _serve_all(directory: Path) -> None:
    ports: dict[str, int] = {}
    servers = []
    cases: list[tuple[str, Handler, ssl.SSLContext | None]] = [
        (name, handler, None) for name, handler in PLAIN.items()
    ]
    cases.append(("many-sans", pop3_service, _hostile_tls(directory, readable=True)))
    cases.append(("unreadable-names", pop3_service, _hostile_tls(directory, readable=False)))
    for name, handler, tls in cases:
        server = await asyncio.start_server(_guarded(handler), "127.0.0.1", 0, ssl=tls)
        servers.append(server)
        ports[name] = int(server.sockets[0].getsockname()[1])
    print(json.dumps(ports), flush=True)
    loop = asyncio.get_running_loop()
    # Serve until the parent closes our standard input (or dies).
    await loop.run_in_executor(None, sys.stdin.read)
    for server in servers:
        server.close()


if __name__ == "__main__":
    asyncio.run(_serve_all(Path(sys.argv[1])))
