"""The DCE/RPC endpoint mapper: PDUs written out by hand from C706 and MS-RPCE, the client
against them (whole and one byte at a time), client and server together, Samba's own
endpoint-mapper client against the server role over loopback TCP, and fuzzing of both roles."""

from __future__ import annotations

import asyncio
import random
import struct
import subprocess
import textwrap
import time
import uuid
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portcall.protocols.base import (
    CLOSE,
    NEED_DATA,
    Done,
    LocalProtocolError,
    RemoteProtocolError,
    Send,
    ServiceRefused,
    WrongProtocol,
)
from portcall.protocols.dcerpc import (
    DRSUAPI,
    EPT_S_NOT_REGISTERED,
    NETLOGON,
    EpmClient,
    EpmServer,
    MalformedPdu,
    bind,
    dynamic_range,
    fault,
    map_request,
    parse_tower,
    request,
)
from tests.protocols.feeding import feed_client, feed_server
from tests.protocols.pair import converse
from tests.protocols.test_fuzz_protocols import EXAMPLE_BOUND, FUZZ, chunked

EPM_SYNTAX = bytes.fromhex("0883afe11f5dc91191a408002b14a0fa") + b"\x03\x00\x00\x00"
NDR_SYNTAX = bytes.fromhex("045d888aeb1cc9119fe808002b104860") + b"\x02\x00\x00\x00"
DRSUAPI_LE = bytes.fromhex("354251e3064bd111ab0400c04fc2dcd2")
NETLOGON_LE = bytes.fromhex("785634123412cdabef0001234567cffb")


def _header(ptype: int, length: int, call_id: int) -> bytes:
    """C706 12.6.3.1: version 5.0, type, first+last fragment, little-endian, no auth."""
    return bytes([5, 0, ptype, 3]) + b"\x10\x00\x00\x00" + struct.pack("<HHI", length, 0, call_id)


#: BIND (C706 12.6.4.3): max fragments 5840, no group, one context: EPM v3 over NDR.
BIND_PDU = (
    _header(11, 72, 1)
    + b"\xd0\x16\xd0\x16\x00\x00\x00\x00"
    + b"\x01\x00\x00\x00"  # one context
    + b"\x00\x00\x01\x00"  # context 0, one transfer syntax
    + EPM_SYNTAX
    + NDR_SYNTAX
)
#: BIND_ACK (12.6.4.4) as Windows sends it: secondary address "135", padded to 4, one result.
BIND_ACK_PDU = (
    _header(12, 60, 1)
    + b"\xd0\x16\xd0\x16\x5c\x7e\x00\x00"
    + b"\x04\x00135\x00"  # port_spec, 4 bytes with its NUL
    + b"\x00\x00"  # pad to a multiple of 4 from the PDU start
    + b"\x01\x00\x00\x00"  # one result
    + b"\x00\x00\x00\x00"  # acceptance
    + NDR_SYNTAX
)
BIND_NAK_PDU = _header(13, 18, 1) + b"\x00\x00"


def _tower(interface_le: bytes, major: int, minor: int, port: int, ip: bytes) -> bytes:
    """A five-floor TCP tower (C706 appendix L, MS-RPCE 2.2.1.2.1): ports big-endian."""
    return (
        b"\x05\x00"
        + b"\x13\x00\x0d" + interface_le + struct.pack("<H", major)
        + b"\x02\x00" + struct.pack("<H", minor)
        + b"\x13\x00\x0d" + NDR_SYNTAX[:16] + b"\x02\x00" + b"\x02\x00\x00\x00"
        + b"\x01\x00\x0b\x02\x00\x00\x00"
        + b"\x01\x00\x07\x02\x00" + struct.pack(">H", port)
        + b"\x01\x00\x09\x04\x00" + ip
    )  # fmt: skip


