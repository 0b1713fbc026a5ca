"""Fields of a stored `portcall.check/1` document, read as untrusted input: a value of the
wrong type reads as empty, so that a hand-edited or damaged document never raises."""

from __future__ import annotations

from typing import Any


def as_list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def as_dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_text(value: object) -> str | None:
    return value if isinstance(value, str) else None
