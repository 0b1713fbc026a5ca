"""Responders: asyncio servers that answer on catalog ports as the real services would.

They drive the server-role handshakes of `portcall.protocols`, log one line per connection
(who reached which port: a firewall test from the server side), and are the target of
`portcall demo` and of the test suite.
"""

from __future__ import annotations

from portcall.protocols.base import PROFILES
from portcall.responders.binding import BindError
from portcall.responders.certs import LabCertificates, LabError, ensure_lab, server_context
from portcall.responders.log import ConnectionRecord, format_record
from portcall.responders.server import Fault, Responder, ResponderConfig

__all__ = [
    "PROFILES",
    "BindError",
    "ConnectionRecord",
    "Fault",
    "LabCertificates",
    "LabError",
    "Responder",
    "ResponderConfig",
    "ensure_lab",
    "format_record",
    "server_context",
]