def _map_answer(call_id: int, tower: bytes | None, status: int = 0) -> bytes:
    """A RESPONSE (12.6.4.10) carrying ept_map's out parameters (C706 appendix O)."""
    stub = b"\x00" * 20  # the context handle
    if tower is None:
        stub += b"\x00\x00\x00\x00" + b"\x04\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
    else:
        twr = struct.pack("<II", len(tower), len(tower)) + tower
        twr += b"\x00" * (-len(twr) % 4)
        stub += b"\x01\x00\x00\x00" + b"\x04\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00"
        stub += b"\x02\x00\x00\x00" + twr  # the referent ID: any non-zero value
    stub += struct.pack("<I", status)
    body = struct.pack("<IHBB", len(stub), 0, 0, 0) + stub
    return _header(2, 16 + len(body), call_id) + body


DC_IP = bytes([192, 0, 2, 10])
TRANSCRIPT = (
    BIND_ACK_PDU
    + _map_answer(2, _tower(DRSUAPI_LE, 4, 0, 50100, DC_IP))
    + _map_answer(3, _tower(NETLOGON_LE, 1, 0, 49670, DC_IP))
)


# -- the messages ----------------------------------------------------------------------------------


def test_bind_is_the_documented_pdu() -> None:
    assert bind(1) == BIND_PDU


def test_map_request_asks_for_a_tcp_tower() -> None:
    stub = map_request(DRSUAPI)
    assert stub[:4] == b"\x00\x00\x00\x00"  # no object
    tower = _tower(DRSUAPI_LE, 4, 0, 0, b"\x00\x00\x00\x00")
    assert stub[8:16] == struct.pack("<II", len(tower), len(tower))
    assert stub[16 : 16 + len(tower)] == tower
    assert stub[-4:] == b"\x04\x00\x00\x00"  # max_towers


def test_tower_parses() -> None:
    tower = parse_tower(_tower(NETLOGON_LE, 1, 0, 49670, DC_IP))
    assert (tower.interface_uuid, tower.major, tower.port, tower.address) == (
        NETLOGON.uuid,
        1,
        49670,
        "192.0.2.10",
    )


@pytest.mark.parametrize(
    ("port", "found"), [(135, None), (50100, "49152-65535"), (1026, "1025-5000"), (6004, None)]
)
def test_dynamic_ranges(port: int, found: str | None) -> None:
    assert dynamic_range(port) == found


# -- the client against the documented answers -----------------------------------------------------


def _facts(done: object) -> dict[str, dict[str, object]]:
    assert isinstance(done, Done), done
    interfaces = done.info.details["interfaces"]
    assert isinstance(interfaces, dict)
    return interfaces


@pytest.mark.parametrize("byte_at_a_time", [False, True])
def test_client_reads_both_ports(byte_at_a_time: bool) -> None:
    chunks = (
        [TRANSCRIPT[i : i + 1] for i in range(len(TRANSCRIPT))] if byte_at_a_time else [TRANSCRIPT]
    )
    client = EpmClient()
    assert client.next_event() == Send(BIND_PDU)
    done = feed_client(client, chunks)
    facts = _facts(done)
    assert facts["drsuapi"]["port"] == 50100 and facts["drsuapi"]["address"] == "192.0.2.10"
    assert facts["drsuapi"]["dynamic_range"] == "49152-65535"
    assert facts["netlogon"]["port"] == 49670 and facts["netlogon"]["status"] == "ok"
    assert isinstance(done, Done) and done.info.details["secondary_address"] == "135"


def test_client_sends_two_ept_maps() -> None:
    sent = []
    client = EpmClient()
    pending = [TRANSCRIPT]
    while not isinstance(event := client.next_event(), Done):
        if isinstance(event, Send):
            sent.append(event.data)
        else:
            client.receive_data(pending.pop() if pending else b"")
    assert sent[1] == request(2, 3, map_request(DRSUAPI))
    assert sent[2] == request(3, 3, map_request(NETLOGON))


