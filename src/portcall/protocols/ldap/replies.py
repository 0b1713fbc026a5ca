"""The replies an LDAP client reads, decoded in one walk of their tags and lengths.

pyasn1 decodes an LDAPMessage against the whole schema, some tens of microseconds per element:
a rootDSE of a hundred values cost half a millisecond, the largest share of a check's CPU. The
replies a client reads (a search's entries, references and done, the StartTLS response, a
notice of disconnection) have a small fixed shape (RFC 4511 sections 4.1.9, 4.5.2, 4.5.3 and
4.12), so they are read here straight from their BER (X.690 section 8.1; definite lengths
only, as RFC 4511 section 5.1 requires), fourteen times faster. pyasn1 still encodes every
request and decodes everything the server role receives.

The walk is as strict as the schema where a client relies on it (tags, lengths, the message
ID's range, the fields of an LDAPResult) and reads nothing it does not use: an attribute's
values are taken as the octet strings they must be, a response's referral and value skipped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from portcall.protocols.ldap.messages import LdapResult

#: The protocolOp choices by their [APPLICATION n] tag number, named as RFC 4511 names them.
OPERATIONS: Final = {
    0: "bindRequest",
    1: "bindResponse",
    2: "unbindRequest",
    3: "searchRequest",
    4: "searchResEntry",
    5: "searchResDone",
    6: "modifyRequest",
    7: "modifyResponse",
    8: "addRequest",
    9: "addResponse",
    10: "delRequest",
    11: "delResponse",
    12: "modDNRequest",
    13: "modDNResponse",
    14: "compareRequest",
    15: "compareResponse",
    16: "abandonRequest",
    19: "searchResRef",
    23: "extendedReq",
    24: "extendedResp",
}
#: Operations whose content begins with the fields of an LDAPResult (RFC 4511 section 4.1.9).
_RESULTS: Final = frozenset({1, 5, 7, 9, 11, 13, 15, 24})

_INTEGER, _OCTETS, _ENUMERATED, _SEQUENCE, _SET = 0x02, 0x04, 0x0A, 0x30, 0x31
_APPLICATION: Final = 0x40
_CONSTRUCTED: Final = 0x20
#: Context tags that may follow the operation or sit in an extended response.
_CONTROLS, _RESPONSE_NAME = 0xA0, 0x8A
_MAX_MESSAGE_ID: Final = 2**31 - 1


class NotLdap(ValueError):
    """The bytes are no LDAPMessage a server could send; the message says where they fail."""


@dataclass
class Reply:
    """One LDAPMessage from a server: its ID, the operation's name and what a client uses."""

    message_id: int
    kind: str
    #: The LDAPResult of a response (searchResDone, extendedResp, ...), else None.
    result: LdapResult | None = None
    #: A searchResEntry's attributes, in the order sent, values as octet strings.
    attributes: list[tuple[bytes, list[bytes]]] = field(default_factory=list)
    #: An extendedResp's responseName, when it has one.
    response_name: bytes | None = None


@dataclass(slots=True)
class _Element:
    tag: int
    start: int
    end: int


def decode_reply(frame: bytes) -> Reply:
    """The LDAPMessage `frame` holds whole (as `messages.read_frame` returns it)."""
    outer = _one(frame, 0, len(frame), _SEQUENCE, "the LDAPMessage")
    parts = _children(frame, outer)
    if len(parts) < 2:
        raise NotLdap("an LDAPMessage needs a message ID and an operation")
    message_id = _message_id(frame, _expect(parts[0], _INTEGER, "the message ID"))
    op = parts[1]
    if op.tag & 0xC0 != _APPLICATION or (op.tag & 0x1F) not in OPERATIONS:
        raise NotLdap(f"tag 0x{op.tag:02x} is no LDAP operation")
    if any(extra.tag != _CONTROLS for extra in parts[2:3]) or len(parts) > 3:
        raise NotLdap("something other than controls after the operation")
    return _operation(frame, message_id, op)


def _operation(frame: bytes, message_id: int, op: _Element) -> Reply:
    number = op.tag & 0x1F
    reply = Reply(message_id, OPERATIONS[number])
    if number == 4:
        _entry(frame, op, reply)
    elif number in _RESULTS:
        _response(frame, op, reply)
    elif number == 19:
        for uri in _children(frame, _constructed(op, reply.kind)):
            _expect(uri, _OCTETS, "a searchResRef URI")
    return reply


