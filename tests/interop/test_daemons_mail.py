"""Postfix, Dovecot and INN in the lab, proven with clients that owe nothing to portcall, run
inside the lab's namespace: openssl s_client for the TLS handshakes, Python's smtplib,
imaplib and poplib (and a plain socket for NNTP) for the greetings and capabilities."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509

from tests.interop.lab.daemons.dovecot import Dovecot
from tests.interop.lab.daemons.inn import Inn
from tests.interop.lab.daemons.postfix import Postfix
from tests.interop.lab.lab import Lab

pytestmark = pytest.mark.interop

HOST = "mail.lab.test"

# Runs inside the namespace: the greeting and the capabilities of one server, as JSON.
# argv: protocol (smtp, imap, pop3, nntp), host, port, "tls" or "plain", CA file.
_GREET = """
import imaplib, json, poplib, smtplib, socket, ssl, sys

protocol, host, port, mode, ca = sys.argv[1:6]
port, tls = int(port), mode == "tls"
context = ssl.create_default_context(cafile=ca)

def open_socket():
    sock = socket.create_connection((host, port), timeout=5)
    return context.wrap_socket(sock, server_hostname=host) if tls else sock

def smtp():
    # smtplib keeps no banner when it connects by itself: give it the connected socket.
    client = smtplib.SMTP(timeout=5)
    client.sock = open_socket()
    code, banner = client.getreply()
    client.ehlo("client.lab.test")
    features = [name.upper() for name in client.esmtp_features]
    client.quit()
    return f"{code} {banner.decode()}", features

def imap():
    if tls:
        client = imaplib.IMAP4_SSL(host, port, ssl_context=context, timeout=5)
    else:
        client = imaplib.IMAP4(host, port, timeout=5)
    greeting, capabilities = client.welcome.decode(), list(client.capabilities)
    client.logout()
    return greeting, capabilities

def pop3():
    if tls:
        client = poplib.POP3_SSL(host, port, context=context, timeout=5)
    else:
        client = poplib.POP3(host, port, timeout=5)
    greeting, capabilities = client.getwelcome().decode(), list(client.capa())
    client.quit()
    return greeting, capabilities

def nntp():
    sock = open_socket()
    reader = sock.makefile("rb")
    greeting = reader.readline().decode().rstrip()
    sock.sendall(b"CAPABILITIES\\r\\n")
    assert reader.readline().startswith(b"101"), "no capability list"
    capabilities = []
    while (line := reader.readline().decode().rstrip()) != ".":
        capabilities.append(line.split()[0])
    sock.sendall(b"QUIT\\r\\n")
    return greeting, capabilities

greeting, capabilities = {"smtp": smtp, "imap": imap, "pop3": pop3, "nntp": nntp}[protocol]()
print(json.dumps({"greeting": greeting, "capabilities": capabilities}))
"""

# Runs inside the namespace: the greeting line, then the reply line to one command.
_COMMAND = """
import socket, sys
sock = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
reader = sock.makefile("rb")
print(reader.readline().decode().rstrip())
sock.sendall(sys.argv[2].encode() + b"\\r\\n")
print(reader.readline().decode().rstrip())
"""

# Runs inside the namespace: how a TCP connect to a port ends.
_CONNECT = """
import socket, sys
try:
    socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2).close()
    print("connected")
except ConnectionRefusedError:
    print("refused")
