"""SMB2 NEGOTIATE and the NTLM identity behind SESSION_SETUP: the client against hand-built
server bytes (whole and one byte at a time), against the server role, the server role against
Samba's smbclient over a loopback socket, and both roles fuzzed."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import shutil
import socket
import struct
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portcall.protocols import spnego
from portcall.protocols.base import (
    CLOSE,
    NEED_DATA,
    Done,
    LocalProtocolError,
    RemoteProtocolError,
    Send,
    ServiceInfo,
    ServiceRefused,
    WrongProtocol,
)
from portcall.protocols.ntlm import Identity, NtlmError, Version, negotiate_message
from portcall.protocols.smb import (
    CLIENT_DIALECTS,
    STATUS_LOGON_FAILURE,
    STATUS_MORE_PROCESSING_REQUIRED,
    SmbClient,
    SmbServer,
    frame,
    smb1,
)
from portcall.protocols.smb.messages import (
    SmbError,
    negotiate_request,
    parse_negotiate_request,
    parse_negotiate_response,
    session_setup_request,
)
from tests.protocols.feeding import cpu_seconds, feed_client, feed_server
from tests.protocols.pair import converse
from tests.protocols.test_ntlm import EXCHANGE_IDENTITY, windows_2003_challenge
from tests.protocols.transcript import EOF_, C, S, Step, play_both_ways

WHEN = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
GUID = uuid.UUID("6ba7b810-9dad-11d1-80b4-00c04fd430c8")
LAB = Identity("DC1", "LAB", "dc1.lab.test", "lab.test", "lab.test", Version(10, 0, 17763))


def counting(n: int) -> bytes:
    """A stand-in for os.urandom that makes every run's bytes the same."""
    return bytes(range(n))


def client() -> SmbClient:
    return SmbClient(multi_protocol=False, random=counting)


def server(**kwargs: object) -> SmbServer:
    return SmbServer(identity=LAB, clock=lambda: WHEN, random=counting, **kwargs)  # type: ignore[arg-type]


# -- hand-built server bytes -----------------------------------------------------------------


def smb2_header(command: int, status: int = 0, message_id: int = 0, session_id: int = 0) -> bytes:
    """MS-SMB2 2.2.1.2, field by field: a response (flags bit 0) granting one credit."""
    return struct.pack(
        "<4sHHIHHIIQIIQ16s",
        b"\xfeSMB",
        64,
        0,
        status,
        command,
        1,
        1,
        0,
        message_id,
        0,
        0,
        session_id,
        bytes(16),
    )


def windows_2008r2_negotiate() -> bytes:
    """A NEGOTIATE response (MS-SMB2 2.2.4) choosing 2.1 with signing required, as a Windows
    Server 2008 R2 domain controller answers: no security blob, no contexts."""
    body = struct.pack(
        "<HHHH16sIIIIQQHHI",
        65,
        0x3,
        0x0210,
        0,
        GUID.bytes_le,
        0x7,
        65536,
        65536,
        65536,
        134090208000000000,  # 2025-12-01T00:00:00Z as FILETIME
        0,
        128,
        0,
        0,
    )
    return smb2_header(0) + body


def challenge_reply(token: bytes, status: int = 0xC0000016) -> bytes:
    """A SESSION_SETUP response (MS-SMB2 2.2.6) carrying `token`."""
    return (
        smb2_header(1, status, 1, 0x1000000000041)
        + struct.pack("<HHHH", 9, 0, 72, len(token))
        + token
    )


