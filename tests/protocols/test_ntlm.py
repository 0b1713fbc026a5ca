"""NTLM identity (MS-NLMP): the NEGOTIATE_MESSAGE, the CHALLENGE_MESSAGE decoder and its bounds,
the server's challenge, and the text framings of SMTP, IMAP, POP3 and HTTP."""

from __future__ import annotations

import base64
import contextlib
import struct
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portcall.protocols.base import RemoteProtocolError
from portcall.protocols.ntlm import (
    CANCEL,
    CLIENT_FLAGS,
    IMAP,
    MAX_AV_PAIRS,
    MAX_TOKEN_CHARS,
    POP3,
    SMTP,
    Challenge,
    Identity,
    NtlmChallenger,
    NtlmError,
    TextFraming,
    Version,
    authorization_header,
    challenge_from_headers,
    challenge_from_line,
    decode_token,
    encode_token,
    is_continuation,
    negotiate_flags,
    negotiate_line,
    negotiate_message,
    parse_challenge,
    windows_name,
)

WHEN = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def _utf16(text: str) -> bytes:
    return text.encode("utf-16-le")


def _av(av_id: int, value: bytes) -> bytes:
    return struct.pack("<HH", av_id, len(value)) + value


def windows_2003_challenge() -> bytes:
    """A CHALLENGE_MESSAGE laid out by hand, field by field from MS-NLMP 2.2.1.2, as an
    Exchange 2003 server on Windows Server 2003 SP2 sends it: no timestamp AV pair (that came
    with Vista), VERSION 5.2.3790 revision 15."""
    target = _utf16("CONTOSO")
    info = (
        _av(2, _utf16("CONTOSO"))
        + _av(1, _utf16("EXCH1"))
        + _av(4, _utf16("contoso.local"))
        + _av(3, _utf16("exch1.contoso.local"))
        + _av(5, _utf16("contoso.local"))
        + _av(0, b"")
    )
    flags = 0xE2898215
    head = b"NTLMSSP\x00" + struct.pack("<I", 2)
    head += struct.pack("<HHI", len(target), len(target), 56)
    head += struct.pack("<I", flags) + bytes.fromhex("0123456789abcdef") + bytes(8)
    head += struct.pack("<HHI", len(info), len(info), 56 + len(target))
    head += bytes([5, 2]) + struct.pack("<H", 3790) + bytes(3) + bytes([15])
    return head + target + info


EXCHANGE_IDENTITY = {
    "target_name": "CONTOSO",
    "netbios_domain": "CONTOSO",
    "netbios_computer": "EXCH1",
    "dns_domain": "contoso.local",
    "dns_computer": "exch1.contoso.local",
    "dns_forest": "contoso.local",
    "os_version": "5.2.3790",
    "os": "Windows Server 2003",
}


# -- NEGOTIATE_MESSAGE ---------------------------------------------------------------------


def test_negotiate_message_names_nobody() -> None:
    message = negotiate_message()
    assert message[:8] == b"NTLMSSP\x00"
    assert struct.unpack_from("<I", message, 8)[0] == 1
    assert negotiate_flags(message) == CLIENT_FLAGS
    # Domain and workstation fields are empty: the probe discloses no name of ours.
    assert struct.unpack_from("<HHIHHI", message, 16)[0::3] == (0, 0)
    assert len(message) == 40


def test_negotiate_flags_refuses_other_messages() -> None:
    with pytest.raises(NtlmError, match="type 2"):
        negotiate_flags(windows_2003_challenge())
    with pytest.raises(NtlmError, match="signature"):
        negotiate_flags(b"NTLMSSQ\x00" + bytes(32))


# -- CHALLENGE_MESSAGE ---------------------------------------------------------------------


def test_hand_built_windows_2003_challenge() -> None:
    challenge = parse_challenge(windows_2003_challenge())
    assert challenge.identity() == EXCHANGE_IDENTITY
    assert challenge.server_challenge == bytes.fromhex("0123456789abcdef")
    assert challenge.timestamp is None


def test_server_challenge_round_trip() -> None:
    identity = Identity(
        "DC7", "LAB", "dc7.lab.test", "lab.test", "forest.test", Version(10, 0, 20348)
    )
    challenger = NtlmChallenger(identity, clock=lambda: WHEN, random=lambda n: b"\x11" * n)
    message = challenger.answer(negotiate_message())
    facts = parse_challenge(message).identity()
    assert facts == {
        "target_name": "LAB",
        "netbios_domain": "LAB",
        "netbios_computer": "DC7",
        "dns_domain": "lab.test",
        "dns_computer": "dc7.lab.test",
        "dns_forest": "forest.test",
        "timestamp": "2026-11-30T12:00:00+00:00",
        "os_version": "10.0.20348",
        "os": "Windows Server 2022",
    }


