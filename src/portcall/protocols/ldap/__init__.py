"""LDAPv3 (RFC 4511) rootDSE read and StartTLS (RFC 4511 section 4.14, RFC 4513 section 3),
client and server roles.

The client asks first: no bind is needed, since LDAPv3 allows operations before a bind (RFC 4511
section 4.2.1) and Active Directory serves its rootDSE anonymously (MS-ADTS 5.1.3). Messages are
BER, built and parsed with pyasn1 and the LDAPv3 schema of pyasn1-modules; `messages` only
reads the outer tag and length to know where one message ends.

The server role answers as an Active Directory domain controller answers a client that has not
authenticated: anonymous bind, the rootDSE, StartTLS; every other request is refused.
"""

from __future__ import annotations

from portcall.protocols.ldap.client import (
    MAX_SEARCH_MESSAGES,
    MAX_UNSOLICITED,
    LdapClient,
    RootDSE,
    attribute,
    product_from_rootdse,
)
from portcall.protocols.ldap.messages import (
    ACTIVE_DIRECTORY_OID,
    AD_LDS_OID,
    ADMIN_LIMIT_EXCEEDED,
    AUTH_METHOD_NOT_SUPPORTED,
    DECODE_ERRORS,
    INVALID_CREDENTIALS,
    MAX_DEPTH,
    MAX_ELEMENTS,
    NO_SUCH_OBJECT,
    NOTICE_OF_DISCONNECTION_OID,
    OPERATIONS_ERROR,
    PROTOCOL_ERROR,
    ROOTDSE_ATTRIBUTES,
    STARTTLS_OID,
    SUCCESS,
    UNAVAILABLE_CRITICAL_EXTENSION,
    UNWILLING_TO_PERFORM,
    Attributes,
    FramingError,
    LdapResult,
    count_elements,
    notice_of_disconnection,
    read_frame,
    result_name,
)
from portcall.protocols.ldap.rootdse import AD_V51_OID, NEUTRAL_VENDOR
from portcall.protocols.ldap.server import MAX_FAILURES, RESPONSE_TO, LdapServer

__all__ = [
    "ACTIVE_DIRECTORY_OID",
    "ADMIN_LIMIT_EXCEEDED",
    "AD_LDS_OID",
    "AD_V51_OID",
    "AUTH_METHOD_NOT_SUPPORTED",
    "DECODE_ERRORS",
    "INVALID_CREDENTIALS",
    "MAX_DEPTH",
    "MAX_ELEMENTS",
    "MAX_FAILURES",
    "MAX_SEARCH_MESSAGES",
    "MAX_UNSOLICITED",
    "NEUTRAL_VENDOR",
    "NOTICE_OF_DISCONNECTION_OID",
    "NO_SUCH_OBJECT",
    "OPERATIONS_ERROR",
    "PROTOCOL_ERROR",
    "RESPONSE_TO",
    "ROOTDSE_ATTRIBUTES",
    "STARTTLS_OID",
    "SUCCESS",
    "UNAVAILABLE_CRITICAL_EXTENSION",
    "UNWILLING_TO_PERFORM",
    "Attributes",
    "FramingError",
    "LdapClient",
    "LdapResult",
    "LdapServer",
    "RootDSE",
    "attribute",
    "count_elements",
    "notice_of_disconnection",
    "product_from_rootdse",
    "read_frame",
    "result_name",
]