#: Samba 4.17.12 smbd (standalone server, netbios name SAMBATEST) answering this client, recorded
#: on loopback: the NEGOTIATE response (3.1.1) and the SESSION_SETUP response with the challenge.
SAMBA_NEGOTIATE = bytes.fromhex(
    "0000010cfe534d4240000000000000000000010001000000000000000000000000000000fffe000000000000"
    "000000000000000000000000000000000000000000000000410001001103020073616d626174657374000000"
    "000000000f000000000080000000800000008000f0d5f6e0fc80dd01000000000000000080004a00d0000000"
    "604806062b0601050502a03e303ca00e300c060a2b06010401823702020aa32a3028a0261b246e6f745f6465"
    "66696e65645f696e5f5246433431373840706c656173655f69676e6f72650000000000000100260000000000"
    "0100200001004ed050dbda225099bc045a097bea2cf6676fe50ecb6275b9382fdec605ea7560000002000400"
    "0000000001000200"
)
SAMBA_CHALLENGE = bytes.fromhex(
    "000000dafe534d4240000000160000c00100010001000000000000000100000000000000fffe000000000000"
    "8c477c05000000000000000000000000000000000000000009000000480092004e544c4d5353500002000000"
    "120012003800000015828ae22fdadc86917f6f200000000000000000480048004a000000060100000000000f"
    "530041004d0042004100540045005300540002001200530041004d0042004100540045005300540001001200"
    "530041004d00420041005400450053005400040000000300040076006d00070008007c12f7e0fc80dd010000"
    "0000"
)


def opening() -> list[C]:
    return [
        C(frame(negotiate_request(counting(16), counting(32)))),
    ]


def setup_request() -> C:
    return C(frame(session_setup_request(negotiate_message(), message_id=1)))


NEGOTIATE_FACTS = {
    "dialect": "2.1",
    "signing_enabled": True,
    "signing_required": True,
    "server_guid": str(GUID),
    "system_time": "2025-12-01T00:00:00+00:00",
    "max_transact_size": 65536,
    "max_read_size": 65536,
    "max_write_size": 65536,
    "capabilities": ["DFS", "LEASING", "LARGE_MTU"],
}


def test_windows_transcript_whole_and_byte_at_a_time() -> None:
    steps: list[Step] = [
        *opening(),
        S(frame(windows_2008r2_negotiate())),
        setup_request(),
        S(frame(challenge_reply(windows_2003_challenge()))),
    ]
    info = play_both_ways(client, steps)
    assert info.details == {**NEGOTIATE_FACTS, "ntlm": EXCHANGE_IDENTITY}
    assert info.banner == "SMB 2.1, signing required"
    assert info.product == "Windows Server 2003"
    assert info.capabilities == ["DFS", "LEASING", "LARGE_MTU"]


def test_recorded_samba_transcript_whole_and_byte_at_a_time() -> None:
    steps: list[Step] = [*opening(), S(SAMBA_NEGOTIATE), setup_request(), S(SAMBA_CHALLENGE)]
    info = play_both_ways(client, steps)
    details = info.details
    assert details["dialect"] == "3.1.1"
    assert details["signing_required"] is False
    assert details["server_guid"] == "626d6173-7461-7365-7400-000000000000"  # "sambatest"
    assert details["capabilities"] == ["DFS", "LEASING", "LARGE_MTU", "MULTI_CHANNEL"]
    assert details["preauth_integrity"] == ["SHA-512"]
    assert details["ciphers"] == ["AES-128-GCM"]
    ntlm = details["ntlm"]
    assert isinstance(ntlm, dict)
    assert ntlm["netbios_computer"] == "SAMBATEST"
    assert ntlm["os_version"] == "6.1.0"
    assert ntlm["os"] == "not Windows (NT 6.1 build 0, as Samba sends)"
    assert info.product is None


def test_spnego_wrapped_challenge() -> None:
    wrapped = spnego.wrap_response(windows_2003_challenge())
    steps: list[Step] = [
        *opening(),
        S(b"\x85\x00\x00\x00" + frame(windows_2008r2_negotiate())),  # a keep-alive first
        setup_request(),
        S(frame(challenge_reply(wrapped))),
    ]
    assert play_both_ways(client, steps).details["ntlm"] == EXCHANGE_IDENTITY


def _refusal(status: int, message_id: int) -> bytes:
    """An ERROR response (MS-SMB2 2.2.2) to a SESSION_SETUP."""
    return smb2_header(1, status, message_id) + struct.pack("<HBBI", 9, 0, 0, 0) + b"\0"


def spnego_setup_request() -> C:
    wrapped = spnego.wrap_init(negotiate_message())
    return C(frame(session_setup_request(wrapped, message_id=2)))


