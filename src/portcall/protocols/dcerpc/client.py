"""The client role: binds to the endpoint mapper and asks it, with ept_map, which TCP port
serves the directory (DRSUAPI) and Netlogon: the static RPC port a firewall between Exchange
and the domain controllers must allow, unless it lies in a dynamic range."""

from __future__ import annotations

from collections.abc import Generator
from typing import Final

from portcall.protocols.base import (
    Event,
    Handshake,
    LocalProtocolError,
    PeerClosed,
    ProbeOptions,
    ReplyTooLong,
    Send,
    ServiceInfo,
    ServiceRefused,
    Steps,
)
from portcall.protocols.dcerpc.messages import (
    ACCEPTANCE,
    BIND_ACK,
    BIND_NAK,
    DC_INTERFACES,
    EPT_MAP,
    EPT_S_NOT_REGISTERED,
    FAULT,
    HEADER_SIZE,
    MAX_FRAGMENTS,
    MAX_STUB,
    PFC_LAST_FRAG,
    RESPONSE,
    Interface,
    MalformedPdu,
    Pdu,
    bind,
    dynamic_range,
    fault_status,
    parse_bind_ack,
    parse_header,
    request,
    response_stub,
)
from portcall.protocols.dcerpc.towers import Tower, map_request, parse_map_response
from portcall.protocols.sniff import identify

#: Status values a person can act on (C706 appendix E, MS-ERREF).
STATUS_NAMES: Final = {
    0: "ok",
    EPT_S_NOT_REGISTERED: "not registered (ept_s_not_registered)",
    0x00000005: "access denied",
    0x1C010002: "operation out of range (nca_s_op_rng_error)",
    0x1C010003: "unknown interface (nca_s_unk_if)",
    0x1C01000B: "protocol error (nca_s_proto_error)",
}


def status_name(status: int) -> str:
    return STATUS_NAMES.get(status, f"status {status:#010x}")


