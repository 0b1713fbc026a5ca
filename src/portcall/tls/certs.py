"""Plain facts about one X.509 certificate, read with cryptography."""

from __future__ import annotations

import ipaddress
import warnings

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.oid import NameOID

from portcall.tls.facts import CertificateFacts

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: The names people use for the NIST curves (RFC 4492 appendix A lists the equivalences).
_CURVE_NAMES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}


class CertificateError(ValueError):
    """The bytes are not a certificate we can read (malformed DER or broken extensions)."""


def load_certificate(der: bytes) -> x509.Certificate:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CryptographyDeprecationWarning)
            return x509.load_der_x509_certificate(der)
    except ValueError as err:
        raise CertificateError(f"the certificate is not valid DER X.509: {err}") from err


def certificate_facts(der: bytes) -> CertificateFacts:
    return facts_from_certificate(load_certificate(der))


def facts_from_certificate(cert: x509.Certificate) -> CertificateFacts:
    # A serial of zero or below (Samba's self-made certificates have one) is the server's
    # business, reported in the facts: not a Python warning on the user's terminal.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        return _facts(cert)


def _facts(cert: x509.Certificate) -> CertificateFacts:
    common = common_names(cert)
    return CertificateFacts(
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        common_name=common[-1] if common else None,
        dns_names=san_dns_names(cert),
        ip_addresses=[str(ip) for ip in san_ip_addresses(cert)],
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        serial=_serial_hex(cert.serial_number),
        sha256=cert.fingerprint(hashes.SHA256()).hex(":").upper(),
        key=describe_key(cert),
        signature_algorithm=_signature_algorithm(cert),
        self_signed=is_self_signed(cert),
    )


def _subject_alt_names(cert: x509.Certificate) -> x509.SubjectAlternativeName | None:
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    except (ValueError, x509.DuplicateExtension) as err:
        raise CertificateError(f"the certificate's extensions cannot be parsed: {err}") from err


def san_dns_names(cert: x509.Certificate) -> list[str]:
    san = _subject_alt_names(cert)
    return san.get_values_for_type(x509.DNSName) if san else []


def san_ip_addresses(cert: x509.Certificate) -> list[IPAddress]:
    san = _subject_alt_names(cert)
    if san is None:
        return []
    # A SAN iPAddress is a single address; networks appear only in name constraints.
    values = san.get_values_for_type(x509.IPAddress)
    return [v for v in values if isinstance(v, ipaddress.IPv4Address | ipaddress.IPv6Address)]


def common_names(cert: x509.Certificate) -> list[str]:
    """Every subject CN in DER order; the last one is the most specific (RFC 6125 6.4.4)."""
    values = (a.value for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME))
    return [v if isinstance(v, str) else v.decode("utf-8", "replace") for v in values]


def describe_key(cert: x509.Certificate) -> str:
    try:
        key = cert.public_key()
    except (ValueError, UnsupportedAlgorithm):
        return f"unsupported key ({cert.public_key_algorithm_oid.dotted_string})"
    if isinstance(key, rsa.RSAPublicKey):
        return f"RSA {key.key_size}"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"EC {_CURVE_NAMES.get(key.curve.name, key.curve.name)}"
    if isinstance(key, dsa.DSAPublicKey):
        return f"DSA {key.key_size}"
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519"
    if isinstance(key, ed448.Ed448PublicKey):
        return "Ed448"
    return type(key).__name__


def is_self_signed(cert: x509.Certificate) -> bool:
    """Issuer equals subject and the certificate's own key verifies its signature."""
    if cert.issuer != cert.subject:
        return False
    try:
        cert.verify_directly_issued_by(cert)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        # Unknown key or signature types, or a bad signature: not provably self-signed.
        return False
    return True


def _signature_algorithm(cert: x509.Certificate) -> str | None:
    oid = cert.signature_algorithm_oid
    name = oid._name
    return oid.dotted_string if name == "Unknown OID" else name


def _serial_hex(serial: int) -> str:
    digits = f"{abs(serial):X}"
    if len(digits) % 2:
        digits = "0" + digits
    return f"-{digits}" if serial < 0 else digits
