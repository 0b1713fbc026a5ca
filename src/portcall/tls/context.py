"""Client SSL contexts, and what their handshake failures mean.

Three contexts exist. The modern one is Python's client default (TLS 1.2 or newer, security
level 2). The legacy one reaches what Exchange 2000/2003 run on (IIS 5/6 Schannel: TLS 1.0,
1024-bit keys, SHA-1, no RFC 5746 secure renegotiation); the caller tries it only when the
modern handshake failed in a way `is_protocol_mismatch` accepts, and reports `tls-legacy`.
The fallback one is the legacy one capped at TLS 1.0 with the fewest extensions OpenSSL lets
go of: the hello a browser sent after a server dropped its first one (`is_version_intolerance`).
When even the legacy one finds no common suite (`wants_raw_hello`), the caller reads the
certificate with a hello of its own (`portcall.tls.rawhello`).

Host names are matched by `portcall.tls.names`, never by OpenSSL, so `check_hostname` is off.
Certificate dates are judged from the certificate too (see `_skip_time_check`).
"""

from __future__ import annotations

import contextlib
import functools
import ssl
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from portcall.tls.facts import LegacyCause
from portcall.verdicts import LocalFault

#: X509_V_FLAG_NO_CHECK_TIME (OpenSSL 1.1.0+): verify the chain but not the dates.
NO_CHECK_TIME: Final = 0x200000

#: SSL_OP_LEGACY_SERVER_CONNECT: ssl exports it from Python 3.12; the value is OpenSSL's.
LEGACY_SERVER_CONNECT: Final[int] = getattr(ssl, "OP_LEGACY_SERVER_CONNECT", 0x4)

#: Security level 0 admits TLS 1.0's MD5/SHA-1 handshake signatures, 1024-bit RSA keys and
#: small DH groups. 3DES and RC4 are named in case the OpenSSL build still has them; stock
#: OpenSSL 3 builds leave both out (no "enable-weak-ssl-ciphers"), so a server offering only
#: those (Windows Server 2003 without the AES update) cannot be reached by any context here.
LEGACY_CIPHERS: Final = "DEFAULT:3DES:RC4:!aNULL:!eNULL:@SECLEVEL=0"

#: OpenSSL reason codes (err.reason) that a server of the TLS 1.0 era causes, seen on real
#: handshakes: a TLS 1.0-only server alerts protocol_version to a TLS 1.2+ hello; a lenient
#: one answers TLS 1.0 (unsupported protocol); no common cipher ends in a handshake_failure
#: alert; a server without RFC 5746 trips OpenSSL 3's refusal of unsafe legacy renegotiation;
#: a 1024-bit DHE group is below security level 2. WRONG_VERSION_NUMBER also comes from a
#: plaintext reply; the legacy retry then fails the same way, which costs one connection.
MISMATCH_REASONS: Final = frozenset(
    {
        "UNSUPPORTED_PROTOCOL",
        "NO_PROTOCOLS_AVAILABLE",
        "TLSV1_ALERT_PROTOCOL_VERSION",
        "WRONG_VERSION_NUMBER",
        "VERSION_TOO_LOW",
        "SSLV3_ALERT_HANDSHAKE_FAILURE",
        "NO_SHARED_CIPHER",
        "NO_CIPHERS_AVAILABLE",
        "UNSAFE_LEGACY_RENEGOTIATION_DISABLED",
        "DH_KEY_TOO_SMALL",
    }
)

#: X509_V_ERR_EE_KEY_TOO_SMALL, _CA_KEY_TOO_SMALL, _CA_MD_TOO_WEAK: verification failed only
#: because of the security level, which the legacy context lowers.
WEAK_CRYPTO_CAUSES: Final = {
    66: LegacyCause.WEAK_KEY,
    67: LegacyCause.WEAK_CA_KEY,
    68: LegacyCause.WEAK_SIGNATURE,
}
WEAK_CRYPTO_CODES: Final = frozenset(WEAK_CRYPTO_CAUSES)