@pytest.mark.parametrize(
    ("version", "name"),
    [
        (Version(5, 0, 2195), "Windows 2000"),
        (Version(5, 2, 3790), "Windows Server 2003"),
        (Version(6, 1, 7601), "Windows Server 2008 R2"),
        (Version(10, 0, 14393), "Windows Server 2016"),
        (Version(10, 0, 17763), "Windows Server 2019"),
        (Version(10, 0, 10240), "Windows 10 or Windows Server 2016 or later"),
        (Version(11, 4, 1), "Windows NT 11.4"),
    ],
)
def test_windows_names(version: Version, name: str) -> None:
    assert windows_name(version) == name


def test_field_running_past_the_message() -> None:
    message = bytearray(windows_2003_challenge())
    struct.pack_into("<H", message, 40, 5000)  # TargetInfo length
    with pytest.raises(NtlmError, match="runs past"):
        parse_challenge(bytes(message))


def test_av_pair_running_past_the_target_info() -> None:
    message = bytearray(windows_2003_challenge())
    struct.pack_into("<H", message, 56 + 14 + 2, 900)  # length of the first AV pair
    with pytest.raises(NtlmError, match="AV pair 2"):
        parse_challenge(bytes(message))


def test_target_info_without_end() -> None:
    message = windows_2003_challenge()[:-4]
    message = message[:40] + struct.pack("<HH", len(message) - 70, len(message) - 70) + message[44:]
    with pytest.raises(NtlmError, match="ends inside"):
        parse_challenge(message)


def test_av_pair_count_is_capped() -> None:
    info = _av(9, b"xx") * (MAX_AV_PAIRS + 1) + _av(0, b"")
    head = b"NTLMSSP\x00" + struct.pack(
        "<IHHIIQQHHI", 2, 0, 0, 56, 0x00800001, 0, 0, len(info), len(info), 56
    )
    with pytest.raises(NtlmError, match=f"more than {MAX_AV_PAIRS}"):
        parse_challenge(head + bytes(8) + info)


def test_timestamp_past_year_9999_is_dropped() -> None:
    info = _av(7, (2**64 - 1).to_bytes(8, "little")) + _av(0, b"")
    head = b"NTLMSSP\x00" + struct.pack(
        "<IHHIIQQHHI", 2, 0, 0, 48, 0x00800001, 0, 0, len(info), len(info), 48
    )
    challenge = parse_challenge(head + info)
    assert challenge.timestamp is None
    assert challenge.version is None


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(
    st.one_of(
        st.binary(max_size=300),
        st.builds(
            lambda cut, junk: windows_2003_challenge()[:cut] + junk,
            st.integers(0, 250),
            st.binary(max_size=40),
        ),
    )
)
def test_fuzz_challenge_decoder(data: bytes) -> None:
    try:
        result = parse_challenge(data)
    except NtlmError:
        return
    assert isinstance(result, Challenge)
    assert isinstance(result.identity(), dict)


# -- text framings ---------------------------------------------------------------------------


def _b64_line(prefix: bytes, token: bytes) -> bytes:
    return prefix + b" " + base64.b64encode(token) + b"\r\n"


def _play_text(framing: TextFraming, steps: list[tuple[str, bytes]]) -> Challenge:
    """Walk a text transcript as a client would: its lines must be what the helpers produce;
    the server's answer to the start must be an empty continuation (whatever its text), and
    its answer to the NEGOTIATE_MESSAGE carries the challenge."""
    expected_client = [framing.start, negotiate_line(), CANCEL]
    last_sent = b""
    challenge: Challenge | None = None
    for who, line in steps:
        if who == "C":
            assert line == expected_client.pop(0)
            last_sent = line
        elif last_sent == framing.start:
            assert is_continuation(framing, line)
        elif last_sent == negotiate_line():
            challenge = challenge_from_line(framing, line)
    assert not expected_client
    assert challenge is not None
    return challenge