def test_session_setup_refused_keeps_the_negotiate_facts() -> None:
    steps: list[Step] = [
        *opening(),
        S(frame(windows_2008r2_negotiate())),
        setup_request(),
        S(frame(_refusal(0xC0000022, 1))),
        spnego_setup_request(),
        S(frame(_refusal(0xC0000022, 2))),
    ]
    info = play_both_ways(client, steps)
    assert info.details == NEGOTIATE_FACTS
    assert info.notes == [
        "the SMB server answered the NTLM start with STATUS_ACCESS_DENIED,"
        " so it told no NTLM identity"
    ]


def test_spnego_after_a_refused_raw_token() -> None:
    """A server that insists on SPNEGO gets the same NEGOTIATE_MESSAGE wrapped in a
    negTokenInit, and answers in a negTokenResp."""
    wrapped = spnego.wrap_response(windows_2003_challenge())
    steps: list[Step] = [
        *opening(),
        S(frame(windows_2008r2_negotiate())),
        setup_request(),
        S(frame(_refusal(0xC000000D, 1))),
        spnego_setup_request(),
        S(frame(challenge_reply(wrapped))),
    ]
    info = play_both_ways(client, steps)
    assert info.details["ntlm"] == EXCHANGE_IDENTITY
    assert info.notes == []


def test_server_closing_after_a_refusal() -> None:
    steps: list[Step] = [
        *opening(),
        S(frame(windows_2008r2_negotiate())),
        setup_request(),
        S(frame(_refusal(0xC000006D, 1))),
        spnego_setup_request(),
        EOF_,
    ]
    info = play_both_ways(client, steps)
    assert "STATUS_LOGON_FAILURE" in info.notes[0]


def test_smb1_only_server() -> None:
    smb1 = b"\xffSMB\x72" + bytes(4) + b"\x98" + bytes(22) + b"\x11" + bytes(40)
    info = play_both_ways(client, [*opening(), S(frame(smb1))])
    assert info.details == {"dialect": "SMB1", "smb1_only": True}
    assert "SMB1 only" in info.notes[0]


def windows_2003_dc_smb1_negotiate() -> bytes:
    """An NT LM 0.12 NEGOTIATE response (MS-SMB 2.2.4.5.2), field by field, as a Windows
    Server 2003 domain controller answers the multi-protocol hello: SMB1 only, signing
    required (a DC's default), extended security with its server GUID."""
    header = struct.pack(
        "<4sBIBHH8sHHHHH", b"\xffSMB", 0x72, 0, 0x98, 0xC853, 0, bytes(8), 0, 0, 0xFEFF, 0, 0
    )
    blob = GUID.bytes_le + spnego.server_hint()
    words = struct.pack(
        "<BHBHHIIIIQhB",
        17,
        0,
        0x0F,
        50,
        1,
        16644,
        65536,
        0,
        0x8001F3FD,
        134090208000000000,
        0,
        0,
    )
    return header + words + struct.pack("<H", len(blob)) + blob


def multi_client() -> SmbClient:
    return SmbClient(multi_protocol=True, random=counting)


def test_multi_protocol_hello_to_windows_2003() -> None:
    steps: list[Step] = [
        C(frame(smb1.negotiate_request())),
        S(frame(windows_2003_dc_smb1_negotiate())),
    ]
    info = play_both_ways(multi_client, steps)
    assert info.details == {
        "dialect": "NT LM 0.12 (SMB1)",
        "smb1_only": True,
        "security_mode": [
            "USER_SECURITY",
            "ENCRYPT_PASSWORDS",
            "SIGNATURES_ENABLED",
            "SIGNATURES_REQUIRED",
        ],
        "signing_required": True,
        "max_buffer_size": 16644,
        "system_time": "2025-12-01T00:00:00+00:00",
        "server_guid": str(GUID),
    }
    assert info.banner == "SMB1"


def test_multi_protocol_hello_to_an_smb2_server() -> None:
    hs = server(server_guid=GUID)
    conversation = converse(multi_client(), hs)
    assert conversation.info.details["dialect"] == "3.1.1"
    assert conversation.client_sent.startswith(frame(smb1.negotiate_request()))
    assert hs.heard == ["SMB1 NEGOTIATE", "NEGOTIATE", "SESSION_SETUP NTLM NEGOTIATE"]


