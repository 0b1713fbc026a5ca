from __future__ import annotations

import hashlib

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID

from portcall.tls.certs import CertificateError, certificate_facts
from tests.tls.conftest import DAY, NOW, Issued, Pki, issue, make_ca, make_key


def test_facts_of_an_ec_leaf(pki: Pki, valid: Issued) -> None:
    facts = certificate_facts(valid.der)
    assert facts.subject == "CN=mail.example.com,O=Portcall Test Server"
    assert facts.issuer == "CN=Portcall Test CA,O=Portcall Test"
    assert facts.common_name == "mail.example.com"
    assert facts.dns_names == ["mail.example.com", "owa.example.com"]
    assert facts.ip_addresses == []
    assert facts.not_before == NOW - 30 * DAY
    assert facts.not_after == NOW + 200 * DAY
    assert facts.not_after.utcoffset() is not None
    assert facts.key == "EC P-256"
    assert facts.signature_algorithm == "ecdsa-with-SHA256"
    assert facts.self_signed is False
    assert facts.days_left(NOW) == 200


def test_fingerprint_and_serial_are_colon_and_plain_hex(valid: Issued) -> None:
    facts = certificate_facts(valid.der)
    digest = hashlib.sha256(valid.der).hexdigest().upper()
    assert facts.sha256.replace(":", "") == digest
    assert facts.sha256[2] == ":" and len(facts.sha256) == 32 * 3 - 1
    assert int(facts.serial, 16) == valid.cert.serial_number
    assert len(facts.serial) % 2 == 0


def test_serial_with_an_odd_number_of_digits_is_padded(pki: Pki) -> None:
    key = make_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "s")]))
        .issuer_name(pki.ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(0xABC)
        .not_valid_before(NOW)
        .not_valid_after(NOW + DAY)
        .sign(pki.ca.key, hashes.SHA256())
    )
    assert certificate_facts(Issued(cert, key).der).serial == "0ABC"


def test_rsa_self_signed_certificate(self_signed: Issued) -> None:
    facts = certificate_facts(self_signed.der)
    assert facts.key == "RSA 2048"
    assert facts.signature_algorithm == "sha256WithRSAEncryption"
    assert facts.self_signed is True
    assert facts.subject == facts.issuer


def test_ed25519_self_signed_certificate() -> None:
    facts = certificate_facts(issue(None, kind="ed25519").der)
    assert facts.key == "Ed25519"
    assert facts.signature_algorithm == "ed25519"
    assert facts.self_signed is True


def test_a_ca_certificate_is_self_signed() -> None:
    assert certificate_facts(make_ca(kind="rsa2048").der).self_signed is True


def test_same_issuer_and_subject_but_foreign_signature_is_not_self_signed(pki: Pki) -> None:
    # Issued by the CA, but naming itself as issuer: the names agree, the signature does not.
    key = make_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "impostor.example.com")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(7)
        .not_valid_before(NOW)
        .not_valid_after(NOW + DAY)
        .sign(pki.ca.key, hashes.SHA256())
    )
    facts = certificate_facts(Issued(cert, key).der)
    assert facts.subject == facts.issuer
    assert facts.self_signed is False


def test_ip_addresses_are_listed_in_normal_form(ip_san: Issued) -> None:
    facts = certificate_facts(ip_san.der)
    assert facts.ip_addresses == ["192.0.2.10", "2001:db8::1"]
    assert facts.dns_names == ["mail.example.com"]


def test_certificate_without_san_or_cn(pki: Pki) -> None:
    facts = certificate_facts(pki.issue(cn=None, dns=()).der)
    assert facts.common_name is None
    assert facts.dns_names == []


@pytest.mark.parametrize("der", [b"", b"not a certificate", b"\x30\x03\x02\x01\x01"])
def test_malformed_der_raises_certificate_error(der: bytes) -> None:
    with pytest.raises(CertificateError, match="not valid DER"):
        certificate_facts(der)


def test_truncated_certificate_raises_certificate_error(valid: Issued) -> None:
    with pytest.raises(CertificateError):
        certificate_facts(valid.der[:-40])


def test_certificate_error_is_a_value_error() -> None:
    assert issubclass(CertificateError, ValueError)


def test_duplicate_san_extension_raises_certificate_error(pki: Pki) -> None:
    # Builders refuse duplicate extensions, so rename the issuerAltName OID (2.5.29.18) to
    # subjectAltName (2.5.29.17) in the DER: the signature breaks, parsing still works.
    key = make_key()
    alt = x509.SubjectAlternativeName([x509.DNSName("a.example.com")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dup")]))
        .issuer_name(pki.ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(9)
        .not_valid_before(NOW)
        .not_valid_after(NOW + DAY)
        .add_extension(alt, critical=False)
        .add_extension(x509.IssuerAlternativeName(list(alt)), critical=False)
        .sign(pki.ca.key, hashes.SHA256())
    )
    der = Issued(cert, key).der
    assert der.count(b"\x06\x03\x55\x1d\x12") == 1
    broken = der.replace(b"\x06\x03\x55\x1d\x12", b"\x06\x03\x55\x1d\x11")
    with pytest.raises(CertificateError, match="extensions"):
        certificate_facts(broken)
