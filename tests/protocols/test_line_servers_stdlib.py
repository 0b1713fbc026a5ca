"""Clients we did not write against the line-protocol server roles, over real sockets.

Python's smtplib, poplib and imaplib, and `openssl s_client -starttls`, each greet, upgrade
to TLS in band and leave. A small asyncio driver kept in this file runs each server role on
127.0.0.1 with a throwaway self-signed certificate; every listener and connection handler
is gone when a test ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import imaplib
import ipaddress
import poplib
import shutil
import smtplib
import ssl
import subprocess
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from portcall.protocols.base import CLOSE, Send, ServerHandshake, ServerOptions, StartTLS
from portcall.protocols.imap import ImapServer
from portcall.protocols.nntp import NntpServer
from portcall.protocols.pop3 import Pop3Server
from portcall.protocols.smtp import SmtpServer

OPTIONS = ServerOptions(hostname="mail.example.com")
#: Seconds any one step may take before the test gives up.
PATIENCE = 20

T = TypeVar("T")


@dataclass
class Certificate:
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        return context

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cert))


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    """A self-signed certificate for 127.0.0.1, made for this module and thrown away."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.now(UTC)
    san = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .sign(key, hashes.SHA256())
    )
    directory = tmp_path_factory.mktemp("pki")
    paths = Certificate(directory / "responder.crt", directory / "responder.key")
    paths.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


# -- the little driver ---------------------------------------------------------------------


async def drive(
    handshake: ServerHandshake,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    tls: ssl.SSLContext,
) -> None:
    """Do what the server role asks until it closes."""
    while (event := handshake.next_event()) is not CLOSE:
        if isinstance(event, Send):
            writer.write(event.data)
            await writer.drain()
        elif isinstance(event, StartTLS):
            # Python 3.11+: the writer knows it belongs to a server and upgrades server-side.
            await writer.start_tls(tls)
            handshake.tls_started()
        else:
            handshake.receive_data(await reader.read(4096))


@dataclass
class Responder:
    port: int = 0
    served: list[ServerHandshake] = field(default_factory=list)
    failures: list[BaseException] = field(default_factory=list)


