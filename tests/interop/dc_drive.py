"""Runs one of portcall's domain-controller client roles over a real socket and prints what it
learnt as JSON, so that a test can run it inside a lab's network namespace:

    ip netns exec NS python -m tests.interop.dc_drive PROTOCOL TRANSPORT HOST PORT [DOMAIN]

The output is one JSON object: ``{"info": {...}}`` with the role's `ServiceInfo` when it ended
with `Done`, else ``{"error": TYPE, "message": TEXT}``. The socket handling is the least a
sans-IO role needs: over UDP each `Send` is one datagram and each datagram read is one
`receive_data`; over TCP bytes flow as they come. A process keeps the network namespace it
started in, hence a process per run rather than a function.
"""

from __future__ import annotations

import dataclasses
import json
import socket
import sys
from collections.abc import Callable

from portcall.protocols.base import NEED_DATA, Done, Handshake, Send, ServiceInfo
from portcall.protocols.cldap import CldapClient
from portcall.protocols.dcerpc import EpmClient
from portcall.protocols.dns import DnsClient
from portcall.protocols.kerberos import KerberosClient
from portcall.protocols.kpasswd import KpasswdClient
from portcall.protocols.smb import SmbClient

#: Seconds one read or connect may take before the run ends with a timeout.
TIMEOUT = 5.0
#: Events one run may take: every role here ends in far fewer.
MAX_EVENTS = 200

#: Each role by name, built from its transport and the AD domain.
ROLES: dict[str, Callable[[str, str], Handshake]] = {
    "dns": lambda transport, domain: DnsClient(domain=domain, transport=transport),
    "kerberos": lambda transport, domain: KerberosClient(domain=domain, transport=transport),
    "kpasswd": lambda transport, domain: KpasswdClient(domain=domain, transport=transport),
    "cldap": lambda transport, domain: CldapClient(domain=domain, transport=transport),
    "epm": lambda transport, _domain: EpmClient(transport=transport),
    "smb": lambda transport, _domain: SmbClient(transport=transport, multi_protocol=False),
}


def drive(handshake: Handshake, sock: socket.socket) -> ServiceInfo:
    """Run `handshake` on a connected socket until it is done."""
    for _ in range(MAX_EVENTS):
        event = handshake.next_event()
        if isinstance(event, Done):
            return event.info
        if isinstance(event, Send):
            sock.sendall(event.data)
        elif event is NEED_DATA:
            # A UDP read returns exactly one datagram; a TCP read b"" once the peer closed.
            handshake.receive_data(sock.recv(65535))
        else:
            raise RuntimeError(f"the driver cannot serve {event!r}")
    raise RuntimeError(f"no result after {MAX_EVENTS} events")


def run(protocol: str, transport: str, host: str, port: int, domain: str) -> ServiceInfo:
    handshake = ROLES[protocol](transport, domain)
    if transport == "udp":
        # Connected, so that an ICMP port unreachable surfaces as ConnectionRefusedError.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(TIMEOUT)
            sock.connect((host, port))
            return drive(handshake, sock)
    with socket.create_connection((host, port), timeout=TIMEOUT) as sock:
        return drive(handshake, sock)


def main(argv: list[str]) -> int:
    if len(argv) not in (4, 5) or argv[0] not in ROLES or argv[1] not in ("udp", "tcp"):
        print(__doc__, file=sys.stderr)
        return 2
    protocol, transport, host, port = argv[:4]
    domain = argv[4] if len(argv) == 5 else ""
    try:
        info = run(protocol, transport, host, int(port), domain)
    except Exception as error:  # reported to the test, which shows it when it fails
        print(json.dumps({"error": type(error).__name__, "message": str(error)}))
        return 1
    print(json.dumps({"info": dataclasses.asdict(info)}, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
