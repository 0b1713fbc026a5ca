"""The TLS library under a probe's handshake: Python's `ssl`, or OpenSSL through pyOpenSSL.

Python 3.11's `ssl` runs on the system's OpenSSL (3.0 on Debian 12), where a client's TLS 1.3
handshake costs about 0.45 ms of CPU, over a quarter of it spent building a key decoder anew
for each certificate the server sends, a cost later OpenSSL releases removed. pyOpenSSL runs
on the OpenSSL that `cryptography` ships in its wheels (4.0 in the build tested here), where
the same handshake calls take about half the CPU (0.24 ms against 0.47 ms under cProfile, at
256 hosts). The handshake most probes of a run make, modern and without verification (the
trust memo's shortcut, `portcall.tls.memo`, and the retry after a refused chain), runs there
(`portcall.tls.pyopenssl_engine`); verifying and legacy handshakes stay in `ssl`, whose
verification codes and security levels the rest of portcall reads.

The two do not differ in what a server sees or in what a failure means: the pyOpenSSL context
copies the `ssl` context's hello (versions, TLS 1.2 suites, key-exchange groups, SNI for names
only), and what pyOpenSSL raises is raised as `ssl` raises it. Where the hello cannot be
copied, or pyOpenSSL lacks the handles its records move through, `ssl` is used.

`PORTCALL_TLS=ssl` keeps every handshake in `ssl`; `PORTCALL_TLS=pyopenssl` asks for pyOpenSSL
(an error where it is missing or unusable). By default pyOpenSSL is used where it is usable.
"""

from __future__ import annotations

import _ssl  # the DER encoding constant of `_ssl.Certificate.public_bytes`
import functools
import os
import ssl
from typing import TYPE_CHECKING, Final, Protocol

from portcall.tls.context import client_context
from portcall.verdicts import LocalFault

if TYPE_CHECKING:
    from OpenSSL import SSL

#: The environment variable that chooses the library: "pyopenssl" (the default where usable)
#: or "ssl" (Python's own).
ENGINE_VARIABLE: Final = "PORTCALL_TLS"


class TlsEngineError(LocalFault):
    """`PORTCALL_TLS` names a library that is unknown or not usable here."""


class TlsObject(Protocol):
    """One client TLS connection over memory buffers: records in with `feed`, records out
    with `drain`; the methods of `ssl.SSLObject` between them, raising what it raises."""

    def feed(self, records: bytes) -> None: ...
    def drain(self) -> bytes: ...
    def do_handshake(self) -> None: ...
    def read(self, size: int) -> bytes: ...
    def write(self, data: bytes) -> None: ...
    def unwrap(self) -> None: ...
    def version(self) -> str | None: ...
    def cipher(self) -> tuple[str, str, int] | None: ...
    def certificate(self) -> bytes | None: ...
    def chain(self) -> tuple[bytes, ...]: ...


def open_tls(context: ssl.SSLContext, server_hostname: str) -> TlsObject:
    """A client TLS connection for `context`: in pyOpenSSL when `context` is the modern
    unverifying one and pyOpenSSL is chosen and usable, in `ssl` otherwise."""
    if context is client_context(verify=False, legacy=False):
        mirror = _mirror(context)
        if mirror is not None:
            from portcall.tls.pyopenssl_engine import OpenSslTls

            return OpenSslTls(mirror, server_hostname)
    return SslTls(context, server_hostname)


def engine_name() -> str:
    """Which library the modern unverifying handshake runs in here: "pyopenssl" or "ssl"."""
    return "ssl" if _mirror(client_context(verify=False, legacy=False)) is None else "pyopenssl"


class SslTls:
    """`ssl.SSLObject` over two `ssl.MemoryBIO`s."""

    __slots__ = ("_incoming", "_object", "_outgoing")

    def __init__(self, context: ssl.SSLContext, server_hostname: str) -> None:
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._object = context.wrap_bio(
            self._incoming, self._outgoing, server_hostname=server_hostname or None
        )

    def feed(self, records: bytes) -> None:
        self._incoming.write(records)

    def drain(self) -> bytes:
        return self._outgoing.read()

    def do_handshake(self) -> None:
        self._object.do_handshake()

    def read(self, size: int) -> bytes:
        return self._object.read(size)

    def write(self, data: bytes) -> None:
        self._object.write(data)

    def unwrap(self) -> None:
        self._object.unwrap()

    def version(self) -> str | None:
        return self._object.version()

    def cipher(self) -> tuple[str, str, int] | None:
        return self._object.cipher()

    def certificate(self) -> bytes | None:
        return self._object.getpeercert(binary_form=True)

    def chain(self) -> tuple[bytes, ...]:
        """The certificates the server sent, as DER. Python 3.13 has `get_unverified_chain()`;
        3.10 to 3.12 have it on the private `_sslobj` only, hence the careful look-up."""
        inner = getattr(self._object, "_sslobj", self._object)
        get_chain = getattr(inner, "get_unverified_chain", None)
        if get_chain is None:
            return ()
        try:
            certificates = get_chain() or []
            return tuple(bytes(c.public_bytes(_ssl.ENCODING_DER)) for c in certificates)
        except (AttributeError, ValueError, ssl.SSLError):
            return ()


def asked_library() -> str:
    """What `PORTCALL_TLS` asks for: "pyopenssl", "ssl", or "" (the default); raises
    `TlsEngineError` for anything else, so that a run can refuse it before it starts."""
    asked = os.environ.get(ENGINE_VARIABLE, "").strip().lower()
    if asked not in ("", "pyopenssl", "ssl"):
        raise TlsEngineError(f"{ENGINE_VARIABLE}={asked!r}: say pyopenssl or ssl")
    return asked


def _mirror(context: ssl.SSLContext) -> SSL.Context | None:
    """The pyOpenSSL context sending the hello `context` sends, or None where `ssl` is to be
    used (chosen so, or pyOpenSSL missing or unable to copy the hello)."""
    asked = asked_library()
    if asked == "ssl":
        return None
    mirror = _build_mirror(context)
    if mirror is None and asked:
        raise TlsEngineError(
            f"{ENGINE_VARIABLE}=pyopenssl, but pyOpenSSL is not installed, cannot set the "
            "key-exchange groups, or lacks the handles portcall moves records through"
        )
    return mirror


@functools.lru_cache(maxsize=4)
def _build_mirror(context: ssl.SSLContext) -> SSL.Context | None:
    try:
        from portcall.tls.pyopenssl_engine import mirror
    except ImportError:
        return None
    return mirror(context)