@contextlib.asynccontextmanager
async def responder(
    factory: Callable[[ServerOptions], ServerHandshake], tls: ssl.SSLContext
) -> AsyncIterator[Responder]:
    state = Responder()
    handlers: list[asyncio.Task[None]] = []

    async def connected(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.append(task)
        peer = writer.get_extra_info("peername")[0]
        handshake = factory(replace(OPTIONS, peer_address=peer))
        state.served.append(handshake)
        try:
            await drive(handshake, reader, writer, tls)
        except Exception as error:  # reported by the test, not lost in a task
            state.failures.append(error)
        finally:
            writer.close()
            with contextlib.suppress(OSError, ssl.SSLError):
                await writer.wait_closed()

    listener = await asyncio.start_server(connected, "127.0.0.1", 0)
    state.port = listener.sockets[0].getsockname()[1]
    try:
        yield state
    finally:
        listener.close()
        await listener.wait_closed()
        # Python 3.11 does not wait for connection handlers when a server closes.
        await asyncio.wait_for(asyncio.gather(*handlers), PATIENCE)
    assert not state.failures, state.failures


def against(
    factory: Callable[[ServerOptions], ServerHandshake],
    certificate: Certificate,
    client: Callable[[int], T],
) -> tuple[T, Responder]:
    """Serve one protocol and run the blocking `client(port)` in a thread meanwhile."""

    async def scenario() -> tuple[T, Responder]:
        async with responder(factory, certificate.server_context()) as state:
            outcome = await asyncio.wait_for(asyncio.to_thread(client, state.port), PATIENCE)
        return outcome, state

    return asyncio.run(scenario())


# -- Python's own clients ------------------------------------------------------------------


def test_smtplib_ehlo_starttls_ehlo_quit(certificate: Certificate) -> None:
    def session(port: int) -> tuple[dict[str, str], dict[str, str], int, bytes]:
        smtp = smtplib.SMTP("127.0.0.1", port, "client.example.net", timeout=PATIENCE)
        try:
            smtp.ehlo()
            before = dict(smtp.esmtp_features)
            smtp.starttls(context=certificate.client_context())
            smtp.ehlo()
            greeting = smtp.ehlo_resp or b""
            after = dict(smtp.esmtp_features)
            code, _ = smtp.quit()
        finally:
            smtp.close()
        return before, after, code, greeting

    (before, after, code, greeting), state = against(SmtpServer, certificate, session)
    assert "starttls" in before
    assert "starttls" not in after
    assert set(after["auth"].split()) == {"GSSAPI", "NTLM", "LOGIN"}
    assert "xexch50" in after
    assert greeting.startswith(b"mail.example.com Hello [127.0.0.1]")
    assert code == 221
    assert state.served[0].heard == [
        "EHLO client.example.net",
        "STARTTLS",
        "EHLO client.example.net",
        "QUIT",
    ]


def test_poplib_capa_stls_quit(certificate: Certificate) -> None:
    def session(port: int) -> tuple[bytes, dict[str, list[str]], dict[str, list[str]], bytes]:
        pop = poplib.POP3("127.0.0.1", port, timeout=PATIENCE)
        try:
            welcome = pop.getwelcome()
            before = pop.capa()
            pop.stls(context=certificate.client_context())
            after = pop.capa()
            farewell = pop.quit()
        finally:
            pop.close()
        return welcome, before, after, farewell

    (welcome, before, after, farewell), state = against(Pop3Server, certificate, session)
    assert welcome.startswith(b"+OK Microsoft Exchange Server 2003 POP3 server version")
    assert "STLS" in before
    assert sorted(after) == ["TOP", "UIDL", "USER"]
    assert farewell.endswith(b"signing off.")
    assert state.served[0].heard == ["CAPA", "CAPA", "STLS", "CAPA", "QUIT"]


def test_imaplib_capability_starttls_logout(certificate: Certificate) -> None:
    def session(port: int) -> tuple[tuple[str, ...], tuple[str, ...], str]:
        imap = imaplib.IMAP4("127.0.0.1", port, timeout=PATIENCE)
        before = imap.capabilities
        imap.starttls(ssl_context=certificate.client_context())
        after = imap.capabilities
        status, _ = imap.logout()
        return before, after, status

    (before, after, status), state = against(ImapServer, certificate, session)
    assert {"STARTTLS", "LOGINDISABLED", "AUTH=NTLM"} <= set(before)
    assert "STARTTLS" not in after
    assert "LOGINDISABLED" not in after
    assert status == "BYE"
    assert state.served[0].heard == ["CAPABILITY", "STARTTLS", "CAPABILITY", "LOGOUT"]


# -- openssl s_client ----------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
@pytest.mark.parametrize(
    ("name", "factory", "goodbye", "farewell"),
    [
        ("smtp", SmtpServer, b"QUIT\n", "QUIT"),
        ("pop3", Pop3Server, b"QUIT\n", "QUIT"),
        ("imap", ImapServer, b"z LOGOUT\n", "LOGOUT"),
        ("nntp", NntpServer, b"QUIT\n", "QUIT"),
    ],
)
def test_openssl_s_client_starttls(
    certificate: Certificate,
    name: str,
    factory: Callable[[ServerOptions], ServerHandshake],
    goodbye: bytes,
    farewell: str,
) -> None:
    def session(port: int) -> subprocess.CompletedProcess[bytes]:
        # -ign_eof: stay until the server closes, so its answer to the goodbye is awaited.
        command = ["openssl", "s_client", "-starttls", name, "-connect", f"127.0.0.1:{port}"]
        command += ["-CAfile", str(certificate.cert), "-verify_return_error", "-ign_eof"]
        return subprocess.run(command, input=goodbye, capture_output=True, timeout=PATIENCE)

    run, state = against(factory, certificate, session)
    assert run.returncode == 0, run.stderr.decode(errors="replace")
    assert b"Verify return code: 0 (ok)" in run.stdout
    heard = state.served[0].heard
    assert "STLS" in heard or "STARTTLS" in heard
    assert heard[-1] == farewell
