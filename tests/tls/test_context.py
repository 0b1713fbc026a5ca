"""Client contexts against real TLS peers on 127.0.0.1, and the meaning of their failures."""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import struct
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest

from portcall.tls.assess import assess, tls_facts
from portcall.tls.context import (
    LEGACY_SERVER_CONNECT,
    NO_CHECK_TIME,
    TIME_ERRORS,
    TrustStoreError,
    classify_verify_error,
    client_context,
    is_protocol_mismatch,
    is_time_only,
)
from portcall.verdicts import FindingCode
from tests.tls.conftest import DAY, Issued, Pki, issue, make_ca
from tests.tls.fakes import listener

TIMEOUT = 10.0
OPENSSL = shutil.which("openssl")


# -- peers ----------------------------------------------------------------------------------


@dataclass
class Seen:
    """What a client learnt from one handshake."""

    version: str | None
    cipher: tuple[str, str, int] | None
    der: bytes | None


@dataclass
class ServerLog:
    errors: list[BaseException] = field(default_factory=list)


def connect(ctx: ssl.SSLContext, port: int) -> Seen:
    with (
        socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as raw,
        ctx.wrap_socket(raw, server_hostname="mail.example.com") as tls,
    ):
        return Seen(tls.version(), tls.cipher(), tls.getpeercert(binary_form=True))


def tls_handler(ctx: ssl.SSLContext, log: ServerLog) -> Callable[[socket.socket], None]:
    def handle(conn: socket.socket) -> None:
        try:
            with ctx.wrap_socket(conn, server_side=True) as tls:
                tls.recv(1)  # until the client closes
        except (OSError, ssl.SSLError) as err:
            log.errors.append(err)

    return handle


def server_context(pki: Pki, leaf: Issued, *, weak: bool = False) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    if weak:
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")  # lets the server load a 1024-bit key
    cert, key = pki.files(leaf)
    ctx.load_cert_chain(cert, key)
    return ctx


@contextmanager
def tls_server(ctx: ssl.SSLContext, connections: int = 1) -> Iterator[int]:
    with listener(tls_handler(ctx, ServerLog()), connections) as port:
        yield port


def canned(reply: bytes) -> Callable[[socket.socket], None]:
    """A peer that reads the ClientHello, answers with fixed bytes and ends its side."""

    def handle(conn: socket.socket) -> None:
        try:
            conn.recv(65536)
            conn.sendall(reply)
            conn.shutdown(socket.SHUT_WR)
            while conn.recv(65536):
                pass
        except OSError:
            pass

    return handle


def server_hello(version: int, cipher: int) -> bytes:
    """A ServerHello with no extensions at all: no renegotiation_info (RFC 5746 section 3.6)."""
    body = struct.pack(">H", version) + os.urandom(32) + b"\x00" + struct.pack(">HB", cipher, 0)
    message = b"\x02" + len(body).to_bytes(3, "big") + body
    return b"\x16" + struct.pack(">HH", version, len(message)) + message