def test_client_reports_a_static_port_and_an_unregistered_interface() -> None:
    answer = (
        BIND_ACK_PDU
        + _map_answer(2, _tower(DRSUAPI_LE, 4, 0, 6004, DC_IP))
        + _map_answer(3, None, EPT_S_NOT_REGISTERED)
    )
    done = feed_client(EpmClient(), [answer])
    facts = _facts(done)
    assert facts["drsuapi"]["port"] == 6004 and facts["drsuapi"]["dynamic_range"] is None
    assert "outside the dynamic ranges" in str(facts["drsuapi"]["static_hint"])
    assert "port" not in facts["netlogon"]
    assert facts["netlogon"]["status"] == "not registered (ept_s_not_registered)"
    assert isinstance(done, Done) and "netlogon is not mapped" in done.info.notes[0]


def test_client_reports_a_fault() -> None:
    answer = BIND_ACK_PDU + fault(2, 5) + fault(3, 5)
    facts = _facts(feed_client(EpmClient(), [answer]))
    assert facts["drsuapi"]["status"] == "access denied"


def test_client_takes_a_response_in_fragments() -> None:
    whole = _map_answer(2, _tower(DRSUAPI_LE, 4, 0, 50100, DC_IP))
    stub = whole[24:]
    first = _header(2, 24 + 40, 2)[:3] + b"\x01" + _header(2, 24 + 40, 2)[4:]
    first += struct.pack("<IHBB", len(stub), 0, 0, 0) + stub[:40]
    rest = _header(2, 24 + len(stub) - 40, 2)[:3] + b"\x02" + _header(2, 24 + len(stub) - 40, 2)[4:]
    rest += struct.pack("<IHBB", len(stub) - 40, 0, 0, 0) + stub[40:]
    answer = BIND_ACK_PDU + first + rest + _map_answer(3, None, EPT_S_NOT_REGISTERED)
    assert _facts(feed_client(EpmClient(), [answer]))["drsuapi"]["port"] == 50100


def test_client_refused_bind() -> None:
    assert isinstance(feed_client(EpmClient(), [BIND_NAK_PDU]), ServiceRefused)


def test_client_names_a_stranger() -> None:
    done = feed_client(EpmClient(), [b"220 mail ESMTP ready\r\n"])
    assert isinstance(done, WrongProtocol) and done.detected == "SMTP"
    assert isinstance(feed_client(EpmClient(), [b"\x00" * 16]), WrongProtocol)


@pytest.mark.parametrize(
    "answer",
    [
        BIND_ACK_PDU + _map_answer(2, b"\x00\x00"),  # a tower of no floors
        BIND_ACK_PDU + _map_answer(2, _tower(DRSUAPI_LE, 4, 0, 1, DC_IP)[:30]),
        BIND_ACK_PDU[:8] + b"\x0f\x00" + BIND_ACK_PDU[10:],  # a fragment shorter than its header
        BIND_ACK_PDU + _header(2, 20, 2) + b"\x00" * 4,  # a response cut short
    ],
)
def test_client_refuses_malformed_pdus(answer: bytes) -> None:
    assert isinstance(feed_client(EpmClient(), [answer]), MalformedPdu)


def test_client_speaks_tcp_only() -> None:
    with pytest.raises(LocalProtocolError):
        EpmClient(transport="udp")


# -- a real domain controller -------------------------------------------------------------------

#: What a Samba 4.17 AD DC answered this client (provisioned as portcall.test, in a network
#: namespace of its own): the BIND_ACK and the two ept_map responses, DRSUAPI on 49153 and
#: Netlogon on 49152.
SAMBA_BIND_ACK = bytes.fromhex(
    "05000c03100000003c00000001000000d016d0165d91000004003133350000000100000000000000"
    "045d888aeb1cc9119fe808002b10486002000000"
)
SAMBA_MAP_HEAD = "0500020310000000980000000{call}0000008000000000000000" + "00" * 20
SAMBA_MAP_TOWERS = (
    "01000000040000000000000001000000020000004b0000004b000000050013000d{uuid}0200"
    "{minor}13000d045d888aeb1cc9119fe808002b10486002000200000001000b0200000001000702"
    "00{port}0100090400000000000000000000"
)