def test_smtp_auth_ntlm_transcript() -> None:
    """Exchange 2003 answers AUTH NTLM with "334 NTLM supported", then the challenge."""
    token = windows_2003_challenge()
    steps = [
        (
            "S",
            b"220 exch1.contoso.local Microsoft ESMTP MAIL Service,"
            b" Version: 6.0.3790.3959 ready\r\n",
        ),
        ("C", SMTP.start),
        ("S", b"334 NTLM supported\r\n"),
        ("C", negotiate_line()),
        ("S", _b64_line(b"334", token)),
        ("C", CANCEL),
        ("S", b"501 5.7.3 Authentication cancelled\r\n"),
    ]
    assert _play_text(SMTP, steps).identity() == EXCHANGE_IDENTITY


def test_imap_authenticate_ntlm_transcript() -> None:
    steps = [
        (
            "S",
            b"* OK Microsoft Exchange Server 2003 IMAP4rev1 server version 6.5.7638.1 ready.\r\n",
        ),
        ("C", IMAP.start),
        ("S", b"+ \r\n"),
        ("C", negotiate_line()),
        ("S", _b64_line(b"+", windows_2003_challenge())),
        ("C", CANCEL),
        ("S", b"N1 BAD Protocol Error: AUTHENTICATE cancelled.\r\n"),
    ]
    assert _play_text(IMAP, steps).identity() == EXCHANGE_IDENTITY


def test_pop3_auth_ntlm_transcript() -> None:
    steps = [
        ("S", b"+OK Microsoft Exchange Server 2003 POP3 server version 6.5.7638.1 ready.\r\n"),
        ("C", POP3.start),
        ("S", b"+ \r\n"),
        ("C", negotiate_line()),
        ("S", _b64_line(b"+", windows_2003_challenge())),
        ("C", CANCEL),
        ("S", b"-ERR Authentication cancelled\r\n"),
    ]
    assert _play_text(POP3, steps).identity() == EXCHANGE_IDENTITY


def test_negotiate_line_carries_the_negotiate_message() -> None:
    line = negotiate_line()
    assert line.endswith(b"\r\n")
    assert base64.b64decode(line[:-2], validate=True) == negotiate_message()


def test_refusal_instead_of_a_challenge() -> None:
    with pytest.raises(NtlmError, match="504"):
        challenge_from_line(SMTP, b"504 5.7.4 Unrecognized authentication type\r\n")
    with pytest.raises(NtlmError, match="IMAP"):
        challenge_from_line(IMAP, b"N1 NO AUTHENTICATE failed\r\n")
    # "+OK" is not a continuation.
    with pytest.raises(NtlmError):
        challenge_from_line(POP3, b"+OK\r\n")


def test_http_401_transcript() -> None:
    """OWA on IIS 6: the first 401 offers Negotiate and NTLM; the request with
    `Authorization: NTLM <negotiate>` gets a 401 carrying the challenge."""
    header = authorization_header()
    scheme, _, token = header.partition(" ")
    assert scheme == "NTLM"
    assert decode_token(token) == negotiate_message()
    offered = ["Negotiate", "NTLM"]
    with pytest.raises(NtlmError, match="no WWW-Authenticate"):
        challenge_from_headers(offered)
    answered = ["NTLM " + encode_token(windows_2003_challenge())]
    assert challenge_from_headers(answered).identity() == EXCHANGE_IDENTITY


def test_decode_token_is_strict_and_bounded() -> None:
    with pytest.raises(NtlmError, match="not base64"):
        decode_token("TlRMTVNTUAAC!!")
    with pytest.raises(NtlmError, match="not base64"):
        decode_token("TlRMTVNTUAA")  # padding missing
    with pytest.raises(NtlmError, match="more than"):
        decode_token("A" * (MAX_TOKEN_CHARS + 4))
    with pytest.raises(NtlmError):
        decode_token("é")


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(
    st.sampled_from([SMTP, IMAP, POP3]),
    st.one_of(
        st.binary(max_size=200),
        st.builds(
            lambda p, b: p + b,
            st.sampled_from([b"334 ", b"+ ", b"+", b"334"]),
            st.binary(max_size=200),
        ),
        st.builds(
            lambda p, cut: p + base64.b64encode(windows_2003_challenge()[:cut]) + b"\r\n",
            st.sampled_from([b"334 ", b"+ "]),
            st.integers(0, 250),
        ),
    ),
)
def test_fuzz_text_framings(framing: TextFraming, line: bytes) -> None:
    with contextlib.suppress(RemoteProtocolError):
        challenge_from_line(framing, line)