#: OpenSSL reasons after which a server may still answer portcall's own hello: no suite in
#: common (a server offering only RC4/3DES alerts handshake_failure or insufficient_security),
#: or a version OpenSSL 3 no longer speaks (SSL 3.0). Not WRONG_VERSION_NUMBER: that is
#: mostly plaintext, which no hello helps with.
RAW_HELLO_REASONS: Final = frozenset(
    {
        "SSLV3_ALERT_HANDSHAKE_FAILURE",
        "TLSV1_ALERT_INSUFFICIENT_SECURITY",
        "NO_SHARED_CIPHER",
        "NO_CIPHERS_AVAILABLE",
        "TLSV1_ALERT_PROTOCOL_VERSION",
        "UNSUPPORTED_PROTOCOL",
    }
)

#: SSL_OP_NO_ENCRYPT_THEN_MAC (OpenSSL 1.1.1+) and SSL_OP_NO_EXTENDED_MASTER_SECRET (3.0+):
#: not exported by Python 3.11's ssl; the values are OpenSSL's. With OP_NO_TICKET they keep
#: extensions a TLS 1.0-era stack never saw out of the fallback hello.
NO_ENCRYPT_THEN_MAC: Final = 1 << 19
NO_EXTENDED_MASTER_SECRET: Final = 1 << 0

#: X509_V_ERR_CERT_NOT_YET_VALID and X509_V_ERR_CERT_HAS_EXPIRED: everything but the dates
#: verified (OpenSSL checks signatures and issuers before validity).
TIME_ERRORS: Final = {
    9: "the chain is trusted, but a certificate in it is not yet valid",
    10: "the chain is trusted, but a certificate in it has expired",
}

_FIX_TRUST = "install a certificate issued by a CA the clients trust, or pass that CA with --ca"

#: X509_V_ERR_* codes from OpenSSL's x509_vfy.h and what a person should do about them.
UNTRUSTED_ERRORS: Final = {
    2: "an issuing CA certificate is missing: install the intermediate CA certificates "
    "on the server",
    7: "a certificate signature does not verify: the chain is damaged or forged",
    18: f"the certificate is self-signed and not trusted: {_FIX_TRUST}",
    19: f"the chain ends in a self-signed root that is not trusted: {_FIX_TRUST}",
    20: "the issuing CA is unknown: install the intermediate CA certificates on the server, "
    "or pass the issuing CA with --ca",
    21: "the server sent only its own certificate and its issuer is unknown: install the "
    "intermediate CA certificates on the server",
    23: "the certificate has been revoked: install a new certificate",
    24: "an issuing certificate is not a CA certificate: reissue the chain",
    26: "the certificate is not meant for server authentication (extended key usage)",
    27: f"the root CA is not trusted for server authentication: {_FIX_TRUST}",
    28: f"the root CA is marked as rejected: {_FIX_TRUST}",
    66: "the server's key is too weak for current clients (under 2048-bit RSA): "
    "install a certificate with a stronger key",
    67: "an issuing CA key is too weak for current clients: use a CA with a stronger key",
    68: "a certificate in the chain is signed with MD5 or SHA-1: reissue it with SHA-256",
}


class TrustStoreError(LocalFault):
    """The CA file given for verification cannot be used: a fault of this machine's setup,
    never of the target."""


@dataclass(frozen=True)
class VerifyFailure:
    #: True when only the dates failed: the chain up to a trusted root is sound.
    chain_trusted: bool
    message: str


def client_context(
    *, verify: bool, legacy: bool, cafile: str | None = None, tls1_only: bool = False
) -> ssl.SSLContext:
    """A shared, cached client context; do not change it after getting it. `tls1_only` (with
    `legacy`) gives the fallback context for version-intolerant servers."""
    return _build_context(verify, legacy, cafile if verify else None, legacy and tls1_only)


@functools.lru_cache(maxsize=16)
def _build_context(
    verify: bool, legacy: bool, cafile: str | None, tls1_only: bool
) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    if legacy:
        _allow_legacy(ctx)
    if tls1_only:
        _cap_at_tls1(ctx)
    if verify:
        ctx.verify_mode = ssl.CERT_REQUIRED
        _load_trust(ctx, cafile)
        _skip_time_check(ctx)
    else:
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _allow_legacy(ctx: ssl.SSLContext) -> None:
    with warnings.catch_warnings():
        # Python deprecates TLS 1.0; speaking it to old servers is this context's purpose.
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = ssl.TLSVersion.TLSv1
    # Without TLS 1.3 the hello carries no key shares or supported_versions: the shape old
    # stacks were tested with (version intolerance is why RFC 7507 exists).
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(LEGACY_CIPHERS)
    ctx.options |= LEGACY_SERVER_CONNECT


