"""SPNEGO (RFC 4178) tokens as pyasn1 types: only what a server-side NTLM start needs, the
client's NegTokenInit inside a GSS-API InitialContextToken (RFC 2743 section 3.1) and the
server's NegTokenResp. pyasn1-modules carries no SPNEGO module, so the few types are here."""

from __future__ import annotations

from typing import Any, Final

from pyasn1.codec.der import decoder, encoder
from pyasn1.error import PyAsn1Error
from pyasn1.type import namedtype, tag, univ

SPNEGO_OID: Final = "1.3.6.1.5.5.2"
NTLMSSP_OID: Final = "1.3.6.1.4.1.311.2.2.10"
#: negState (RFC 4178 section 4.2.2).
ACCEPT_INCOMPLETE: Final = 1
REJECT: Final = 2
#: What pyasn1 raises on bytes that are not the type asked for.
DECODE_ERRORS: Final = (PyAsn1Error, ValueError, TypeError, IndexError, KeyError)


def _explicit(number: int) -> tag.Tag:
    return tag.Tag(tag.tagClassContext, tag.tagFormatConstructed, number)


def _optional(name: str, kind: Any, number: int) -> Any:
    return namedtype.OptionalNamedType(name, kind.subtype(explicitTag=_explicit(number)))


_MECH_TYPES: Final = univ.SequenceOf(componentType=univ.ObjectIdentifier())
NEG_TOKEN_INIT: Final = univ.Sequence(
    componentType=namedtype.NamedTypes(
        _optional("mechTypes", _MECH_TYPES, 0),
        _optional("reqFlags", univ.BitString(), 1),
        _optional("mechToken", univ.OctetString(), 2),
        _optional("mechListMIC", univ.OctetString(), 3),
    )
)
NEG_TOKEN_RESP: Final = univ.Sequence(
    componentType=namedtype.NamedTypes(
        _optional("negState", univ.Enumerated(), 0),
        _optional("supportedMech", univ.ObjectIdentifier(), 1),
        _optional("responseToken", univ.OctetString(), 2),
        _optional("mechListMIC", univ.OctetString(), 3),
    )
)
NEGOTIATION_TOKEN: Final = univ.Choice(
    componentType=namedtype.NamedTypes(
        namedtype.NamedType("negTokenInit", NEG_TOKEN_INIT.subtype(explicitTag=_explicit(0))),
        namedtype.NamedType("negTokenResp", NEG_TOKEN_RESP.subtype(explicitTag=_explicit(1))),
    )
)
#: RFC 2743 section 3.1: [APPLICATION 0] IMPLICIT SEQUENCE { thisMech, innerContextToken }.
INITIAL_CONTEXT_TOKEN: Final = univ.Sequence(
    tagSet=univ.Sequence.tagSet.tagImplicitly(
        tag.Tag(tag.tagClassApplication, tag.tagFormatConstructed, 0)
    ),
    componentType=namedtype.NamedTypes(
        namedtype.NamedType("thisMech", univ.ObjectIdentifier()),
        namedtype.NamedType("innerContextToken", NEGOTIATION_TOKEN),
    ),
)


class SpnegoError(ValueError):
    """A security blob that is neither raw NTLMSSP nor the SPNEGO token expected."""


def server_hint() -> bytes:
    """The negotiate response's security blob: SPNEGO offering NTLMSSP alone."""
    token = INITIAL_CONTEXT_TOKEN.clone()
    token["thisMech"] = SPNEGO_OID
    init = token["innerContextToken"]["negTokenInit"]
    init["mechTypes"].append(NTLMSSP_OID)
    result: bytes = encoder.encode(token)
    return result


def wrap_init(token: bytes) -> bytes:
    """A client's first SPNEGO token: NTLMSSP as the only mechanism, `token` as its start."""
    wrapped = INITIAL_CONTEXT_TOKEN.clone()
    wrapped["thisMech"] = SPNEGO_OID
    init = wrapped["innerContextToken"]["negTokenInit"]
    init["mechTypes"].append(NTLMSSP_OID)
    init["mechToken"] = token
    result: bytes = encoder.encode(wrapped)
    return result


def mech_token(blob: bytes) -> bytes:
    """The mechanism token inside a client's SPNEGO NegTokenInit or NegTokenResp."""
    token = _decode(
        blob, INITIAL_CONTEXT_TOKEN.clone() if blob[:1] == b"\x60" else NEGOTIATION_TOKEN.clone()
    )
    inner = token["innerContextToken"] if blob[:1] == b"\x60" else token
    chosen = inner.getComponent()
    field = "mechToken" if inner.getName() == "negTokenInit" else "responseToken"
    if not chosen[field].isValue:
        raise SpnegoError("a SPNEGO token without a mechanism token")
    return bytes(chosen[field])


def response_token(blob: bytes) -> bytes:
    """The mechanism token of a server's NegTokenResp."""
    token = _decode(blob, NEGOTIATION_TOKEN.clone())
    if token.getName() != "negTokenResp":
        raise SpnegoError("a SPNEGO negTokenInit where a negTokenResp was expected")
    resp = token.getComponent()
    if not resp["responseToken"].isValue:
        raise SpnegoError("a SPNEGO negTokenResp without a response token")
    return bytes(resp["responseToken"])


def wrap_response(token: bytes, state: int = ACCEPT_INCOMPLETE) -> bytes:
    choice = NEGOTIATION_TOKEN.clone()
    resp = choice["negTokenResp"]
    resp["negState"] = state
    resp["supportedMech"] = NTLMSSP_OID
    resp["responseToken"] = token
    result: bytes = encoder.encode(choice)
    return result


def _decode(blob: bytes, spec: Any) -> Any:
    try:
        token, rest = decoder.decode(blob, asn1Spec=spec)
    except DECODE_ERRORS as error:
        raise SpnegoError(f"a security blob that is not SPNEGO ({error})") from None
    if rest:
        raise SpnegoError("bytes after the SPNEGO token")
    return token
