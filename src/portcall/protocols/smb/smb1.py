"""The SMB1 NEGOTIATE (MS-CIFS 2.2.4.52, MS-SMB 2.2.4.5) as far as SMB2 needs it: the
multi-protocol hello that Windows clients since Vista open with, listing "NT LM 0.12" beside
the SMB2 dialect strings (MS-SMB2 3.2.4.2.2.1), and the NT LM 0.12 response of a server that
speaks SMB1 only (Windows 2000 and Server 2003, which close on a bare SMB2 hello)."""

from __future__ import annotations

import struct
import uuid
from typing import Final

from portcall.protocols.ntlm.messages import filetime_text
from portcall.protocols.smb.messages import SMB1_MAGIC, SmbError

COMMAND_NEGOTIATE: Final = 0x72
NT_LM: Final = "NT LM 0.12"
SMB2_002: Final = "SMB 2.002"
SMB2_WILDCARD: Final = "SMB 2.???"
CLIENT_DIALECTS: Final = (NT_LM, SMB2_002, SMB2_WILDCARD)
#: Flags2: long names, NT status codes, Unicode, extended security.
_FLAGS2: Final = 0x0001 | 0x0800 | 0x4000 | 0x8000
_HEADER: Final = struct.Struct("<4sBIBHH8sHHHHH")
#: NT LM 0.12 response parameters (MS-SMB 2.2.4.5.2), after WordCount.
_NT_LM_RESPONSE: Final = struct.Struct("<HBHHIIIIQhB")
_EXTENDED_SECURITY: Final = 0x80000000
#: More dialect strings than any client sends (Windows sends eight at most).
MAX_DIALECTS: Final = 32

SECURITY_MODE_NAMES: Final = {
    0x01: "USER_SECURITY",
    0x02: "ENCRYPT_PASSWORDS",
    0x04: "SIGNATURES_ENABLED",
    0x08: "SIGNATURES_REQUIRED",
}


def negotiate_request(dialects: tuple[str, ...] = CLIENT_DIALECTS) -> bytes:
    header = _HEADER.pack(
        SMB1_MAGIC, COMMAND_NEGOTIATE, 0, 0x18, _FLAGS2, 0, bytes(8), 0, 0, 0, 0, 0
    )
    names = b"".join(b"\x02" + name.encode("ascii") + b"\x00" for name in dialects)
    return header + b"\x00" + struct.pack("<H", len(names)) + names


def requested_dialects(message: bytes) -> list[str]:
    """The dialect strings of an SMB1 NEGOTIATE request, at most `MAX_DIALECTS`."""
    at = _HEADER.size
    if len(message) < at + 3 or message[4] != COMMAND_NEGOTIATE:
        raise SmbError("an SMB1 message that is not a NEGOTIATE request")
    words = message[at]
    count_at = at + 1 + 2 * words
    if len(message) < count_at + 2:
        raise SmbError("an SMB1 NEGOTIATE request too short for its byte count")
    size = struct.unpack_from("<H", message, count_at)[0]
    data = message[count_at + 2 : count_at + 2 + size]
    names = [part[1:].decode("latin-1") for part in data.split(b"\x00") if part[:1] == b"\x02"]
    if len(names) > MAX_DIALECTS:
        raise SmbError(f"an SMB1 NEGOTIATE listing {len(names)} dialects")
    return names


def describe_response(
    message: bytes, offered: tuple[str, ...] = CLIENT_DIALECTS
) -> dict[str, object]:
    """The facts of an SMB1 NEGOTIATE response: the dialect chosen and, for NT LM 0.12,
    signing, capabilities, time and the server GUID of extended security."""
    at = _HEADER.size
    if len(message) < at + 3 or message[4] != COMMAND_NEGOTIATE:
        raise SmbError("an SMB1 message that is not a NEGOTIATE response")
    words = message[at]
    index = struct.unpack_from("<H", message, at + 1)[0]
    if index >= len(offered):
        raise SmbError(f"an SMB1 server chose dialect {index}, which was not offered")
    facts: dict[str, object] = {"dialect": f"{offered[index]} (SMB1)", "smb1_only": True}
    if words == 17 and len(message) >= at + 1 + _NT_LM_RESPONSE.size + 2:
        facts.update(_nt_lm(message, at + 1))
    return facts


def _nt_lm(message: bytes, at: int) -> dict[str, object]:
    (_, mode, _, _, max_buffer, _, _, caps, now, _, _) = _NT_LM_RESPONSE.unpack_from(message, at)
    facts: dict[str, object] = {
        "security_mode": [name for bit, name in SECURITY_MODE_NAMES.items() if mode & bit],
        "signing_required": bool(mode & 0x08),
        "max_buffer_size": max_buffer,
        "system_time": filetime_text(now),
    }
    blob_at = at + _NT_LM_RESPONSE.size + 2
    if caps & _EXTENDED_SECURITY and len(message) >= blob_at + 16:
        facts["server_guid"] = str(uuid.UUID(bytes_le=message[blob_at : blob_at + 16]))
    return facts