def _samba_map(call_id: int, interface_le: bytes, major: int, port: int) -> bytes:
    uuid_hex = interface_le.hex() + struct.pack("<H", major).hex()
    return bytes.fromhex(
        SAMBA_MAP_HEAD.format(call=call_id)
        + SAMBA_MAP_TOWERS.format(uuid=uuid_hex, minor="0000", port=f"{port:04x}")
    )


SAMBA_TRANSCRIPT = (
    SAMBA_BIND_ACK + _samba_map(2, DRSUAPI_LE, 4, 49153) + _samba_map(3, NETLOGON_LE, 1, 49152)
)


@pytest.mark.parametrize("byte_at_a_time", [False, True])
def test_client_reads_a_samba_dc(byte_at_a_time: bool) -> None:
    data = SAMBA_TRANSCRIPT
    chunks = [data[i : i + 1] for i in range(len(data))] if byte_at_a_time else [data]
    facts = _facts(feed_client(EpmClient(), chunks))
    assert (facts["drsuapi"]["port"], facts["netlogon"]["port"]) == (49153, 49152)
    assert facts["drsuapi"]["dynamic_range"] == "49152-65535"
    assert facts["drsuapi"]["address"] == "0.0.0.0"


def test_server_answers_ept_map_as_samba_does() -> None:
    server = EpmServer(rpc_port=49153)
    events = feed_server(server, [BIND_PDU, request(2, 3, map_request(DRSUAPI))])
    sends = [e.data for e in events if isinstance(e, Send)]
    assert sends[1] == _samba_map(2, DRSUAPI_LE, 4, 49153)


# -- client and server together --------------------------------------------------------------------


def test_client_against_server() -> None:
    server = EpmServer(rpc_port=6004, address="192.0.2.10")
    conversation = converse(EpmClient(), server)
    facts = _facts(Done(conversation.info))
    for name in ("drsuapi", "netlogon"):
        assert facts[name]["port"] == 6004 and facts[name]["address"] == "192.0.2.10"
        assert facts[name]["dynamic_range"] is None
    assert server.heard == ["BIND epmapper", "ept_map drsuapi", "ept_map netlogon"]


def test_server_answers_the_documented_transcript() -> None:
    server = EpmServer(rpc_port=50100, address="192.0.2.10")
    events = feed_server(server, [BIND_PDU, request(2, 3, map_request(DRSUAPI))])
    sent = b"".join(e.data for e in events if isinstance(e, Send))
    assert sent[:16] == _header(12, 60, 1)
    assert sent[60:] == _map_answer(2, _tower(DRSUAPI_LE, 4, 0, 50100, DC_IP))


def test_server_reads_past_an_object_uuid() -> None:
    plain = request(2, 3, map_request(NETLOGON))
    # PFC_OBJECT_UUID: a 16-byte object UUID between the request header and the stub.
    with_object = plain[:3] + b"\x83" + plain[4:8] + struct.pack("<H", len(plain) + 16)
    with_object += plain[10:24] + b"\x11" * 16 + plain[24:]
    server = EpmServer(rpc_port=6004)
    events = feed_server(server, [BIND_PDU, with_object])
    assert [e.data[2] for e in events if isinstance(e, Send)] == [12, 2]
    assert server.heard == ["BIND epmapper", "ept_map netlogon"]


def test_server_refuses_other_interfaces_and_operations() -> None:
    other = BIND_PDU.replace(EPM_SYNTAX, DRSUAPI.syntax())
    events = feed_server(EpmServer(rpc_port=6004), [other, request(2, 3, map_request(DRSUAPI))])
    sends = [e.data for e in events if isinstance(e, Send)]
    assert sends[0][36:38] == b"\x02\x00"  # provider rejection
    assert sends[1][2] == 3  # no context bound: a fault
    server = EpmServer(rpc_port=6004)
    events = feed_server(server, [BIND_PDU, request(2, 5, b"\x00" * 40)])  # ept_inq_object
    assert [e.data[2] for e in events if isinstance(e, Send)] == [12, 3]
    assert server.heard == ["BIND epmapper", "opnum 5"]


