"""Kerberos V5 (RFC 4120) as far as a client without credentials can go: an AS-REQ for a
principal that cannot exist, answered by a KRB-ERROR that proves a KDC and names its realm;
over UDP or TCP (section 7.2). Client and server roles. Messages are DER, built and decoded by
pyasn1 with the RFC 4120 types of `schema`.

The server role is a KDC that knows nobody: KDC_ERR_C_PRINCIPAL_UNKNOWN for its realm,
KDC_ERR_WRONG_REALM for any other.
"""

from __future__ import annotations

from portcall.protocols.framing import MAX_MESSAGE, TRANSPORTS
from portcall.protocols.kerberos.client import AS_REP_NOTE, PROBE_PREFIX, KerberosClient
from portcall.protocols.kerberos.messages import (
    AS_REP,
    AS_REQ,
    DECODE_ERRORS,
    ERRORS,
    FIRST_BYTE,
    KDC_ERR_C_PRINCIPAL_UNKNOWN,
    KDC_ERR_PREAUTH_REQUIRED,
    KDC_ERR_WRONG_REALM,
    KRB_AP_ERR_MSG_TYPE,
    KRB_ERR_FIELD_TOOLONG,
    KRB_ERR_GENERIC,
    KRB_ERROR,
    PVNO,
    KerberosFraming,
    MalformedMessage,
    as_req,
    decode,
    error_meaning,
    error_name,
    krb_error,
)
from portcall.protocols.kerberos.server import MAX_REQUESTS, KerberosServer

__all__ = [
    "AS_REP",
    "AS_REP_NOTE",
    "AS_REQ",
    "DECODE_ERRORS",
    "ERRORS",
    "FIRST_BYTE",
    "KDC_ERR_C_PRINCIPAL_UNKNOWN",
    "KDC_ERR_PREAUTH_REQUIRED",
    "KDC_ERR_WRONG_REALM",
    "KRB_AP_ERR_MSG_TYPE",
    "KRB_ERROR",
    "KRB_ERR_FIELD_TOOLONG",
    "KRB_ERR_GENERIC",
    "MAX_MESSAGE",
    "MAX_REQUESTS",
    "PROBE_PREFIX",
    "PVNO",
    "TRANSPORTS",
    "KerberosClient",
    "KerberosFraming",
    "KerberosServer",
    "MalformedMessage",
    "as_req",
    "decode",
    "error_meaning",
    "error_name",
    "krb_error",
]
