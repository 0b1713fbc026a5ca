"""Client TLS in pyOpenSSL, shaped as `portcall.tls.engine.TlsObject` and raising what `ssl`
raises: the home of the mapping from pyOpenSSL's errors to `ssl`'s. Imported only when a run
makes its first handshake here (`engine.open_tls`), so that start-up stays small."""

from __future__ import annotations

import functools
import ipaddress
import ssl
from typing import Final

from cryptography.hazmat.bindings.openssl.binding import Binding
from OpenSSL import SSL, crypto

#: OpenSSL 3.0's default key-exchange groups, in its order: the first gets the hello's one
#: key share. `ssl` on OpenSSL 3.0 sends exactly these; newer OpenSSL adds a post-quantum
#: share of over a kilobyte, a hello old servers were never tested with.
GROUPS: Final = b"X25519:P-256:X448:P-521:P-384:ffdhe2048:ffdhe3072:ffdhe4096:ffdhe6144:ffdhe8192"

#: What `ssl` calls the OpenSSL libraries that pyOpenSSL names by their long names.
_LIBRARIES: Final = {"SSL routines": "SSL", "X509 certificate routines": "X509"}

#: Later OpenSSL releases renamed the alerts SSL 3.0 defined ("sslv3 alert handshake failure" became
#: "tls alert handshake failure"); `ssl` on OpenSSL 3.0, and portcall, know the old names.
_RENAMED_ALERTS: Final = ("TLS_ALERT_", "SSLV3_ALERT_")

#: OpenSSL reasons that `ssl` raises as `ssl.SSLEOFError`.
_EOF_REASONS: Final = frozenset({"UNEXPECTED_EOF_WHILE_READING"})

#: Bytes asked of the outgoing BIO, or of a TLS read, at once: a record's worth. Below 64 KiB,
#: where the C library's `free` of each such buffer would sort all its small free blocks.
_CHUNK: Final = 17 * 1024


def mirror(context: ssl.SSLContext) -> SSL.Context | None:
    """A pyOpenSSL context whose hello is the one `context` (modern, unverifying) sends: TLS
    1.2 or newer, the same TLS 1.2 cipher suites, the same groups. None when the groups cannot
    be set: pyOpenSSL has no call for them, the binding beneath it does."""
    copy = SSL.Context(SSL.TLS_CLIENT_METHOD)
    copy.set_verify(SSL.VERIFY_NONE)
    copy.set_min_proto_version(SSL.TLS1_2_VERSION)
    copy.set_options(SSL.OP_ALL | SSL.OP_NO_COMPRESSION)
    tls12 = [c["name"] for c in context.get_ciphers() if c["protocol"] != "TLSv1.3"]
    copy.set_cipher_list(":".join(tls12).encode())
    set_groups = getattr(Binding.lib, "SSL_CTX_set1_curves_list", None)
    handle = getattr(copy, "_context", None)
    if set_groups is None or handle is None or set_groups(handle, GROUPS) != 1:
        return None
    return copy