# -- Samba's endpoint-mapper client against the server role ----------------------------------------

#: Samba (Debian's python3-samba) opening DRSUAPI and Netlogon over ncacn_ip_tcp without a port:
#: it asks the endpoint mapper on 135 with ept_map, then connects to the port it was given.
SAMBA_CLIENT = textwrap.dedent(
    """
    import sys
    from samba import param
    from samba.credentials import Credentials
    from samba.dcerpc import drsuapi, netlogon
    lp = param.LoadParm()
    creds = Credentials()
    creds.set_anonymous()
    for interface in (drsuapi.drsuapi, netlogon.netlogon):
        try:
            interface("ncacn_ip_tcp:" + sys.argv[1], lp, creds)
        except Exception as error:
            print(type(error).__name__)
    """
)


#: Samba's ept_lookup client, paging until it hears "no more entries".
SAMBA_LOOKUP = textwrap.dedent(
    """
    import sys
    from samba import param
    from samba.dcerpc import epmapper, misc
    conn = epmapper.epmapper(f"ncacn_ip_tcp:{sys.argv[1]}[135]", param.LoadParm())
    handle = misc.policy_handle()
    for _ in range(3):
        handle, entries, status = conn.epm_Lookup(0, None, None, 1, handle, 10)
        print(len(entries), hex(status & 0xffffffff))
        for e in entries:
            floors = e.tower.tower.floors
            print(floors[0].lhs.lhs_data.hex(), floors[3].rhs.port, floors[4].rhs.ipaddr,
                  repr(e.annotation))
        if status:
            break
    """
)


