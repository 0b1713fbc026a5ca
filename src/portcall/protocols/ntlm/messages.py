"""NTLMSSP messages (MS-NLMP): the NEGOTIATE_MESSAGE a client opens with (2.2.1.1), the
CHALLENGE_MESSAGE a server answers (2.2.1.2) with its AV pairs (2.2.2.1) and VERSION (2.2.2.10).

Written with `struct` rather than a library: the NTLM codecs that exist come inside whole SMB
stacks (impacket, smbprotocol) or are unmaintained (python-ntlm), and these two messages are
fixed little-endian layouts with offset/length fields, checked here before each use.
Nothing here ever builds an AUTHENTICATE_MESSAGE: no credentials are sent.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

from portcall.protocols.base import RemoteProtocolError

SIGNATURE: Final = b"NTLMSSP\x00"
NEGOTIATE: Final = 1
CHALLENGE: Final = 2

# NegotiateFlags (MS-NLMP 2.2.2.5).
NEGOTIATE_UNICODE: Final = 0x00000001
NEGOTIATE_OEM: Final = 0x00000002
REQUEST_TARGET: Final = 0x00000004
NEGOTIATE_SIGN: Final = 0x00000010
NEGOTIATE_NTLM: Final = 0x00000200
NEGOTIATE_ALWAYS_SIGN: Final = 0x00008000
TARGET_TYPE_DOMAIN: Final = 0x00010000
TARGET_TYPE_SERVER: Final = 0x00020000
EXTENDED_SESSIONSECURITY: Final = 0x00080000
NEGOTIATE_TARGET_INFO: Final = 0x00800000
NEGOTIATE_VERSION: Final = 0x02000000
NEGOTIATE_128: Final = 0x20000000
NEGOTIATE_KEY_EXCH: Final = 0x40000000
NEGOTIATE_56: Final = 0x80000000

#: What a client asks for: what nmap's ntlm-info scripts and Windows clients ask for.
CLIENT_FLAGS: Final = (
    NEGOTIATE_UNICODE
    | NEGOTIATE_OEM
    | REQUEST_TARGET
    | NEGOTIATE_SIGN
    | NEGOTIATE_NTLM
    | NEGOTIATE_ALWAYS_SIGN
    | EXTENDED_SESSIONSECURITY
    | NEGOTIATE_VERSION
    | NEGOTIATE_128
    | NEGOTIATE_KEY_EXCH
    | NEGOTIATE_56
)

# AV pair identifiers (MS-NLMP 2.2.2.1).
AV_EOL: Final = 0
AV_NB_COMPUTER: Final = 1
AV_NB_DOMAIN: Final = 2
AV_DNS_COMPUTER: Final = 3
AV_DNS_DOMAIN: Final = 4
AV_DNS_FOREST: Final = 5
AV_FLAGS: Final = 6
AV_TIMESTAMP: Final = 7
#: The name each text AV pair gets in a report.
AV_NAMES: Final = {
    AV_NB_COMPUTER: "netbios_computer",
    AV_NB_DOMAIN: "netbios_domain",
    AV_DNS_COMPUTER: "dns_computer",
    AV_DNS_DOMAIN: "dns_domain",
    AV_DNS_FOREST: "dns_forest",
}
#: More AV pairs than MS-NLMP defines (about ten); a list longer than this is not a challenge.
MAX_AV_PAIRS: Final = 32

_HEADER: Final = struct.Struct("<8sI")
_FIELD: Final = struct.Struct("<HHI")  # length, maximum length, offset
_CHALLENGE_FIXED: Final = struct.Struct("<8sI8sI8s8s8s8s")  # up to and including VERSION
_VERSION: Final = struct.Struct("<BBH3xB")
_AV: Final = struct.Struct("<HH")
NTLM_REVISION_W2K3: Final = 15

#: FILETIME counts 100 ns ticks from 1601; datetime stops at the end of year 9999.
_EPOCH: Final = datetime(1601, 1, 1, tzinfo=UTC)
_FILETIME_MAX: Final = (
    (datetime(9999, 12, 31, tzinfo=UTC) - _EPOCH) // timedelta(microseconds=1) * 10
)

#: NT major.minor to the server edition that carries it (MS-NLMP 2.2.2.10 and the Windows
#: build lists); client editions share the numbers, a port we probe belongs to a server.
_WINDOWS: Final = {
    (5, 0): "Windows 2000",
    (5, 1): "Windows XP",
    (5, 2): "Windows Server 2003",
    (6, 0): "Windows Server 2008",
    (6, 1): "Windows Server 2008 R2",
    (6, 2): "Windows Server 2012",
    (6, 3): "Windows Server 2012 R2",
}
#: Windows 10.0 servers told apart by build.
_WINDOWS_10_SERVERS: Final = (
    (26100, "Windows Server 2025"),
    (20348, "Windows Server 2022"),
    (17763, "Windows Server 2019"),
    (14393, "Windows Server 2016"),
)


class NtlmError(RemoteProtocolError):
    """A message that is not the NTLMSSP message expected, or breaks its own lengths."""


@dataclass(frozen=True)
class Version:
    major: int
    minor: int
    build: int
    revision: int = NTLM_REVISION_W2K3

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.build}"


@dataclass
class Challenge:
    """What a CHALLENGE_MESSAGE tells about the server that sent it."""

    flags: int
    target_name: str
    server_challenge: bytes
    names: dict[str, str] = field(default_factory=dict)
    timestamp: str | None = None
    version: Version | None = None

    def identity(self) -> dict[str, object]:
        """The facts as plain JSON-able values, as nmap's *-ntlm-info scripts list them."""
        facts: dict[str, object] = {"target_name": self.target_name, **self.names}
        if self.timestamp is not None:
            facts["timestamp"] = self.timestamp
        if self.version is not None:
            facts["os_version"] = str(self.version)
            facts["os"] = windows_name(self.version)
        return facts