class OpenSslTls:
    """A pyOpenSSL `Connection` over its own memory BIOs."""

    __slots__ = ("_chain", "_connection")

    def __init__(self, context: SSL.Context, server_hostname: str) -> None:
        connection = SSL.Connection(context, None)
        if server_hostname and not _is_address(server_hostname):
            # As `ssl` does: SNI carries a name, never an address, in its IDNA form.
            connection.set_tlsext_host_name(server_hostname.encode("idna"))
        connection.set_connect_state()
        self._connection = connection
        self._chain: tuple[bytes, ...] | None = None

    def feed(self, records: bytes) -> None:
        self._connection.bio_write(records)

    def drain(self) -> bytes:
        try:
            data = self._connection.bio_read(_CHUNK)
        except SSL.WantReadError:
            return b""
        if len(data) < _CHUNK:
            return data
        return data + self.drain()  # rare: a flight longer than a chunk

    def do_handshake(self) -> None:
        try:
            self._connection.do_handshake()
        except SSL.Error as err:
            raise as_ssl_error(err) from None

    def read(self, size: int) -> bytes:
        try:
            return self._connection.recv(size)
        except SSL.WantReadError:
            raise ssl.SSLWantReadError from None  # the common end of a read: not converted
        except SSL.ZeroReturnError:
            return b""  # the peer's close_notify, which `ssl` reports so
        except SSL.Error as err:
            raise as_ssl_error(err) from None

    def write(self, data: bytes) -> None:
        try:
            self._connection.sendall(data)
        except SSL.Error as err:
            raise as_ssl_error(err) from None

    def unwrap(self) -> None:
        """Send close_notify once, then read up to the peer's. What the peer still sends
        before it (its answer to a last command) is dropped, as `ssl`'s unwrap drops it;
        newer OpenSSL refuses such data inside its own shutdown, hence the reads."""
        connection = self._connection
        try:
            if not connection.get_shutdown() & SSL.SENT_SHUTDOWN:
                connection.shutdown()
            while connection.recv(_CHUNK):
                pass
        except SSL.ZeroReturnError:
            return
        except SSL.Error as err:
            raise as_ssl_error(err) from None
        raise ssl.SSLWantReadError(2, "The operation did not complete (read)")

    def version(self) -> str | None:
        return self._connection.get_protocol_version_name() or None

    def cipher(self) -> tuple[str, str, int] | None:
        connection = self._connection
        name = connection.get_cipher_name()
        version = connection.get_cipher_version()
        bits = connection.get_cipher_bits()
        if name is None or version is None or bits is None:
            return None
        return name, version, bits

    def certificate(self) -> bytes | None:
        chain = self.chain()
        return chain[0] if chain else None

    def chain(self) -> tuple[bytes, ...]:
        """The certificates the server sent, its own first, as DER."""
        if self._chain is None:
            certificates = self._connection.get_peer_cert_chain() or []
            der = crypto.FILETYPE_ASN1
            self._chain = tuple(crypto.dump_certificate(der, c) for c in certificates)
        return self._chain


def as_ssl_error(err: SSL.Error) -> ssl.SSLError:
    """`err` as `ssl` raises the same event: OpenSSL's last error as `ssl.SSLError` with the
    reason named as `ssl` names it ("tlsv1 alert protocol version" is
    "TLSV1_ALERT_PROTOCOL_VERSION", "tls alert handshake failure" the older
    "SSLV3_ALERT_HANDSHAKE_FAILURE")."""
    if isinstance(err, SSL.WantReadError):
        return ssl.SSLWantReadError(2, "The operation did not complete (read)")
    if isinstance(err, SSL.ZeroReturnError):
        return ssl.SSLZeroReturnError(6, "TLS/SSL connection has been closed (EOF)")
    if isinstance(err, SSL.SysCallError):
        return ssl.SSLEOFError(8, "EOF occurred in violation of protocol")
    queue = err.args[0] if err.args and isinstance(err.args[0], list) else []
    if not queue:
        return ssl.SSLError(1, str(err) or "TLS error")
    long_library, _function, text = queue[-1]
    library = _LIBRARIES.get(long_library, long_library)
    reason = text.upper().replace(" ", "_")
    new, old = _RENAMED_ALERTS
    if reason.startswith(new):
        reason = old + reason.removeprefix(new)
    kind = ssl.SSLEOFError if reason in _EOF_REASONS else ssl.SSLError
    converted = kind(1, f"[{library}: {reason}] {text}")
    converted.library = library
    converted.reason = reason
    return converted


@functools.lru_cache(maxsize=1024)
def _is_address(name: str) -> bool:
    """Whether `name` is an IP address; remembered, as a run asks it of the same few names
    on every TLS probe, and a name fails both of `ipaddress`'s parsers first."""
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True
