"""SMTP reply codes and the verbs both roles know."""

from __future__ import annotations

#: Service ready; also the go-ahead for TLS after STARTTLS (RFC 3207 section 4).
READY = 220
#: Requested action completed: the EHLO/HELO answer.
COMPLETED = 250
#: Closing the transmission channel; a server may say it instead of a greeting (RFC 5321 3.8).
CLOSING = 421
#: "No SMTP service here" in place of a greeting (RFC 5321 section 3.1).
NO_SERVICE = 554
#: Further reply codes the server role uses (RFC 5321 section 4.2.3 unless noted).
CANNOT_VERIFY = 252
AUTH_CONTINUE = 334  # RFC 4954 section 4: a server challenge, base64 after the code
HELP_MESSAGE = 214
SERVICE_CLOSING = 221
TLS_NOT_AVAILABLE = 454  # RFC 3207 section 4
UNRECOGNIZED = 500
SYNTAX_ERROR = 501
NOT_IMPLEMENTED = 502
BAD_SEQUENCE = 503
PARAMETER_NOT_IMPLEMENTED = 504
AUTH_REQUIRED = 530  # RFC 4954 section 6
AUTH_FAILED = 535  # RFC 4954 section 6
MAILBOX_UNAVAILABLE = 550
SIZE_EXCEEDED = 552

#: Verbs only Exchange 2000/2003 advertises: routing link state, the MAPI property blob and
#: its own SASL exchange between Exchange servers.
EXCHANGE_VERBS: tuple[str, ...] = ("X-LINK2STATE", "XEXCH50", "X-EXPS")
#: Of those, the two that Exchange itself adds to the Windows SMTP service; X-EXPS proves less.
EXCHANGE_PROOF = frozenset({"X-LINK2STATE", "XEXCH50"})