@dataclass(frozen=True)
class Identity:
    """What a server role says about itself in its challenge."""

    netbios_computer: str = "DC1"
    netbios_domain: str = "EXAMPLE"
    dns_computer: str = "dc1.example.test"
    dns_domain: str = "example.test"
    dns_forest: str = "example.test"
    version: Version = Version(5, 2, 3790)


def windows_name(version: Version) -> str:
    """The Windows release a VERSION names. No Windows build is 0; Samba's NTLM server sends
    6.1 with build 0, so such a version is named as not Windows."""
    if version.build == 0:
        return f"not Windows (NT {version.major}.{version.minor} build 0, as Samba sends)"
    if (version.major, version.minor) == (10, 0):
        return next(
            (name for build, name in _WINDOWS_10_SERVERS if version.build >= build),
            "Windows 10 or Windows Server 2016 or later",
        )
    return _WINDOWS.get(
        (version.major, version.minor), f"Windows NT {version.major}.{version.minor}"
    )


# -- NEGOTIATE_MESSAGE ---------------------------------------------------------------------


def negotiate_message(flags: int = CLIENT_FLAGS, version: Version = Version(6, 1, 7601)) -> bytes:
    """A NEGOTIATE_MESSAGE with no domain or workstation name: nothing about us is disclosed."""
    empty = _FIELD.pack(0, 0, 40)
    return (
        _HEADER.pack(SIGNATURE, NEGOTIATE)
        + struct.pack("<I", flags)
        + empty
        + empty
        + (_VERSION.pack(version.major, version.minor, version.build, version.revision))
    )


def negotiate_flags(data: bytes) -> int:
    """The flags of a NEGOTIATE_MESSAGE (what a server needs from it)."""
    _check_header(data, NEGOTIATE, 16)
    flags: int = struct.unpack_from("<I", data, 12)[0]
    return flags


def _check_header(data: bytes, kind: int, minimum: int) -> None:
    if len(data) < minimum or data[:8] != SIGNATURE:
        raise NtlmError(f"not an NTLMSSP message ({len(data)} bytes, no NTLMSSP signature)")
    found = struct.unpack_from("<I", data, 8)[0]
    if found != kind:
        raise NtlmError(f"NTLMSSP message type {found} where {kind} was expected")


# -- CHALLENGE_MESSAGE ---------------------------------------------------------------------


def parse_challenge(data: bytes) -> Challenge:
    """Decode a CHALLENGE_MESSAGE; every offset and length is checked against the message."""
    _check_header(data, CHALLENGE, 48)
    flags = struct.unpack_from("<I", data, 20)[0]
    unicode = bool(flags & NEGOTIATE_UNICODE)
    target = _text(_field(data, 12), unicode)
    challenge = Challenge(flags, target, data[24:32])
    if flags & NEGOTIATE_TARGET_INFO:
        _read_av_pairs(_field(data, 40), challenge)
    if flags & NEGOTIATE_VERSION and len(data) >= 56:
        major, minor, build, revision = _VERSION.unpack_from(data, 48)
        challenge.version = Version(major, minor, build, revision)
    return challenge


