"""Accept TCP connections on the given ports of one address and close them at once.

Stands in for the services portcall does not speak (DNS, Kerberos, RPC, SMB, ...) so that a
flow to them reaches a listener: usage `plain_listener.py ADDRESS PORT...`.
"""

from __future__ import annotations

import asyncio
import sys


async def _close(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.close()


async def main(address: str, ports: list[int]) -> None:
    servers = [await asyncio.start_server(_close, address, port) for port in ports]
    print(f"listening on {address} ports {ports}", flush=True)
    await asyncio.gather(*(server.serve_forever() for server in servers))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], [int(p) for p in sys.argv[2:]]))