def test_negotiate_refused() -> None:
    error = smb2_header(0, 0xC00000BB) + struct.pack("<HBBI", 9, 0, 0, 0) + b"\0"
    result = feed_client(client(), [frame(error)])
    assert isinstance(result, ServiceRefused)
    assert "STATUS_NOT_SUPPORTED" in str(result)


def test_http_on_445_is_a_wrong_protocol() -> None:
    result = feed_client(client(), [b"HTTP/1.1 400 Bad Request\r\n\r\n"])
    assert isinstance(result, WrongProtocol)
    assert result.detected == "HTTP"


def test_ntlm_challenge_that_breaks_its_lengths() -> None:
    broken = bytearray(windows_2003_challenge())
    struct.pack_into("<H", broken, 40, 4000)
    result = feed_client(
        client(), [frame(windows_2008r2_negotiate()), frame(challenge_reply(bytes(broken)))]
    )
    assert isinstance(result, NtlmError)


def test_security_buffer_outside_the_message() -> None:
    reply = bytearray(challenge_reply(windows_2003_challenge()))
    struct.pack_into("<H", reply, 70, 60000)
    result = feed_client(client(), [frame(windows_2008r2_negotiate()), frame(bytes(reply))])
    assert isinstance(result, RemoteProtocolError)
    assert "outside the message" in str(result)


def test_smb_is_tcp_only() -> None:
    with pytest.raises(LocalProtocolError, match="TCP only"):
        SmbClient(transport="udp")


def test_negotiate_request_layout() -> None:
    """MS-SMB2 2.2.3: five dialects after the 36-byte body, contexts 8-byte aligned."""
    message = negotiate_request(counting(16), counting(32))
    count, mode = struct.unpack_from("<HH", message, 66)
    assert (count, mode) == (5, 1)
    assert struct.unpack_from("<5H", message, 100) == CLIENT_DIALECTS
    context_at, context_count = struct.unpack_from("<IH", message, 92)
    assert (context_at, context_count) == (112, 2)
    kind, length = struct.unpack_from("<HH", message, 112)
    assert (kind, length) == (1, 38)
    assert struct.unpack_from("<HHH", message, 120) == (1, 32, 1)  # one hash: SHA-512


# -- client against the server role ------------------------------------------------------------


@pytest.mark.parametrize("signing_required", [False, True])
def test_client_against_server(signing_required: bool) -> None:
    conversation = converse(client(), server(signing_required=signing_required, server_guid=GUID))
    details = conversation.info.details
    assert details["dialect"] == "3.1.1"
    assert details["signing_required"] is signing_required
    assert details["server_guid"] == str(GUID)
    assert details["system_time"] == "2026-11-30T12:00:00+00:00"
    assert details["preauth_integrity"] == ["SHA-512"]
    assert details["ciphers"] == ["AES-128-GCM"]
    assert details["ntlm"] == {
        "target_name": "LAB",
        "netbios_domain": "LAB",
        "netbios_computer": "DC1",
        "dns_domain": "lab.test",
        "dns_computer": "dc1.lab.test",
        "dns_forest": "lab.test",
        "timestamp": "2026-11-30T12:00:00+00:00",
        "os_version": "10.0.17763",
        "os": "Windows Server 2019",
    }
    assert conversation.info.product == "Windows Server 2019"


# -- the server role against recorded clients --------------------------------------------------


def _negotiate_offering(*dialects: int) -> bytes:
    body = struct.pack("<HHHHI16sIHH", 36, len(dialects), 1, 0, 0, bytes(16), 0, 0, 0)
    return smb2_header(0) + body + struct.pack(f"<{len(dialects)}H", *dialects)


def _replies(hs: SmbServer, requests: list[bytes]) -> list[bytes]:
    events = feed_server(hs, [frame(r) for r in requests])
    assert events[-1] is CLOSE
    return [event.data[4:] for event in events if isinstance(event, Send)]


def _status(reply: bytes) -> int:
    status: int = struct.unpack_from("<I", reply, 8)[0]
    return status


def test_server_picks_2_1_for_an_older_client() -> None:
    hs = server()
    replies = _replies(hs, [_negotiate_offering(0x0202, 0x0210, 0x0300)])
    assert struct.unpack_from("<HHH", replies[0], 64) == (65, 1, 0x0210)
    assert hs.heard == ["NEGOTIATE"]