"""

STARTTLS_PORTS = [("smtp", 25), ("imap", 143), ("pop3", 110), ("nntp", 119)]
IMPLICIT_PORTS = [("smtp", 465), ("imap", 993), ("pop3", 995), ("nntp", 563)]
#: What each protocol calls STARTTLS in its capability list.
STARTTLS_WORD = {"smtp": "STARTTLS", "imap": "STARTTLS", "pop3": "STLS", "nntp": "STARTTLS"}

#: Ports of the odd lab's daemons that present the expired certificate.
EXPIRED_STARTTLS_PORTS = [("smtp", 2525), ("imap", 1143), ("pop3", 1110), ("nntp", 1119)]
EXPIRED_IMPLICIT_PORTS = [465, 1993, 1995, 1563]


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab(HOST) as lab:
        lab.start(Postfix(), Dovecot(), Inn())
        yield lab


@pytest.fixture(scope="module")
def odd_lab() -> Iterator[Lab]:
    """STARTTLS switched off on the standard ports; the expired certificate elsewhere."""
    with Lab(HOST) as lab:
        lab.start(
            Postfix(starttls=False, cert="expired"),
            Postfix(
                name="postfix-expired", cert="expired", starttls_ports=(2525,), implicit_ports=()
            ),
            Dovecot(starttls=False),
            Dovecot(
                name="dovecot-expired",
                cert="expired",
                imap_ports=(1143,),
                imaps_ports=(1993,),
                pop3_ports=(1110,),
                pop3s_ports=(1995,),
            ),
            Inn(starttls=False),
            Inn(name="inn-expired", cert="expired", nntp_ports=(1119,), nntps_ports=(1563,)),
        )
        yield lab


def s_client(lab: Lab, port: int, *options: str) -> subprocess.CompletedProcess[str]:
    argv = ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-CAfile"]
    return lab.run([*argv, str(lab.pki.ca_cert), *options], input="", timeout=15)


@dataclass(frozen=True)
class Greeting:
    text: str
    capabilities: list[str]


def greet(lab: Lab, protocol: str, port: int, tls: bool = False) -> Greeting:
    mode = "tls" if tls else "plain"
    argv = ["python3", "-c", _GREET, protocol, HOST, str(port), mode, str(lab.pki.ca_cert)]
    result = lab.run(argv, timeout=15)
    assert result.returncode == 0, result.stderr
    reply = json.loads(result.stdout)
    return Greeting(reply["greeting"], reply["capabilities"])


def served_certificate(output: str) -> x509.Certificate:
    """The server's certificate, from the PEM block s_client prints."""
    begin = output.index("-----BEGIN CERTIFICATE-----")
    end = output.index("-----END CERTIFICATE-----") + len("-----END CERTIFICATE-----")
    return x509.load_pem_x509_certificate(output[begin:end].encode())


