"""The sniffer names the domain controller's binary protocols from a server's first bytes, as
it names the text ones, and leaves everything else unnamed."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from portcall.protocols.dcerpc.messages import BIND_ACK, pdu
from portcall.protocols.kerberos.messages import KDC_ERR_C_PRINCIPAL_UNKNOWN, krb_error
from portcall.protocols.sniff import identify

SMB2_NEGOTIATE_REPLY = b"\x00\x00\x00\x80\xfeSMB\x40\x00" + bytes(118)
SMB1_REPLY = b"\x00\x00\x00\x40\xffSMBr" + bytes(59)


def test_a_dce_rpc_bind_ack_is_named() -> None:
    assert identify(pdu(BIND_ACK, 1, bytes(40))) == "DCE/RPC"


def test_smb2_and_smb1_replies_are_named() -> None:
    assert identify(SMB2_NEGOTIATE_REPLY) == "SMB"
    assert identify(SMB1_REPLY) == "SMB"


def test_a_krb_error_over_tcp_is_named() -> None:
    wire = krb_error(KDC_ERR_C_PRINCIPAL_UNKNOWN, "EXAMPLE.TEST", datetime.now(UTC))
    assert identify(len(wire).to_bytes(4, "big") + wire) == "Kerberos"


@pytest.mark.parametrize(
    "data",
    [
        b"\x05\x00\x0b\x03\x10\x00\x00\x00",  # a client's bind: not what a server sends
        b"\x00\x00\x00\x10NOTSMB!!",
        b"\x00\x00\x00\x05\x30\x03\x02\x01\x01",  # length then an LDAP message: not Kerberos
        b"\x05",
        bytes(16),
    ],
)
def test_near_misses_are_not_named(data: bytes) -> None:
    assert identify(data) is None