def test_server_refuses_unknown_dialects() -> None:
    replies = _replies(server(), [_negotiate_offering(0x0300, 0x0302)])
    assert _status(replies[0]) == 0xC00000BB


def test_server_challenges_then_refuses_credentials() -> None:
    authenticate = b"NTLMSSP\x00" + struct.pack("<I", 3) + bytes(80)
    hs = server()
    replies = _replies(
        hs,
        [
            _negotiate_offering(0x0210),
            session_setup_request(negotiate_message(), 1),
            session_setup_request(authenticate, 2),
        ],
    )
    assert _status(replies[1]) == STATUS_MORE_PROCESSING_REQUIRED
    assert replies[1][72:80] == b"NTLMSSP\x00"
    assert _status(replies[2]) == STATUS_LOGON_FAILURE
    assert hs.heard == [
        "NEGOTIATE",
        "SESSION_SETUP NTLM NEGOTIATE",
        "SESSION_SETUP with credentials (refused)",
    ]


def test_server_refuses_session_setup_before_negotiate_and_smb1() -> None:
    replies = _replies(server(), [session_setup_request(negotiate_message(), 0)])
    assert _status(replies[0]) == 0xC00000BB
    smb1 = b"\xffSMB\x72" + bytes(27) + b"\x0c\x00\x02NT LM 0.12\x00"
    assert _replies(server(), [smb1]) == []


def test_server_transcript_one_byte_at_a_time() -> None:
    from tests.protocols.pair import check_server

    whole = feed_server(server(), [frame(_negotiate_offering(0x0210))])
    reply = whole[1]
    assert isinstance(reply, Send)
    check_server(server, [C(frame(_negotiate_offering(0x0210))), S(reply.data), C(b""), EOF_])


# -- fuzzing -----------------------------------------------------------------------------------

#: CPU seconds one example may take: a parser stuck in a loop or gone quadratic fails here.
EXAMPLE_BOUND = 0.5
FUZZ = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,
    database=None,
)
SERVER_PIECES = [
    frame(windows_2003_dc_smb1_negotiate()),
    frame(windows_2008r2_negotiate()),
    frame(challenge_reply(windows_2003_challenge())),
    frame(challenge_reply(spnego.wrap_response(windows_2003_challenge()))),
    b"\x85\x00\x00\x00",
    b"\x00\x00\x00\x40",
    b"\xfeSMB",
    b"\xffSMB",
    smb2_header(0),
    smb2_header(1, 0xC0000016, 1),
]
CLIENT_PIECES = [
    frame(smb1.negotiate_request()),
    frame(negotiate_request(counting(16), counting(32))),
    frame(_negotiate_offering(0x0210)),
    frame(session_setup_request(negotiate_message(), 1)),
    frame(session_setup_request(spnego.wrap_response(negotiate_message()), 1)),
    frame(session_setup_request(spnego.wrap_init(negotiate_message()), 1)),
    b"\x00\x00\x01\x00",
    b"\x85\x00\x00\x00",
    smb2_header(1),
]


def _chunks(pieces: list[bytes]) -> st.SearchStrategy[list[bytes]]:
    piece = st.one_of(st.sampled_from(pieces), st.binary(max_size=64))
    return st.lists(piece, max_size=6).flatmap(
        lambda parts: st.builds(
            lambda cuts: _cut(b"".join(parts), cuts), st.lists(st.integers(0, 600), max_size=8)
        )
    )


def _cut(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(c, len(data)) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points) if b > a]


@FUZZ
@given(st.booleans(), _chunks(SERVER_PIECES))
def test_fuzz_client(multi_protocol: bool, chunks: list[bytes]) -> None:
    start = time.process_time()
    result = feed_client(multi_client() if multi_protocol else client(), chunks)
    assert isinstance(result, Done | RemoteProtocolError)
    assert time.process_time() - start < EXAMPLE_BOUND


@FUZZ
@given(_chunks(CLIENT_PIECES))
def test_fuzz_server(chunks: list[bytes]) -> None:
    start = time.process_time()
    events = feed_server(server(), chunks)
    assert time.process_time() - start < EXAMPLE_BOUND
    assert all(isinstance(e, Send) or e in (NEED_DATA, CLOSE) for e in events)


