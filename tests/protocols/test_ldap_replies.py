"""The client's requests and its reader of replies (`ldap.replies`) against pyasn1: the
same fields from every message the server role encodes, and on arbitrary bytes either the
same reading as pyasn1's or a refusal, never another exception."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyasn1.codec.ber import decoder
from pyasn1_modules import rfc2251

from portcall.protocols.ldap import messages
from portcall.protocols.ldap.messages import DECODE_ERRORS, LdapResult
from portcall.protocols.ldap.replies import NotLdap, decode_reply

texts = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
attributes = st.lists(st.tuples(texts, st.lists(texts, max_size=5)), max_size=12)
ids = st.integers(0, 2**31 - 1)


@given(ids, attributes, st.booleans())
def test_an_entry_reads_as_encoded(
    message_id: int, attrs: list[tuple[str, list[str]]], names_only: bool
) -> None:
    frame = messages.entry_message(message_id, attrs, types_only=names_only)
    reply = decode_reply(frame)
    assert (reply.message_id, reply.kind) == (message_id, "searchResEntry")
    expected = [(n.encode(), [] if names_only else [v.encode() for v in vs]) for n, vs in attrs]
    assert reply.attributes == expected


@pytest.mark.parametrize(
    "op", ["searchResDone", "bindResponse", "modifyResponse", "compareResponse"]
)
@given(message_id=ids, code=st.integers(0, 200), diagnostic=texts)
def test_a_result_reads_as_encoded(op: str, message_id: int, code: int, diagnostic: str) -> None:
    reply = decode_reply(messages.result_message(message_id, op, code, diagnostic))
    assert (reply.message_id, reply.kind) == (message_id, op)
    assert reply.result == LdapResult(code, diagnostic)


@given(
    code=st.integers(0, 200),
    diagnostic=texts,
    name=st.sampled_from(["", "1.3.6.1.4.1.1466.20037", "1.3.6.1.4.1.1466.20036"]),
)
def test_an_extended_response_keeps_its_name(code: int, diagnostic: str, name: str) -> None:
    reply = decode_reply(messages.extended_response(0, code, diagnostic, name))
    assert reply.kind == "extendedResp" and reply.result == LdapResult(code, diagnostic)
    assert reply.response_name == (name.encode() if name else None)


def _pyasn1(frame: bytes) -> tuple[int, str] | None:
    try:
        message, rest = decoder.decode(frame, asn1Spec=rfc2251.LDAPMessage())
    except (*DECODE_ERRORS, TypeError):
        return None
    if rest:
        return None
    return int(message["messageID"]), message["protocolOp"].getName()


@settings(max_examples=400)
@given(st.binary(max_size=80))
def test_arbitrary_bytes_are_read_as_pyasn1_reads_them_or_refused(tail: bytes) -> None:
    frame = (
        bytes([0x30, len(tail)]) + tail
        if len(tail) < 0x80
        else b"\x30\x81" + bytes([len(tail)]) + tail
    )
    try:
        reply = decode_reply(frame)
    except NotLdap:
        return
    assert _pyasn1(frame) in (None, (reply.message_id, reply.kind))


@pytest.mark.parametrize(
    "frame, words",
    [
        (b"\x30\x03\x02\x01\x01", "message ID and an operation"),
        (b"\x30\x05\x02\x01\x01\x65\x00", "needs a result code"),
        (b"\x30\x06\x02\x01\x01\x5f\x20\x00", "tag number above 30"),
        (b"\x30\x05\x02\x01\x01\x7e\x00", "no LDAP operation"),
        (b"\x30\x05\x02\x01\x01\x45\x00", "not constructed"),
        (b"\x30\x05\x02\x01\xff\x65\x00", "out of range"),
        (b"\x30\x07\x02\x01\x01\x65\x84\xff\xff", "longer than what holds it"),
    ],
)
def test_malformed_replies_say_where(frame: bytes, words: str) -> None:
    with pytest.raises(NotLdap, match=words):
        decode_reply(frame)


@given(ids)
def test_requests_with_their_ids_are_what_pyasn1_encodes(message_id: int) -> None:
    """The client's requests are encoded by pyasn1 once and given each message ID after."""
    assert messages.search_request(message_id) == messages.encoded_search(message_id)
    assert messages.starttls_request(message_id) == messages.encoded_starttls(message_id)
    assert messages.unbind_request(message_id) == messages.encoded_unbind(message_id)


@given(ids, attributes)
def test_the_element_count_of_an_entry_is_exact(
    message_id: int, attrs: list[tuple[str, list[str]]]
) -> None:
    """messageID, the operation, its name and attribute list, then per attribute its
    SEQUENCE, type and SET, and each value: every element at any depth is counted once."""
    frame = messages.entry_message(message_id, attrs, types_only=False)
    header = 2 if frame[1] < 0x80 else 2 + (frame[1] & 0x7F)
    expected = 4 + sum(3 + len(values) for _, values in attrs)
    assert messages.count_elements(frame[header:]) == expected


def test_a_message_nested_too_deep_is_refused() -> None:
    body = b""
    for _ in range(messages.MAX_DEPTH + 1):
        body = b"\x30" + bytes([len(body)]) + body  # 2 octets a level: short lengths only
    with pytest.raises(messages.FramingError, match="nested more than"):
        messages.count_elements(body)
