"""kpasswd, the Kerberos password-change service (RFC 3244), as far as a client without
credentials can go: a change request that no key opens, refused with a KRB-ERROR that proves the
service and names its realm; over UDP or TCP (with Kerberos's 4-byte length prefix). Client and
server roles; the Kerberos messages are those of `portcall.protocols.kerberos`.

The server role refuses every request, as a KDC refuses an unauthenticated change.
"""

from __future__ import annotations

from portcall.protocols.kpasswd.client import (
    BARE_ERROR_NOTE,
    CODE_IS_RESULT_NOTE,
    REPLY_VERSIONS,
    KpasswdClient,
)
from portcall.protocols.kpasswd.messages import (
    AP_REP,
    AP_REQ,
    CHANGE_PASSWORD_VERSION,
    CHANGEPW_SERVICE,
    KPASSWD_AUTHERROR,
    KPASSWD_BAD_VERSION,
    KPASSWD_HARDERROR,
    KPASSWD_MALFORMED,
    KRB_AP_ERR_MODIFIED,
    KRB_PRIV,
    REPLY_VERSION,
    RESULTS,
    SET_PASSWORD_VERSION,
    MalformedReply,
    error_reply,
    probe_request,
    refusal,
    result_meaning,
    result_name,
    result_of,
    split,
)
from portcall.protocols.kpasswd.server import AUTH_NOTE, MAX_REQUESTS, KpasswdServer

__all__ = [
    "AP_REP",
    "AP_REQ",
    "AUTH_NOTE",
    "BARE_ERROR_NOTE",
    "CHANGEPW_SERVICE",
    "CHANGE_PASSWORD_VERSION",
    "CODE_IS_RESULT_NOTE",
    "KPASSWD_AUTHERROR",
    "KPASSWD_BAD_VERSION",
    "KPASSWD_HARDERROR",
    "KPASSWD_MALFORMED",
    "KRB_AP_ERR_MODIFIED",
    "KRB_PRIV",
    "MAX_REQUESTS",
    "REPLY_VERSION",
    "REPLY_VERSIONS",
    "RESULTS",
    "SET_PASSWORD_VERSION",
    "KpasswdClient",
    "KpasswdServer",
    "MalformedReply",
    "error_reply",
    "probe_request",
    "refusal",
    "result_meaning",
    "result_name",
    "result_of",
    "split",
]
