"""NTLM identity from real mail daemons: Dovecot offering NTLM over IMAP4 and POP3, and Postfix
offering it through Dovecot SASL over SMTP, each asked by `portcall check` inside the lab's
namespace. Dovecot's NTLM is Samba's `ntlm_auth` behind it (this Dovecot build has no NTLM of
its own), so the CHALLENGE_MESSAGE carries the names of the instance's smb.conf and Samba's
version, which are asserted here; the verdicts stay what the conversations earn, and the
daemons' logs show each exchange cancelled before any credential.

The daemons of this lab are their own instances: the shared mail lab offers no NTLM.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from tests.interop.lab.daemons.dovecot import NTLM_NAMES, Dovecot
from tests.interop.lab.daemons.postfix import Postfix
from tests.interop.lab.lab import Lab

pytestmark = pytest.mark.interop

HOST = "mail.lab.test"
#: Ports where the service offers NTLM, and the protocol on each.
NTLM_PORTS = {25: "smtp", 465: "smtp", 143: "imap", 993: "imap", 110: "pop3", 995: "pop3"}


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab(HOST) as lab:
        auth = lab.workdir / "dovecot-auth"
        lab.start(Dovecot(ntlm=True, auth_socket=auth), Postfix(dovecot_sasl=auth))
        yield lab


@pytest.fixture(scope="module")
def results(lab: Lab) -> dict[int, dict[str, Any]]:
    """`portcall check` of the NTLM ports, its JSON results by port."""
    ports = ",".join(str(port) for port in NTLM_PORTS)
    argv = [sys.executable, "-m", "portcall", "check", HOST, "--ca", str(lab.pki.ca_cert)]
    argv += ["--json", "--timeout", "10", "--ports", ports]
    done = lab.run(argv, timeout=120)
    assert done.stdout, f"no output; stderr: {done.stderr}"
    document = json.loads(done.stdout)
    return {result["port"]: result for result in document["results"]}


@pytest.mark.parametrize("port", sorted(NTLM_PORTS))
def test_check_reads_dovecots_ntlm_identity(results: dict[int, dict[str, Any]], port: int) -> None:
    result = results[port]
    assert result["verdict"] == "ok", result["reason"]
    assert result["protocol"] == NTLM_PORTS[port]
    details = result["details"]
    assert "ntlm_error" not in details, details
    facts = details["ntlm"]
    # A standalone Samba server names itself as the target and as the domain.
    name = NTLM_NAMES["netbios name"]
    assert (facts["target_name"], facts["netbios_computer"]) == (name, name), facts
    assert facts["netbios_domain"] == name, facts
    assert facts["dns_computer"] == name.lower(), facts
    # Samba's VERSION is 6.1 with build 0: not a Windows release.
    assert facts["os_version"] == "6.1.0", facts
    assert facts["os"].startswith("not Windows"), facts
    assert facts["timestamp"], facts


def test_smtp_lists_ntlm_from_dovecot(results: dict[int, dict[str, Any]]) -> None:
    assert results[25]["details"]["auth"] == ["PLAIN", "NTLM"]
    assert results[25]["product"].startswith("Postfix")


def test_every_exchange_was_cancelled_before_credentials(
    lab: Lab, results: dict[int, dict[str, Any]]
) -> None:
    # Postfix logs the "*" of RFC 4954 as an aborted authentication, one per SMTP port.
    maillog = (lab.workdir / "postfix" / "maillog").read_text(errors="replace")
    assert maillog.count("SASL NTLM authentication aborted") == 2, maillog
    assert "authentication failed" not in maillog
    # Dovecot counts each IMAP and POP3 login that started NTLM and never finished it.
    dovecot = (lab.workdir / "dovecot" / "dovecot.log").read_text(errors="replace")
    unfinished = [line for line in dovecot.splitlines() if "method=NTLM" in line]
    assert len(unfinished) == 4, dovecot
    assert all("didn't finish SASL auth" in line for line in unfinished), unfinished
    assert "auth failed" not in dovecot