# -- Samba's smbclient against the server role over loopback ------------------------------------


async def _drive(hs: SmbServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while True:
        event = hs.next_event()
        if isinstance(event, Send):
            writer.write(event.data)
            await writer.drain()
        elif event is NEED_DATA:
            hs.receive_data(await reader.read(65536))
        else:
            break
    writer.close()


class Responder:
    """The server role behind a loopback socket, on an event loop in a thread of its own."""

    def __init__(self, **kwargs: object) -> None:
        self.kwargs = kwargs
        self.servers: list[SmbServer] = []
        self.loop = asyncio.new_event_loop()
        self.port = 0

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        hs = SmbServer(**self.kwargs)  # type: ignore[arg-type]
        self.servers.append(hs)
        await _drive(hs, reader, writer)

    def __enter__(self) -> Responder:
        started = threading.Event()
        self.stop = asyncio.Event()

        async def main() -> None:
            listener = await asyncio.start_server(self._handle, "127.0.0.1", 0)
            self.port = listener.sockets[0].getsockname()[1]
            started.set()
            async with listener:
                await self.stop.wait()

        self.thread = threading.Thread(target=self.loop.run_until_complete, args=(main(),))
        self.thread.start()
        assert started.wait(5)
        return self

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture
def smbclient() -> Iterator[str]:
    path = shutil.which("smbclient")
    assert path, "smbclient (Debian package smbclient) is needed for this test"
    yield path


@pytest.mark.parametrize(
    ("protocols", "dialect"),
    [
        ("client max protocol=SMB3_11", "SMB3_11"),
        ("client max protocol=SMB2_10", "SMB2_10"),
        # An SMB1 multi-protocol hello first, answered with the SMB2 wildcard.
        ("client min protocol=NT1", "SMB3_11"),
    ],
)
def test_smbclient_gets_negotiate_and_challenge(
    smbclient: str, protocols: str, dialect: str
) -> None:
    with Responder(identity=LAB) as responder:
        run = subprocess.run(
            [
                smbclient,
                "-L",
                "//127.0.0.1",
                "-p",
                str(responder.port),
                "-N",
                "-d",
                "10",
                "--option",
                protocols,
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    out = run.stdout + run.stderr
    assert run.returncode != 0
    assert f"negotiated dialect[{dialect}] against server[127.0.0.1]" in out
    # smbclient decoded our CHALLENGE_MESSAGE and its AV pairs.
    assert "AvDnsComputerName        : 'dc1.lab.test'" in out
    assert "AvNbComputerName         : 'DC1'" in out
    assert "session setup failed" in out
    hello = ["SMB1 NEGOTIATE"] if "NT1" in protocols else []
    assert responder.servers[0].heard == [
        *hello,
        "NEGOTIATE",
        "SESSION_SETUP NTLM NEGOTIATE",
        "SESSION_SETUP with credentials (refused)",
    ]


# -- the client role against Samba's smbd over loopback -----------------------------------------

SMBD_CONF = """[global]
netbios name = PORTCALLTEST
workgroup = PCTEST
server role = standalone server
server signing = mandatory
smb ports = {port}
interfaces = lo
bind interfaces only = yes
lock directory = {root}/lock
state directory = {root}/state
cache directory = {root}/cache
private dir = {root}/private
pid directory = {root}/pid
ncalrpc dir = {root}/ncalrpc
log file = {root}/log.%m
load printers = no
disable spoolss = yes
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _wait_for(port: int, process: subprocess.Popen[bytes], seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, "smbd exited before it listened"
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.1)
    raise AssertionError(f"smbd did not listen on port {port} within {seconds} s")


@pytest.fixture
def smbd(tmp_path: Path) -> Iterator[int]:
    """A standalone Samba smbd with its own configuration and state under `tmp_path`,
    listening on a free loopback port; the system's Samba configuration is never read."""
    path = shutil.which("smbd") or ("/usr/sbin/smbd" if Path("/usr/sbin/smbd").exists() else None)
    assert path, "smbd (Debian package samba) is needed for this test"
    for name in ("lock", "state", "cache", "private", "pid", "ncalrpc"):
        (tmp_path / name).mkdir()
    port = _free_port()
    conf = tmp_path / "smb.conf"
    conf.write_text(SMBD_CONF.format(port=port, root=tmp_path))
    command = [path, "-F", "--no-process-group", f"--configfile={conf}", "--debug-stdout"]
    # A session of its own: smbd signals its whole process group when it stops.
    with subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    ) as process:
        try:
            _wait_for(port, process)
            yield port
        finally:
            process.terminate()
            process.wait(10)


async def _probe(port: int, multi_protocol: bool) -> ServiceInfo:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    hs = SmbClient(multi_protocol=multi_protocol)
    try:
        while True:
            event = hs.next_event()
            if isinstance(event, Send):
                writer.write(event.data)
                await writer.drain()
            elif event is NEED_DATA:
                hs.receive_data(await reader.read(65536))
            else:
                assert isinstance(event, Done)
                return event.info
    finally:
        writer.close()


@pytest.mark.parametrize("multi_protocol", [False, True])
def test_client_against_samba_smbd(smbd: int, multi_protocol: bool) -> None:
    info = asyncio.run(asyncio.wait_for(_probe(smbd, multi_protocol), 10))
    details = info.details
    assert details["dialect"] == "3.1.1"
    assert details["signing_required"] is True  # server signing = mandatory
    assert details["preauth_integrity"] == ["SHA-512"]
    ntlm = details["ntlm"]
    assert isinstance(ntlm, dict)
    assert ntlm["netbios_computer"] == "PORTCALLTEST"
    assert ntlm["target_name"] == "PORTCALLTEST"
    assert ntlm["os"] == "not Windows (NT 6.1 build 0, as Samba sends)"


# -- linear cost ---------------------------------------------------------------------------------


def _big_challenge(size: int) -> bytes:
    """A session setup reply whose SPNEGO-wrapped challenge has a target name of `size` bytes."""
    base = windows_2003_challenge()
    name = b"A\x00" * (size // 2)
    token = bytearray(base[:56] + name + base[56 + 14 :])
    struct.pack_into("<HHI", token, 12, len(name), len(name), 56)
    struct.pack_into("<I", token, 44, 56 + len(name))
    return frame(challenge_reply(spnego.wrap_response(bytes(token))))


def _drip_seconds(size: int) -> float:
    replies = frame(windows_2008r2_negotiate()) + _big_challenge(size)
    drops = [replies[i : i + 64] for i in range(0, len(replies), 64)]
    return cpu_seconds(lambda: feed_client(client(), drops))


def test_cost_is_linear_in_the_reply() -> None:
    small, large = _drip_seconds(12_000), _drip_seconds(48_000)
    assert large < 6 * small + 0.002, f"{small:.4f}s for 12 kB, {large:.4f}s for 48 kB"
    whole = [frame(windows_2008r2_negotiate()) + _big_challenge(60_000)]
    result = feed_client(client(), whole)
    assert isinstance(result, Done)
    assert cpu_seconds(lambda: feed_client(client(), whole)) < 0.02


DECODERS = [
    parse_negotiate_request,
    parse_negotiate_response,
    smb1.describe_response,
    smb1.requested_dialects,
    spnego.mech_token,
    spnego.response_token,
]


@FUZZ
@given(
    st.sampled_from(DECODERS),
    st.one_of(
        st.binary(max_size=300),
        st.builds(
            lambda piece, cut, junk: piece[4:][:cut] + junk,
            st.sampled_from(SERVER_PIECES + CLIENT_PIECES),
            st.integers(0, 300),
            st.binary(max_size=16),
        ),
        st.builds(
            lambda token, cut: token[:cut],
            st.sampled_from(
                [
                    spnego.server_hint(),
                    spnego.wrap_init(negotiate_message()),
                    spnego.wrap_response(windows_2003_challenge()),
                ]
            ),
            st.integers(0, 200),
        ),
    ),
)
def test_fuzz_decoders(decoder: Callable[[bytes], object], data: bytes) -> None:
    """Each decoder on any bytes: a value, or the error of its own kind, nothing else."""
    with contextlib.suppress(SmbError, spnego.SpnegoError):
        decoder(data)
