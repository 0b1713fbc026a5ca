"""The server role: an endpoint mapper that binds EPM v3.0 over NDR, answers ept_map for the
directory (DRSUAPI) and Netlogon with the TCP port it was given, as a domain controller with a
static RPC port does, and lists both with ept_lookup; and the role of that RPC port itself,
which accepts binds to both and refuses every call."""

from __future__ import annotations

from collections.abc import Generator
from typing import Final

from portcall.protocols.base import (
    PeerClosed,
    ReplyTooLong,
    Send,
    ServerEvent,
    ServerHandshake,
    ServerOptions,
    ServerSteps,
)
from portcall.protocols.dcerpc.messages import (
    ACCEPTANCE,
    BIND,
    DC_INTERFACES,
    EPM,
    EPT_LOOKUP,
    EPT_MAP,
    EPT_S_NO_MORE_ENTRIES,
    EPT_S_NOT_REGISTERED,
    HEADER_SIZE,
    NCA_S_OP_RNG_ERROR,
    NCA_S_PROTO_ERROR,
    NDR,
    PROVIDER_REJECTION,
    REASON_ABSTRACT_SYNTAX,
    REASON_TRANSFER_SYNTAXES,
    REQUEST,
    Interface,
    MalformedPdu,
    bind_ack,
    fault,
    parse_bind,
    parse_header,
    parse_request,
    response,
)
from portcall.protocols.dcerpc.towers import (
    MAX_TOWERS,
    lookup_handle,
    lookup_response,
    map_response,
    parse_lookup_request,
    parse_map_request,
    tcp_tower,
)

#: Calls one connection may make before the responder hangs up.
MAX_CALLS: Final = 64
#: The RPC port named when nobody gives one: the first of Windows' dynamic range since
#: Server 2008 (KB 929851), where a DC's directory port usually lands.
DEFAULT_RPC_PORT: Final = 49152
#: The address a tower carries when the DC's own is not known.
ANY_ADDRESS: Final = "0.0.0.0"
#: The fault status Windows gives a call the caller may not make: ERROR_ACCESS_DENIED.
ACCESS_DENIED: Final = 0x00000005


#: The annotations a Windows DC registers its interfaces with.
_ANNOTATIONS: Final = {"drsuapi": "MS NT Directory DRS Interface", "netlogon": ""}