class EpmClient(Handshake):
    """Binds to the endpoint mapper (EPM v3.0 over NDR), then maps DRSUAPI v4.0 and Netlogon
    v1.0 to their TCP ports with one ept_map each.

    ept_map rather than ept_lookup: it answers exactly the question (which ncacn_ip_tcp endpoint
    serves this interface), in one small fragment per interface, whereas ept_lookup pages through
    every endpoint of every interface with a context handle.

    `info.details` holds ``secondary_address`` (from the BIND_ACK) and ``interfaces``: for each
    interface name its ``uuid``, ``version``, ``status``, and when mapped its ``port``,
    ``address``, ``dynamic_range`` ("49152-65535", "1025-5000" or None) and ``static_hint``.
    """

    protocol = "dcerpc"
    display_name = "DCE/RPC endpoint mapper"

    @property
    def sniffed_as(self) -> str:
        return "DCE/RPC"

    def __init__(
        self, options: ProbeOptions | None = None, *, transport: str | None = None
    ) -> None:
        super().__init__(options)
        transport = transport or self.options.transport
        if transport != "tcp":
            # Over UDP 135 DCE/RPC is connectionless (C706 chapter 12 vs 13): other PDUs.
            raise LocalProtocolError("the endpoint mapper is probed over tcp only")
        self.transport = transport
        self._call_id = 0
        self._pdus_read = 0

    def run(self) -> Steps:
        info = ServiceInfo(protocol=self.protocol, details={"transport": self.transport})
        try:
            info.details["secondary_address"] = yield from self._bind()
            interfaces: dict[str, dict[str, object]] = {}
            for interface in DC_INTERFACES:
                interfaces[interface.name] = yield from self._map(interface)
        except (PeerClosed, ReplyTooLong, MalformedPdu) as error:
            if self._stranger():
                raise self.wrong_protocol(str(error)) from None
            raise
        info.details["interfaces"] = interfaces
        info.product = "Microsoft RPC endpoint mapper"
        info.notes += _notes(interfaces)
        mapped = [
            f"{name} at {found['port']}" for name, found in interfaces.items() if "port" in found
        ]
        info.banner = ", ".join(mapped) if mapped else "no directory interface mapped"
        return info

    def _stranger(self) -> bool:
        """Whether what answered is another protocol rather than a broken DCE/RPC peer: the
        sniffer names it, or its first bytes do not even open an RPC 5.x header."""
        if not self.first_bytes:
            return False
        rpc_like = self.first_bytes[:2] in (b"\x05\x00", b"\x05\x01")
        return identify(self.first_bytes) not in (None, self.sniffed_as) or not rpc_like

    def _next_call(self) -> int:
        self._call_id += 1
        return self._call_id

    def _bind(self) -> Generator[Event, None, str]:
        call_id = self._next_call()
        yield Send(bind(call_id))
        reply = yield from self._read_pdu()
        if reply.ptype == BIND_NAK:
            raise ServiceRefused("the endpoint mapper refused the bind (bind_nak)")
        if reply.ptype != BIND_ACK or reply.call_id != call_id:
            raise self.wrong_protocol(f"a {reply.name} in answer to a bind")
        address, results = parse_bind_ack(reply.body)
        if not results or results[0][0] != ACCEPTANCE:
            raise ServiceRefused(
                "the service rejected the endpoint mapper interface: it is not an endpoint mapper"
            )
        return address

    def _map(self, interface: Interface) -> Generator[Event, None, dict[str, object]]:
        call_id = self._next_call()
        yield Send(request(call_id, EPT_MAP, map_request(interface)))
        found: dict[str, object] = {
            "uuid": str(interface.uuid),
            "version": f"{interface.major}.{interface.minor}",
        }
        reply = yield from self._read_response(call_id)
        if reply.ptype == FAULT:
            found["status"] = status_name(fault_status(reply.body))
            return found
        towers, status = parse_map_response(response_stub(reply.body))
        found["status"] = status_name(status)
        tower = _tcp_tower(towers, interface)
        if status == 0 and tower is not None and tower.port is not None:
            found.update(_port_facts(tower))
        return found

    def _read_response(self, call_id: int) -> Generator[Event, None, Pdu]:
        """A RESPONSE reassembled from its fragments (C706 12.6.4.10), or a FAULT."""
        stub = b""
        for _ in range(MAX_FRAGMENTS):
            reply = yield from self._read_pdu()
            if reply.call_id != call_id or reply.ptype not in (RESPONSE, FAULT):
                raise self.wrong_protocol(f"a {reply.name} in answer to call {call_id}")
            if reply.ptype == FAULT:
                return reply
            stub += response_stub(reply.body)
            if len(stub) > MAX_STUB:
                raise MalformedPdu(f"a response of over {MAX_STUB} bytes")
            if reply.flags & PFC_LAST_FRAG:
                return Pdu(RESPONSE, reply.flags, call_id, reply.body[:8] + stub)
        raise MalformedPdu(f"a response in more than {MAX_FRAGMENTS} fragments")

    def _read_pdu(self) -> Generator[Event, None, Pdu]:
        header = yield from self.read_exactly(HEADER_SIZE)
        ptype, flags, length, auth, call_id = parse_header(header)
        body = yield from self.read_exactly(length - HEADER_SIZE)
        self._pdus_read += 1
        return Pdu(ptype, flags, call_id, body[: len(body) - auth] if auth else body)


def _tcp_tower(towers: list[Tower], interface: Interface) -> Tower | None:
    return next(
        (t for t in towers if t.interface_uuid == interface.uuid and t.port is not None), None
    )


def _port_facts(tower: Tower) -> dict[str, object]:
    port = tower.port or 0
    dynamic = dynamic_range(port)
    return {
        "port": port,
        "address": tower.address,
        "dynamic_range": dynamic,
        "static_hint": (
            f"port {port} lies in the dynamic range {dynamic}: probably assigned at start-up"
            if dynamic
            else f"port {port} lies outside the dynamic ranges: fixed in the registry"
        ),
    }


def _notes(interfaces: dict[str, dict[str, object]]) -> list[str]:
    notes = []
    for name, found in interfaces.items():
        if "port" not in found:
            notes.append(f"{name} is not mapped to a TCP port ({found['status']})")
    return notes