def certificate(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def connect(lab: Lab, port: int) -> str:
    return lab.run(["python3", "-c", _CONNECT, str(port)]).stdout.strip()


def command(lab: Lab, port: int, line: str) -> list[str]:
    return lab.run(["python3", "-c", _COMMAND, str(port), line]).stdout.splitlines()


# -- TLS, as openssl s_client sees it ------------------------------------------------------


@pytest.mark.parametrize(("protocol", "port"), STARTTLS_PORTS)
def test_starttls_verifies_against_the_lab_ca(lab: Lab, protocol: str, port: int) -> None:
    result = s_client(
        lab, port, "-starttls", protocol, "-verify_return_error", "-verify_hostname", HOST
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Verify return code: 0 (ok)" in result.stdout
    assert served_certificate(result.stdout) == certificate(lab.pki.server_cert)


@pytest.mark.parametrize(("protocol", "port"), IMPLICIT_PORTS)
def test_implicit_tls_verifies_against_the_lab_ca(lab: Lab, protocol: str, port: int) -> None:
    result = s_client(lab, port, "-verify_return_error", "-verify_hostname", HOST)
    assert result.returncode == 0, result.stdout + result.stderr
    assert served_certificate(result.stdout) == certificate(lab.pki.server_cert)


@pytest.mark.parametrize(("protocol", "port"), STARTTLS_PORTS)
def test_starttls_fails_against_another_trust_anchor(lab: Lab, protocol: str, port: int) -> None:
    # Only a certificate that is not the lab CA is trusted: the chain cannot verify, so the
    # successes above were real verifications.
    argv = ["-starttls", protocol, "-verify_return_error", "-CAfile", str(lab.pki.wrong_name_cert)]
    result = s_client(lab, port, *argv)
    assert result.returncode != 0
    assert "certificate verify failed" in result.stderr


# -- greetings and capabilities, as Python's own clients see them ---------------------------


def test_smtp_greeting_and_starttls(lab: Lab) -> None:
    plain = greet(lab, "smtp", 25)
    assert plain.text.startswith(f"220 {HOST} ESMTP Postfix")
    assert "STARTTLS" in plain.capabilities
    implicit = greet(lab, "smtp", 465, tls=True)
    assert implicit.text.startswith(f"220 {HOST} ESMTP")
    # Inside TLS there is nothing left to upgrade (RFC 3207 section 4.2).
    assert "STARTTLS" not in implicit.capabilities


def test_imap_greeting_and_starttls(lab: Lab) -> None:
    plain = greet(lab, "imap", 143)
    assert plain.text.startswith("* OK")
    assert "Dovecot" in plain.text
    assert "STARTTLS" in plain.capabilities
    implicit = greet(lab, "imap", 993, tls=True)
    assert implicit.text.startswith("* OK")
    assert "STARTTLS" not in implicit.capabilities


def test_pop3_greeting_and_stls(lab: Lab) -> None:
    plain = greet(lab, "pop3", 110)
    assert plain.text.startswith("+OK Dovecot")
    assert "STLS" in plain.capabilities
    implicit = greet(lab, "pop3", 995, tls=True)
    assert implicit.text.startswith("+OK Dovecot")
    assert "STLS" not in implicit.capabilities


def test_nntp_greeting_and_starttls(lab: Lab) -> None:
    plain = greet(lab, "nntp", 119)
    # RFC 3977 section 5.1.1: 200 posting allowed, 201 not; the lab only reads.
    assert plain.text.startswith(f"201 {HOST} InterNetNews")
    assert "STARTTLS" in plain.capabilities
    assert "READER" in plain.capabilities
    implicit = greet(lab, "nntp", 563, tls=True)
    assert implicit.text.startswith(f"201 {HOST} InterNetNews")
    # RFC 4642 section 2.2: STARTTLS is not listed once TLS is on.
    assert "STARTTLS" not in implicit.capabilities


def test_nntp_serves_its_groups(lab: Lab) -> None:
    greeting, reply = command(lab, 119, "GROUP lab.test")
    assert greeting.startswith("201")
    assert reply == "211 0 1 0 lab.test"  # RFC 3977 section 6.1.1: an empty group


# -- starttls=False ------------------------------------------------------------------------


@pytest.mark.parametrize(("protocol", "port"), [("smtp", 25), ("imap", 143), ("pop3", 110)])
def test_starttls_false_does_not_offer_it(odd_lab: Lab, protocol: str, port: int) -> None:
    reply = greet(odd_lab, protocol, port)
    assert STARTTLS_WORD[protocol] not in reply.capabilities
    result = s_client(odd_lab, port, "-starttls", protocol)
    assert result.returncode != 0
    assert "BEGIN CERTIFICATE" not in result.stdout


def test_starttls_false_postfix_still_serves_implicit_tls(odd_lab: Lab) -> None:
    result = s_client(odd_lab, 465)
    assert served_certificate(result.stdout) == certificate(odd_lab.pki.expired_cert)


@pytest.mark.parametrize("port", [993, 995, 563])
def test_starttls_false_dovecot_and_inn_have_no_tls_ports(odd_lab: Lab, port: int) -> None:
    assert connect(odd_lab, port) == "refused"


def test_starttls_false_nntp_lists_starttls_but_refuses_it(odd_lab: Lab) -> None:
    # nnrpd built with SASL always lists STARTTLS; without TLS files it answers 580
    # (RFC 4642 section 2.2.1: "can not initiate TLS negotiation").
    assert "STARTTLS" in greet(odd_lab, "nntp", 119).capabilities
    greeting, reply = command(odd_lab, 119, "STARTTLS")
    assert greeting.startswith("201")
    assert reply.startswith("580")
    assert s_client(odd_lab, 119, "-starttls", "nntp").returncode != 0


# -- the expired certificate ---------------------------------------------------------------


@pytest.mark.parametrize(("protocol", "port"), EXPIRED_STARTTLS_PORTS)
def test_expired_certificate_over_starttls(odd_lab: Lab, protocol: str, port: int) -> None:
    result = s_client(odd_lab, port, "-starttls", protocol)
    assert served_certificate(result.stdout) == certificate(odd_lab.pki.expired_cert)
    assert "Verify return code: 10 (certificate has expired)" in result.stdout
    strict = s_client(odd_lab, port, "-starttls", protocol, "-verify_return_error")
    assert strict.returncode != 0


@pytest.mark.parametrize("port", EXPIRED_IMPLICIT_PORTS)
def test_expired_certificate_over_implicit_tls(odd_lab: Lab, port: int) -> None:
    result = s_client(odd_lab, port)
    assert served_certificate(result.stdout) == certificate(odd_lab.pki.expired_cert)
    assert "Verify return code: 10 (certificate has expired)" in result.stdout


# -- start and stop ------------------------------------------------------------------------


def test_start_is_quick_and_stop_leaves_no_process() -> None:
    with Lab(HOST) as lab:
        daemons = [Postfix(), Dovecot(), Inn()]
        for daemon in daemons:
            began = time.monotonic()
            lab.start(daemon)
            # Generous for a busy machine; a fresh Postfix main.cf alone used to cost 2 s.
            assert time.monotonic() - began < 5.0, daemon.name
        running = _live_netns_pids(lab.netns)
        assert len(running) >= 6  # masters, their children, two nnrpd
        for daemon in daemons:
            daemon.stop()
            daemon.stop()  # a second stop is harmless
        assert _live_netns_pids(lab.netns) == []
        assert connect(lab, 25) == "refused"


def _live_netns_pids(netns: str) -> list[int]:
    """Processes in the namespace, zombies left out (init may reap them late)."""
    listing = subprocess.run(["ip", "netns", "pids", netns], capture_output=True, text=True)
    pids = []
    for word in listing.stdout.split():
        try:
            stat = Path(f"/proc/{word}/stat").read_text()
        except OSError:
            continue
        if stat.rpartition(")")[2].split()[0] != "Z":
            pids.append(int(word))
    return pids
