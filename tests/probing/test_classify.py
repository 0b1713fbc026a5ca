"""The one table from exceptions to verdicts: resets, stalls and the expected service itself."""

from __future__ import annotations

import errno

from portcall.catalog import load_catalog
from portcall.probing.errors import Phase, Sighting, classify, sighted
from portcall.probing.reasons import failure_reason
from portcall.protocols.base import ReplyTooLong
from portcall.verdicts import Verdict

GREETING = b"220 mail.example.test ESMTP ready\r\n"
SMTP = load_catalog().by_key("smtp")


def test_a_reset_while_the_connect_completes_is_silent_not_unreachable() -> None:
    # asyncio raises a plain OSError ("Connect call failed") carrying ECONNRESET.
    reset = OSError(errno.ECONNRESET, "Connect call failed ('127.0.0.1', 25)")
    failure = classify(reset, Phase.CONNECT, b"", 1.0, "127.0.0.1", "SMTP")
    assert failure.verdict is Verdict.SILENT
    assert "reset" in failure.detail and failure.phase is Phase.CONNECT


def test_the_expected_service_greeting_then_resetting_is_silent() -> None:
    failure = classify(ConnectionResetError(), Phase.CONVERSATION, GREETING, 1.0, None, "SMTP")
    assert failure.verdict is Verdict.SILENT
    assert failure.detail == "the SMTP service greeted, then reset the connection"


def test_another_service_greeting_then_resetting_is_named() -> None:
    failure = classify(ConnectionResetError(), Phase.CONVERSATION, GREETING, 1.0, None, "POP3")
    assert failure.verdict is Verdict.WRONG_PROTOCOL
    assert failure.detected == "SMTP"


def test_the_expected_service_going_quiet_after_its_greeting_is_silent() -> None:
    failure = classify(TimeoutError(), Phase.CONVERSATION, GREETING, 2.0, None, "SMTP")
    assert failure.verdict is Verdict.SILENT
    assert failure.detail == "the SMTP service greeted, then said nothing usable within 2s"


def test_an_endless_reply_from_the_expected_service_is_not_called_another_service() -> None:
    endless = ReplyTooLong(65536, b"220 " + b"x" * 200)
    failure = classify(endless, Phase.CONVERSATION, b"220 " + b"x" * 200, 1.0, None, "SMTP")
    assert failure.verdict is Verdict.WRONG_PROTOCOL
    assert failure.detected == "a non-conforming SMTP service"
    assert SMTP is not None
    reason = failure_reason(SMTP, failure)
    assert "breaks its protocol" in reason
    assert "Another service holds" not in reason


def test_a_tls_stall_is_a_tls_failure() -> None:
    failure = sighted(Sighting.TLS_STALLED, "TLS answered")
    assert failure.verdict is Verdict.TLS_FAILED
    assert failure.detected == "TLS"
    assert failure.detail.startswith("TLS handshake stalled: TLS answered")
