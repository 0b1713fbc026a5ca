"""SMTP (RFC 5321) with STARTTLS (RFC 3207): client and server roles."""

from __future__ import annotations

from portcall.protocols.smtp.client import (
    SmtpClient,
)
from portcall.protocols.smtp.messages import (
    AUTH_CONTINUE,
    AUTH_FAILED,
    AUTH_REQUIRED,
    BAD_SEQUENCE,
    CANNOT_VERIFY,
    CLOSING,
    COMPLETED,
    EXCHANGE_PROOF,
    EXCHANGE_VERBS,
    HELP_MESSAGE,
    MAILBOX_UNAVAILABLE,
    NO_SERVICE,
    NOT_IMPLEMENTED,
    PARAMETER_NOT_IMPLEMENTED,
    READY,
    SERVICE_CLOSING,
    SIZE_EXCEEDED,
    SYNTAX_ERROR,
    TLS_NOT_AVAILABLE,
    UNRECOGNIZED,
)
from portcall.protocols.smtp.server import (
    MAX_ERRORS,
    MESSAGE_SIZE_LIMIT,
    SMTP_SERVICE_BUILDS,
    SmtpServer,
)

__all__ = [
    "AUTH_CONTINUE",
    "AUTH_FAILED",
    "AUTH_REQUIRED",
    "BAD_SEQUENCE",
    "CANNOT_VERIFY",
    "CLOSING",
    "COMPLETED",
    "EXCHANGE_PROOF",
    "EXCHANGE_VERBS",
    "HELP_MESSAGE",
    "MAILBOX_UNAVAILABLE",
    "MAX_ERRORS",
    "MESSAGE_SIZE_LIMIT",
    "NOT_IMPLEMENTED",
    "NO_SERVICE",
    "PARAMETER_NOT_IMPLEMENTED",
    "READY",
    "SERVICE_CLOSING",
    "SIZE_EXCEEDED",
    "SMTP_SERVICE_BUILDS",
    "SYNTAX_ERROR",
    "TLS_NOT_AVAILABLE",
    "UNRECOGNIZED",
    "SmtpClient",
    "SmtpServer",
]
