# mypy: disallow-subclassing-any=False
"""The RFC 4120 (appendix A) types both Kerberos roles exchange, declared for pyasn1: the
AS-REQ a client sends, the KRB-ERROR a KDC answers, and what they are built from. Only the
messages an unauthenticated exchange carries are declared."""

from __future__ import annotations

from typing import Any

from pyasn1.type import char, constraint, namedtype, tag, univ, useful


def _explicit(number: int, asn1: Any) -> Any:
    """`asn1` wrapped in the context tag [number] (RFC 4120 uses EXPLICIT TAGS)."""
    return asn1.subtype(explicitTag=tag.Tag(tag.tagClassContext, tag.tagFormatSimple, number))


def _application(number: int) -> tag.TagSet:
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
        namedtype.NamedType("name-type", _explicit(0, Int32())),
        namedtype.NamedType(
            "name-string", _explicit(1, univ.SequenceOf(componentType=KerberosString()))
        ),
    )


class HostAddress(univ.Sequence):
    componentType = namedtype.NamedTypes(
        namedtype.NamedType("addr-type", _explicit(0, Int32())),
        namedtype.NamedType("address", _explicit(1, univ.OctetString())),
    )


class EncryptedData(univ.Sequence):
    componentType = namedtype.NamedTypes(
        namedtype.NamedType("etype", _explicit(0, Int32())),
        namedtype.OptionalNamedType("kvno", _explicit(1, UInt32())),
        namedtype.NamedType("cipher", _explicit(2, univ.OctetString())),
    )


class Ticket(univ.Sequence):
    tagSet = _application(1)
    componentType = namedtype.NamedTypes(
        namedtype.NamedType("tkt-vno", _explicit(0, univ.Integer())),
        namedtype.NamedType("realm", _explicit(1, Realm())),
        namedtype.NamedType("sname", _explicit(2, PrincipalName())),
        namedtype.NamedType("enc-part", _explicit(3, EncryptedData())),
    )


class PAData(univ.Sequence):
    componentType = namedtype.NamedTypes(
        namedtype.NamedType("padata-type", _explicit(1, Int32())),
        namedtype.NamedType("padata-value", _explicit(2, univ.OctetString())),
    )


class KDCOptions(univ.BitString):
    pass


class KDCReqBody(univ.Sequence):
    componentType = namedtype.NamedTypes(
        namedtype.NamedType("kdc-options", _explicit(0, KDCOptions())),
        namedtype.OptionalNamedType("cname", _explicit(1, PrincipalName())),
        namedtype.NamedType("realm", _explicit(2, Realm())),
        namedtype.OptionalNamedType("sname", _explicit(3, PrincipalName())),
        namedtype.OptionalNamedType("from", _explicit(4, KerberosTime())),
        namedtype.NamedType("till", _explicit(5, KerberosTime())),
        namedtype.OptionalNamedType("rtime", _explicit(6, KerberosTime())),
        namedtype.NamedType("nonce", _explicit(7, UInt32())),
        namedtype.NamedType("etype", _explicit(8, univ.SequenceOf(componentType=Int32()))),
        namedtype.OptionalNamedType(
            "addresses", _explicit(9, univ.SequenceOf(componentType=HostAddress()))
        ),
        namedtype.OptionalNamedType("enc-authorization-data", _explicit(10, EncryptedData())),
        namedtype.OptionalNamedType(
            "additional-tickets", _explicit(11, univ.SequenceOf(componentType=Ticket()))
        ),
    )


class ASReq(univ.Sequence):
    """AS-REQ ::= [APPLICATION 10] KDC-REQ."""

    tagSet = _application(10)
    componentType = namedtype.NamedTypes(
        namedtype.NamedType("pvno", _explicit(1, univ.Integer())),
        namedtype.NamedType("msg-type", _explicit(2, univ.Integer())),
        namedtype.OptionalNamedType(
            "padata", _explicit(3, univ.SequenceOf(componentType=PAData()))
        ),
        namedtype.NamedType("req-body", _explicit(4, KDCReqBody())),
    )


class KRBError(univ.Sequence):
    """KRB-ERROR ::= [APPLICATION 30] SEQUENCE."""

    tagSet = _application(30)
    componentType = namedtype.NamedTypes(
        namedtype.NamedType("pvno", _explicit(0, univ.Integer())),
        namedtype.NamedType("msg-type", _explicit(1, univ.Integer())),
        namedtype.OptionalNamedType("ctime", _explicit(2, KerberosTime())),
        namedtype.OptionalNamedType("cusec", _explicit(3, Microseconds())),
        namedtype.NamedType("stime", _explicit(4, KerberosTime())),
        namedtype.NamedType("susec", _explicit(5, Microseconds())),
        namedtype.NamedType("error-code", _explicit(6, Int32())),
        namedtype.OptionalNamedType("crealm", _explicit(7, Realm())),
        namedtype.OptionalNamedType("cname", _explicit(8, PrincipalName())),
        namedtype.NamedType("realm", _explicit(9, Realm())),
        namedtype.NamedType("sname", _explicit(10, PrincipalName())),
        namedtype.OptionalNamedType("e-text", _explicit(11, KerberosString())),
        namedtype.OptionalNamedType("e-data", _explicit(12, univ.OctetString())),
    )
