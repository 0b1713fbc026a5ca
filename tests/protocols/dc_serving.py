"""A tiny asyncio wrapper that serves a sans-IO server role on loopback over UDP and TCP, so
that an independent client tool (dig, kinit) can be pointed at it from a test."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from portcall.protocols.base import CLOSE, NEED_DATA, Send, ServerHandshake

#: Seconds a client tool may take before the test fails.
TOOL_TIMEOUT = 15.0

Factory = Callable[[str], ServerHandshake]


@dataclass
class Ports:
    udp: int
    tcp: int
    #: Every server role created, in order: their `heard` lists say what clients asked.
    served: list[ServerHandshake]


def _replies(server: ServerHandshake) -> list[bytes]:
    """What a server role sends until it waits for more or ends."""
    out: list[bytes] = []
    while isinstance(event := server.next_event(), Send):
        out.append(event.data)
    assert event is NEED_DATA or event is CLOSE, f"unexpected {event}"
    return out


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, factory: Factory, served: list[ServerHandshake]) -> None:
        self.factory = factory
        self.served = served
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        # One server role per datagram: each request stands alone over UDP.
        server = self.factory("udp")
        self.served.append(server)
        _replies(server)
        server.receive_data(data)
        assert self.transport is not None
        for reply in _replies(server):
            self.transport.sendto(reply, addr)


@asynccontextmanager
async def serving(factory: Factory) -> AsyncIterator[Ports]:
    """`factory(transport)` served on 127.0.0.1, a UDP and a TCP port of the kernel's choice."""
    served: list[ServerHandshake] = []
    loop = asyncio.get_running_loop()

    async def stream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        server = factory("tcp")
        served.append(server)
        while True:
            event = server.next_event()
            if isinstance(event, Send):
                writer.write(event.data)
                await writer.drain()
            elif event is NEED_DATA:
                server.receive_data(await reader.read(4096))
            else:
                break
        writer.close()

    udp, _ = await loop.create_datagram_endpoint(
        lambda: _Datagrams(factory, served), local_addr=("127.0.0.1", 0)
    )
    tcp = await asyncio.start_server(stream, "127.0.0.1", 0)
    try:
        yield Ports(udp.get_extra_info("sockname")[1], tcp.sockets[0].getsockname()[1], served)
    finally:
        udp.close()
        tcp.close()
        await tcp.wait_closed()


async def run_tool(*argv: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    """Run a client tool; its exit status and everything it printed."""
    process = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, **(env or {})},
    )
    output, _ = await asyncio.wait_for(process.communicate(), TOOL_TIMEOUT)
    assert process.returncode is not None
    return process.returncode, output.decode("utf-8", "replace")