@contextmanager
def openssl_server(*args: str, connections: int) -> Iterator[int]:
    """`openssl s_server` on an ephemeral loopback port; it exits after `connections`."""
    assert OPENSSL is not None, "the openssl command is missing; tests/run.sh installs it"
    command = [OPENSSL, "s_server", "-accept", "127.0.0.1:0", "-naccept", str(connections)]
    with subprocess.Popen(
        [*command, *args],
        stdin=subprocess.PIPE,  # s_server closes each connection on stdin EOF
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as process:
        try:
            yield _accept_port(process)
            process.communicate(timeout=TIMEOUT)
            assert process.returncode == 0, "s_server did not stop after its connections"
        finally:
            if process.poll() is None:
                process.kill()


def _accept_port(process: subprocess.Popen[str]) -> int:
    # s_server prints "ACCEPT 127.0.0.1:PORT" once it listens.
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("ACCEPT"):
            return int(line.rsplit(":", 1)[1])
    raise AssertionError(f"s_server did not start (exit {process.wait()})")


@pytest.fixture(scope="module")
def current(pki: Pki) -> Issued:
    """A leaf valid today, issued by the test CA."""
    now = datetime.now(UTC)
    return pki.issue(dns=("mail.example.com",), not_before=now - DAY, not_after=now + 90 * DAY)


@pytest.fixture(scope="module")
def rsa_current(pki: Pki) -> Issued:
    now = datetime.now(UTC)
    return pki.issue(kind="rsa2048", not_before=now - DAY, not_after=now + 90 * DAY)


def verify_error(ctx: ssl.SSLContext, port: int) -> ssl.SSLCertVerificationError:
    with pytest.raises(ssl.SSLCertVerificationError) as caught:
        connect(ctx, port)
    return caught.value


def ssl_error(ctx: ssl.SSLContext, port: int) -> ssl.SSLError:
    with pytest.raises(ssl.SSLError) as caught:
        connect(ctx, port)
    return caught.value


# -- context settings -----------------------------------------------------------------------


def test_contexts_are_cached_per_arguments(pki: Pki) -> None:
    modern = client_context(verify=True, legacy=False)
    assert client_context(verify=True, legacy=False, cafile=None) is modern
    assert client_context(verify=True, legacy=True) is not modern
    assert client_context(verify=True, legacy=False, cafile=str(pki.ca_file)) is not modern
    # Without verification a CA file is irrelevant and must not cost a second context.
    plain = client_context(verify=False, legacy=False)
    assert client_context(verify=False, legacy=False, cafile=str(pki.ca_file)) is plain


def test_verifying_context_checks_chain_but_leaves_names_and_dates_to_us() -> None:
    ctx = client_context(verify=True, legacy=False)
    assert ctx.verify_mode == ssl.CERT_REQUIRED
    assert ctx.check_hostname is False
    assert ctx.verify_flags & NO_CHECK_TIME
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2


def test_non_verifying_context() -> None:
    ctx = client_context(verify=False, legacy=False)
    assert ctx.verify_mode == ssl.CERT_NONE
    assert ctx.check_hostname is False


def test_legacy_context_settings() -> None:
    ctx = client_context(verify=False, legacy=True)
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1
    assert ctx.options & LEGACY_SERVER_CONNECT == 0x4
    names = {c["name"] for c in ctx.get_ciphers()}
    assert "ECDHE-RSA-AES256-SHA" in names  # the CBC-SHA1 suites TLS 1.0 needs
    assert not any(n.startswith(("ADH-", "AECDH-")) or "NULL" in n for n in names)


def test_missing_ca_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.pem"
    with pytest.raises(TrustStoreError, match=rf"CA file {missing}: No such file"):
        client_context(verify=True, legacy=False, cafile=str(missing))


def test_ca_file_that_is_a_directory(tmp_path: Path) -> None:
    with pytest.raises(TrustStoreError, match="Is a directory"):
        client_context(verify=True, legacy=False, cafile=str(tmp_path))


def test_ca_file_without_certificates(tmp_path: Path, pki: Pki, valid: Issued) -> None:
    _, key_only = pki.files(valid)
    for bad in (key_only, tmp_path / "empty.pem"):
        bad.touch()
        with pytest.raises(TrustStoreError, match=rf"CA file {bad}: holds no PEM or DER"):
            client_context(verify=True, legacy=False, cafile=str(bad))


def test_der_ca_file_is_accepted(tmp_path: Path, pki: Pki) -> None:
    der_file = tmp_path / "ca.cer"
    der_file.write_bytes(pki.ca.der)
    ctx = client_context(verify=True, legacy=False, cafile=str(der_file))
    assert ctx.cert_store_stats()["x509_ca"] == 1


def test_pem_bundle_loads_every_ca(tmp_path: Path, pki: Pki) -> None:
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(make_ca("Other CA").pem + pki.ca.pem)
    ctx = client_context(verify=True, legacy=False, cafile=str(bundle))
    assert ctx.cert_store_stats()["x509_ca"] == 2


# -- classification without a peer ------------------------------------------------------------


def fabricated(code: int, message: str) -> ssl.SSLCertVerificationError:
    err = ssl.SSLCertVerificationError(1, message)
    err.verify_code, err.verify_message = code, message
    return err


@pytest.mark.parametrize(("code", "words"), [(2, "intermediate"), (21, "only its own")])
def test_missing_intermediates_are_untrusted(code: int, words: str) -> None:
    failure = classify_verify_error(fabricated(code, "unable to get issuer certificate"))
    assert failure.chain_trusted is False
    assert words in failure.message


def test_not_yet_valid_chain_is_trusted() -> None:
    failure = classify_verify_error(fabricated(9, "certificate is not yet valid"))
    assert failure.chain_trusted is True
    assert is_time_only(failure.message)


def test_unknown_verify_code_keeps_openssl_words() -> None:
    failure = classify_verify_error(fabricated(99, "something new"))
    assert failure.chain_trusted is False
    assert failure.message == "certificate verification failed: something new (OpenSSL 99)"


# -- real peers: verification ----------------------------------------------------------------


def test_trusted_chain_completes_and_yields_the_certificate(pki: Pki, current: Issued) -> None:
    ctx = client_context(verify=True, legacy=False, cafile=str(pki.ca_file))
    with tls_server(server_context(pki, current)) as port:
        seen = connect(ctx, port)
    assert seen.version == "TLSv1.3"
    assert seen.der == current.der
    facts = tls_facts(
        version=seen.version,
        cipher=seen.cipher,
        der=seen.der,
        legacy=False,
        trusted=True,
        trust_error=None,
        checked_name="mail.example.com",
    )
    assert facts.name_matches is True
    assert assess(facts, now=datetime.now(UTC)) == []


def test_unknown_ca_is_untrusted(pki: Pki) -> None:
    stranger = issue(make_ca("Stranger CA"))
    ctx = client_context(verify=True, legacy=False, cafile=str(pki.ca_file))
    with tls_server(server_context(pki, stranger)) as port:
        err = verify_error(ctx, port)
    assert err.verify_code == 20
    failure = classify_verify_error(err)
    assert failure.chain_trusted is False
    assert "issuing CA is unknown" in failure.message
    assert is_protocol_mismatch(err) is False


def test_self_signed_server_is_untrusted(pki: Pki, self_signed: Issued) -> None:
    ctx = client_context(verify=True, legacy=False, cafile=str(pki.ca_file))
    with tls_server(server_context(pki, self_signed)) as port:
        err = verify_error(ctx, port)
    assert err.verify_code == 18
    failure = classify_verify_error(err)
    assert failure.chain_trusted is False
    assert "self-signed" in failure.message


def test_expired_but_trusted_certificate_completes_the_handshake(pki: Pki, expired: Issued) -> None:
    ctx = client_context(verify=True, legacy=False, cafile=str(pki.ca_file))
    with tls_server(server_context(pki, expired)) as port:
        seen = connect(ctx, port)
    assert seen.der == expired.der
    facts = tls_facts(
        version=seen.version,
        cipher=seen.cipher,
        der=seen.der,
        legacy=False,
        trusted=True,
        trust_error=None,
        checked_name="mail.example.com",
    )
    codes = [f.code for f in assess(facts, now=datetime.now(UTC))]
    assert codes == [FindingCode.CERT_EXPIRED]


def test_without_no_check_time_expiry_is_classified_as_a_trusted_chain(
    pki: Pki, expired: Issued
) -> None:
    # The documented fallback when a build would ignore the flag: code 10, chain trusted.
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.load_verify_locations(cafile=str(pki.ca_file))
    with tls_server(server_context(pki, expired)) as port:
        err = verify_error(ctx, port)
    assert err.verify_code == 10
    failure = classify_verify_error(err)
    assert failure == type(failure)(chain_trusted=True, message=TIME_ERRORS[10])


def test_weak_key_fails_modern_verification_but_not_legacy(pki: Pki) -> None:
    now = datetime.now(UTC)
    weak = pki.issue(kind="rsa1024", not_before=now - DAY, not_after=now + DAY)
    modern = client_context(verify=True, legacy=False, cafile=str(pki.ca_file))
    legacy = client_context(verify=True, legacy=True, cafile=str(pki.ca_file))
    with tls_server(server_context(pki, weak, weak=True), connections=2) as port:
        err = verify_error(modern, port)
        seen = connect(legacy, port)
    assert err.verify_code == 66
    assert is_protocol_mismatch(err) is True
    assert "too weak" in classify_verify_error(err).message
    assert seen.der == weak.der


# -- real peers: protocol mismatches ---------------------------------------------------------


def test_tls10_only_server_needs_the_legacy_context(pki: Pki, rsa_current: Issued) -> None:
    cert, key = pki.files(rsa_current)
    args = ("-tls1", "-cipher", "DEFAULT:@SECLEVEL=0", "-cert", str(cert), "-key", str(key))
    modern = client_context(verify=False, legacy=False)
    legacy = client_context(verify=True, legacy=True, cafile=str(pki.ca_file))
    with openssl_server(*args, connections=2) as port:
        err = ssl_error(modern, port)
        seen = connect(legacy, port)
    assert err.reason == "TLSV1_ALERT_PROTOCOL_VERSION"
    assert is_protocol_mismatch(err) is True
    assert seen.version == "TLSv1"
    assert seen.der == rsa_current.der
    facts = tls_facts(
        version=seen.version,
        cipher=seen.cipher,
        der=seen.der,
        legacy=True,
        trusted=True,
        trust_error=None,
        checked_name="mail.example.com",
    )
    assert [f.code for f in assess(facts, now=datetime.now(UTC))] == [FindingCode.TLS_LEGACY]


def test_small_dh_group_needs_the_legacy_context(
    pki: Pki, rsa_current: Issued, tmp_path: Path
) -> None:
    assert OPENSSL is not None, "the openssl command is missing; tests/run.sh installs it"
    params = tmp_path / "dh1024.pem"
    subprocess.run(
        [OPENSSL, "dhparam", "-out", str(params), "1024"], check=True, capture_output=True
    )
    ctx = server_context(pki, rsa_current, weak=True)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers("DHE-RSA-AES128-GCM-SHA256:@SECLEVEL=0")
    ctx.load_dh_params(str(params))
    with tls_server(ctx, connections=2) as port:
        err = ssl_error(client_context(verify=False, legacy=False), port)
        seen = connect(client_context(verify=False, legacy=True), port)
    assert err.reason == "DH_KEY_TOO_SMALL"
    assert is_protocol_mismatch(err) is True
    assert seen.cipher is not None and seen.cipher[0] == "DHE-RSA-AES128-GCM-SHA256"


def test_no_common_cipher_is_a_mismatch(pki: Pki, rsa_current: Issued) -> None:
    ctx = server_context(pki, rsa_current, weak=True)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers("AES128-SHA:@SECLEVEL=0")  # plain RSA key exchange: not in the modern list
    with tls_server(ctx) as port:
        err = ssl_error(client_context(verify=False, legacy=False), port)
    assert err.reason == "SSLV3_ALERT_HANDSHAKE_FAILURE"
    assert is_protocol_mismatch(err) is True


def test_server_without_secure_renegotiation() -> None:
    # The legacy context gets past the ServerHello (then meets EOF): the option is in effect.
    reply = server_hello(0x0303, 0xC02F)
    with listener(canned(reply), connections=2) as port:
        refused = ssl_error(client_context(verify=False, legacy=False), port)
        legacy = ssl_error(client_context(verify=False, legacy=True), port)
    assert refused.reason == "UNSAFE_LEGACY_RENEGOTIATION_DISABLED"
    assert is_protocol_mismatch(refused) is True
    assert legacy.reason != "UNSAFE_LEGACY_RENEGOTIATION_DISABLED"
    assert isinstance(legacy, ssl.SSLEOFError)


def test_server_answering_tls10_to_a_modern_hello() -> None:
    with listener(canned(server_hello(0x0301, 0xC014))) as port:
        err = ssl_error(client_context(verify=False, legacy=False), port)
    assert err.reason == "UNSUPPORTED_PROTOCOL"
    assert is_protocol_mismatch(err) is True


def test_plaintext_reply_is_a_wrong_version_number() -> None:
    with listener(canned(b"220 mail.example.com ESMTP\r\n")) as port:
        err = ssl_error(client_context(verify=False, legacy=False), port)
    assert err.reason == "WRONG_VERSION_NUMBER"
    assert is_protocol_mismatch(err) is True


def test_closed_connection_is_not_a_mismatch() -> None:
    with listener(canned(b"")) as port:
        err = ssl_error(client_context(verify=False, legacy=False), port)
    assert isinstance(err, ssl.SSLEOFError)
    assert is_protocol_mismatch(err) is False
