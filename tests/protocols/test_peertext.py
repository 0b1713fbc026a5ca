"""Peer text in a reason reads as text: quoted plainly, decoded, cut with an ellipsis."""

from __future__ import annotations

import pytest

from portcall.catalog import PROTOCOL_TRANSPORTS, TLS_PROTOCOLS
from portcall.protocols import CLIENTS, client_for
from portcall.protocols.base import ProbeOptions, RemoteProtocolError, WrongProtocol
from portcall.protocols.peertext import ELLIPSIS, QUOTE_CHARS, as_text, quoted
from tests.protocols.feeding import feed_client

EXCHANGE_SMTP = (
    b"220 mail.portcall.test Microsoft ESMTP MAIL Service, Version: 6.0.3790.3959 ready at"
    b"  Mon, 30 Nov 2026 18:00:00 +0000 \r\n"
)


def test_a_long_greeting_is_cut_at_a_word_with_an_ellipsis() -> None:
    assert quoted(EXCHANGE_SMTP) == (
        '"220 mail.portcall.test Microsoft ESMTP MAIL Service, Version: 6.0.3790.3959 ready at …"'
    )


def test_short_text_is_quoted_whole_without_its_line_end() -> None:
    assert quoted(b"+OK ready\r\n") == '"+OK ready"'
    assert quoted("* OK ready") == '"* OK ready"'


def test_text_without_spaces_is_cut_at_the_limit() -> None:
    text = quoted(b"x" * 500)
    assert text == '"' + "x" * QUOTE_CHARS + " " + ELLIPSIS + '"'


def test_invalid_bytes_are_replaced_and_control_characters_left_as_they_came() -> None:
    # Making peer text inert is the report's job, at output; here it stays plain text.
    assert as_text(b"\xff\x1b[2Jok") == "\ufffd\x1b[2Jok"
    assert quoted(b"\x1b[2J\r\n") == '"\x1b[2J"'


def test_the_exact_limit_is_not_cut() -> None:
    assert quoted("a" * QUOTE_CHARS) == '"' + "a" * QUOTE_CHARS + '"'


@pytest.mark.parametrize("protocol", sorted(TLS_PROTOCOLS - {"smtp", "ldap"}))
def test_a_wrong_protocol_shows_the_greeting_as_text(protocol: str) -> None:
    outcome = feed_client(client_for(protocol, ProbeOptions()), [EXCHANGE_SMTP])
    assert isinstance(outcome, WrongProtocol), outcome
    assert outcome.detected == "SMTP"
    assert '"220 mail.portcall.test Microsoft ESMTP MAIL Service' in outcome.evidence
    assert "b'" not in str(outcome) and "\\r" not in str(outcome)


DC_CASES = [(p, t) for p in sorted(set(CLIENTS) - TLS_PROTOCOLS) for t in PROTOCOL_TRANSPORTS[p]]


@pytest.mark.parametrize(("protocol", "transport"), DC_CASES)
def test_a_dc_protocol_names_a_text_stranger_without_bytes(protocol: str, transport: str) -> None:
    options = ProbeOptions(domain="example.test", transport=transport)
    outcome = feed_client(client_for(protocol, options), [EXCHANGE_SMTP])
    assert isinstance(outcome, WrongProtocol), outcome
    assert outcome.detected == "SMTP"
    assert "b'" not in str(outcome) and "\\r" not in str(outcome)


def test_ldap_shows_what_it_got_as_text() -> None:
    outcome = feed_client(client_for("ldap", ProbeOptions()), [EXCHANGE_SMTP])
    assert isinstance(outcome, WrongProtocol)
    assert outcome.evidence.startswith('it sent "220 mail.portcall.test')


def test_smtp_refusal_quotes_the_reply() -> None:
    outcome = feed_client(client_for("smtp", ProbeOptions()), [b"554 no service here\r\n"])
    assert isinstance(outcome, RemoteProtocolError)
    assert str(outcome) == 'the SMTP service turned us away: "554 no service here"'
