"""The two TLS libraries under a handshake (`portcall.tls.engine`): pyOpenSSL takes the modern
unverifying handshake, and neither a server nor the rest of portcall can tell it from `ssl`:
the same hello, the same facts, the same errors, the same clean close. Real handshakes with
Python's own TLS servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import struct
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from portcall.probing.stream import Stream
from portcall.tls import engine, pyopenssl_engine
from portcall.tls.context import client_context
from portcall.tls.engine import ENGINE_VARIABLE, SslTls, TlsEngineError, TlsObject, open_tls
from portcall.tls.pyopenssl_engine import OpenSslTls
from tests.tls.conftest import Issued, issue, make_ca
from tests.tls.fakes import listener, parse_client_hello, tls10_server_context

ENGINES = ("ssl", "pyopenssl")
#: Extension numbers: server_name, supported_groups, key_share.
SERVER_NAME, SUPPORTED_GROUPS, KEY_SHARE = 0, 10, 51
X25519 = 0x001D
RENEGOTIATION_SCSV, RENEGOTIATION_INFO = 0x00FF, 0xFF01


@pytest.fixture(scope="module")
def ca() -> Issued:
    return make_ca(kind="rsa2048")


@pytest.fixture(scope="module")
def chain_files(ca: Issued, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A leaf and its CA in one file: the server sends both."""
    directory = tmp_path_factory.mktemp("engine-pki")
    leaf = issue(ca, kind="rsa2048")
    cert, key = leaf.write(directory, "leaf")
    cert.write_bytes(leaf.pem + ca.pem)
    return str(cert), str(key)


def unverifying(library: str, server_hostname: str = "mail.example.com") -> TlsObject:
    """A connection of the unverifying modern context, in `library`."""
    context = client_context(verify=False, legacy=False)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(ENGINE_VARIABLE, library)
        connection = open_tls(context, server_hostname)
    assert isinstance(connection, SslTls if library == "ssl" else OpenSslTls)
    return connection


def first_flight(connection: TlsObject) -> bytes:
    with pytest.raises(ssl.SSLWantReadError):
        connection.do_handshake()
    return connection.drain()


def handshake(connection: TlsObject, port: int) -> None:
    """Drive `connection`'s handshake over a blocking socket; raises what it raises."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        drive(connection, sock)
        sock.sendall(connection.drain())


def drive(connection: TlsObject, sock: socket.socket) -> None:
    """`connection`'s handshake over `sock`, up to its last flight, which is left unsent."""
    while True:
        try:
            connection.do_handshake()
            return
        except ssl.SSLWantReadError:
            sock.sendall(connection.drain())
            received = sock.recv(65536)
            if not received:
                raise ConnectionResetError("closed during the handshake") from None
            connection.feed(received)


def test_the_modern_unverifying_handshake_runs_in_pyopenssl_unless_told(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(ENGINE_VARIABLE, raising=False)
    assert isinstance(open_tls(client_context(verify=False, legacy=False), ""), OpenSslTls)
    assert engine.engine_name() == "pyopenssl"
    # Verification and the legacy contexts stay in ssl, whose codes the ladder reads.
    assert isinstance(open_tls(client_context(verify=True, legacy=False), ""), SslTls)
    assert isinstance(open_tls(client_context(verify=False, legacy=True), ""), SslTls)
    monkeypatch.setenv(ENGINE_VARIABLE, "ssl")
    assert isinstance(open_tls(client_context(verify=False, legacy=False), ""), SslTls)
    assert engine.engine_name() == "ssl"
    monkeypatch.setenv(ENGINE_VARIABLE, "gnutls")
    with pytest.raises(TlsEngineError, match="say pyopenssl or ssl"):
        open_tls(client_context(verify=False, legacy=False), "")


def test_pyopenssl_asked_for_but_unusable_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine, "_build_mirror", lambda context: None)
    monkeypatch.setenv(ENGINE_VARIABLE, "pyopenssl")
    with pytest.raises(TlsEngineError, match="not installed"):
        open_tls(client_context(verify=False, legacy=False), "")
    monkeypatch.delenv(ENGINE_VARIABLE)
    assert isinstance(open_tls(client_context(verify=False, legacy=False), ""), SslTls)


