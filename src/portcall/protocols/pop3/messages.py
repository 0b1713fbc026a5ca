"""POP3 status indicators both roles use."""

from __future__ import annotations

OK: bytes = b"+OK"
ERR: bytes = b"-ERR"
