"""Client TLS in pyOpenSSL, shaped as `portcall.tls.engine.TlsObject` and raising what `ssl`
raises: the home of the mapping from pyOpenSSL's errors to `ssl`'s. Imported only when a run
makes its first handshake here (`engine.open_tls`), so that start-up stays small.

The records in and out, and the plaintext read and written, the calls a probe makes most
(some twenty per TLS probe), go straight to the OpenSSL binding beneath pyOpenSSL, on the
handles of pyOpenSSL's own `Connection`: pyOpenSSL's Python wrappers cost about a microsecond
a call, and an exception for every read that finds nothing, together about 4 % of a run's CPU.
The handshake's steps and the close_notify go the same way. A call that wants more records,
or meets the peer's close_notify, is told so by OpenSSL's code; any other failure goes
through pyOpenSSL, which names it. Where a pyOpenSSL release lacks those handles, `mirror`
says so and `ssl` takes every handshake.
"""

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

#: Bytes asked of a TLS read in `unwrap`, at once: a record's worth. Below 64 KiB, where the C
#: library's `free` of each such buffer would sort all its small free blocks.
_CHUNK: Final = 17 * 1024

_lib: Final = Binding.lib
_ffi: Final = Binding.ffi
#: Buffers OpenSSL fills at once need no zeroing first (pyOpenSSL's own allocator does so).
_buffer: Final = _ffi.new_allocator(should_clear_after_alloc=False)
#: OpenSSL's codes (part of its ABI): a call wants more records; the peer sent close_notify;
#: our close_notify is out.
_WANT_READ: Final = getattr(_lib, "SSL_ERROR_WANT_READ", 2)
_ZERO_RETURN: Final = getattr(_lib, "SSL_ERROR_ZERO_RETURN", 6)
_SENT_SHUTDOWN: Final = getattr(_lib, "SSL_SENT_SHUTDOWN", 1)
#: pyOpenSSL's handles on a `Connection`: the SSL object, its memory BIOs, and the method that
#: raises the pyOpenSSL exception for a failed call.
_HANDLES: Final = ("_ssl", "_into_ssl", "_from_ssl", "_raise_ssl_error")
#: The binding's calls `OpenSslTls` makes itself.
_CALLS: Final = (
    "BIO_write",
    "BIO_read",
    "BIO_get_mem_data",
    "SSL_do_handshake",
    "SSL_read",
    "SSL_write",
    "SSL_shutdown",
    "SSL_get_shutdown",
    "SSL_get_error",
)


def mirror(context: ssl.SSLContext) -> SSL.Context | None:
    """A pyOpenSSL context whose hello is the one `context` (modern, unverifying) sends: TLS
    1.2 or newer, the same TLS 1.2 cipher suites, the same groups. None when the groups cannot
    be set (pyOpenSSL has no call for them, the binding beneath it does), or when the binding's
    calls or pyOpenSSL's handles that `OpenSslTls` uses are missing."""
    copy = SSL.Context(SSL.TLS_CLIENT_METHOD)
    copy.set_verify(SSL.VERIFY_NONE)
    copy.set_min_proto_version(SSL.TLS1_2_VERSION)
    copy.set_options(SSL.OP_ALL | SSL.OP_NO_COMPRESSION)
    tls12 = [c["name"] for c in context.get_ciphers() if c["protocol"] != "TLSv1.3"]
    copy.set_cipher_list(":".join(tls12).encode())
    set_groups = getattr(_lib, "SSL_CTX_set1_curves_list", None)
    handle = getattr(copy, "_context", None)
    if set_groups is None or handle is None or set_groups(handle, GROUPS) != 1:
        return None
    if not all(hasattr(_lib, call) for call in _CALLS):
        return None
    connection = SSL.Connection(copy, None)
    if not all(hasattr(connection, name) for name in _HANDLES):
        return None
    return copy