def test_a_pyopenssl_without_the_handles_leaves_every_handshake_to_ssl(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The engine moves records through pyOpenSSL's own handles on its `Connection`; a
    release without them is told apart before the first handshake, and `ssl` does all."""
    monkeypatch.delenv(ENGINE_VARIABLE, raising=False)
    context = client_context(verify=False, legacy=False)
    assert pyopenssl_engine.mirror(context) is not None
    monkeypatch.setattr(pyopenssl_engine, "_HANDLES", (*pyopenssl_engine._HANDLES, "_gone"))
    assert pyopenssl_engine.mirror(context) is None
    engine._build_mirror.cache_clear()
    try:
        assert isinstance(open_tls(context, "mail.example.com"), SslTls)
    finally:
        engine._build_mirror.cache_clear()


def test_both_libraries_send_the_same_hello() -> None:
    """Same versions, suites, groups and a single X25519 key share: newer OpenSSL alone would
    add a post-quantum share of over a kilobyte."""
    hellos = {
        library: parse_client_hello(first_flight(unverifying(library))) for library in ENGINES
    }
    ours, theirs = hellos["pyopenssl"], hellos["ssl"]
    # Secure renegotiation (RFC 5746) is offered by both: OpenSSL 3.0 as a suite, newer
    # OpenSSL as the extension.
    assert RENEGOTIATION_SCSV in theirs.suites and RENEGOTIATION_INFO in ours.extensions
    assert ours.suites == [s for s in theirs.suites if s != RENEGOTIATION_SCSV]
    assert ours.highest == theirs.highest
    assert ours.extensions[SUPPORTED_GROUPS] == theirs.extensions[SUPPORTED_GROUPS]
    assert ours.extensions[SERVER_NAME] == theirs.extensions[SERVER_NAME]
    assert b"mail.example.com" in ours.extensions[SERVER_NAME]
    shares = ours.extensions[KEY_SHARE]
    (group, size) = struct.unpack_from("!HH", shares, 2)
    assert (group, len(shares)) == (X25519, 2 + 4 + size)


@pytest.mark.parametrize("library", ENGINES)
def test_no_sni_for_an_address(library: str) -> None:
    hello = parse_client_hello(first_flight(unverifying(library, "192.0.2.25")))
    assert SERVER_NAME not in hello.extensions


def test_both_libraries_read_the_same_facts(chain_files: tuple[str, str], ca: Issued) -> None:
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(*chain_files)

    def serve(conn: socket.socket) -> None:
        with server.wrap_socket(conn, server_side=True) as tls:
            tls.recv(1)

    facts = {}
    with listener(serve, connections=2) as port:
        for library in ENGINES:
            connection = unverifying(library)
            handshake(connection, port)
            chain = connection.chain()
            facts[library] = (connection.version(), connection.cipher(), connection.certificate())
            assert len(chain) == 2 and chain[0] == connection.certificate()
            assert chain[1] == ca.der
    assert facts["pyopenssl"] == facts["ssl"]
    assert facts["ssl"][0] == "TLSv1.3"


def _plaintext(conn: socket.socket) -> None:
    conn.sendall(b"* OK IMAP4rev1 ready\r\n")
    conn.recv(4096)


def _sha1_cbc_only(files: tuple[str, str]) -> Callable[[socket.socket], None]:
    """A TLS 1.2 server offering one suite that `ssl`'s default list leaves out."""
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.maximum_version = ssl.TLSVersion.TLSv1_2
    server.set_ciphers("AES128-SHA:@SECLEVEL=0")
    server.load_cert_chain(*files)

    def serve(conn: socket.socket) -> None:
        with contextlib.suppress(ssl.SSLError), server.wrap_socket(conn, server_side=True):
            pass

    return serve


def _tls10_only(files: tuple[str, str]) -> Callable[[socket.socket], None]:
    server = tls10_server_context(*files)

    def serve(conn: socket.socket) -> None:
        with contextlib.suppress(ssl.SSLError), server.wrap_socket(conn, server_side=True):
            pass

    return serve


@pytest.mark.parametrize("kind", ["plaintext", "tls10", "sha1-cbc"])
def test_both_libraries_fail_alike(kind: str, chain_files: tuple[str, str]) -> None:
    """The failures the TLS ladder reads (`tls.context.is_protocol_mismatch`) come out of
    pyOpenSSL with `ssl`'s exception class and reason."""
    serve = {
        "plaintext": _plaintext,
        "tls10": _tls10_only(chain_files),
        "sha1-cbc": _sha1_cbc_only(chain_files),
    }[kind]
    failures = {}
    with listener(serve, connections=2) as port:
        for library in ENGINES:
            with pytest.raises(ssl.SSLError) as caught:
                handshake(unverifying(library), port)
            failures[library] = (type(caught.value), caught.value.reason)
    assert failures["pyopenssl"] == failures["ssl"]
    expected = {
        "plaintext": "WRONG_VERSION_NUMBER",
        "tls10": "TLSV1_ALERT_PROTOCOL_VERSION",
        "sha1-cbc": "SSLV3_ALERT_HANDSHAKE_FAILURE",
    }[kind]
    assert failures["ssl"] == (ssl.SSLError, expected)


@pytest.mark.parametrize("library", ENGINES)
def test_a_last_command_and_close_notify_end_cleanly(
    library: str, chain_files: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """LOGOUT and close_notify leave together; the server answers the command, then closes
    with its own close_notify. The client drops the answer and ends cleanly: the server
    sees a close_notify, never a cut connection."""
    monkeypatch.setenv(ENGINE_VARIABLE, library)
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(*chain_files)
    seen: list[bytes] = []

    def serve(conn: socket.socket) -> None:
        with server.wrap_socket(conn, server_side=True) as tls:
            tls.sendall(b"* OK ready\r\n")
            seen.append(tls.recv(4096))
            tls.sendall(b"* BYE logging out\r\na1 OK done\r\n")
            seen.append(tls.recv(4096))  # b"" at the client's close_notify
            tls.unwrap()

    async def go(port: int) -> bool:
        context = client_context(verify=False, legacy=False)
        stream = await Stream.connect("127.0.0.1", port, tls=context, server_hostname="mail")
        assert await stream.receive() == b"* OK ready\r\n"
        await stream.send(b"a1 LOGOUT\r\n")
        await stream.close()
        return stream.wire.error is None

    with listener(serve) as port:
        clean = asyncio.run(go(port))
    assert clean
    assert seen == [b"a1 LOGOUT\r\n", b""]


@pytest.mark.parametrize("library", ENGINES)
def test_a_write_of_many_records_is_drained_whole(
    library: str, chain_files: tuple[str, str]
) -> None:
    """Forty kilobytes written at once (with the handshake's last flight) leave in one
    `drain`: several records, all of them, and the server reads every byte."""
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(*chain_files)
    payload = bytes(range(256)) * 160
    read: list[bytes] = []

    def serve(conn: socket.socket) -> None:
        with server.wrap_socket(conn, server_side=True) as tls:
            got = b""
            while len(got) < len(payload) and (more := tls.recv(65536)):
                got += more
            read.append(got)

    connection = unverifying(library)
    with listener(serve) as port, socket.create_connection(("127.0.0.1", port)) as sock:
        drive(connection, sock)
        connection.write(payload)
        records = connection.drain()
        assert connection.drain() == b""
        sock.sendall(records)
    assert len(records) > len(payload)
    assert read == [payload]


def test_the_run_fails_on_an_unknown_library(tmp_path: Path) -> None:
    """A wrong `PORTCALL_TLS` stops `check` with a message, not with a verdict per port."""
    done = subprocess.run(
        [sys.executable, "-m", "portcall", "check", "127.0.0.1", "--ports", "993"],
        env={"PATH": "/usr/bin:/bin", ENGINE_VARIABLE: "gnutls"},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode != 0
    assert "PORTCALL_TLS='gnutls': say pyopenssl or ssl" in done.stderr
