"""The endpoint mapper's payloads: protocol towers (C706 appendix L, MS-RPCE 2.2.1.2) and the
NDR of ept_map (C706 appendix O), both roles' requests and responses."""

from __future__ import annotations

import ipaddress
import struct
import uuid
from dataclasses import dataclass
from typing import Final

from portcall.protocols.dcerpc.messages import NDR, Interface, MalformedPdu

#: Floor protocol identifiers (C706 appendix I).
UUID_ID: Final = 0x0D
NCACN_ID: Final = 0x0B
TCP_ID: Final = 0x07
IP_ID: Final = 0x09
#: Floors of one tower and towers of one answer, at most; a TCP tower has five floors.
MAX_FLOORS: Final = 8
MAX_TOWERS: Final = 4
MAX_TOWER_BYTES: Final = 1024
#: The referent ID of the first non-null unique pointer; any non-zero value will do, and Samba
#: starts at 2, then counts up.
_REFERENT: Final = 2
_NULL_HANDLE: Final = b"\x00" * 20


@dataclass(frozen=True)
class Tower:
    """What a TCP tower says: which interface, on which port and address."""

    interface_uuid: uuid.UUID
    major: int
    minor: int
    protocol: int | None = None
    port: int | None = None
    address: str | None = None


# -- towers ------------------------------------------------------------------------------------


def _floor(lhs: bytes, rhs: bytes) -> bytes:
    return struct.pack("<H", len(lhs)) + lhs + struct.pack("<H", len(rhs)) + rhs


def tcp_tower(interface: Interface, port: int = 0, address: str = "0.0.0.0") -> bytes:
    """Five floors: interface, NDR, connection-oriented RPC, TCP port, IP address. Ports and
    addresses are big-endian, everything else little-endian."""
    floors = [
        _floor(
            bytes([UUID_ID]) + interface.uuid.bytes_le + struct.pack("<H", interface.major),
            struct.pack("<H", interface.minor),
        ),
        _floor(bytes([UUID_ID]) + NDR.uuid.bytes_le + struct.pack("<H", NDR.major), b"\x00\x00"),
        _floor(bytes([NCACN_ID]), b"\x00\x00"),
        _floor(bytes([TCP_ID]), struct.pack(">H", port)),
        _floor(bytes([IP_ID]), ipaddress.IPv4Address(address).packed),
    ]
    return struct.pack("<H", len(floors)) + b"".join(floors)


def parse_tower(data: bytes) -> Tower:
    """The interface of floor 1 and the TCP port and IPv4 address floors, when present."""
    if len(data) < 2:
        raise MalformedPdu("a protocol tower cut short")
    count = struct.unpack_from("<H", data)[0]
    if not 1 <= count <= MAX_FLOORS:
        raise MalformedPdu(f"a protocol tower of {count} floors")
    floors, pos = [], 2
    for _ in range(count):
        lhs, pos = _counted(data, pos)
        rhs, pos = _counted(data, pos)
        floors.append((lhs, rhs))
    first_lhs, first_rhs = floors[0]
    if len(first_lhs) != 19 or first_lhs[0] != UUID_ID or len(first_rhs) != 2:
        raise MalformedPdu("a protocol tower whose first floor is not an interface")
    tower = Tower(uuid.UUID(bytes_le=first_lhs[1:17]), *_versions(first_lhs, first_rhs))
    return _with_transport(tower, floors[2:])


def _versions(lhs: bytes, rhs: bytes) -> tuple[int, int]:
    major: int = struct.unpack_from("<H", lhs, 17)[0]
    minor: int = struct.unpack_from("<H", rhs)[0]
    return major, minor


def _with_transport(tower: Tower, floors: list[tuple[bytes, bytes]]) -> Tower:
    protocol, port, address = None, None, None
    for lhs, rhs in floors:
        kind = lhs[0] if lhs else None
        if kind == NCACN_ID:
            protocol = kind
        elif kind == TCP_ID and len(rhs) == 2:
            port = struct.unpack(">H", rhs)[0]
        elif kind == IP_ID and len(rhs) == 4:
            address = str(ipaddress.IPv4Address(rhs))
    return Tower(tower.interface_uuid, tower.major, tower.minor, protocol, port, address)


def _counted(data: bytes, pos: int) -> tuple[bytes, int]:
    if pos + 2 > len(data):
        raise MalformedPdu("a tower floor cut short")
    size = struct.unpack_from("<H", data, pos)[0]
    end = pos + 2 + size
    if end > len(data):
        raise MalformedPdu("a tower floor longer than its tower")
    return data[pos + 2 : end], end


# -- ept_map NDR -------------------------------------------------------------------------------


def _twr(tower: bytes) -> bytes:
    """twr_t: its length, then the conformant octet array (max count, bytes), padded to 4."""
    body = struct.pack("<II", len(tower), len(tower)) + tower
    return body + b"\x00" * (-len(body) % 4)