def _cap_at_tls1(ctx: ssl.SSLContext) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.maximum_version = ssl.TLSVersion.TLSv1
    ctx.options |= ssl.OP_NO_TICKET | NO_ENCRYPT_THEN_MAC | NO_EXTENDED_MASTER_SECRET


def _skip_time_check(ctx: ssl.SSLContext) -> None:
    """Let an expired but otherwise trusted chain complete the handshake.

    CPython passes verify_flags to X509_VERIFY_PARAM_set_flags unfiltered, so the raw
    OpenSSL flag works (tested against a live handshake). Dates are then judged by
    `portcall.tls.assess` from the leaf certificate. Should a build refuse the flag, an
    expired chain fails with verify code 10, which `classify_verify_error` reports as
    chain_trusted=True, and the caller retries without verification to read the certificate.
    """
    with contextlib.suppress(ssl.SSLError, OverflowError):
        ctx.verify_flags |= NO_CHECK_TIME


def _load_trust(ctx: ssl.SSLContext, cafile: str | None) -> None:
    if cafile is None:
        ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)
        return
    try:
        ctx.load_verify_locations(cafile=cafile)
    except ssl.SSLError as err:
        _load_der(ctx, cafile, err)
    except OSError as err:
        raise TrustStoreError(f"CA file {cafile}: {err.strerror or err}") from err


def _load_der(ctx: ssl.SSLContext, cafile: str, pem_error: ssl.SSLError) -> None:
    # Windows exports certificates as DER (.cer) by default; accept one such certificate.
    try:
        ctx.load_verify_locations(cadata=Path(cafile).read_bytes())
    except (ssl.SSLError, ValueError):
        reason = pem_error.reason or pem_error.strerror or str(pem_error)
        raise TrustStoreError(
            f"CA file {cafile}: holds no PEM or DER certificate ({reason})"
        ) from pem_error


def classify_verify_error(err: ssl.SSLCertVerificationError) -> VerifyFailure:
    code = err.verify_code
    if code in TIME_ERRORS:
        return VerifyFailure(chain_trusted=True, message=TIME_ERRORS[code])
    known = UNTRUSTED_ERRORS.get(code)
    if known is not None:
        return VerifyFailure(chain_trusted=False, message=known)
    detail = err.verify_message or err.reason or str(err)
    return VerifyFailure(False, f"certificate verification failed: {detail} (OpenSSL {code})")


def is_time_only(trust_error: str | None) -> bool:
    """Whether a trust error from `classify_verify_error` concerns the dates alone."""
    return trust_error in TIME_ERRORS.values()


def is_protocol_mismatch(err: ssl.SSLError) -> bool:
    """True when the legacy context may succeed where the modern one failed.

    Verification errors count when they come from the security level alone (a 1024-bit or
    SHA-1 chain), so call this before `classify_verify_error`.
    """
    if isinstance(err, ssl.SSLCertVerificationError):
        return err.verify_code in WEAK_CRYPTO_CODES
    return err.reason in MISMATCH_REASONS


def legacy_cause(err: ssl.SSLError) -> LegacyCause:
    """Why `err`, accepted by `is_protocol_mismatch`, sends the probe to the legacy context."""
    if isinstance(err, ssl.SSLCertVerificationError):
        return WEAK_CRYPTO_CAUSES.get(err.verify_code, LegacyCause.PROTOCOL)
    return LegacyCause.PROTOCOL


def is_version_intolerance(err: BaseException) -> bool:
    """True when the server dropped the connection on the hello without a TLS alert, as
    version-intolerant stacks did; browsers then retried with a TLS 1.0 hello."""
    return isinstance(err, ConnectionResetError | BrokenPipeError | ssl.SSLEOFError)


def wants_raw_hello(err: BaseException) -> bool:
    """True when the legacy context failed in a way portcall's own hello may get past."""
    if isinstance(err, ssl.SSLCertVerificationError):
        return False
    return isinstance(err, ssl.SSLError) and err.reason in RAW_HELLO_REASONS