async def _with_samba(
    address: str, rpc_port: int, command: list[str]
) -> tuple[list[str], int, str, str]:
    """Run the server role on `address`:135 and a listener on `rpc_port`, and `command` (a
    Samba client) against them: what the server heard, how many connections reached the RPC
    port, and the command's output and errors."""
    heard: list[str] = []
    connections = 0

    async def epm(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        server = EpmServer(rpc_port=rpc_port, address=address)
        while (event := server.next_event()) is not CLOSE:
            if isinstance(event, Send):
                writer.write(event.data)
                await writer.drain()
            else:
                server.receive_data(await reader.read(4096))
        heard.extend(server.heard)
        writer.close()

    async def rpc(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        writer.close()

    mapper = await asyncio.start_server(epm, address, 135)
    target = await asyncio.start_server(rpc, address, rpc_port)
    try:
        done = await asyncio.to_thread(
            subprocess.run,
            command,
            capture_output=True,
            text=True,
            timeout=20,
        )
    finally:
        mapper.close()
        target.close()
    await asyncio.sleep(0.05)  # let the last connection handler record what it heard
    return heard, connections, done.stdout, done.stderr


def _address() -> str:
    """A loopback address of the test's own, since the endpoint mapper's port is fixed."""
    return f"127.0.89.{random.randint(2, 250)}"


def test_samba_maps_through_the_server_role() -> None:
    address = _address()
    command = ["/usr/bin/python3", "-c", SAMBA_CLIENT, address]
    heard, connections, _, stderr = asyncio.run(_with_samba(address, 50123, command))
    assert heard == ["BIND epmapper", "ept_map drsuapi", "BIND epmapper", "ept_map netlogon"]
    # Samba then connected to the port the server role named, for each interface.
    assert connections == 2
    assert stderr.count(f"ncacn_ip_tcp:{address}[50123,") == 2


def test_samba_lists_the_server_roles_endpoints() -> None:
    address = _address()
    command = ["/usr/bin/python3", "-c", SAMBA_LOOKUP, address]
    heard, _, stdout, stderr = asyncio.run(_with_samba(address, 6004, command))
    assert stdout.splitlines() == [
        "2 0x0",
        f"{DRSUAPI_LE.hex()}0400 6004 {address} 'MS NT Directory DRS Interface'",
        f"{NETLOGON_LE.hex()}0100 6004 {address} ''",
        "0 0x16c9a0d6",
    ], stderr
    assert heard == ["BIND epmapper", "ept_lookup", "ept_lookup"]


def test_rpcclient_lists_the_server_roles_endpoints(tmp_path: Path) -> None:
    # rpcclient (Debian's smbclient) pages through ept_lookup one entry at a time. It gets a
    # configuration of its own, so that it writes nothing outside the test's directory.
    config = tmp_path / "smb.conf"
    config.write_text(
        "[global]\n"
        + "".join(
            f"{option} = {tmp_path}\n"
            for option in (
                "lock directory",
                "state directory",
                "cache directory",
                "private dir",
                "pid directory",
                "ncalrpc dir",
            )
        )
        + f"log file = {tmp_path / 'log'}\n"
    )
    address = _address()
    command = [
        "rpcclient",
        "-s",
        str(config),
        "-N",
        "-U%",
        f"ncacn_ip_tcp:{address}[135]",
        "-c",
        "epmlookup",
    ]
    heard, _, stdout, stderr = asyncio.run(_with_samba(address, 6004, command))
    assert stdout.splitlines() == [
        f"{uuid.UUID(int=0)} ncacn_ip_tcp:{address}[6004,abstract_syntax={DRSUAPI.uuid}"
        "/0x00000004]: MS NT Directory DRS Interface",
        f"{uuid.UUID(int=0)} ncacn_ip_tcp:{address}[6004,abstract_syntax={NETLOGON.uuid}"
        "/0x00000001]: ",
    ], stderr
    assert heard == ["BIND epmapper"] + ["ept_lookup"] * 3


# -- fuzzing ---------------------------------------------------------------------------------------

CLIENT_PIECES = [
    BIND_ACK_PDU,
    BIND_NAK_PDU,
    _map_answer(2, _tower(DRSUAPI_LE, 4, 0, 50100, DC_IP)),
    _map_answer(3, None, EPT_S_NOT_REGISTERED),
    fault(2, 5),
    _header(2, 5000, 2),
    b"220 mail ESMTP\r\n",
]
SERVER_PIECES = [
    BIND_PDU,
    request(2, 3, map_request(DRSUAPI)),
    request(3, 2, b"\x00" * 44),
    request(4, 2, b"\x00\x00\x00\x00\x01" + b"\x00" * 60),
]


def _mutated(data: bytes) -> st.SearchStrategy[bytes]:
    """`data` cut short, or with one byte changed: past the bind, into the parsers."""
    where = st.integers(0, len(data) - 1)
    flipped = st.tuples(where, st.integers(0, 255)).map(
        lambda pair: data[: pair[0]] + bytes([pair[1]]) + data[pair[0] + 1 :]
    )
    return st.one_of(where.map(lambda cut: data[:cut]), flipped)


@FUZZ
@given(st.tuples(_mutated(TRANSCRIPT), chunked(CLIENT_PIECES)).map(lambda p: [p[0], *p[1]]))
def test_fuzz_client(chunks: list[bytes]) -> None:
    start = time.process_time()
    assert isinstance(feed_client(EpmClient(), chunks), Done | RemoteProtocolError)
    assert time.process_time() - start < EXAMPLE_BOUND


CONVERSATION = BIND_PDU + request(2, 3, map_request(NETLOGON)) + request(3, 2, b"\x00" * 48)


@FUZZ
@given(st.tuples(_mutated(CONVERSATION), chunked(SERVER_PIECES)).map(lambda p: [p[0], *p[1]]))
def test_fuzz_server(chunks: list[bytes]) -> None:
    start = time.process_time()
    events = feed_server(EpmServer(rpc_port=6004), chunks)
    assert all(isinstance(e, Send) or e in (NEED_DATA, CLOSE) for e in events)
    assert time.process_time() - start < EXAMPLE_BOUND
