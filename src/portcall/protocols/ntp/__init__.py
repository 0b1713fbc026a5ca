"""NTP (RFC 5905) over UDP: a client that asks a server for the time once and reads its reply
(stratum, reference, timestamps, a kiss-o'-death), and a server of a fixed stratum that answers
client requests from its clock. NTP has no TCP mapping: asking for one is a LocalProtocolError.
"""

from __future__ import annotations

from portcall.protocols.ntp.client import UNSYNCHRONISED_NOTE, NtpClient
from portcall.protocols.ntp.messages import (
    KISS_CODES,
    LEAP_UNSYNCHRONISED,
    LEAPS,
    MODE_CLIENT,
    MODE_SERVER,
    PACKET_BYTES,
    STRATUM_KISS,
    STRATUM_UNSYNCHRONISED,
    VERSION,
    MalformedPacket,
    NotOurReply,
    NtpError,
    Packet,
    from_timestamp,
    iso,
    reference_bytes,
    reference_text,
    short_seconds,
    to_timestamp,
)
from portcall.protocols.ntp.server import (
    DEFAULT_REFERENCE,
    DEFAULT_STRATUM,
    MAX_REQUESTS,
    NtpServer,
)

__all__ = [
    "DEFAULT_REFERENCE",
    "DEFAULT_STRATUM",
    "KISS_CODES",
    "LEAPS",
    "LEAP_UNSYNCHRONISED",
    "MAX_REQUESTS",
    "MODE_CLIENT",
    "MODE_SERVER",
    "PACKET_BYTES",
    "STRATUM_KISS",
    "STRATUM_UNSYNCHRONISED",
    "UNSYNCHRONISED_NOTE",
    "VERSION",
    "MalformedPacket",
    "NotOurReply",
    "NtpClient",
    "NtpError",
    "NtpServer",
    "Packet",
    "from_timestamp",
    "iso",
    "reference_bytes",
    "reference_text",
    "short_seconds",
    "to_timestamp",
]
