# mypy: disallow-subclassing-any=False
"""The RFC 4120 (appendix A) types both Kerberos roles exchange, declared for pyasn1: the
AS-REQ a client sends, the KRB-ERROR a KDC answers, and what they are built from. Only the
messages an unauthenticated exchange carries are declared."""

from __future__ import annotations

from typing import Any

from pyasn1.type import char, constraint, namedtype, tag, univ, useful


def explicit(number: int, asn1: Any) -> Any:
    """`asn1` wrapped in the context tag [number] (RFC 4120 uses EXPLICIT TAGS)."""
    return asn1.subtype(explicitTag=tag.Tag(tag.tagClassContext, tag.tagFormatSimple, number))


def application(number: int) -> tag.TagSet:
    return univ.Sequence.tagSet.tagExplicitly(
        tag.Tag(tag.tagClassApplication, tag.tagFormatConstructed, number)
    )


class Int32(univ.Integer):
    subtypeSpec = univ.Integer.subtypeSpec + constraint.ValueRangeConstraint(-(2**31), 2**31 - 1)


class UInt32(univ.Integer):
    subtypeSpec = univ.Integer.subtypeSpec + constraint.ValueRangeConstraint(0, 2**32 - 1)


class Microseconds(univ.Integer):
    subtypeSpec = univ.Integer.subtypeSpec + constraint.ValueRangeConstraint(0, 999999)


class KerberosString(char.GeneralString):
    pass


class Realm(KerberosString):
    pass


class KerberosTime(useful.GeneralizedTime):
    pass


class PrincipalName(univ.Sequence):
    componentType = namedtype.NamedTypes(
        namedtype.NamedType("name-type", explicit(0, Int32())),
        namedtype.NamedType(
            "name-string", explicit(1, univ.SequenceOf(componentType=KerberosString()))
        ),
    )


class HostAddress(univ.Sequence):
    componentType = namedtype.NamedTypes(
        namedtype.NamedType("addr-type", explicit(0, Int32())),
        namedtype.NamedType("address", explicit(1, univ.OctetString())),
    )


class EncryptedData(univ.Sequence):
    componentType = namedtype.NamedTypes(
        namedtype.NamedType("etype", explicit(0, Int32())),
        namedtype.OptionalNamedType("kvno", explicit(1, UInt32())),
        namedtype.NamedType("cipher", explicit(2, univ.OctetString())),
    )


class Ticket(univ.Sequence):
    tagSet = application(1)
    componentType = namedtype.NamedTypes(
        namedtype.NamedType("tkt-vno", explicit(0, univ.Integer())),
        namedtype.NamedType("realm", explicit(1, Realm())),
        namedtype.NamedType("sname", explicit(2, PrincipalName())),
        namedtype.NamedType("enc-part", explicit(3, EncryptedData())),
    )


class PAData(univ.Sequence):
    componentType = namedtype.NamedTypes(
        namedtype.NamedType("padata-type", explicit(1, Int32())),
        namedtype.NamedType("padata-value", explicit(2, univ.OctetString())),
    )


class KDCOptions(univ.BitString):
    pass


class KDCReqBody(univ.Sequence):
    componentType = namedtype.NamedTypes(
        namedtype.NamedType("kdc-options", explicit(0, KDCOptions())),
        namedtype.OptionalNamedType("cname", explicit(1, PrincipalName())),
        namedtype.NamedType("realm", explicit(2, Realm())),
        namedtype.OptionalNamedType("sname", explicit(3, PrincipalName())),
        namedtype.OptionalNamedType("from", explicit(4, KerberosTime())),
        namedtype.NamedType("till", explicit(5, KerberosTime())),
        namedtype.OptionalNamedType("rtime", explicit(6, KerberosTime())),
        namedtype.NamedType("nonce", explicit(7, UInt32())),
        namedtype.NamedType("etype", explicit(8, univ.SequenceOf(componentType=Int32()))),
        namedtype.OptionalNamedType(
            "addresses", explicit(9, univ.SequenceOf(componentType=HostAddress()))
        ),
        namedtype.OptionalNamedType("enc-authorization-data", explicit(10, EncryptedData())),
        namedtype.OptionalNamedType(
            "additional-tickets", explicit(11, univ.SequenceOf(componentType=Ticket()))
        ),
    )


class ASReq(univ.Sequence):
    """AS-REQ ::= [APPLICATION 10] KDC-REQ."""

    tagSet = application(10)
    componentType = namedtype.NamedTypes(
        namedtype.NamedType("pvno", explicit(1, univ.Integer())),
        namedtype.NamedType("msg-type", explicit(2, univ.Integer())),
        namedtype.OptionalNamedType("padata", explicit(3, univ.SequenceOf(componentType=PAData()))),
        namedtype.NamedType("req-body", explicit(4, KDCReqBody())),
    )


class KRBError(univ.Sequence):
    """KRB-ERROR ::= [APPLICATION 30] SEQUENCE."""

    tagSet = application(30)
    componentType = namedtype.NamedTypes(
        namedtype.NamedType("pvno", explicit(0, univ.Integer())),
        namedtype.NamedType("msg-type", explicit(1, univ.Integer())),
        namedtype.OptionalNamedType("ctime", explicit(2, KerberosTime())),
        namedtype.OptionalNamedType("cusec", explicit(3, Microseconds())),
        namedtype.NamedType("stime", explicit(4, KerberosTime())),
        namedtype.NamedType("susec", explicit(5, Microseconds())),
        namedtype.NamedType("error-code", explicit(6, Int32())),
        namedtype.OptionalNamedType("crealm", explicit(7, Realm())),
        namedtype.OptionalNamedType("cname", explicit(8, PrincipalName())),
        namedtype.NamedType("realm", explicit(9, Realm())),
        namedtype.NamedType("sname", explicit(10, PrincipalName())),
        namedtype.OptionalNamedType("e-text", explicit(11, KerberosString())),
        namedtype.OptionalNamedType("e-data", explicit(12, univ.OctetString())),
    )