def _field(data: bytes, at: int) -> bytes:
    length, _, offset = _FIELD.unpack_from(data, at)
    if length and offset + length > len(data):
        raise NtlmError(f"an NTLMSSP field of {length} bytes at {offset} runs past the message")
    return data[offset : offset + length]


def _text(raw: bytes, unicode: bool = True) -> str:
    if unicode:
        return raw.decode("utf-16-le", "replace")
    return raw.decode("latin-1")


def _read_av_pairs(info: bytes, challenge: Challenge) -> None:
    at = 0
    for _ in range(MAX_AV_PAIRS):
        if at + _AV.size > len(info):
            raise NtlmError("the NTLMSSP target information ends inside an AV pair")
        av_id, length = _AV.unpack_from(info, at)
        value = info[at + _AV.size : at + _AV.size + length]
        if len(value) != length:
            raise NtlmError(f"AV pair {av_id} of {length} bytes runs past the target information")
        if av_id == AV_EOL:
            return
        _keep(av_id, value, challenge)
        at += _AV.size + length
    raise NtlmError(f"more than {MAX_AV_PAIRS} AV pairs in the NTLMSSP target information")


def _keep(av_id: int, value: bytes, challenge: Challenge) -> None:
    if av_id in AV_NAMES:
        challenge.names[AV_NAMES[av_id]] = _text(value)
    elif av_id == AV_TIMESTAMP and len(value) == 8:
        challenge.timestamp = filetime_text(int.from_bytes(value, "little"))


def filetime_text(ticks: int) -> str | None:
    """A FILETIME as ISO 8601 UTC, or None when it lies past year 9999."""
    if ticks > _FILETIME_MAX:
        return None
    return (_EPOCH + timedelta(microseconds=ticks // 10)).isoformat()


def filetime(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(microseconds=1) * 10


def challenge_message(
    identity: Identity, server_challenge: bytes, client_flags: int, when: datetime
) -> bytes:
    """The CHALLENGE_MESSAGE a server answers a NEGOTIATE_MESSAGE with."""
    info = _av_pairs(identity, when)
    target = identity.netbios_domain.encode("utf-16-le")
    flags = _answer_flags(client_flags)
    target_at = _CHALLENGE_FIXED.size
    info_at = target_at + len(target)
    version = identity.version
    fixed = _CHALLENGE_FIXED.pack(
        SIGNATURE,
        CHALLENGE,
        _FIELD.pack(len(target), len(target), target_at),
        flags,
        server_challenge,
        bytes(8),
        _FIELD.pack(len(info), len(info), info_at),
        _VERSION.pack(version.major, version.minor, version.build, version.revision),
    )
    return fixed + target + info


def _answer_flags(client_flags: int) -> int:
    """The client's flags that a server grants, plus what a domain member always says."""
    granted = client_flags & (
        NEGOTIATE_SIGN
        | NEGOTIATE_ALWAYS_SIGN
        | EXTENDED_SESSIONSECURITY
        | NEGOTIATE_128
        | NEGOTIATE_KEY_EXCH
        | NEGOTIATE_56
    )
    charset = NEGOTIATE_UNICODE if client_flags & NEGOTIATE_UNICODE else NEGOTIATE_OEM
    return (
        granted
        | charset
        | REQUEST_TARGET
        | NEGOTIATE_NTLM
        | TARGET_TYPE_DOMAIN
        | NEGOTIATE_TARGET_INFO
        | NEGOTIATE_VERSION
    )


def _av_pairs(identity: Identity, when: datetime) -> bytes:
    pairs = [
        (AV_NB_DOMAIN, identity.netbios_domain),
        (AV_NB_COMPUTER, identity.netbios_computer),
        (AV_DNS_DOMAIN, identity.dns_domain),
        (AV_DNS_COMPUTER, identity.dns_computer),
        (AV_DNS_FOREST, identity.dns_forest),
    ]
    out = b"".join(_av(av_id, text.encode("utf-16-le")) for av_id, text in pairs)
    out += _av(AV_TIMESTAMP, filetime(when).to_bytes(8, "little"))
    return out + _av(AV_EOL, b"")


def _av(av_id: int, value: bytes) -> bytes:
    return _AV.pack(av_id, len(value)) + value