class EpmServer(ServerHandshake):
    """Maps DRSUAPI v4 and Netlogon v1 to `rpc_port` over ncacn_ip_tcp with ept_map, and
    lists both with ept_lookup; any other interface is not registered; any other operation
    faults with nca_s_op_rng_error. A PDU that is not connection-oriented DCE/RPC ends the
    connection."""

    protocol = "dcerpc"
    display_name = "DCE/RPC endpoint mapper"

    #: The interfaces a bind may name (any other context is rejected).
    accepts: tuple[Interface, ...] = (EPM,)
    #: The port named as the secondary address in BIND_ACK.
    listens_on: str = "135"

    def __init__(
        self,
        options: ServerOptions | None = None,
        *,
        rpc_port: int | None = None,
        address: str | None = None,
    ) -> None:
        super().__init__(options)
        # Left out, the port and address come from the options (the responder's own RPC port
        # and the address the client reached); a DC without a fixed port would hand out one
        # of the dynamic range, and DEFAULT_RPC_PORT is its first.
        self.rpc_port = rpc_port or self.options.rpc_port or DEFAULT_RPC_PORT
        self.address = address or self.options.dc_address or ANY_ADDRESS
        self._bound = False

    def serve(self) -> ServerSteps:
        try:
            for _ in range(MAX_CALLS):
                yield from self._one_pdu()
        except (PeerClosed, ReplyTooLong):
            return
        except MalformedPdu as error:
            self.heard.append(f"(malformed PDU: {error})")

    def _one_pdu(self) -> Generator[ServerEvent, None, None]:
        header = yield from self.read_exactly(HEADER_SIZE)
        ptype, flags, length, auth, call_id = parse_header(header)
        body = yield from self.read_exactly(length - HEADER_SIZE)
        if ptype == BIND:
            yield Send(self._bind(call_id, body))
        elif ptype == REQUEST and self._bound:
            yield Send(self._call(call_id, flags, body[: len(body) - auth] if auth else body))
        else:
            self.heard.append(f"PDU type {ptype}")
            yield Send(fault(call_id, NCA_S_PROTO_ERROR))

    def _bind(self, call_id: int, body: bytes) -> bytes:
        contexts = parse_bind(body)
        results = [_accept(abstract, syntaxes, self.accepts) for _, abstract, syntaxes in contexts]
        self._bound = any(result == ACCEPTANCE for result, _ in results)
        named = [_name(abstract) for _, abstract, _ in contexts]
        known = [name for name in named if name in {i.name for i in self.accepts}]
        self.heard.append(f"BIND {known[0]}" if self._bound else "BIND (other interface)")
        return bind_ack(call_id, results, self.listens_on)

    def _call(self, call_id: int, flags: int, body: bytes) -> bytes:
        context_id, opnum, stub = parse_request(body, flags)
        if opnum == EPT_LOOKUP:
            return response(call_id, self._lookup(stub), context_id)
        if opnum != EPT_MAP:
            self.heard.append(f"opnum {opnum}")
            return fault(call_id, NCA_S_OP_RNG_ERROR, context_id)
        tower, max_towers = parse_map_request(stub)
        known = next((i for i in DC_INTERFACES if i.uuid == tower.interface_uuid), None)
        self.heard.append(f"ept_map {known.name if known else tower.interface_uuid}")
        if known is None or max_towers == 0:
            return response(call_id, map_response([], EPT_S_NOT_REGISTERED, max_towers), context_id)
        towers = [tcp_tower(known, self.rpc_port, self.address)]
        return response(call_id, map_response(towers, 0, min(max_towers, MAX_TOWERS)), context_id)

    def _lookup(self, stub: bytes) -> bytes:
        """Up to max_ents entries from where the handle says, with a handle to resume from;
        past the last one, "no more entries" and the null handle (C706 appendix O)."""
        start, max_ents = parse_lookup_request(stub)
        self.heard.append("ept_lookup")
        entries = [
            (_ANNOTATIONS[i.name], tcp_tower(i, self.rpc_port, self.address)) for i in DC_INTERFACES
        ]
        if start >= len(entries) or max_ents == 0:
            return lookup_response([], EPT_S_NO_MORE_ENTRIES, max_ents)
        batch = entries[start : start + min(max_ents, MAX_TOWERS)]
        return lookup_response(batch, 0, max_ents, lookup_handle(start + len(batch)))


class DirectoryRpcServer(EpmServer):
    """The directory's own RPC port, as a DC with a fixed one (KB 224196) answers a caller
    that has not authenticated: binds to DRSUAPI v4 and Netlogon v1 are accepted, and every
    call faults with access denied. Enough for a firewall test to see a real RPC service
    where the endpoint mapper points, never a directory operation."""

    accepts = DC_INTERFACES

    def __init__(
        self,
        options: ServerOptions | None = None,
        *,
        rpc_port: int | None = None,
        address: str | None = None,
    ) -> None:
        super().__init__(options, rpc_port=rpc_port, address=address)
        self.listens_on = str(self.rpc_port)

    def _call(self, call_id: int, flags: int, body: bytes) -> bytes:
        context_id, opnum, _ = parse_request(body, flags)
        self.heard.append(f"opnum {opnum} (access denied)")
        return fault(call_id, ACCESS_DENIED, context_id)


def _name(abstract: bytes) -> str:
    known = (EPM, *DC_INTERFACES)
    return next((i.name for i in known if i.syntax() == abstract), "?")


def _accept(
    abstract: bytes, syntaxes: list[bytes], accepts: tuple[Interface, ...]
) -> tuple[int, int]:
    if abstract not in {interface.syntax() for interface in accepts}:
        return PROVIDER_REJECTION, REASON_ABSTRACT_SYNTAX
    if NDR.syntax() not in syntaxes:
        return PROVIDER_REJECTION, REASON_TRANSFER_SYNTAXES
    return ACCEPTANCE, 0