def map_request(interface: Interface, max_towers: int = MAX_TOWERS) -> bytes:
    """ept_map's in parameters: a null object, a TCP tower for `interface`, a null context
    handle, and how many towers may come back."""
    stub = struct.pack("<I", 0)  # object: a null unique pointer
    stub += struct.pack("<I", _REFERENT) + _twr(tcp_tower(interface))
    return stub + _NULL_HANDLE + struct.pack("<I", max_towers)


def parse_map_request(stub: bytes) -> tuple[Tower, int]:
    """The tower asked for and max_towers, from ept_map's in parameters."""
    pos = 4
    (object_ref,) = _unpack("<I", stub, 0)
    if object_ref:
        pos += 16
    (tower_ref,) = _unpack("<I", stub, pos)
    if not tower_ref:
        raise MalformedPdu("an ept_map with no tower")
    tower, pos = _read_twr(stub, pos + 4)
    (max_towers,) = _unpack("<I", stub, pos + 20)
    return parse_tower(tower), max_towers


def map_response(towers: list[bytes], status: int, max_towers: int = MAX_TOWERS) -> bytes:
    """ept_map's out parameters: the handle, the towers (a conformant varying array of unique
    pointers, then what they point to), and the status."""
    count = len(towers)
    stub = _NULL_HANDLE + struct.pack("<I", count)
    stub += struct.pack("<III", max(max_towers, count), 0, count)
    stub += b"".join(struct.pack("<I", _REFERENT + i) for i in range(count))
    stub += b"".join(_twr(tower) for tower in towers)
    return stub + struct.pack("<I", status)


def parse_map_response(stub: bytes) -> tuple[list[Tower], int]:
    """The towers and status of ept_map's answer; counts are capped and checked first."""
    (count,) = _unpack("<I", stub, 20)
    _, offset, actual = _unpack("<III", stub, 24)
    if count > MAX_TOWERS or actual != count or offset != 0:
        raise MalformedPdu(f"an ept_map answer of {count} towers ({actual} sent)")
    pointers = _unpack(f"<{count}I", stub, 36)
    pos, towers = 36 + 4 * count, []
    for pointer in pointers:
        if pointer:
            tower, pos = _read_twr(stub, pos)
            towers.append(parse_tower(tower))
    (status,) = _unpack("<I", stub, pos)
    return towers, status


# -- ept_lookup NDR ----------------------------------------------------------------------------


def parse_lookup_request(stub: bytes) -> tuple[int, int]:
    """Where to resume (from the context handle) and max_ents, from ept_lookup's in parameters
    (C706 appendix O): the inquiry type, an optional object UUID, an optional interface id, the
    version option, the handle, max_ents."""
    pos = 4
    (object_ref,) = _unpack("<I", stub, pos)
    pos += 4 + (16 if object_ref else 0)
    (interface_ref,) = _unpack("<I", stub, pos)
    pos += 4 + (20 if interface_ref else 0)
    handle = stub[pos + 4 : pos + 24]
    (max_ents,) = _unpack("<I", stub, pos + 24)
    return lookup_position(handle), max_ents


def lookup_handle(position: int) -> bytes:
    """A context handle that remembers where the next ept_lookup resumes: the position sits in
    the handle's UUID, which only its issuer reads."""
    return struct.pack("<I", 0) + uuid.UUID(int=position + 1).bytes_le


def lookup_position(handle: bytes) -> int:
    """Where a handle from `lookup_handle` resumes; 0 for the null handle or a stranger's."""
    if len(handle) != 20 or handle == _NULL_HANDLE:
        return 0
    value = uuid.UUID(bytes_le=handle[4:]).int
    return value - 1 if 0 < value <= MAX_TOWERS + 1 else 0


def lookup_response(
    entries: list[tuple[str, bytes]], status: int, max_ents: int, handle: bytes = _NULL_HANDLE
) -> bytes:
    """ept_lookup's out parameters: the handle, then the entries, a conformant varying array
    of ept_entry_t (nil object UUID, tower pointer, annotation as a varying string), their
    towers after them, and the status."""
    count = len(entries)
    stub = handle + struct.pack("<I", count)
    stub += struct.pack("<III", max(max_ents, count), 0, count)
    for index, (annotation, _) in enumerate(entries):
        text = annotation.encode("ascii", "replace")[:63] + b"\x00"
        entry = b"\x00" * 16 + struct.pack("<III", _REFERENT + index, 0, len(text)) + text
        stub += entry + b"\x00" * (-len(entry) % 4)
    stub += b"".join(_twr(tower) for _, tower in entries)
    return stub + struct.pack("<I", status)


def _read_twr(stub: bytes, pos: int) -> tuple[bytes, int]:
    length, max_count = _unpack("<II", stub, pos)
    if length != max_count or length > MAX_TOWER_BYTES or pos + 8 + length > len(stub):
        raise MalformedPdu(f"a tower of {length} bytes that does not fit")
    end = pos + 8 + length
    return stub[pos + 8 : end], end + (-(end - pos) % 4)


def _unpack(fmt: str, data: bytes, pos: int) -> tuple[int, ...]:
    size = struct.calcsize(fmt)
    if pos < 0 or pos + size > len(data):
        raise MalformedPdu("an ept_map message cut short")
    return struct.unpack_from(fmt, data, pos)
