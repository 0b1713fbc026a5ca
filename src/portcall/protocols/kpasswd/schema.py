# mypy: disallow-subclassing-any=False
"""The two RFC 4120 messages a kpasswd request carries beyond those the Kerberos roles already
declare: the AP-REQ (section 5.5.1) that authenticates the request and the KRB-PRIV (section
5.7.1) that holds the new password. Both are built from the Kerberos package's types, so the two
packages read one schema."""

from __future__ import annotations

from pyasn1.type import namedtype, univ

from portcall.protocols.kerberos.schema import (
    EncryptedData,
    Ticket,
    application,
    explicit,
)


class APOptions(univ.BitString):
    pass


class APReq(univ.Sequence):
    """AP-REQ ::= [APPLICATION 14] SEQUENCE."""

    tagSet = application(14)
    componentType = namedtype.NamedTypes(
        namedtype.NamedType("pvno", explicit(0, univ.Integer())),
        namedtype.NamedType("msg-type", explicit(1, univ.Integer())),
        namedtype.NamedType("ap-options", explicit(2, APOptions())),
        namedtype.NamedType("ticket", explicit(3, Ticket())),
        namedtype.NamedType("authenticator", explicit(4, EncryptedData())),
    )


class KRBPriv(univ.Sequence):
    """KRB-PRIV ::= [APPLICATION 21] SEQUENCE; field [2] is unused by the RFC."""

    tagSet = application(21)
    componentType = namedtype.NamedTypes(
        namedtype.NamedType("pvno", explicit(0, univ.Integer())),
        namedtype.NamedType("msg-type", explicit(1, univ.Integer())),
        namedtype.NamedType("enc-part", explicit(3, EncryptedData())),
    )


__all__ = ["APOptions", "APReq", "KRBPriv"]
