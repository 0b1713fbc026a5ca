"""A reason may hold quotes, backslashes and line breaks: each format's comment keeps it
readable and cannot end the comment or the line early."""

from __future__ import annotations

import shlex
import xml.etree.ElementTree as ET

import pytest

from portcall.firewall import aws, firewalld, iptables, nftables, windows
from portcall.firewall.base import one_line

NASTY = 'outbound "smarthost" it\'s \\ 50% -- done\nsecond line \\'


def test_line_comments_hold_one_line_that_does_not_continue() -> None:
    text = one_line(NASTY)
    assert "\n" not in text and not text.endswith("\\")


def test_iptables_comment_reads_back_as_the_reason() -> None:
    assert shlex.split(iptables.quote(NASTY)) == [one_line(NASTY)]


def test_iptables_comment_is_cut_to_the_kernel_limit() -> None:
    assert len(shlex.split(iptables.quote("x" * 400))[0]) == iptables.COMMENT_LIMIT


def test_nftables_comment_has_no_inner_double_quote_and_fits() -> None:
    quoted = nftables.quote(NASTY * 5)
    assert quoted.count('"') == 2 and quoted.startswith('"') and quoted.endswith('"')
    assert len(quoted.encode()) <= nftables.COMMENT_LIMIT + 2
    assert "'smarthost'" in quoted


@pytest.mark.parametrize("quote", ["'", "\u2019"])
def test_powershell_single_quotes_are_doubled(quote: str) -> None:
    quoted = windows.ps_quote(f"it{quote}s")
    assert quoted == f"'it{quote}{quote}s'"


def test_xml_comment_cannot_close_early() -> None:
    text = ET.tostring(ET.Comment(firewalld.xml_comment(NASTY + "-")), "unicode")
    assert text.startswith("<!--") and text.endswith("-->") and text.count("--") == 2
    assert ET.fromstring(f"<r>{text}<x/></r>").find("x") is not None


def test_aws_description_keeps_only_what_ec2_accepts() -> None:
    text = aws.description(NASTY)
    assert '"' not in text and "'" not in text and "\\" not in text and "%" not in text
    assert "smarthost" in text and len(aws.description("a" * 300)) == aws.DESCRIPTION_LIMIT


def test_netsh_remarks_do_not_expand_percent_signs() -> None:
    assert windows.remark("50% of %PATH%") == "50%% of %%PATH%%"
