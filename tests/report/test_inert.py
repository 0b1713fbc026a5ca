"""Peer text is shown inert: every escape on screen stands for one character of the original."""

from __future__ import annotations

import pytest

from portcall.report.inert import inert


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("220 mail ESMTP", "220 mail ESMTP"),
        ("\x1b[31mred", "\\x1b[31mred"),
        ("bell\x07", "bell\\x07"),
        ("line\r\nforged row", "line\\x0d\\x0aforged row"),
        ("\x9b31m", "\\x9b31m"),  # C1 CSI
        ("\x1b]8;;http://x\x07link", "\\x1b]8;;http://x\\x07link"),  # OSC 8 hyperlink
        ("abc\u202edcba", "abc\\u202edcba"),  # right-to-left override
        ("mail\u061cexample", "mail\\u061cexample"),  # Arabic letter mark
        ("ex\u200bample", "ex\\u200bample"),  # zero-width space
        ("ex\u200dample\u2060", "ex\\u200dample\\u2060"),  # zero-width joiner, word joiner
        ("\ufeffbom", "\\ufeffbom"),
        ("soft\u00adhyphen", "soft\\xadhyphen"),
        ("para\u2029graph", "para\\u2029graph"),
        ("fill\u3164er", "fill\\u3164er"),  # Hangul filler renders as nothing
        ("tag\U000e0041", "tag\\U000e0041"),  # Unicode tag character
        ("ex\u034fample", "ex\\u034fample"),  # combining grapheme joiner renders as nothing
        ("mail\ufe0f.test", "mail\\ufe0f.test"),  # variation selector
        ("mail\U000e0100", "mail\\U000e0100"),  # supplementary variation selector
        ("a\u180eb\u180bc", "a\\u180eb\\u180bc"),  # Mongolian vowel separator, selector
        ("Grüße, 日本", "Grüße, 日本"),  # ordinary letters stay as they are
    ],
)
def test_unsafe_characters_are_escaped(raw: str, shown: str) -> None:
    assert inert(raw) == shown


def test_a_literal_escape_in_the_text_cannot_pass_for_an_escaped_character() -> None:
    literal = inert("\\x1b[31m")  # the four characters backslash, x, 1, b
    real = inert("\x1b[31m")
    assert literal == "\\\\x1b[31m"
    assert real == "\\x1b[31m"
    assert literal != real


def test_backslashes_are_escaped_in_non_ascii_text_too() -> None:
    assert inert("naïve\\path") == "naïve\\\\path"


def test_long_text_is_cut_with_an_ellipsis() -> None:
    assert inert("x" * 500, limit=10) == "x" * 9 + "…"
    assert inert("\x1b" * 500, limit=10) == "\\x1b\\x1b…"  # an escape is never split
    assert inert("short", limit=10) == "short"


def test_any_object_is_shown_as_its_text() -> None:
    assert inert(b"220 \x1b") == "b'220 \\\\x1b'"
    assert inert(None) == "None"