def _entry(frame: bytes, op: _Element, reply: Reply) -> None:
    """searchResEntry: objectName, then a SEQUENCE OF { type, vals SET OF value }."""
    parts = _children(frame, _constructed(op, "searchResEntry"))
    if len(parts) != 2:
        raise NotLdap("a searchResEntry needs an object name and attributes")
    _expect(parts[0], _OCTETS, "the entry's name")
    for item in _children(frame, _expect(parts[1], _SEQUENCE, "the entry's attributes")):
        pair = _children(frame, _expect(item, _SEQUENCE, "an attribute"))
        if len(pair) != 2:
            raise NotLdap("an attribute needs a type and values")
        name = _octets(frame, pair[0], "an attribute type")
        values = _strings(frame, _expect(pair[1], _SET, "an attribute's values"), "a value")
        reply.attributes.append((name, values))


def _response(frame: bytes, op: _Element, reply: Reply) -> None:
    """An LDAPResult (resultCode, matchedDN, diagnosticMessage, referral), then for an
    extendedResp its optional responseName and responseValue."""
    parts = _children(frame, _constructed(op, reply.kind))
    if len(parts) < 3:
        raise NotLdap(f"a {reply.kind} needs a result code, a matched DN and a message")
    code = _integer(frame, _expect(parts[0], _ENUMERATED, "the result code"))
    _expect(parts[1], _OCTETS, "the matched DN")
    message = _octets(frame, parts[2], "the diagnostic message")
    reply.result = LdapResult(code, message.decode("utf-8", "replace"))
    names = [p for p in parts[3:] if p.tag == _RESPONSE_NAME]
    if names and reply.kind == "extendedResp":
        reply.response_name = frame[names[0].start : names[0].end]


# -- tags and lengths ----------------------------------------------------------------------


def _children(frame: bytes, parent: _Element) -> list[_Element]:
    found, pos = [], parent.start
    while pos < parent.end:
        element = _at(frame, pos, parent.end)
        found.append(element)
        pos = element.end
    return found


def _strings(frame: bytes, parent: _Element, what: str) -> list[bytes]:
    """The contents of `parent`'s children, each of which must be an OCTET STRING: an
    attribute's values, the most numerous elements of a reply, in one loop."""
    found, pos, end = [], parent.start, parent.end
    while pos < end:
        # The usual value, an OCTET STRING of under 128 octets, is read here; any other
        # element, and every fault, goes through `_at` and `_expect`.
        if pos + 2 <= end and frame[pos] == _OCTETS and frame[pos + 1] < 0x80:
            stop = pos + 2 + frame[pos + 1]
            if stop <= end:
                found.append(frame[pos + 2 : stop])
                pos = stop
                continue
        element = _expect(_at(frame, pos, end), _OCTETS, what)
        found.append(frame[element.start : element.end])
        pos = element.end
    return found


def _one(frame: bytes, start: int, end: int, tag: int, what: str) -> _Element:
    element = _at(frame, start, end)
    if element.end != end:
        raise NotLdap(f"bytes after {what}")
    return _expect(element, tag, what)


def _at(frame: bytes, pos: int, end: int) -> _Element:
    """The element whose tag is at `pos`, which must end by `end`."""
    if pos + 2 > end:
        raise NotLdap("an element cut short")
    tag, first = frame[pos], frame[pos + 1]
    if tag & 0x1F == 0x1F:
        raise NotLdap("a tag number above 30, which LDAP never uses")
    start, length = pos + 2, first
    if first & 0x80:
        count = first & 0x7F
        if count == 0 or count > 4:
            raise NotLdap("an indefinite or oversized length")
        start = pos + 2 + count
        length = int.from_bytes(frame[pos + 2 : start], "big")
    if start + length > end:
        raise NotLdap("an element longer than what holds it")
    return _Element(tag, start, start + length)


def _expect(element: _Element, tag: int, what: str) -> _Element:
    if element.tag != tag:
        raise NotLdap(f"{what} has tag 0x{element.tag:02x}, not 0x{tag:02x}")
    return element


def _constructed(op: _Element, name: str) -> _Element:
    if not op.tag & _CONSTRUCTED:
        raise NotLdap(f"a {name} that is not constructed")
    return op


def _octets(frame: bytes, element: _Element, what: str) -> bytes:
    return frame[_expect(element, _OCTETS, what).start : element.end]


def _integer(frame: bytes, element: _Element) -> int:
    content = frame[element.start : element.end]
    if not content or len(content) > 8:
        raise NotLdap("an integer of no or too many octets")
    return int.from_bytes(content, "big", signed=True)


def _message_id(frame: bytes, element: _Element) -> int:
    value = _integer(frame, element)
    if not 0 <= value <= _MAX_MESSAGE_ID:
        raise NotLdap(f"message ID {value} is out of range (0 to 2^31-1)")
    return value