class OpenSslTls:
    """A pyOpenSSL `Connection` over its own memory BIOs; its records and plaintext are
    moved by the binding's calls on the connection's handles (see the module's text)."""

    __slots__ = ("_chain", "_connection", "_from", "_into", "_ssl")

    def __init__(self, context: SSL.Context, server_hostname: str) -> None:
        connection = SSL.Connection(context, None)
        if server_hostname and not _is_address(server_hostname):
            # As `ssl` does: SNI carries a name, never an address, in its IDNA form.
            connection.set_tlsext_host_name(server_hostname.encode("idna"))
        connection.set_connect_state()
        self._connection = connection
        self._ssl = connection._ssl
        self._into = connection._into_ssl
        self._from = connection._from_ssl
        self._chain: tuple[bytes, ...] | None = None

    def feed(self, records: bytes) -> None:
        if _lib.BIO_write(self._into, records, len(records)) != len(records):
            raise MemoryError("OpenSSL's memory buffer could not grow")  # its only failure

    def drain(self) -> bytes:
        pending = _lib.BIO_get_mem_data(self._from, _ffi.NULL)
        if pending <= 0:
            return b""
        buffer = _buffer("char[]", pending)
        records: bytes = _ffi.buffer(buffer, _lib.BIO_read(self._from, buffer, pending))[:]
        return records

    def do_handshake(self) -> None:
        result = _lib.SSL_do_handshake(self._ssl)
        if result != 1:
            raise self._failed(result)

    def read(self, size: int) -> bytes:
        buffer = _buffer("char[]", size)
        count = _lib.SSL_read(self._ssl, buffer, size)
        if count > 0:
            data: bytes = _ffi.buffer(buffer, count)[:]
            return data
        code = _lib.SSL_get_error(self._ssl, count)
        if code == _ZERO_RETURN:
            return b""  # the peer's close_notify, which `ssl` reports so
        raise self._failed(count, code)  # not kept in a local: its frames would hold it

    def write(self, data: bytes) -> None:
        # pyOpenSSL's contexts allow partial writes: a record at a time, for long data.
        left = data
        while left:
            count = _lib.SSL_write(self._ssl, left, len(left))
            if count <= 0:
                raise self._failed(count)
            left = left[count:]

    def unwrap(self) -> None:
        """Send close_notify once, then read up to the peer's. What the peer still sends
        before it (its answer to a last command) is dropped, as `ssl`'s unwrap drops it;
        newer OpenSSL refuses such data inside its own shutdown, hence the reads."""
        if not _lib.SSL_get_shutdown(self._ssl) & _SENT_SHUTDOWN:
            result = _lib.SSL_shutdown(self._ssl)
            if result < 0:
                raise self._failed(result)
        while self.read(_CHUNK):  # SSLWantReadError until the peer's close_notify
            pass

    def _failed(self, result: int, code: int | None = None) -> ssl.SSLError:
        """What the call that returned `result` failed with (OpenSSL's `code` for it, when
        asked already), as `ssl` raises it: the two common ends (more records wanted, the
        peer's close_notify) told by the code, anything else by the exception pyOpenSSL
        makes of it."""
        if code is None:
            code = _lib.SSL_get_error(self._ssl, result)
        if code == _WANT_READ:
            return _want_read()
        if code == _ZERO_RETURN:
            return _zero_return()
        try:
            self._connection._raise_ssl_error(self._ssl, result)
        except SSL.Error as err:
            return as_ssl_error(err)
        return ssl.SSLError(1, f"[SSL] a call failed with OpenSSL's code {code}")

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
        return _want_read()
    if isinstance(err, SSL.ZeroReturnError):
        return _zero_return()
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


def _want_read() -> ssl.SSLWantReadError:
    return ssl.SSLWantReadError(2, "The operation did not complete (read)")


def _zero_return() -> ssl.SSLZeroReturnError:
    return ssl.SSLZeroReturnError(6, "TLS/SSL connection has been closed (EOF)")


@functools.lru_cache(maxsize=1024)
def _is_address(name: str) -> bool:
    """Whether `name` is an IP address; remembered, as a run asks it of the same few names
    on every TLS probe, and a name fails both of `ipaddress`'s parsers first."""
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True
