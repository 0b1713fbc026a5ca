"""CLDAP, the LDAP "ping" of the DC locator (MS-ADTS 6.3.3), client and server roles.

The client sends one SearchRequest for the Netlogon attribute with a DnsDomain and NtVer
filter, over UDP (one datagram each way) or TCP (BER-framed LDAP), and decodes the
NETLOGON_SAM_LOGON_RESPONSE_EX it gets: the DC's names, its site and the client's, and the
DS_* flags that tell a locator whether it is a GC, a KDC, writable, in the closest site.
The server role answers that ping for its own domain.
"""

from __future__ import annotations

from portcall.protocols.cldap.client import MAX_REPLIES, CldapClient
from portcall.protocols.cldap.messages import (
    DS_FLAGS,
    EX_OPCODES,
    LOGON_SAM_LOGON_RESPONSE_EX,
    LOGON_SAM_PAUSE_RESPONSE_EX,
    LOGON_SAM_USER_UNKNOWN_EX,
    MAX_BLOB,
    MAX_MESSAGES_PER_DATAGRAM,
    MAX_NAME,
    MAX_POINTERS,
    NAME_FIELDS,
    NETLOGON_ATTRIBUTE,
    NT_VERSION_5EX,
    RESPONSE_NT_VERSION,
    SAMBA_DC_FLAGS,
    MalformedMessage,
    MalformedResponse,
    NetlogonResponse,
    decode_name,
    decode_response,
    encode_response,
    flag_names,
    netlogon_entry,
    ping_request,
)
from portcall.protocols.cldap.server import (
    DEFAULT_DOMAIN_GUID,
    DEFAULT_SITE,
    MAX_REQUESTS,
    CldapServer,
)
from portcall.protocols.framing import TRANSPORTS

__all__ = [
    "DEFAULT_DOMAIN_GUID",
    "DEFAULT_SITE",
    "DS_FLAGS",
    "EX_OPCODES",
    "LOGON_SAM_LOGON_RESPONSE_EX",
    "LOGON_SAM_PAUSE_RESPONSE_EX",
    "LOGON_SAM_USER_UNKNOWN_EX",
    "MAX_BLOB",
    "MAX_MESSAGES_PER_DATAGRAM",
    "MAX_NAME",
    "MAX_POINTERS",
    "MAX_REPLIES",
    "MAX_REQUESTS",
    "NAME_FIELDS",
    "NETLOGON_ATTRIBUTE",
    "NT_VERSION_5EX",
    "RESPONSE_NT_VERSION",
    "SAMBA_DC_FLAGS",
    "TRANSPORTS",
    "CldapClient",
    "CldapServer",
    "MalformedMessage",
    "MalformedResponse",
    "NetlogonResponse",
    "decode_name",
    "decode_response",
    "encode_response",
    "flag_names",
    "netlogon_entry",
    "ping_request",
]
